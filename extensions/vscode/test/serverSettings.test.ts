/** Unit tests for the configuration → server settings mapping (src/serverSettings.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ConfigurationLike,
  type InspectedValue,
  isServerSettingKey,
  SERVER_SETTING_KEYS,
  ServerSettingsTracker,
  toServerSettings,
} from "../src/serverSettings";

/** Contributed defaults, as package.json declares them. */
const DEFAULTS: Record<string, unknown> = {
  model: "",
  explainModel: "",
  backend: "auto",
  onnxWeights: "int8",
  device: "auto",
  dtype: "auto",
  fimMode: "auto",
  maxNewTokens: 64,
  explainMaxNewTokens: 384,
  contextTokens: null,
  workspaceContext: true,
  logLevel: "info",
  cacheDir: "",
  maxDocumentBytes: 1000000,
  trustRemoteCode: false,
  prefixCacheEntries: 4,
  prefixCacheMib: 192,
  completionCache: true,
  debounceMs: 120,
  timeBudgetMs: 500,
  candidates: 3,
  candidatesWhileTyping: null,
  speculate: true,
  remoteUrl: "",
  remoteApi: "auto",
  remoteModel: "",
  remotePrompt: "auto",
  remoteCaFile: "",
  remoteConnectTimeoutMs: 3000,
  remoteTimeoutMs: 60000,
  "completions.enable": true,
  "completions.languages": { "*": true },
  "server.command": "code-llama-ls",
  "server.args": ["serve"],
  "server.pythonPath": "",
  "trace.server": "off",
  "copiedText.enable": true,
};

/** A fake `WorkspaceConfiguration` with user (global) values over the defaults. */
function fakeConfig(user: Record<string, unknown> = {}, workspace: Record<string, unknown> = {}): ConfigurationLike {
  return {
    get<T>(key: string): T | undefined {
      const value = key in workspace ? workspace[key] : key in user ? user[key] : DEFAULTS[key];
      return value as T | undefined;
    },
    inspect(key: string): InspectedValue | undefined {
      return { globalValue: user[key], workspaceValue: workspace[key] };
    },
  };
}

describe("toServerSettings", () => {
  it("sends every server key with its default and nothing else", () => {
    assert.deepEqual(toServerSettings(fakeConfig()), {
      model: "",
      explainModel: "",
      backend: "auto",
      onnxWeights: "int8",
      device: "auto",
      dtype: "auto",
      fimMode: "auto",
      maxNewTokens: 64,
      explainMaxNewTokens: 384,
      contextTokens: null,
      workspaceContext: true,
      logLevel: "info",
      cacheDir: "",
      maxDocumentBytes: 1000000,
      trustRemoteCode: false,
      prefixCacheEntries: 4,
      prefixCacheMib: 192,
      completionCache: true,
      debounceMs: 120,
      timeBudgetMs: 500,
      candidates: 3,
      candidatesWhileTyping: null,
      speculate: true,
      remoteUrl: "",
      remoteApi: "auto",
      remoteModel: "",
      remotePrompt: "auto",
      remoteCaFile: "",
      remoteConnectTimeoutMs: 3000,
      remoteTimeoutMs: 60000,
    });
  });

  it("never sends client-only keys", () => {
    const settings = toServerSettings(fakeConfig({ "completions.enable": false, "server.command": "x" }));
    for (const key of Object.keys(settings)) {
      assert.ok(isServerSettingKey(key), key);
    }
    for (const key of ["completions", "completions.enable", "server", "server.command", "trace.server"]) {
      assert.equal(isServerSettingKey(key), false, key);
      assert.equal(key in settings, false, key);
    }
  });

  it("trims model paths and sends empty or missing ones as empty strings", () => {
    const settings = toServerSettings(fakeConfig({ model: "  /models/CodeLlama-7b  ", explainModel: undefined, cacheDir: 3 }));
    assert.equal(settings.model, "/models/CodeLlama-7b");
    assert.equal(settings.explainModel, "");
    assert.equal(settings.cacheDir, "");
  });

  it("sends contextTokens null when unset and rounds numbers", () => {
    assert.equal(toServerSettings(fakeConfig({ contextTokens: undefined })).contextTokens, null);
    assert.equal(toServerSettings(fakeConfig({ contextTokens: 4096.4 })).contextTokens, 4096);
    assert.equal(toServerSettings(fakeConfig({ maxNewTokens: 32.6 })).maxNewTokens, 33);
    assert.equal(toServerSettings(fakeConfig({ prefixCacheMib: 63.5 })).prefixCacheMib, 64);
  });

  it("leaves out values the server would reject instead of sending garbage", () => {
    const settings = toServerSettings(
      fakeConfig({
        maxNewTokens: "many",
        device: "",
        trustRemoteCode: "yes",
        contextTokens: Number.NaN,
        workspaceContext: "off",
      }),
    );
    assert.equal("maxNewTokens" in settings, false);
    assert.equal("device" in settings, false);
    assert.equal("trustRemoteCode" in settings, false);
    assert.equal("workspaceContext" in settings, false);
    assert.equal("contextTokens" in settings, false);
  });

  it("sends candidatesWhileTyping as true, false or null (null: only on a GPU)", () => {
    assert.equal(toServerSettings(fakeConfig()).candidatesWhileTyping, null);
    assert.equal(toServerSettings(fakeConfig({ candidatesWhileTyping: true })).candidatesWhileTyping, true);
    assert.equal(toServerSettings(fakeConfig({ candidatesWhileTyping: false })).candidatesWhileTyping, false);
    assert.equal("candidatesWhileTyping" in toServerSettings(fakeConfig({ candidatesWhileTyping: "yes" })), false);
    assert.equal(toServerSettings(fakeConfig({ candidates: 5.2 })).candidates, 5);
  });

  it("lower-cases choices", () => {
    assert.equal(toServerSettings(fakeConfig({ device: "CUDA", fimMode: " SPM " })).device, "cuda");
    assert.equal(toServerSettings(fakeConfig({ fimMode: " SPM " })).fimMode, "spm");
    assert.equal(toServerSettings(fakeConfig({ onnxWeights: " INT4 " })).onnxWeights, "int4");
  });

  it("limits itself to the keys asked for", () => {
    assert.deepEqual(toServerSettings(fakeConfig({ model: "m" }), ["model", "nonsense"]), { model: "m" });
  });

  it("lists exactly the keys of PROTOCOL.md", () => {
    assert.deepEqual([...SERVER_SETTING_KEYS].sort(), [
      "backend",
      "cacheDir",
      "candidates",
      "candidatesWhileTyping",
      "completionCache",
      "contextTokens",
      "debounceMs",
      "device",
      "dtype",
      "explainMaxNewTokens",
      "explainModel",
      "fimMode",
      "logLevel",
      "maxDocumentBytes",
      "maxNewTokens",
      "model",
      "onnxWeights",
      "prefixCacheEntries",
      "prefixCacheMib",
      "remoteApi",
      "remoteCaFile",
      "remoteConnectTimeoutMs",
      "remoteModel",
      "remotePrompt",
      "remoteTimeoutMs",
      "remoteUrl",
      "speculate",
      "timeBudgetMs",
      "trustRemoteCode",
      "workspaceContext",
    ]);
  });
});

