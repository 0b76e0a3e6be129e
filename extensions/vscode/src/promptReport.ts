/**
 * The prompt inspector's contract: the server's `codeLlama.showPrompt`
 * command is called with `{uri, position}` and answers a report object whose
 * `markdown` is ready to show (PROTOCOL.md).
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`.
 */
import type { ProtocolPosition } from "./explainTarget";

/** The command the server registers (run through `workspace/executeCommand`). */
export const SERVER_SHOW_PROMPT_COMMAND = "codeLlama.showPrompt";
/**
 * This extension's command. Not the server's id: vscode-languageclient
 * registers every server command under its own id already.
 */
export const SHOW_PROMPT_AT_CURSOR_COMMAND = "codeLlama.showPromptAtCursor";

/** The one argument of `codeLlama.showPrompt`: a document URI and an LSP position. */
export interface ShowPromptArgument {
  uri: string;
  position: ProtocolPosition;
}

/** The report's Markdown, or undefined when the result carries none. */
export function promptMarkdown(result: unknown): string | undefined {
  if (typeof result !== "object" || result === null) {
    return undefined;
  }
  const { markdown } = result as Record<string, unknown>;
  return typeof markdown === "string" && markdown.trim() !== "" ? markdown : undefined;
}
