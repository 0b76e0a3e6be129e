/**
 * Reading `codeLlama.*` from VS Code: the section, whether completions are on
 * for a document (language-specific settings included), and the server
 * launch settings.
 */
import * as os from "node:os";
import * as vscode from "vscode";
import { completionsEnabledFor } from "./completionsGate";
import { serverLaunch, type ServerLaunch } from "./serverCommand";

/** The configuration section of every setting of this extension. */
export const SECTION = "codeLlama";

/** `codeLlama.*`, resolved for `scope` (a document gets its language's overrides). */
export function codeLlamaConfig(scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION, scope);
}

/** Whether inline completions are wanted in `document`. */
export function completionsEnabledForDocument(document: vscode.TextDocument): boolean {
  const config = codeLlamaConfig(document);
  return completionsEnabledFor(
    document.languageId,
    config.get<unknown>("completions.enable"),
    config.get<unknown>("completions.languages"),
  );
}

/** Whether completions are on at all (no document in view). */
export function completionsEnabledGlobally(): boolean {
  return codeLlamaConfig().get<unknown>("completions.enable") !== false;
}

/** The server process to start, from `codeLlama.server.*`. */
export function currentServerLaunch(): ServerLaunch {
  const config = codeLlamaConfig();
  return serverLaunch(
    {
      command: config.get<unknown>("server.command"),
      args: config.get<unknown>("server.args"),
      pythonPath: config.get<unknown>("server.pythonPath"),
    },
    os.homedir(),
  );
}
