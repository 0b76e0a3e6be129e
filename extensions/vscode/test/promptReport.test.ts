/** Unit tests for the prompt inspector's command ids and result (src/promptReport.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { promptMarkdown, SERVER_SHOW_PROMPT_COMMAND, SHOW_PROMPT_AT_CURSOR_COMMAND } from "../src/promptReport";

describe("promptMarkdown", () => {
  it("takes the report's ready-made Markdown", () => {
    const markdown = "# Prompt at the cursor\n\n| part | where | symbol | tokens |\n";
    assert.equal(promptMarkdown({ model: "m", parts: [], text: "", markdown }), markdown);
  });

  it("gives undefined for anything without Markdown", () => {
    assert.equal(promptMarkdown(undefined), undefined);
    assert.equal(promptMarkdown(null), undefined);
    assert.equal(promptMarkdown("# a string result"), undefined);
    assert.equal(promptMarkdown({ text: "<PRE>" }), undefined);
    assert.equal(promptMarkdown({ markdown: 42 }), undefined);
    assert.equal(promptMarkdown({ markdown: "  \n" }), undefined);
  });
});

describe("command ids", () => {
  it("keeps this extension's command apart from the server's", () => {
    // vscode-languageclient registers the server's commands under their own ids.
    assert.equal(SERVER_SHOW_PROMPT_COMMAND, "codeLlama.showPrompt");
    assert.equal(SHOW_PROMPT_AT_CURSOR_COMMAND, "codeLlama.showPromptAtCursor");
  });
});
