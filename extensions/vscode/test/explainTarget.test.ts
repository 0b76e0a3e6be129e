/** Unit tests for the explain command's argument and code-action rewrite (src/explainTarget.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  describeTarget,
  EXPLAIN_SELECTION_COMMAND,
  parseExplainArgument,
  redirectExplainCommand,
  SERVER_EXPLAIN_COMMAND,
} from "../src/explainTarget";

const RANGE = { start: { line: 2, character: 0 }, end: { line: 9, character: 0 } };

describe("parseExplainArgument", () => {
  it("accepts the server's {uri, range} argument", () => {
    assert.deepEqual(parseExplainArgument({ uri: "file:///a.py", range: RANGE, extra: 1 }), {
      uri: "file:///a.py",
      range: RANGE,
    });
  });

  it("rejects anything else (like the URI a context menu passes)", () => {
    assert.equal(parseExplainArgument(undefined), undefined);
    assert.equal(parseExplainArgument({ scheme: "file", path: "/a.py" }), undefined);
    assert.equal(parseExplainArgument({ uri: "file:///a.py" }), undefined);
    assert.equal(parseExplainArgument({ uri: "", range: RANGE }), undefined);
    assert.equal(
      parseExplainArgument({ uri: "file:///a.py", range: { start: { line: -1, character: 0 }, end: RANGE.end } }),
      undefined,
    );
    assert.equal(
      parseExplainArgument({ uri: "file:///a.py", range: { start: { line: 1.5, character: 0 }, end: RANGE.end } }),
      undefined,
    );
  });
});

describe("redirectExplainCommand", () => {
  it("sends the server's explain command to the panel, arguments unchanged", () => {
    const argument = { uri: "file:///a.py", range: RANGE };
    assert.deepEqual(
      redirectExplainCommand({ title: "Explain selection", command: SERVER_EXPLAIN_COMMAND, arguments: [argument] }),
      { title: "Explain selection", command: EXPLAIN_SELECTION_COMMAND, arguments: [argument] },
    );
  });

  it("leaves other commands alone", () => {
    const other = { title: "Other", command: "other.command" };
    assert.equal(redirectExplainCommand(other), other);
  });
});

describe("describeTarget", () => {
  it("names the file and one-based lines, not counting a final line end", () => {
    assert.equal(describeTarget("file:///src/fib.py", RANGE), "fib.py, lines 3–9");
    assert.equal(
      describeTarget("file:///src/fib.py", { start: { line: 4, character: 2 }, end: { line: 4, character: 9 } }),
      "fib.py, line 5",
    );
  });

  it("says 'around' for an empty selection", () => {
    const here = { line: 6, character: 4 };
    assert.equal(describeTarget("file:///src/fib.py", { start: here, end: here }), "fib.py, around line 7");
  });

  it("decodes names and copes with untitled documents", () => {
    assert.equal(describeTarget("file:///my%20dir/a%20b.py", { start: here0(), end: here0() }), "a b.py, around line 1");
    assert.equal(describeTarget("untitled:Untitled-1", { start: here0(), end: here0() }), "Untitled-1, around line 1");
    assert.equal(describeTarget("file:///bad%E0.py", { start: here0(), end: here0() }), "bad%E0.py, around line 1");
  });
});

function here0(): { line: number; character: number } {
  return { line: 0, character: 0 };
}
