/**
 * Copied text as completion context: what `codeLlama/didYank` carries when
 * the user copies or cuts in an editor (PROTOCOL.md). VS Code has no copy
 * event, so the extension binds Ctrl+C / Ctrl+X (Cmd on macOS) in text
 * editors to `runCommands`: VS Code's own clipboard action first (at once, in
 * the window, as the key always did), then `codeLlama.didCopy` /
 * `codeLlama.didCut`, which send the text that was selected.
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`.
 */

/** The notification the server keeps copied text from. */
export const DID_YANK_NOTIFICATION = "codeLlama/didYank";
/** This extension's commands, run after VS Code's copy and cut by the keys. */
export const COPY_COMMAND = "codeLlama.didCopy";
export const CUT_COMMAND = "codeLlama.didCut";
/** VS Code's own clipboard actions, which do the copying. */
export const BUILTIN_COPY_COMMAND = "editor.action.clipboardCopyAction";
export const BUILTIN_CUT_COMMAND = "editor.action.clipboardCutAction";
/**
 * The context key the keybindings wait for: set once the commands exist, so
 * that Ctrl+C before the extension runs (or with the setting off) is VS Code's
 * own, untouched.
 */
export const COPY_CONTEXT_KEY = "codeLlama.copiedTextActive";
/** Copies larger than this (UTF-8 bytes) are not sent: a file moved, not a snippet. */
export const MAX_COPIED_BYTES = 16 * 1024;

/** `codeLlama/didYank`'s params. */
export interface DidYankParams {
  text: string;
  /** The document it was copied from. */
  uri?: string;
}

/**
 * The params for copying `selections` (the selected texts, in document order)
 * of the document at `uri`, or undefined when there is nothing worth sending:
 * every selection empty (VS Code then copies the whole line, which says little)
 * or only white space, or more than `maxBytes`. Several selections are joined
 * with line breaks, as VS Code copies them.
 */
export function copiedTextParams(
  selections: readonly string[],
  uri: string | undefined,
  maxBytes: number = MAX_COPIED_BYTES,
): DidYankParams | undefined {
  const texts = selections.filter((text) => text !== "");
  if (texts.length === 0) {
    return undefined;
  }
  const text = texts.join("\n");
  if (text.trim() === "" || new TextEncoder().encode(text).length > maxBytes) {
    return undefined;
  }
  return uri === undefined ? { text } : { text, uri };
}
