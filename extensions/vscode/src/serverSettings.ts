/**
 * The `codeLlama.*` settings the server knows, read from the editor's
 * configuration and shaped the way the server wants them (PROTOCOL.md).
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`.
 *
 * Only keys the user has set somewhere (user, workspace, folder or language
 * settings) are sent, so the server's own layers (its config file, flags in
 * `codeLlama.server.args`) keep working for everything else. A key that was
 * sent once during a server's life is sent again even after the user removes
 * it, with the default value, so that clearing a setting takes effect.
 * Client-only keys (`completions.*`, `server.*`, `trace.*`) are never sent:
 * the server reports an unknown key as an error.
 */

/** The settings object the server receives; every value is JSON. */
export type ServerSettings = Record<string, string | number | boolean | null>;

/** What `initializationOptions` and `didChangeConfiguration` carry. */
export interface ServerSettingsPayload {
  codeLlama: ServerSettings;
}

/** The part of `vscode.WorkspaceConfiguration` this module reads. */
export interface ConfigurationLike {
  get<T>(key: string): T | undefined;
  inspect?(key: string): InspectedValue | undefined;
}

/** The part of `vscode.WorkspaceConfiguration.inspect()`'s result this module reads. */
export interface InspectedValue {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
  globalLanguageValue?: unknown;
  workspaceLanguageValue?: unknown;
  workspaceFolderLanguageValue?: unknown;
}

type Normalize = (value: unknown) => string | number | boolean | null | undefined;

const text: Normalize = (value) => (typeof value === "string" ? value.trim() : "");
const choice: Normalize = (value) =>
  typeof value === "string" && value.trim() !== "" ? value.trim().toLowerCase() : undefined;
const integer: Normalize = (value) =>
  typeof value === "number" && Number.isFinite(value) ? Math.round(value) : undefined;
const optionalInteger: Normalize = (value) =>
  value === null || value === undefined || value === "" ? null : integer(value);
const boolean: Normalize = (value) => (typeof value === "boolean" ? value : undefined);
const optionalBoolean: Normalize = (value) => (value === null || value === undefined ? null : boolean(value));

/**
 * Every key the server accepts, with how its value is normalized. `undefined`
 * from a normalizer means "do not send" (the server would reject the value).
 */
const SERVER_KEYS: Readonly<Record<string, Normalize>> = {
  model: text,
  explainModel: text,
  backend: choice,
  onnxWeights: choice,
  device: choice,
  dtype: choice,
  fimMode: choice,
  maxNewTokens: integer,
  explainMaxNewTokens: integer,
  contextTokens: optionalInteger,
  workspaceContext: boolean,
  logLevel: choice,
  cacheDir: text,
  maxDocumentBytes: integer,
  trustRemoteCode: boolean,
  prefixCacheEntries: integer,
  prefixCacheMib: integer,
  completionCache: boolean,
  debounceMs: integer,
  timeBudgetMs: integer,
  candidates: integer,
  candidatesWhileTyping: optionalBoolean,
  speculate: boolean,
  remoteUrl: text,
  remoteApi: choice,
  remoteModel: text,
  remotePrompt: choice,
  remoteCaFile: text,
  remoteConnectTimeoutMs: integer,
  remoteTimeoutMs: integer,
};

/** The server's setting keys, in a stable order. */
export const SERVER_SETTING_KEYS: readonly string[] = Object.keys(SERVER_KEYS);

/** Whether `key` (without the `codeLlama.` prefix) is a setting the server knows. */
export function isServerSettingKey(key: string): boolean {
  return Object.prototype.hasOwnProperty.call(SERVER_KEYS, key);
}

/** Whether the user set `key` anywhere, as opposed to it having its default. */
export function isExplicitlySet(config: ConfigurationLike, key: string): boolean {
  if (config.inspect === undefined) {
    return true;
  }
  const inspected = config.inspect(key);
  if (inspected === undefined) {
    return false;
  }
  return [
    inspected.globalValue,
    inspected.workspaceValue,
    inspected.workspaceFolderValue,
    inspected.globalLanguageValue,
    inspected.workspaceLanguageValue,
    inspected.workspaceFolderLanguageValue,
  ].some((value) => value !== undefined);
}

/**
 * The server settings for `keys` (all server keys when omitted), with their
 * effective values. Unknown keys in `keys` are ignored.
 */
export function toServerSettings(
  config: ConfigurationLike,
  keys: Iterable<string> = SERVER_SETTING_KEYS,
): ServerSettings {
  const wanted = new Set(keys);
  const settings: ServerSettings = {};
  for (const key of SERVER_SETTING_KEYS) {
    if (!wanted.has(key)) {
      continue;
    }
    const value = SERVER_KEYS[key](config.get<unknown>(key));
    if (value !== undefined) {
      settings[key] = value;
    }
  }
  return settings;
}

/**
 * Decides what to send one server over its life: `initial()` for
 * `initializationOptions`, then `changed()` after each configuration change,
 * which returns `undefined` when the server's settings did not change.
 */
export class ServerSettingsTracker {
  private readonly sentKeys = new Set<string>();
  private lastSent = "";

  /** The settings for `initializationOptions`: the keys the user set. */
  initial(config: ConfigurationLike): ServerSettingsPayload {
    this.sentKeys.clear();
    const settings = this.collect(config);
    this.lastSent = JSON.stringify(settings);
    return { codeLlama: settings };
  }

  /** The settings to send after a change, or `undefined` when nothing the server knows changed. */
  changed(config: ConfigurationLike): ServerSettingsPayload | undefined {
    const settings = this.collect(config);
    const serialized = JSON.stringify(settings);
    if (serialized === this.lastSent) {
      return undefined;
    }
    this.lastSent = serialized;
    return { codeLlama: settings };
  }

  /** The settings as the server has them now (for `workspace/configuration` requests). */
  current(config: ConfigurationLike): ServerSettings {
    return this.collect(config);
  }

  private collect(config: ConfigurationLike): ServerSettings {
    for (const key of SERVER_SETTING_KEYS) {
      if (isExplicitlySet(config, key)) {
        this.sentKeys.add(key);
      }
    }
    return toServerSettings(config, this.sentKeys);
  }
}