describe("ServerSettingsTracker", () => {
  it("initializes with the keys the user set, nested under codeLlama", () => {
    const tracker = new ServerSettingsTracker();
    assert.deepEqual(tracker.initial(fakeConfig({ model: "codellama/CodeLlama-7b-hf", device: "cuda" })), {
      codeLlama: { model: "codellama/CodeLlama-7b-hf", device: "cuda" },
    });
  });

  it("sends nothing to a server whose user set nothing", () => {
    assert.deepEqual(new ServerSettingsTracker().initial(fakeConfig()), { codeLlama: {} });
  });

  it("sends workspaceContext when the user switched it off", () => {
    const tracker = new ServerSettingsTracker();
    assert.deepEqual(tracker.initial(fakeConfig({ workspaceContext: false })), {
      codeLlama: { workspaceContext: false },
    });
    assert.deepEqual(tracker.changed(fakeConfig()), { codeLlama: { workspaceContext: true } });
  });

  it("counts workspace values as set", () => {
    const tracker = new ServerSettingsTracker();
    assert.deepEqual(tracker.initial(fakeConfig({}, { maxNewTokens: 16 })), { codeLlama: { maxNewTokens: 16 } });
  });

  it("reports no change when only client-only settings changed", () => {
    const tracker = new ServerSettingsTracker();
    tracker.initial(fakeConfig({ model: "m" }));
    assert.equal(tracker.changed(fakeConfig({ model: "m", "completions.enable": false })), undefined);
  });

  it("sends a changed setting with the ones already sent", () => {
    const tracker = new ServerSettingsTracker();
    tracker.initial(fakeConfig({ model: "m" }));
    assert.deepEqual(tracker.changed(fakeConfig({ model: "m", dtype: "float16" })), {
      codeLlama: { model: "m", dtype: "float16" },
    });
    assert.equal(tracker.changed(fakeConfig({ model: "m", dtype: "float16" })), undefined);
  });

  it("sends the default when a setting it sent is removed", () => {
    const tracker = new ServerSettingsTracker();
    tracker.initial(fakeConfig({ model: "m", contextTokens: 2048 }));
    assert.deepEqual(tracker.changed(fakeConfig()), { codeLlama: { model: "", contextTokens: null } });
  });

  it("starts afresh for a new server", () => {
    const tracker = new ServerSettingsTracker();
    tracker.initial(fakeConfig({ model: "m" }));
    assert.deepEqual(tracker.initial(fakeConfig()), { codeLlama: {} });
  });

  it("sends everything when the configuration cannot be inspected", () => {
    const plain: ConfigurationLike = { get: <T>(key: string) => DEFAULTS[key] as T | undefined };
    const payload = new ServerSettingsTracker().initial(plain);
    assert.deepEqual(Object.keys(payload.codeLlama).sort(), [...SERVER_SETTING_KEYS].sort());
  });
});
