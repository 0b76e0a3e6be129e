/**
 * `Code Llama: Explain Selection`: sends the server's `codeLlama.explain`
 * command with our own work-done token, streams each progress report (the
 * whole Markdown so far) into the panel, then shows the result. A new
 * explanation or closing the panel cancels the one in flight
 * (`$/cancelRequest`).
 */
import { randomUUID } from "node:crypto";
import * as vscode from "vscode";
import { ExecuteCommandRequest, type LanguageClient, WorkDoneProgress } from "vscode-languageclient/node";
import { errorMessage, isCancellation } from "./errors";
import type { ExplanationPanel } from "./explainPanel";
import { describeTarget, type ExplainArgument, parseExplainArgument, SERVER_EXPLAIN_COMMAND } from "./explainTarget";
import type { ServerSession } from "./serverSession";

const EXPLAINABLE_SCHEMES = new Set(["file", "untitled"]);

export class Explainer implements vscode.Disposable {
  private current: vscode.CancellationTokenSource | undefined;
  private readonly listener: vscode.Disposable;

  constructor(
    private readonly session: ServerSession,
    private readonly panel: ExplanationPanel,
  ) {
    this.listener = panel.onDidClose(() => this.cancel());
  }

  /**
   * Explains `argument` (`{uri, range}` from the server's code action) or,
   * without one, the active editor's selection (empty: the enclosing function).
   */
  async explain(argument?: unknown): Promise<void> {
    const client = this.session.languageClient;
    if (client === undefined) {
      void vscode.window.showErrorMessage(
        'Code Llama: the server is not running. Run "Code Llama: Restart Server" or see "Code Llama: Show Log".',
      );
      return;
    }
    const target = parseExplainArgument(argument) ?? targetFromEditor(client);
    if (target === undefined) {
      return;
    }
    this.cancel();
    const cancellation = new vscode.CancellationTokenSource();
    this.current = cancellation;
    const heading = describeTarget(target.uri, target.range);
    this.panel.open(heading);

    let markdown = "";
    const workDoneToken = `codeLlama-explain-${randomUUID()}`;
    const progress = client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
      if (value.kind === "report" && typeof value.message === "string" && !cancellation.token.isCancellationRequested) {
        markdown = value.message;
        this.panel.show({ heading, markdown, state: "writing" });
      }
    });
    try {
      const result: unknown = await client.sendRequest(
        ExecuteCommandRequest.type,
        { command: SERVER_EXPLAIN_COMMAND, arguments: [target], workDoneToken },
        cancellation.token,
      );
      if (!cancellation.token.isCancellationRequested) {
        this.panel.show({ heading, markdown: typeof result === "string" ? result : markdown, state: "done" });
      }
    } catch (error) {
      if (cancellation.token.isCancellationRequested) {
        return; // Superseded by a newer explanation, or the panel was closed.
      }
      if (isCancellation(error)) {
        this.panel.show({ heading, markdown, state: "cancelled", note: "The server cancelled the explanation." });
        return;
      }
      const message = errorMessage(error);
      this.panel.show({ heading, markdown, state: "error", note: message });
      void vscode.window.showErrorMessage(`Code Llama: could not explain ${heading}: ${message}`);
    } finally {
      progress.dispose();
      if (this.current === cancellation) {
        this.current = undefined;
      }
      cancellation.dispose();
    }
  }

  /** Cancels the explanation in flight, if any. */
  cancel(): void {
    this.current?.cancel();
  }

  dispose(): void {
    this.cancel();
    this.listener.dispose();
  }
}

/** The active editor's document and selection, or undefined (with a message) when there is none to explain. */
function targetFromEditor(client: LanguageClient): ExplainArgument | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showWarningMessage("Code Llama: open a file and select the code to explain.");
    return undefined;
  }
  const uri = editor.document.uri;
  if (!EXPLAINABLE_SCHEMES.has(uri.scheme)) {
    void vscode.window.showWarningMessage(
      `Code Llama explains files and untitled documents only, not ${uri.scheme}: documents.`,
    );
    return undefined;
  }
  return {
    uri: client.code2ProtocolConverter.asUri(uri),
    range: client.code2ProtocolConverter.asRange(editor.selection),
  };
}
