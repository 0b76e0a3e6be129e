/**
 * The status bar's text and tooltip, from the server's `codeLlama/status`
 * notification, the language client's state, whether completions are on,
 * the last completion's round-trip time and what became of the suggestions
 * (`codeLlama/getStatus`' `acceptance.total`).
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`. Browser
 * tests wait for the exact text "Code Llama: ready" before typing.
 */

/** The server's states (PROTOCOL.md, `codeLlama/status`). */
export type ServerState = "loading" | "ready" | "generating" | "error";

/** The `codeLlama/status` notification's params (and `codeLlama/getStatus`'s result). */
export interface ServerStatus {
  state: ServerState;
  model: string;
  device: string | null;
  message: string | null;
  lastCompletionMs: number | null;
  /** What completion prompts are: the FIM family and layout, or left-to-right (null until loaded). */
  prompt: string | null;
}

/** `acceptance.total` of `codeLlama/getStatus` (PROTOCOL.md, Status): the counts the tooltip shows. */
export interface AcceptanceCounts {
  offered: number;
  shown: number;
  accepted: number;
  partiallyAccepted: number;
  taken: number;
  /** Taken of shown, or of offered when the client reports no shows (`rateOf`); null before any. */
  acceptanceRate: number | null;
  rateOf: "shown" | "offered" | null;
}

/** Where the language client is: starting the server, talking to it, or not. */
export type ClientPhase = "starting" | "running" | "stopped" | "failed";

/** Everything the status bar shows. */
export interface StatusInput {
  phase: ClientPhase;
  /** The last status the server sent; undefined until it sends one. */
  server?: ServerStatus;
  /** Why the client failed or stopped, when it did. */
  clientError?: string;
  /** Whether completions are on for the active editor (or at all, without one). */
  completionsEnabled: boolean;
  /** The language the completion switch was decided for, if any. */
  languageId?: string;
  /** The last inline completion's round trip as the client measured it. */
  latencyMs?: number;
  /** What became of the suggestions, from the last `codeLlama/getStatus`. */
  acceptance?: AcceptanceCounts;
}

/** What the status bar item gets. */
export interface StatusView {
  text: string;
  tooltip: string;
  severity: "normal" | "warning" | "error";
}

const STATES: readonly ServerState[] = ["loading", "ready", "generating", "error"];

/** A `ServerStatus` from untrusted JSON, or undefined when it is not one. */
export function parseServerStatus(raw: unknown): ServerStatus | undefined {
  if (typeof raw !== "object" || raw === null) {
    return undefined;
  }
  const value = raw as Record<string, unknown>;
  const state = value.state;
  if (typeof state !== "string" || !(STATES as readonly string[]).includes(state)) {
    return undefined;
  }
  const optionalText = (field: unknown): string | null =>
    typeof field === "string" && field !== "" ? field : null;
  const last = value.lastCompletionMs;
  return {
    state: state as ServerState,
    model: typeof value.model === "string" ? value.model : "",
    device: optionalText(value.device),
    message: optionalText(value.message),
    lastCompletionMs: typeof last === "number" && Number.isFinite(last) && last >= 0 ? last : null,
    prompt: optionalText(value.prompt),
  };
}

/**
 * `acceptance.total` from a `codeLlama/getStatus` result, or undefined when the
 * result has none (an older server) or it is malformed.
 */
export function parseAcceptance(raw: unknown): AcceptanceCounts | undefined {
  if (typeof raw !== "object" || raw === null) {
    return undefined;
  }
  const acceptance = (raw as Record<string, unknown>).acceptance;
  if (typeof acceptance !== "object" || acceptance === null) {
    return undefined;
  }
  const total = (acceptance as Record<string, unknown>).total;
  if (typeof total !== "object" || total === null) {
    return undefined;
  }
  const value = total as Record<string, unknown>;
  const count = (field: unknown): number | undefined =>
    typeof field === "number" && Number.isInteger(field) && field >= 0 ? field : undefined;
  const offered = count(value.offered);
  const taken = count(value.taken);
  if (offered === undefined || taken === undefined) {
    return undefined;
  }
  const rate = value.acceptanceRate;
  const rateOf = value.rateOf === "shown" || value.rateOf === "offered" ? value.rateOf : null;
  return {
    offered,
    shown: count(value.shown) ?? 0,
    accepted: count(value.accepted) ?? 0,
    partiallyAccepted: count(value.partiallyAccepted) ?? 0,
    taken,
    acceptanceRate: typeof rate === "number" && Number.isFinite(rate) && rate >= 0 ? Math.min(rate, 1) : null,
    rateOf,
  };
}

