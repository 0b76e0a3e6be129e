/**
 * Copy and cut in text editors, told to the server as completion context
 * (`codeLlama/didYank`). The keybindings in package.json turn Ctrl+C / Ctrl+X
 * (Cmd on macOS) into `runCommands`: VS Code's own clipboard action first, so
 * the copy is exactly VS Code's and happens at once in the window (the right
 * editor focused, whatever the extension host is doing), then
 * `codeLlama.didCopy` / `codeLlama.didCut` here. Those send the text that was
 * selected: the tracker remembers the last non-empty selection of a file or
 * untitled document, and, for a cut (which has removed the text and the
 * selection by the time `didCut` runs), the selection an edit just removed.
 */
import * as vscode from "vscode";
import { COPY_COMMAND, COPY_CONTEXT_KEY, copiedTextParams, CUT_COMMAND, MAX_COPIED_BYTES } from "./copiedText";
import { codeLlamaConfig } from "./editorSettings";

/** The setting that turns it off (language-overridable). */
export const COPIED_TEXT_SETTING = "copiedText.enable";

const SERVED_SCHEMES = new Set(["file", "untitled"]);

/** What the tracker needs from the session: a way to send the notification. */
export interface YankSink {
  /** Sends `codeLlama/didYank` with `text` and the document's URI (as the server knows it). */
  sendYank(text: string, document: vscode.TextDocument): void;
}

/** The selected texts of one editor, in document order. */
interface SelectionSnapshot {
  document: vscode.TextDocument;
  version: number;
  texts: string[];
}

export class CopyTracker implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[];
  private selected: SelectionSnapshot | undefined;
  /** The selection the last selection change removed along with an edit (a cut's). */
  private removedByEdit: SelectionSnapshot | undefined;

  constructor(
    private readonly sink: YankSink,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.disposables = [
      vscode.commands.registerCommand(COPY_COMMAND, () => this.didCopy("copy")),
      vscode.commands.registerCommand(CUT_COMMAND, () => this.didCopy("cut")),
      vscode.window.onDidChangeTextEditorSelection((event) => this.remember(event.textEditor)),
    ];
    const editor = vscode.window.activeTextEditor;
    if (editor !== undefined) {
      this.remember(editor);
    }
    this.refresh();
  }

  /** Arms or disarms the keybindings from `codeLlama.copiedText.enable` (user or workspace value). */
  refresh(): void {
    const enabled = codeLlamaConfig().get<unknown>(COPIED_TEXT_SETTING) !== false;
    void vscode.commands.executeCommand("setContext", COPY_CONTEXT_KEY, enabled);
  }

  dispose(): void {
    void vscode.commands.executeCommand("setContext", COPY_CONTEXT_KEY, false);
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
    this.selected = undefined;
    this.removedByEdit = undefined;
  }

  /** Keeps the editor's selected texts when they are worth sending, else forgets the last. */
  private remember(editor: vscode.TextEditor): void {
    const document = editor.document;
    const selections = editor.selections.filter((selection) => !selection.isEmpty);
    const previous = this.selected;
    this.removedByEdit = undefined;
    this.selected = undefined;
    if (!SERVED_SCHEMES.has(document.uri.scheme)) {
      return;
    }
    if (selections.length === 0) {
      if (previous !== undefined && previous.document === document && previous.version !== document.version) {
        this.removedByEdit = previous;
      }
      return;
    }
    let chars = 0;
    for (const selection of selections) {
      chars += document.offsetAt(selection.end) - document.offsetAt(selection.start);
    }
    if (chars > MAX_COPIED_BYTES) {
      return; // Too large to send whatever its encoding: not read at all.
    }
    selections.sort((a, b) => a.start.compareTo(b.start));
    const texts = selections.map((selection) => document.getText(selection));
    this.selected = { document, version: document.version, texts };
  }

  private didCopy(kind: "copy" | "cut"): void {
    const selected = kind === "cut" ? (this.removedByEdit ?? this.selected) : this.selected;
    this.removedByEdit = undefined;
    if (selected === undefined) {
      this.output.debug(`${kind}: no selection to send as completion context`);
      return;
    }
    if (codeLlamaConfig(selected.document).get<unknown>(COPIED_TEXT_SETTING) === false) {
      return; // Off for this language.
    }
    const params = copiedTextParams(selected.texts, undefined);
    if (params === undefined) {
      this.output.debug(`${kind}: nothing worth sending as completion context`);
      return;
    }
    this.output.debug(`${kind}: sending ${params.text.length} characters as completion context`);
    this.sink.sendYank(params.text, selected.document);
  }
}
