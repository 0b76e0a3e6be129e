/**
 * `Code Llama: Show Prompt at Cursor`: sends the server's
 * `codeLlama.showPrompt` command for the active editor's cursor and opens
 * the report's Markdown (the prompt's parts, where each snippet came from,
 * then the prompt text) in a new untitled document beside the editor.
 */
import * as vscode from "vscode";
import { ExecuteCommandRequest, State } from "vscode-languageclient/node";
import { errorMessage } from "./errors";
import { promptMarkdown, SERVER_SHOW_PROMPT_COMMAND, type ShowPromptArgument } from "./promptReport";
import type { ServerSession } from "./serverSession";

const PROMPT_SCHEMES = new Set(["file", "untitled"]);

/** Shows the prompt the model would see at the active editor's cursor. */
export async function showPromptAtCursor(session: ServerSession): Promise<void> {
  const client = session.languageClient;
  if (client === undefined || client.state === State.Stopped) {
    void vscode.window.showErrorMessage(
      'Code Llama: the server is not running. Run "Code Llama: Restart Server" or see "Code Llama: Show Log".',
    );
    return;
  }
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showWarningMessage("Code Llama: open a file and put the cursor where a completion would go.");
    return;
  }
  const uri = editor.document.uri;
  if (!PROMPT_SCHEMES.has(uri.scheme)) {
    void vscode.window.showWarningMessage(
      `Code Llama completes files and untitled documents only, not ${uri.scheme}: documents.`,
    );
    return;
  }
  const argument: ShowPromptArgument = {
    uri: client.code2ProtocolConverter.asUri(uri),
    position: client.code2ProtocolConverter.asPosition(editor.selection.active),
  };
  let markdown: string | undefined;
  try {
    const result: unknown = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "Code Llama: building the prompt" },
      () => client.sendRequest(ExecuteCommandRequest.type, { command: SERVER_SHOW_PROMPT_COMMAND, arguments: [argument] }),
    );
    markdown = promptMarkdown(result);
  } catch (error) {
    void vscode.window.showErrorMessage(`Code Llama: could not show the prompt: ${errorMessage(error)}`);
    return;
  }
  if (markdown === undefined) {
    void vscode.window.showErrorMessage("Code Llama: the server's prompt report has no Markdown.");
    return;
  }
  const document = await vscode.workspace.openTextDocument({ language: "markdown", content: markdown });
  await vscode.window.showTextDocument(document, vscode.ViewColumn.Beside);
}
