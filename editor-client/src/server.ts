// The language server, `codesieve serve`, through vscode-languageclient: starting it (after finding its
// Python, or setting up CodeSieve's own environment), stopping it, restarting it on request and after a
// crash, and telling the user when it cannot run. One start or stop at a time.
import * as vscode from "vscode";
import {
  CloseAction,
  CloseHandlerResult,
  DidChangeConfigurationNotification,
  LanguageClient,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { clientOptions } from "./client";
import { OwnEnvironment } from "./environment";
import { log, showLog } from "./log/logging";
import { forwardServerLog } from "./log/serverLog";
import { LaunchError, ServerLaunch, resolveServerLaunch } from "./python";
import { SECTION, serverSettings } from "./settings";
import { EnvironmentSetup } from "./setup";
import { StatusBar } from "./status";

/** Restarts after a crash within CRASH_WINDOW_MS; one more crash there and the server stays stopped (it would only crash again). */
const MAX_RESTARTS = 4;
const CRASH_WINDOW_MS = 3 * 60_000;

export class Server implements vscode.Disposable {
  /** CodeSieve's own environment: set up on request, offered when no Python has CodeSieve. */
  readonly setup: EnvironmentSetup;
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private crashes: number[] = [];
  private readonly started = new vscode.EventEmitter<LanguageClient>();
  private readonly stopping = new vscode.EventEmitter<void>();
  /** A start succeeded. Not fired at vscode-languageclient's own restarts after a crash: handlers on the client hold for those. */
  readonly onDidStart = this.started.event;
  /** A stop begins: what is shown for the running server should end. */
  readonly onWillStop = this.stopping.event;

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly status: StatusBar,
    environment: OwnEnvironment,
  ) {
    this.setup = new EnvironmentSetup(environment, status, this);
  }

  get running(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  /** The running client, starting it if needed; undefined (after telling the user why) when it cannot run. */
  async ready(): Promise<LanguageClient | undefined> {
    if (this.running) return this.running;
    if (this.starting) return this.starting;
    return this.start();
  }

  start(): Promise<LanguageClient | undefined> {
    const started = this.serialize(() => this.doStart());
    this.starting = started;
    void started.finally(() => {
      if (this.starting === started) this.starting = undefined;
    });
    return started;
  }

  stop(): Promise<void> {
    return this.serialize(() => this.doStop());
  }

  async restart(reason: string): Promise<LanguageClient | undefined> {
    log.info(`restarting the server: ${reason}`);
    await this.stop();
    return this.start();
  }

  /** Sends the server settings to a running server (workspace/didChangeConfiguration). */
  sendSettings(): void {
    const client = this.running;
    if (!client) return;
    void client
      .sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: serverSettings() } })
      .then(undefined, (error: unknown) => log.warn(`didChangeConfiguration failed: ${String(error)}`));
  }

  /** What the buttons on CodeSieve's messages do. */
  async handleFix(choice: string | undefined): Promise<void> {
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "codesieve.pythonPath");
    } else if (choice === "Show Log") {
      showLog();
    } else if (choice === "Restart Server") {
      this.crashes = [];
      await this.restart("requested by the user");
    }
  }

  dispose(): void {
    void this.stop().finally(() => {
      this.started.dispose();
      this.stopping.dispose();
    });
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async doStop(): Promise<void> {
    this.stopping.fire();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (client.needsStop()) await client.stop(5000);
    } catch (error) {
      log.warn(`stopping the server failed: ${String(error)}`);
    }
    await client.dispose().then(undefined, () => undefined);
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    if (this.client?.isRunning()) return this.client;
    if (this.setup.busy) return undefined; // the setup starts the server when it is done
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) {
      this.status.update({ state: "stopped", lastError: "no folder is open" });
      return undefined;
    }
    await this.setup.updateIfOutdated();
    this.status.update({ state: "starting" });
    const launch = await this.launch(folder.uri);
    if (!launch) return undefined;
    log.info(`starting: ${[launch.command, ...launch.args].join(" ")} (from ${launch.source})`);
    return this.startClient(launch, folder.uri);
  }

  /** The command that starts the server, or undefined when there is none (the user is told why). */
  private async launch(folder: vscode.Uri): Promise<ServerLaunch | undefined> {
    try {
      return await resolveServerLaunch(folder);
    } catch (error) {
      if (!(error instanceof LaunchError)) throw error;
      log.error(error.message + (error.detail ? `\n${error.detail}` : ""));
      this.status.update({ state: "stopped", lastError: error.message });
      void (error.fix === "setup" ? this.setup.offer() : this.notifyLaunchError(error));
      return undefined;
    }
  }

  private async startClient(launch: ServerLaunch, folder: vscode.Uri): Promise<LanguageClient | undefined> {
    const serverOptions: ServerOptions = {
      command: launch.command,
      args: launch.args,
      // No `transport`: TransportKind.stdio would append --stdio, which `codesieve serve` does not take.
      options: { cwd: folder.fsPath, env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    let started = false;
    const options = clientOptions(this.output, () => this.client, () => this.closed(started));
    const client = new LanguageClient("codesieve", "CodeSieve", serverOptions, options);
    this.client = client;
    forwardServerLog(client);
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && this.client === client) {
        this.status.update({ ...this.status.status, state: "stopped" });
      }
    });
    try {
      await client.start();
    } catch (error) {
      await this.startFailed(client, error);
      return undefined;
    }
    started = true;
    log.info("server started");
    this.started.fire(client);
    return client;
  }

  private async startFailed(client: LanguageClient, error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    log.error(`the server failed to start: ${message}`);
    this.status.update({ state: "stopped", lastError: message });
    void vscode.window
      .showErrorMessage(
        `CodeSieve: the language server failed to start (${message}). The CodeSieve output has its log.`,
        "Show Log",
        "Open Settings",
      )
      .then((choice) => this.handleFix(choice));
    if (this.client === client) this.client = undefined;
    await client.dispose().then(undefined, () => undefined);
  }

  /** The connection closed: restart the server, unless it never came up or keeps stopping. */
  private closed(started: boolean): CloseHandlerResult {
    if (!started) {
      // It never came up: startFailed reports why; restarting would fail the same way.
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    const now = Date.now();
    this.crashes = this.crashes.filter((time) => now - time < CRASH_WINDOW_MS);
    this.crashes.push(now);
    if (this.crashes.length <= MAX_RESTARTS) {
      log.warn("the server stopped; restarting it");
      return { action: CloseAction.Restart, handled: true };
    }
    const message = `the server stopped ${this.crashes.length} times in 3 minutes and will not be restarted`;
    log.error(message);
    this.status.update({ state: "stopped", lastError: message });
    void vscode.window
      .showErrorMessage(`CodeSieve: ${message}. The CodeSieve output has its log.`, "Show Log", "Restart Server")
      .then((choice) => this.handleFix(choice));
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private async notifyLaunchError(error: LaunchError): Promise<void> {
    const actions = error.fix === "install" ? ["Open Settings", "Show Log"] : ["Open Settings"];
    const choice = await vscode.window.showErrorMessage(error.message, ...actions);
    await this.handleFix(choice);
  }
}
