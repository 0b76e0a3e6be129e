/** Unit tests for what a copy sends to the server (src/copiedText.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { copiedTextParams, MAX_COPIED_BYTES } from "../src/copiedText";

describe("copiedTextParams", () => {
  it("sends the selected text with the document's URI", () => {
    assert.deepEqual(copiedTextParams(["def add(a, b):\n    return a + b\n"], "file:///p/add.py"), {
      text: "def add(a, b):\n    return a + b\n",
      uri: "file:///p/add.py",
    });
    assert.deepEqual(copiedTextParams(["x = 1"], undefined), { text: "x = 1" });
  });

  it("joins several selections with line breaks, leaving out empty ones", () => {
    assert.deepEqual(copiedTextParams(["first", "", "second"], undefined), { text: "first\nsecond" });
  });

  it("sends nothing for empty or blank selections", () => {
    assert.equal(copiedTextParams([], "file:///a"), undefined);
    assert.equal(copiedTextParams(["", ""], "file:///a"), undefined);
    assert.equal(copiedTextParams(["  \n\t"], "file:///a"), undefined);
  });

  it("sends nothing larger than the limit, counted in UTF-8 bytes", () => {
    assert.equal(copiedTextParams(["a".repeat(MAX_COPIED_BYTES)], undefined)?.text.length, MAX_COPIED_BYTES);
    assert.equal(copiedTextParams(["a".repeat(MAX_COPIED_BYTES + 1)], undefined), undefined);
    assert.equal(copiedTextParams(["é".repeat(6)], undefined, 11), undefined);
    assert.deepEqual(copiedTextParams(["é".repeat(5)], undefined, 11), { text: "ééééé" });
  });
});
