/** Unit tests for the explanation page (src/explanationHtml.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { escapeHtml, explanationHtml, plainTextHtml } from "../src/explanationHtml";

const BASE = {
  cspSource: "https://webview.example",
  nonce: "abc123",
  heading: "fib.py, lines 3–9",
  bodyHtml: "",
};

describe("explanationHtml", () => {
  it('shows "Explaining…" while nothing is written yet', () => {
    const html = explanationHtml({ ...BASE, state: "writing" });
    assert.match(html, /<main id="explanation" data-state="writing" aria-busy="true">\s*<p class="placeholder">Explaining…<\/p>/);
  });

  it("puts the rendered explanation in #explanation with its state", () => {
    const html = explanationHtml({ ...BASE, state: "done", bodyHtml: "<p>Computes <code>fib</code>.</p>" });
    assert.match(html, /<main id="explanation" data-state="done" aria-busy="false">\s*<p>Computes <code>fib<\/code>.<\/p>/);
    assert.doesNotMatch(html, /Explaining…<\/p>/);
  });

  it("has a strict Content-Security-Policy: no scripts, styles by nonce", () => {
    const html = explanationHtml({ ...BASE, state: "done" });
    const csp = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html)?.[1] ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /style-src 'nonce-abc123'/);
    assert.doesNotMatch(csp, /script-src|unsafe-inline|unsafe-eval/);
    assert.match(html, /<style nonce="abc123">/);
    assert.doesNotMatch(html, /<script/);
  });

  it("escapes the heading and the note", () => {
    const html = explanationHtml({
      ...BASE,
      heading: '<img src=x onerror="alert(1)">.py',
      state: "error",
      note: "bad <b>thing</b> & more",
    });
    assert.doesNotMatch(html, /<img/);
    assert.match(html, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt;\.py/);
    assert.match(html, /<p class="note error">bad &lt;b&gt;thing&lt;\/b&gt; &amp; more<\/p>/);
    assert.match(html, /data-state="error"/);
  });

  it("marks a cancelled explanation", () => {
    assert.match(explanationHtml({ ...BASE, state: "cancelled" }), /<main id="explanation" data-state="cancelled"/);
  });
});

describe("escapeHtml and plainTextHtml", () => {
  it("escapes the five special characters", () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });

  it("shows Markdown as escaped preformatted text", () => {
    assert.equal(plainTextHtml("# <T>"), '<pre class="plain"># &lt;T&gt;</pre>');
    assert.equal(plainTextHtml(""), "");
  });
});