/**
 * The tooltip's acceptance line, e.g. "Accepted 3 of 5 suggestions offered (60%)",
 * or undefined before any suggestion was offered. "offered" or "shown" as the
 * server's `rateOf` says (VS Code's stable API reports no shows: "offered").
 */
export function formatAcceptance(counts: AcceptanceCounts): string | undefined {
  if (counts.rateOf === null || counts.acceptanceRate === null) {
    return undefined;
  }
  const base = counts.rateOf === "shown" ? counts.shown : counts.offered;
  const noun = base === 1 ? "suggestion" : "suggestions";
  const details = [`${Math.round(counts.acceptanceRate * 100)}%`];
  if (counts.partiallyAccepted > 0) {
    details.push(`${counts.partiallyAccepted} in part`);
  }
  return `Accepted ${counts.taken} of ${base} ${noun} ${counts.rateOf} (${details.join("; ")})`;
}

/** `142 ms` below a second, `1.5 s` above. */
export function formatDuration(ms: number): string {
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The status bar text and tooltip for `input`. */
export function formatStatus(input: StatusInput): StatusView {
  const { text, severity } = statusText(input);
  return { text, tooltip: statusTooltip(input), severity };
}

function statusText(input: StatusInput): { text: string; severity: StatusView["severity"] } {
  const label = (icon: string, words: string): string => `$(${icon}) Code Llama: ${words}`;
  switch (input.phase) {
    case "starting":
      return { text: label("sync~spin", "starting"), severity: "normal" };
    case "failed":
      return { text: label("error", "error"), severity: "error" };
    case "stopped":
      return { text: label("debug-disconnect", "stopped"), severity: "warning" };
    case "running":
      break;
  }
  const server = input.server;
  if (server === undefined) {
    return { text: label("sync~spin", "starting"), severity: "normal" };
  }
  switch (server.state) {
    case "loading":
      return { text: label("sync~spin", "loading"), severity: "normal" };
    case "generating":
      return { text: label("sync~spin", "generating"), severity: "normal" };
    case "error":
      return { text: label("error", "error"), severity: "error" };
    case "ready": {
      const parts = ["ready"];
      if (server.device !== null) {
        parts.push(server.device);
      }
      const latency = input.latencyMs ?? server.lastCompletionMs ?? undefined;
      if (latency !== undefined) {
        parts.push(formatDuration(latency));
      }
      const icon = input.completionsEnabled ? "sparkle" : "circle-slash";
      return { text: label(icon, parts.join(" · ")), severity: "normal" };
    }
  }
}

function statusTooltip(input: StatusInput): string {
  const server = input.server;
  const state =
    input.phase === "running" ? (server?.state ?? "starting") : input.phase === "failed" ? "error" : input.phase;
  const lines = [`Code Llama: ${state}`];
  if (server !== undefined) {
    lines.push(`Model: ${server.model || "unknown"}`);
    lines.push(`Device: ${server.device ?? "not loaded"}`);
    if (server.prompt !== null) {
      lines.push(`Prompt: ${server.prompt}`);
    }
  }
  const latencies: string[] = [];
  if (input.latencyMs !== undefined) {
    latencies.push(`${formatDuration(input.latencyMs)} round trip`);
  }
  if (server?.lastCompletionMs != null) {
    latencies.push(`${formatDuration(server.lastCompletionMs)} in the server`);
  }
  if (latencies.length > 0) {
    lines.push(`Last completion: ${latencies.join(", ")}`);
  }
  const where = input.languageId !== undefined ? ` for ${input.languageId}` : "";
  lines.push(`Completions: ${input.completionsEnabled ? "on" : "off"}${where}`);
  const accepted = input.acceptance !== undefined ? formatAcceptance(input.acceptance) : undefined;
  if (accepted !== undefined) {
    lines.push(accepted);
  }
  const message = input.phase === "running" ? server?.message : (input.clientError ?? server?.message);
  if (message) {
    lines.push("", message);
  }
  lines.push("", "Click to show the log.");
  return lines.join("\n");
}
