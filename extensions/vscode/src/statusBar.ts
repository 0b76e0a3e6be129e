/**
 * The "Code Llama" status bar item (id `codeLlama.status`): what the server
 * is doing, on which device, the last completion's latency, and whether
 * completions are on for the active editor. Clicking it shows the log.
 */
import * as vscode from "vscode";
import { completionsEnabledForDocument, completionsEnabledGlobally } from "./editorSettings";
import type { ServerSession } from "./serverSession";
import { formatStatus } from "./status";

export const STATUS_ITEM_ID = "codeLlama.status";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly listeners: vscode.Disposable[];

  constructor(
    private readonly session: ServerSession,
    clickCommand: string,
  ) {
    this.item = vscode.window.createStatusBarItem(STATUS_ITEM_ID, vscode.StatusBarAlignment.Right, 100);
    this.item.name = "Code Llama";
    this.item.command = clickCommand;
    this.listeners = [
      session.onDidChange(() => this.refresh()),
      vscode.window.onDidChangeActiveTextEditor(() => this.refresh()),
    ];
    this.refresh();
    this.item.show();
  }

  /** Redraws the item from the session and the completion settings. */
  refresh(): void {
    const document = vscode.window.activeTextEditor?.document;
    const view = formatStatus({
      ...this.session.state,
      completionsEnabled: document ? completionsEnabledForDocument(document) : completionsEnabledGlobally(),
      languageId: document?.languageId,
    });
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === "normal" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
  }

  dispose(): void {
    for (const listener of this.listeners) {
      listener.dispose();
    }
    this.item.dispose();
  }
}
