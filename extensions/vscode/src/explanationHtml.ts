/**
 * The explanation panel's HTML page: a strict Content-Security-Policy (no
 * scripts, styles only by nonce, images only from the webview itself), the
 * heading and messages escaped, and the explanation in
 * `<main id="explanation" data-state="…">` so tests can wait for `done`.
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`. The
 * explanation's HTML comes from VS Code's own Markdown renderer
 * (`markdown.api.render`); the policy keeps anything it lets through inert.
 */

/** Where an explanation is: being written, finished, failed or cancelled. */
export type ExplanationState = "writing" | "done" | "error" | "cancelled";

/** One rendering of the panel. */
export interface ExplanationPage {
  /** The webview's `cspSource` (what it may load from itself). */
  cspSource: string;
  /** A fresh random nonce for the page's one `<style>` element. */
  nonce: string;
  /** Plain text above the explanation, e.g. "fib.py, lines 3–9". */
  heading: string;
  state: ExplanationState;
  /** The explanation as HTML (already rendered, trusted to the policy); empty before the first words. */
  bodyHtml: string;
  /** Plain text shown under the explanation: the error, or why it stopped. */
  note?: string;
}

export const PANEL_TITLE = "Code Llama: Explanation";

const STATE_LABELS: Record<ExplanationState, string> = {
  writing: "Explaining…",
  done: "",
  error: "Failed",
  cancelled: "Cancelled",
};

/** `text` with the five HTML-special characters escaped (safe in text and quoted attributes). */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** `text` for a double-quoted attribute (apostrophes stay readable, as a CSP needs them). */
function escapeAttribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Markdown shown as preformatted text, for when the Markdown renderer is unavailable. */
export function plainTextHtml(markdown: string): string {
  return markdown === "" ? "" : `<pre class="plain">${escapeHtml(markdown)}</pre>`;
}

/** The Content-Security-Policy of the page. */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join("; ");
}

/** The whole HTML document for `page`. */
export function explanationHtml(page: ExplanationPage): string {
  const nonce = escapeHtml(page.nonce);
  const label = STATE_LABELS[page.state];
  const body =
    page.bodyHtml !== ""
      ? page.bodyHtml
      : page.state === "writing"
        ? '<p class="placeholder">Explaining…</p>'
        : "";
  const note = page.note ? `\n<p class="note ${page.state}">${escapeHtml(page.note)}</p>` : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(contentSecurityPolicy(page.cspSource, page.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(PANEL_TITLE)}</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(page.heading)}</h1>
<p class="state" data-state="${page.state}">${escapeHtml(label)}</p>
</header>
<main id="explanation" data-state="${page.state}" aria-busy="${page.state === "writing"}">
${body}
</main>${note}
</body>
</html>
`;
}

const STYLE = `
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 16px 16px; line-height: 1.5; }
header { display: flex; align-items: baseline; gap: 12px; border-bottom: 1px solid var(--vscode-panel-border, transparent); }
h1 { font-size: 1em; font-weight: 600; margin: 12px 0 8px; }
.state { margin: 0; color: var(--vscode-descriptionForeground); }
.placeholder { color: var(--vscode-descriptionForeground); font-style: italic; }
pre, code { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
pre { background: var(--vscode-textCodeBlock-background); padding: 8px; overflow-x: auto; }
pre.plain { white-space: pre-wrap; background: none; padding: 0; font-family: var(--vscode-font-family); }
.note { color: var(--vscode-descriptionForeground); font-style: italic; }
.note.error { color: var(--vscode-errorForeground); font-style: normal; }
`;
