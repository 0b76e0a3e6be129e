/**
 * Builds the language client for one server process: stdio launch, the
 * documents it sees (files and untitled, every language), the output
 * channel, and the middleware that
 *
 * - gates inline completions by `codeLlama.completions.*` and times each
 *   round trip for the status bar (vscode-languageclient registers the LSP
 *   inline completion provider itself);
 * - keeps the server's plain `textDocument/completion` out of VS Code's
 *   suggest widget (it would run the model a second time on every keystroke
 *   and cancel the ghost text's request);
 * - notices the server's accept command (`codeLlama.didAcceptCompletion`,
 *   which VS Code runs when the user accepts an item), so that the status
 *   bar's acceptance counts are asked for again;
 * - points the server's "Explain selection" code action at the panel;
 * - answers `workspace/configuration` for the `codeLlama` section with the
 *   server's keys only.
 */
import * as vscode from "vscode";
import {
  LanguageClient,
  type LanguageClientOptions,
  type Middleware,
  type ServerOptions,
} from "vscode-languageclient/node";
import { redirectExplainCommand } from "./explainTarget";
import type { ServerLaunch } from "./serverCommand";
import { type ServerSettings, type ServerSettingsPayload } from "./serverSettings";

/** The client id: VS Code reads `codeLlama.trace.server` for it. */
export const CLIENT_ID = "codeLlama";
export const CLIENT_NAME = "Code Llama";

/** What the client needs from the rest of the extension. */
export interface ClientHooks {
  launch: ServerLaunch;
  outputChannel: vscode.LogOutputChannel;
  /** `initializationOptions`, computed at each (re)start of the process. */
  initializationOptions(): ServerSettingsPayload;
  /** The server's settings now, for `workspace/configuration` requests. */
  serverSettings(): ServerSettings;
  completionsEnabled(document: vscode.TextDocument): boolean;
  onCompletionLatency(ms: number): void;
  /** The server has been told that the user accepted an item (whole). */
  onCompletionAccepted(): void;
}

/** The command the server puts on each item (PROTOCOL.md, Completions). */
export const ACCEPT_COMPLETION_COMMAND = "codeLlama.didAcceptCompletion";

/** A client for `hooks.launch`; not started. */
export function createLanguageClient(hooks: ClientHooks): LanguageClient {
  const serverOptions: ServerOptions = {
    // No `transport`: with TransportKind.stdio the client appends `--stdio`.
    command: hooks.launch.command,
    args: hooks.launch.args,
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    outputChannel: hooks.outputChannel,
    traceOutputChannel: hooks.outputChannel,
    initializationOptions: () => hooks.initializationOptions(),
    middleware: createMiddleware(hooks),
  };
  return new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
}

function createMiddleware(hooks: ClientHooks): Middleware {
  return {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      if (!hooks.completionsEnabled(document)) {
        return null;
      }
      const started = performance.now();
      const result = await next(document, position, context, token);
      if (!token.isCancellationRequested) {
        hooks.onCompletionLatency(performance.now() - started);
      }
      return result;
    },
    provideCompletionItem: () => undefined,
    executeCommand: async (command, args, next) => {
      const result: unknown = await next(command, args);
      if (command === ACCEPT_COMPLETION_COMMAND) {
        hooks.onCompletionAccepted();
      }
      return result;
    },
    provideCodeActions: async (document, range, context, token, next) => {
      const actions = await next(document, range, context, token);
      return actions?.map((action) => {
        if (typeof action.command === "string") {
          return redirectExplainCommand(action as vscode.Command);
        }
        const codeAction = action as vscode.CodeAction;
        if (codeAction.command !== undefined) {
          codeAction.command = redirectExplainCommand(codeAction.command);
        }
        return codeAction;
      });
    },
    workspace: {
      configuration: async (params, token, next) => {
        const values = await next(params, token);
        if (!Array.isArray(values)) {
          return values;
        }
        return params.items.map((item, index): unknown =>
          item.section === CLIENT_ID ? hooks.serverSettings() : values[index],
        );
      },
    },
  };
}
