/** Unit tests for the status bar formatting (src/status.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AcceptanceCounts,
  formatAcceptance,
  formatDuration,
  formatStatus,
  parseAcceptance,
  parseServerStatus,
  type ServerStatus,
} from "../src/status";

const READY: ServerStatus = {
  state: "ready",
  model: "CodeLlama-7b-hf",
  device: "cpu",
  message: null,
  lastCompletionMs: 120.4,
  prompt: "Qwen2.5-Coder FIM, PSM, other files as its repository format",
};

describe("formatStatus", () => {
  it("shows ready with device and the client-measured latency", () => {
    const view = formatStatus({ phase: "running", server: READY, completionsEnabled: true, latencyMs: 142.3 });
    assert.equal(view.text, "$(sparkle) Code Llama: ready · cpu · 142 ms");
    assert.equal(view.severity, "normal");
  });

  it("falls back to the server's latency, then to none", () => {
    assert.equal(
      formatStatus({ phase: "running", server: READY, completionsEnabled: true }).text,
      "$(sparkle) Code Llama: ready · cpu · 120 ms",
    );
    assert.equal(
      formatStatus({
        phase: "running",
        server: { ...READY, device: null, lastCompletionMs: null },
        completionsEnabled: true,
      }).text,
      "$(sparkle) Code Llama: ready",
    );
  });

  it("keeps the words browser tests wait for", () => {
    for (const completionsEnabled of [true, false]) {
      const view = formatStatus({ phase: "running", server: READY, completionsEnabled });
      assert.match(view.text, /Code Llama: ready/);
    }
  });

  it("shows a slashed circle when completions are off", () => {
    const view = formatStatus({
      phase: "running",
      server: READY,
      completionsEnabled: false,
      languageId: "markdown",
      latencyMs: 1500,
    });
    assert.equal(view.text, "$(circle-slash) Code Llama: ready · cpu · 1.5 s");
    assert.match(view.tooltip, /Completions: off for markdown/);
  });

  it("spins while loading and generating", () => {
    assert.equal(
      formatStatus({ phase: "running", server: { ...READY, state: "loading" }, completionsEnabled: true }).text,
      "$(sync~spin) Code Llama: loading",
    );
    assert.equal(
      formatStatus({ phase: "running", server: { ...READY, state: "generating" }, completionsEnabled: true }).text,
      "$(sync~spin) Code Llama: generating",
    );
  });

  it("shows the server's error with its message in the tooltip", () => {
    const view = formatStatus({
      phase: "running",
      server: { ...READY, state: "error", device: null, message: "model not found: /nope" },
      completionsEnabled: true,
    });
    assert.equal(view.text, "$(error) Code Llama: error");
    assert.equal(view.severity, "error");
    assert.match(view.tooltip, /model not found: \/nope/);
  });

  it("shows the client's phases", () => {
    assert.equal(formatStatus({ phase: "starting", completionsEnabled: true }).text, "$(sync~spin) Code Llama: starting");
    assert.equal(formatStatus({ phase: "running", completionsEnabled: true }).text, "$(sync~spin) Code Llama: starting");
    assert.equal(formatStatus({ phase: "stopped", completionsEnabled: true }).text, "$(debug-disconnect) Code Llama: stopped");
    const failed = formatStatus({ phase: "failed", clientError: "spawn code-llama-ls ENOENT", completionsEnabled: true });
    assert.equal(failed.text, "$(error) Code Llama: error");
    assert.equal(failed.severity, "error");
    assert.match(failed.tooltip, /ENOENT/);
  });

  it("puts model, device, state, latencies and the click hint in the tooltip", () => {
    const tooltip = formatStatus({ phase: "running", server: READY, completionsEnabled: true, latencyMs: 142 }).tooltip;
    assert.equal(
      tooltip,
      [
        "Code Llama: ready",
        "Model: CodeLlama-7b-hf",
        "Device: cpu",
        "Prompt: Qwen2.5-Coder FIM, PSM, other files as its repository format",
        "Last completion: 142 ms round trip, 120 ms in the server",
        "Completions: on",
        "",
        "Click to show the log.",
      ].join("\n"),
    );
  });
});

const COUNTS: AcceptanceCounts = {
  offered: 5,
  shown: 0,
  accepted: 3,
  partiallyAccepted: 0,
  taken: 3,
  acceptanceRate: 0.6,
  rateOf: "offered",
};

describe("acceptance in the tooltip", () => {
  it("says how many suggestions were taken, of those offered", () => {
    assert.equal(formatAcceptance(COUNTS), "Accepted 3 of 5 suggestions offered (60%)");
    assert.equal(
      formatAcceptance({ ...COUNTS, offered: 1, taken: 1, accepted: 1, acceptanceRate: 1 }),
      "Accepted 1 of 1 suggestion offered (100%)",
    );
  });

  it("counts of those shown when the server has shows, with the partial accepts", () => {
    const counts = { ...COUNTS, shown: 4, taken: 2, partiallyAccepted: 1, acceptanceRate: 0.5, rateOf: "shown" as const };
    assert.equal(formatAcceptance(counts), "Accepted 2 of 4 suggestions shown (50%; 1 in part)");
  });

  it("says nothing before any suggestion", () => {
    assert.equal(formatAcceptance({ ...COUNTS, offered: 0, taken: 0, acceptanceRate: null, rateOf: null }), undefined);
  });

  it("puts the line after the completion switch", () => {
    const tooltip = formatStatus({ phase: "running", server: READY, completionsEnabled: true, acceptance: COUNTS }).tooltip;
    assert.match(tooltip, /Completions: on\nAccepted 3 of 5 suggestions offered \(60%\)\n/);
  });
});

describe("parseAcceptance", () => {
  it("reads acceptance.total of codeLlama/getStatus", () => {
    const result = {
      state: "ready",
      acceptance: {
        total: {
          offered: 5,
          shown: 0,
          accepted: 3,
          partiallyAccepted: 0,
          dismissed: 1,
          acceptedChars: 40,
          taken: 3,
          acceptanceRate: 0.6,
          rateOf: "offered",
        },
        byLanguageAndModel: [],
        file: null,
      },
    };
    assert.deepEqual(parseAcceptance(result), COUNTS);
  });

  it("is undefined for a server without acceptance counts or with malformed ones", () => {
    assert.equal(parseAcceptance({ state: "ready" }), undefined);
    assert.equal(parseAcceptance(null), undefined);
    assert.equal(parseAcceptance({ acceptance: { total: { offered: "5", taken: 1 } } }), undefined);
  });

  it("drops a rate it cannot use", () => {
    const parsed = parseAcceptance({ acceptance: { total: { offered: 2, taken: 0, acceptanceRate: "x", rateOf: "?" } } });
    assert.deepEqual(parsed, { ...COUNTS, offered: 2, accepted: 0, taken: 0, acceptanceRate: null, rateOf: null });
  });
});

describe("parseServerStatus", () => {
  it("accepts the notification's shape", () => {
    const sent: ServerStatus = {
      state: "ready",
      model: "m",
      device: "cuda:0",
      message: null,
      lastCompletionMs: 12.5,
      prompt: "StarCoder FIM, PSM, other files as its repository format",
    };
    assert.deepEqual(parseServerStatus({ ...sent }), sent);
  });

  it("fills in missing or malformed optional fields", () => {
    assert.deepEqual(parseServerStatus({ state: "loading" }), {
      state: "loading",
      model: "",
      device: null,
      message: null,
      lastCompletionMs: null,
      prompt: null,
    });
    assert.equal(parseServerStatus({ state: "ready", lastCompletionMs: -1 })?.lastCompletionMs, null);
    assert.equal(parseServerStatus({ state: "ready", device: 3 })?.device, null);
  });

  it("rejects anything without a known state", () => {
    assert.equal(parseServerStatus(null), undefined);
    assert.equal(parseServerStatus("ready"), undefined);
    assert.equal(parseServerStatus({ state: "sleeping" }), undefined);
    assert.equal(parseServerStatus({}), undefined);
  });
});

describe("formatDuration", () => {
  it("uses milliseconds below a second and seconds above", () => {
    assert.equal(formatDuration(0.4), "0 ms");
    assert.equal(formatDuration(999.4), "999 ms");
    assert.equal(formatDuration(1000), "1.0 s");
    assert.equal(formatDuration(12345), "12.3 s");
  });
});
