/**
 * The server's life in this window: one language client at a time, started,
 * restarted (new launch settings need a new client) and stopped in order;
 * settings pushed on change; copied text sent on; and what the status bar
 * shows (client phase, the server's `codeLlama/status`, the last completion's
 * round trip, the acceptance counts of `codeLlama/getStatus`).
 */
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ErrorCodes,
  type LanguageClient,
  ResponseError,
  State,
} from "vscode-languageclient/node";
import { createLanguageClient } from "./client";
import { DID_YANK_NOTIFICATION, type DidYankParams } from "./copiedText";
import { codeLlamaConfig, currentServerLaunch } from "./editorSettings";
import { errorMessage } from "./errors";
import { describeLaunch } from "./serverCommand";
import { ServerSettingsTracker } from "./serverSettings";
import {
  type AcceptanceCounts,
  type ClientPhase,
  parseAcceptance,
  parseServerStatus,
  type ServerStatus,
} from "./status";

export const STATUS_NOTIFICATION = "codeLlama/status";
export const GET_STATUS_REQUEST = "codeLlama/getStatus";

/** How long a stopping server gets to shut down before it is killed. */
const STOP_TIMEOUT_MS = 3000;
/**
 * When the acceptance counts are asked for again: this long after the server
 * turned `ready` (the burst of requests while typing ends first), and soon
 * after the user accepted a suggestion. Never on a timer of its own.
 */
const ACCEPTANCE_AFTER_READY_MS = 2000;
const ACCEPTANCE_AFTER_ACCEPT_MS = 250;

/** What the status bar reads from the session. */
export interface SessionSnapshot {
  phase: ClientPhase;
  server?: ServerStatus;
  clientError?: string;
  latencyMs?: number;
  acceptance?: AcceptanceCounts;
}

