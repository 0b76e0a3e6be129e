/** Unit tests for completionsEnabledFor (src/completionsGate.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { completionsEnabledFor } from "../src/completionsGate";

describe("completionsEnabledFor", () => {
  it("is on by default", () => {
    assert.equal(completionsEnabledFor("python", true, { "*": true }), true);
    assert.equal(completionsEnabledFor("python", undefined, undefined), true);
  });

  it("is off everywhere when disabled", () => {
    assert.equal(completionsEnabledFor("python", false, { "*": true, python: true }), false);
  });

  it("turns a single language off", () => {
    const languages = { "*": true, markdown: false };
    assert.equal(completionsEnabledFor("markdown", true, languages), false);
    assert.equal(completionsEnabledFor("python", true, languages), true);
  });

  it("lets a language entry win over the wildcard", () => {
    const languages = { "*": false, python: true };
    assert.equal(completionsEnabledFor("python", true, languages), true);
    assert.equal(completionsEnabledFor("rust", true, languages), false);
  });

  it("is on for languages that neither list nor wildcard mention", () => {
    assert.equal(completionsEnabledFor("go", true, { markdown: false }), true);
    assert.equal(completionsEnabledFor("go", true, {}), true);
  });

  it("ignores values that are not booleans and tables that are not objects", () => {
    assert.equal(completionsEnabledFor("go", true, { go: "no", "*": 0 }), true);
    assert.equal(completionsEnabledFor("go", true, ["go"]), true);
    assert.equal(completionsEnabledFor("go", true, null), true);
    assert.equal(completionsEnabledFor("go", "false", {}), true);
  });

  it("does not read inherited properties", () => {
    assert.equal(completionsEnabledFor("toString", true, { "*": false }), false);
    assert.equal(completionsEnabledFor("constructor", true, {}), true);
  });
});
