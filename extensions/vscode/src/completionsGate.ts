/**
 * Whether inline completions are wanted for a document's language, from
 * `codeLlama.completions.enable` and `codeLlama.completions.languages`
 * (a map of language id to boolean with `"*"` for the rest, like Copilot's
 * `github.copilot.enable`).
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`.
 */

/**
 * `false` when completions are off altogether or for `languageId`; an entry
 * for the language itself wins over `"*"`, and a language with neither is on.
 * Values that are not booleans are ignored.
 */
export function completionsEnabledFor(languageId: string, enable: unknown, languages: unknown): boolean {
  if (enable === false) {
    return false;
  }
  if (typeof languages !== "object" || languages === null || Array.isArray(languages)) {
    return true;
  }
  const table = languages as Record<string, unknown>;
  const own = Object.prototype.hasOwnProperty.call(table, languageId) ? table[languageId] : undefined;
  if (typeof own === "boolean") {
    return own;
  }
  const fallback = Object.prototype.hasOwnProperty.call(table, "*") ? table["*"] : undefined;
  return typeof fallback === "boolean" ? fallback : true;
}
