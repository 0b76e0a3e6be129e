/**
 * Entry point: wires the output channel, the server session, the status bar,
 * the explanation panel, the copy/cut tracker, the commands and the settings
 * listener together.
 */
import * as vscode from "vscode";
import { debounce } from "./debounce";
import { COPIED_TEXT_SETTING, CopyTracker } from "./copyTracker";
import { codeLlamaConfig, completionsEnabledForDocument, SECTION } from "./editorSettings";
import { Explainer } from "./explain";
import { ExplanationPanel } from "./explainPanel";
import { EXPLAIN_SELECTION_COMMAND } from "./explainTarget";
import { SHOW_PROMPT_AT_CURSOR_COMMAND } from "./promptReport";
import { ServerSession } from "./serverSession";
import { showPromptAtCursor } from "./showPrompt";
import { StatusBar } from "./statusBar";

export const COMMANDS = {
  explainSelection: EXPLAIN_SELECTION_COMMAND,
  showPromptAtCursor: SHOW_PROMPT_AT_CURSOR_COMMAND,
  toggleCompletions: "codeLlama.toggleCompletions",
  restartServer: "codeLlama.restartServer",
  showLog: "codeLlama.showLog",
} as const;

/** How long `codeLlama.server.*` edits must settle before the server restarts. */
const RESTART_DELAY_MS = 500;

let session: ServerSession | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("Code Llama", { log: true });
  session = new ServerSession(output, completionsEnabledForDocument);
  const current = session;
  const statusBar = new StatusBar(current, COMMANDS.showLog);
  const panel = new ExplanationPanel();
  const explainer = new Explainer(current, panel);
  const restartSoon = debounce(() => void current.restart(), RESTART_DELAY_MS);
  const copyTracker = new CopyTracker(current, output);

  context.subscriptions.push(
    output,
    current,
    statusBar,
    panel,
    explainer,
    restartSoon,
    copyTracker,
    vscode.commands.registerCommand(COMMANDS.explainSelection, (argument?: unknown) => explainer.explain(argument)),
    vscode.commands.registerCommand(COMMANDS.showPromptAtCursor, () => showPromptAtCursor(current)),
    vscode.commands.registerCommand(COMMANDS.toggleCompletions, toggleCompletions),
    vscode.commands.registerCommand(COMMANDS.restartServer, () => current.restart()),
    vscode.commands.registerCommand(COMMANDS.showLog, () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) {
        return;
      }
      if (event.affectsConfiguration(`${SECTION}.server`)) {
        restartSoon();
      }
      if (event.affectsConfiguration(`${SECTION}.${COPIED_TEXT_SETTING}`)) {
        copyTracker.refresh();
      }
      current.pushSettings();
      statusBar.refresh();
    }),
  );
  void current.start();
}

export function deactivate(): Promise<void> | undefined {
  return session?.stop();
}

/** Flips `codeLlama.completions.enable` in the user settings. */
async function toggleCompletions(): Promise<void> {
  const config = codeLlamaConfig();
  const enable = config.get<boolean>("completions.enable") === false;
  await config.update("completions.enable", enable, vscode.ConfigurationTarget.Global);
  const inspected = codeLlamaConfig().inspect<boolean>("completions.enable");
  const overridden = [inspected?.workspaceValue, inspected?.workspaceFolderValue].some(
    (value) => value !== undefined && value !== enable,
  );
  if (overridden) {
    void vscode.window.showWarningMessage(
      `Code Llama: completions are ${enable ? "on" : "off"} in the user settings, but a workspace setting overrides that.`,
    );
  } else {
    vscode.window.setStatusBarMessage(`Code Llama: completions ${enable ? "on" : "off"}`, 3000);
  }
}
