/**
 * How the server process is started, from `codeLlama.server.command`,
 * `codeLlama.server.args` and `codeLlama.server.pythonPath`.
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`.
 */

/** An executable and its arguments; the server speaks LSP on its stdio. */
export interface ServerLaunch {
  command: string;
  args: string[];
}

/** The `codeLlama.server.*` values as read from the configuration (unvalidated). */
export interface ServerLaunchSettings {
  command?: unknown;
  args?: unknown;
  pythonPath?: unknown;
}

export const DEFAULT_SERVER_COMMAND = "code-llama-ls";
export const DEFAULT_SERVER_ARGS: readonly string[] = ["serve"];
export const PYTHON_MODULE_ARGS: readonly string[] = ["-m", "code_llama_ls", "serve"];

/** `~` or `~/…` expanded against `home`; other paths unchanged. */
export function expandHome(path: string, home: string): string {
  if (home === "") {
    return path;
  }
  if (path === "~") {
    return home;
  }
  if (path.startsWith("~/")) {
    return home.replace(/\/+$/, "") + path.slice(1);
  }
  return path;
}

/**
 * The process to start: `<pythonPath> -m code_llama_ls serve` when a Python
 * path is set, else `command` with `args` (defaults for empty or malformed values).
 */
export function serverLaunch(settings: ServerLaunchSettings, home = ""): ServerLaunch {
  const pythonPath = typeof settings.pythonPath === "string" ? settings.pythonPath.trim() : "";
  if (pythonPath !== "") {
    return { command: expandHome(pythonPath, home), args: [...PYTHON_MODULE_ARGS] };
  }
  const command =
    typeof settings.command === "string" && settings.command.trim() !== ""
      ? expandHome(settings.command.trim(), home)
      : DEFAULT_SERVER_COMMAND;
  const args =
    Array.isArray(settings.args) && settings.args.every((arg) => typeof arg === "string")
      ? [...(settings.args as string[])]
      : [...DEFAULT_SERVER_ARGS];
  return { command, args };
}

/** The launch as one shell-like line, for messages and the log. */
export function describeLaunch(launch: ServerLaunch): string {
  const quote = (part: string): string => (/^[\w@%+=:,./~-]+$/.test(part) ? part : `'${part.replace(/'/g, `'\\''`)}'`);
  return [launch.command, ...launch.args].map(quote).join(" ");
}
