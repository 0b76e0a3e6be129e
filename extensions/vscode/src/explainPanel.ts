/**
 * The explanation webview (view type `codeLlama.explanation`), opened beside
 * the editor without taking focus and reused across explanations. Markdown is
 * rendered to HTML by VS Code's built-in `markdown.api.render`; renders are
 * serialized so that the newest content always wins.
 */
import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import { explanationHtml, type ExplanationState, PANEL_TITLE, plainTextHtml } from "./explanationHtml";

export const PANEL_VIEW_TYPE = "codeLlama.explanation";

/** One state of the panel. */
export interface ExplanationContent {
  heading: string;
  /** The Markdown written so far (or all of it). */
  markdown: string;
  state: ExplanationState;
  /** Plain text under the explanation (an error message). */
  note?: string;
}

export class ExplanationPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private pending: ExplanationContent | undefined;
  private rendering = false;
  private readonly closed = new vscode.EventEmitter<void>();

  /** Fires when the user closes the panel. */
  readonly onDidClose = this.closed.event;

  /** Opens (or reveals) the panel showing "Explaining…" under `heading`. */
  open(heading: string): void {
    if (this.panel === undefined) {
      const panel = vscode.window.createWebviewPanel(
        PANEL_VIEW_TYPE,
        PANEL_TITLE,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: false, enableFindWidget: true, localResourceRoots: [] },
      );
      panel.onDidDispose(() => {
        this.panel = undefined;
        this.pending = undefined;
        this.closed.fire();
      });
      this.panel = panel;
    } else {
      this.panel.reveal(undefined, true);
    }
    this.show({ heading, markdown: "", state: "writing" });
  }

  /** Shows `content`; a no-op once the panel is closed. */
  show(content: ExplanationContent): void {
    if (this.panel === undefined) {
      return;
    }
    this.pending = content;
    if (!this.rendering) {
      void this.drain();
    }
  }

  dispose(): void {
    this.panel?.dispose();
    this.closed.dispose();
  }

  private async drain(): Promise<void> {
    this.rendering = true;
    try {
      while (this.pending !== undefined) {
        const content = this.pending;
        this.pending = undefined;
        const bodyHtml = await renderMarkdown(content.markdown);
        if (this.panel === undefined) {
          return;
        }
        if (this.pending !== undefined && content.state === "writing") {
          continue; // Newer words arrived while rendering: skip straight to them.
        }
        this.panel.webview.html = explanationHtml({
          cspSource: this.panel.webview.cspSource,
          nonce: randomBytes(16).toString("base64"),
          heading: content.heading,
          state: content.state,
          bodyHtml,
          note: content.note,
        });
      }
    } finally {
      this.rendering = false;
    }
  }
}

/** Markdown as HTML through VS Code's Markdown extension; escaped text if it is unavailable. */
async function renderMarkdown(markdown: string): Promise<string> {
  if (markdown.trim() === "") {
    return "";
  }
  try {
    const html = await vscode.commands.executeCommand<unknown>("markdown.api.render", markdown);
    if (typeof html === "string") {
      return html;
    }
  } catch {
    // The built-in Markdown extension is disabled: fall through to plain text.
  }
  return plainTextHtml(markdown);
}