export class ServerSession implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private clientListeners: vscode.Disposable[] = [];
  private tracker = new ServerSettingsTracker();
  private queue: Promise<void> = Promise.resolve();
  private snapshot: SessionSnapshot = { phase: "stopped" };
  private readonly changed = new vscode.EventEmitter<void>();
  private acceptanceTimer: ReturnType<typeof setTimeout> | undefined;
  private acceptanceDue = Number.POSITIVE_INFINITY;

  /** Fires whenever `state` changes. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly completionsEnabled: (document: vscode.TextDocument) => boolean,
  ) {}

  /** The current client (it may still be starting), or undefined when none. */
  get languageClient(): LanguageClient | undefined {
    return this.client;
  }

  get state(): SessionSnapshot {
    return this.snapshot;
  }

  /** Starts the server with the current `codeLlama.server.*` settings. */
  start(): Promise<void> {
    return this.enqueue(() => this.startNow());
  }

  /** Stops the server and starts a new one (picking up new launch settings). */
  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.stopNow();
      await this.startNow();
    });
  }

  /** Stops the server; the session can be started again. */
  stop(): Promise<void> {
    return this.enqueue(() => this.stopNow());
  }

  /** Sends `workspace/didChangeConfiguration` when the server's settings changed. */
  pushSettings(): void {
    const client = this.client;
    if (client === undefined || client.state !== State.Running) {
      return; // A starting client sends them when it is running.
    }
    const payload = this.tracker.changed(codeLlamaConfig());
    if (payload === undefined) {
      return;
    }
    this.output.info(`Sending settings: ${JSON.stringify(payload.codeLlama)}`);
    client.sendNotification(DidChangeConfigurationNotification.type, { settings: payload }).catch((error: unknown) => {
      this.output.error(`Sending settings failed: ${errorMessage(error)}`);
    });
  }

  /** Sends `codeLlama/didYank`: text the user copied or cut in `document`. */
  sendYank(text: string, document: vscode.TextDocument): void {
    const client = this.client;
    if (client === undefined || client.state !== State.Running) {
      return;
    }
    const params: DidYankParams = { text, uri: client.code2ProtocolConverter.asUri(document.uri) };
    client.sendNotification(DID_YANK_NOTIFICATION, params).catch((error: unknown) => {
      this.output.warn(`${DID_YANK_NOTIFICATION} failed: ${errorMessage(error)}`);
    });
  }

  dispose(): void {
    this.cancelAcceptanceRefresh();
    void this.stop();
    this.changed.dispose();
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.queue.then(step, step);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private update(change: Partial<SessionSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    this.changed.fire();
  }

  private async startNow(): Promise<void> {
    const launch = currentServerLaunch();
    const tracker = new ServerSettingsTracker();
    this.tracker = tracker;
    const client = createLanguageClient({
      launch,
      outputChannel: this.output,
      initializationOptions: () => tracker.initial(codeLlamaConfig()),
      serverSettings: () => tracker.current(codeLlamaConfig()),
      completionsEnabled: this.completionsEnabled,
      onCompletionLatency: (ms) => {
        if (client === this.client) {
          this.update({ latencyMs: ms });
        }
      },
      onCompletionAccepted: () => {
        if (client === this.client) {
          this.refreshAcceptanceIn(ACCEPTANCE_AFTER_ACCEPT_MS);
        }
      },
    });
    this.client = client;
    this.clientListeners = [
      client.onDidChangeState((event) => this.onClientState(client, event.newState)),
      client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
        const status = parseServerStatus(params);
        if (client === this.client && status !== undefined) {
          this.update({ server: status });
          if (status.state === "ready") {
            this.refreshAcceptanceIn(ACCEPTANCE_AFTER_READY_MS);
          }
        }
      }),
    ];
    this.output.info(`Starting the server: ${describeLaunch(launch)}`);
    this.update({
      phase: "starting",
      server: undefined,
      clientError: undefined,
      latencyMs: undefined,
      acceptance: undefined,
    });
    try {
      await client.start();
    } catch (error) {
      if (client !== this.client) {
        return;
      }
      const message = `Could not start the server (${describeLaunch(launch)}): ${errorMessage(error)}`;
      this.output.error(message);
      this.update({ phase: "failed", clientError: message });
      void this.offerHelp(message);
    }
  }

  private async stopNow(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.cancelAcceptanceRefresh();
    for (const listener of this.clientListeners) {
      listener.dispose();
    }
    this.clientListeners = [];
    if (client !== undefined) {
      try {
        await client.dispose(STOP_TIMEOUT_MS);
      } catch (error) {
        this.output.warn(`Stopping the server: ${errorMessage(error)}`);
      }
    }
    this.update({ phase: "stopped", server: undefined, clientError: undefined, acceptance: undefined });
  }

  private onClientState(client: LanguageClient, state: State): void {
    if (client !== this.client) {
      return;
    }
    switch (state) {
      case State.Starting:
        this.update({ phase: "starting", server: undefined });
        break;
      case State.Running:
        this.update({ phase: "running", clientError: undefined });
        this.pushSettings();
        void this.fetchStatus(client);
        break;
      case State.Stopped:
        if (this.snapshot.phase !== "failed") {
          this.update({ phase: "stopped", server: undefined });
        }
        break;
    }
  }

  /** Asks for the status once the client runs, in case no notification came yet. */
  private async fetchStatus(client: LanguageClient): Promise<void> {
    try {
      // Empty params rather than none: pygls 2.1 cannot parse a request without `params`.
      const result: unknown = await client.sendRequest(GET_STATUS_REQUEST, {});
      const status = parseServerStatus(result);
      if (client === this.client && this.snapshot.server === undefined && status !== undefined) {
        this.update({ server: status });
      }
      const acceptance = parseAcceptance(result);
      if (client === this.client && acceptance !== undefined) {
        this.update({ acceptance });
      }
    } catch (error) {
      if (error instanceof ResponseError && error.code === ErrorCodes.MethodNotFound) {
        // An older server without status reporting: it serves once it runs.
        if (client === this.client && this.snapshot.server === undefined) {
          this.update({
            server: {
              state: "ready",
              model: client.initializeResult?.serverInfo?.name ?? "code-llama-ls",
              device: null,
              message: "This server does not report its status.",
              lastCompletionMs: null,
              prompt: null,
            },
          });
        }
        return;
      }
      this.output.warn(`${GET_STATUS_REQUEST} failed: ${errorMessage(error)}`);
    }
  }

  /**
   * Asks `codeLlama/getStatus` for the acceptance counts in `delayMs`, or
   * sooner when a refresh is already due sooner. One timer, one request at a
   * time; a burst of calls makes one request.
   */
  private refreshAcceptanceIn(delayMs: number): void {
    const due = Date.now() + delayMs;
    if (this.acceptanceTimer !== undefined) {
      if (this.acceptanceDue <= due) {
        return;
      }
      clearTimeout(this.acceptanceTimer);
    }
    this.acceptanceDue = due;
    this.acceptanceTimer = setTimeout(() => {
      this.acceptanceTimer = undefined;
      this.acceptanceDue = Number.POSITIVE_INFINITY;
      const client = this.client;
      if (client !== undefined && client.state === State.Running) {
        void this.fetchAcceptance(client);
      }
    }, delayMs);
  }

  private cancelAcceptanceRefresh(): void {
    if (this.acceptanceTimer !== undefined) {
      clearTimeout(this.acceptanceTimer);
      this.acceptanceTimer = undefined;
      this.acceptanceDue = Number.POSITIVE_INFINITY;
    }
  }

  private async fetchAcceptance(client: LanguageClient): Promise<void> {
    try {
      const acceptance = parseAcceptance(await client.sendRequest(GET_STATUS_REQUEST, {}));
      if (client === this.client && acceptance !== undefined) {
        this.update({ acceptance });
      }
    } catch (error) {
      this.output.debug(`${GET_STATUS_REQUEST} for the acceptance counts failed: ${errorMessage(error)}`);
    }
  }

  private async offerHelp(message: string): Promise<void> {
    const settings = "Open Settings";
    const log = "Show Log";
    const choice = await vscode.window.showErrorMessage(
      `Code Llama: ${message}. Put code-llama-ls on PATH, or set codeLlama.server.pythonPath to the Python of the environment it is installed in.`,
      settings,
      log,
    );
    if (choice === settings) {
      await vscode.commands.executeCommand("workbench.action.openSettings", "codeLlama.server");
    } else if (choice === log) {
      this.output.show(true);
    }
  }
}
