/**
 * What the server's `codeLlama.explain` command is called with, and the code
 * action rewrite that sends the server's "Explain selection" action to this
 * extension's panel instead of running the server command directly (whose
 * result VS Code would drop).
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`.
 */

/** The command the server registers (run through `workspace/executeCommand`). */
export const SERVER_EXPLAIN_COMMAND = "codeLlama.explain";
/** This extension's command: explains into the panel. */
export const EXPLAIN_SELECTION_COMMAND = "codeLlama.explainSelection";

/** An LSP position (zero-based line and UTF-16 character). */
export interface ProtocolPosition {
  line: number;
  character: number;
}

/** The one argument of `codeLlama.explain`: a document URI and an LSP range. */
export interface ExplainArgument {
  uri: string;
  range: { start: ProtocolPosition; end: ProtocolPosition };
}

function isPosition(value: unknown): value is ProtocolPosition {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const { line, character } = value as Record<string, unknown>;
  return Number.isInteger(line) && Number.isInteger(character) && (line as number) >= 0 && (character as number) >= 0;
}

/** The argument as an `ExplainArgument`, or undefined when it is not one. */
export function parseExplainArgument(value: unknown): ExplainArgument | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const { uri, range } = value as Record<string, unknown>;
  if (typeof uri !== "string" || uri === "" || typeof range !== "object" || range === null) {
    return undefined;
  }
  const { start, end } = range as Record<string, unknown>;
  if (!isPosition(start) || !isPosition(end)) {
    return undefined;
  }
  return {
    uri,
    range: { start: { line: start.line, character: start.character }, end: { line: end.line, character: end.character } },
  };
}

/** A command as VS Code and LSP both shape it. */
export interface CommandLike {
  title: string;
  command: string;
  arguments?: unknown[];
}

/** `command` pointed at the panel when it is the server's explain command; otherwise unchanged. */
export function redirectExplainCommand<T extends CommandLike>(command: T): T {
  if (command.command !== SERVER_EXPLAIN_COMMAND) {
    return command;
  }
  return { ...command, command: EXPLAIN_SELECTION_COMMAND };
}

/** "file.py, lines 3–9" (one-based) for a URI and range, for the panel's heading. */
export function describeTarget(uri: string, range: ExplainArgument["range"]): string {
  const name = safeDecode(uri.replace(/[?#].*$/, "").replace(/\/+$/, "").split(/[/:]/).pop() ?? "") || uri;
  const first = range.start.line + 1;
  let last = range.end.line + 1;
  if (range.end.line > range.start.line && range.end.character === 0) {
    last -= 1;
  }
  const empty = range.start.line === range.end.line && range.start.character === range.end.character;
  if (empty) {
    return `${name}, around line ${first}`;
  }
  return first === last ? `${name}, line ${first}` : `${name}, lines ${first}–${last}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
