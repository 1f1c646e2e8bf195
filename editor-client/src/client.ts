// Owns the language client: starting `codesieve serve`, restarting it, and the status it reports.
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
} from "vscode-languageclient/node";
import { OwnEnvironment, PYTHON_DOWNLOAD, SetupError } from "./environment";
import { showResults } from "./picker";
import { FindResult, IndexStatus, IndexStatusNotification, ServerCommands, StatusRequest, isFindResult } from "./protocol";
import { LaunchError, resolveServerLaunch } from "./python";
import { SECTION, pythonPathSetting, serverCommandSetting, serverSettings } from "./settings";
import { StatusBar } from "./status";

const MAX_RESTARTS = 4;

export class ClientController implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private crashes: number[] = [];
  /** Ends VS Code's progress indicators of the running server (they would spin forever after a crash). */
  private readonly progressFinishers = new Set<() => void>();
  private statusRefresh: NodeJS.Timeout | undefined;
  private settingUp: Promise<boolean> | undefined;

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly status: StatusBar,
    private readonly environment: OwnEnvironment,
  ) {}

  log(message: string): void {
    this.output.appendLine(`[${new Date().toISOString()}] ${message}`);
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
    this.log(`restarting the server: ${reason}`);
    await this.stop();
    return this.start();
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async doStop(): Promise<void> {
    for (const finish of this.progressFinishers) finish();
    this.progressFinishers.clear();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (client.needsStop()) await client.stop(5000);
    } catch (error) {
      this.log(`stopping the server failed: ${String(error)}`);
    }
    await client.dispose().then(undefined, () => undefined);
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    if (this.client?.isRunning()) return this.client;
    if (this.settingUp) return undefined; // the setup starts the server when it is done
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) {
      this.status.update({ state: "stopped", lastError: "no folder is open" });
      return undefined;
    }
    if (!pythonPathSetting() && !serverCommandSetting() && this.environment.outdated()) {
      // this extension carries another wheel than CodeSieve's own environment holds: install it there
      this.log("CodeSieve's own environment holds another wheel than this extension carries: updating it");
      await this.runSetUp(); // on failure the user is told, and the environment as it was is used
    }
    this.status.update({ state: "starting" });
    let launch;
    try {
      launch = await resolveServerLaunch(folder.uri);
    } catch (error) {
      if (error instanceof LaunchError) {
        this.log(error.message + (error.detail ? `\n${error.detail}` : ""));
        this.status.update({ state: "stopped", lastError: error.message });
        void (error.fix === "setup" ? this.offerSetup() : this.notifyLaunchError(error));
        return undefined;
      }
      throw error;
    }
    this.log(`starting: ${[launch.command, ...launch.args].join(" ")} (from ${launch.source})`);
    const serverOptions: ServerOptions = {
      command: launch.command,
      args: launch.args,
      // No `transport`: TransportKind.stdio would append --stdio, which `codesieve serve` does not take.
      options: { cwd: folder.uri.fsPath, env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    let started = false;
    const client = new LanguageClient("codesieve", "CodeSieve", serverOptions, this.clientOptions(() => started));
    this.client = client;
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && this.client === client) {
        const current = this.status.status;
        this.status.update({ ...current, state: "stopped" });
      }
    });
    try {
      await client.start();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log(`the server failed to start: ${message}`);
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
      return undefined;
    }
    started = true;
    client.onNotification(IndexStatusNotification, (status) => this.status.update(status));
    this.trackProgress(client);
    this.log("server started");
    void this.refreshStatus();
    return client;
  }

  /**
   * Indexing progress ($/progress) into the status bar item as a percentage, and as VS Code's own
   * window progress. This replaces vscode-languageclient's handler for window/workDoneProgress/create
   * (a token can have one handler only), so it does both.
   */
  private trackProgress(client: LanguageClient): void {
    client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      let resolveFinished: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
      const finish = (): void => {
        this.progressFinishers.delete(finish);
        resolveFinished();
      };
      this.progressFinishers.add(finish);
      let reporter: vscode.Progress<{ message?: string }> | undefined;
      const subscription = client.onProgress(WorkDoneProgress.type, token, (value) => {
        if (value.kind === "begin") {
          this.status.merge({ state: "indexing", percentage: value.percentage ?? 0, message: value.message ?? "" });
          void vscode.window.withProgress(
            { location: vscode.ProgressLocation.Window, title: value.title, cancellable: value.cancellable ?? false },
            (progress, cancel) => {
              reporter = progress;
              cancel.onCancellationRequested(() => {
                void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
              });
              return finished;
            },
          );
        } else if (value.kind === "report") {
          const partial: { percentage?: number; message?: string } = {};
          if (value.percentage !== undefined) partial.percentage = value.percentage;
          if (value.message !== undefined) partial.message = value.message;
          if (this.status.status.state === "indexing") this.status.merge(partial);
          const text = [value.percentage !== undefined ? `${value.percentage}%` : "", value.message ?? ""];
          reporter?.report({ message: text.filter((part) => part !== "").join(" ") });
        } else {
          subscription.dispose();
          finish();
        }
      });
    });
  }

  private clientOptions(started: () => boolean): LanguageClientOptions {
    return {
      documentSelector: [{ scheme: "file" }],
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: serverSettings(),
      synchronize: {
        fileEvents: vscode.workspace.createFileSystemWatcher("**/*"),
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => {
          if (!started()) {
            // It never came up: doStart reports why; restarting would fail the same way.
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          const now = Date.now();
          this.crashes = this.crashes.filter((time) => now - time < 3 * 60_000);
          this.crashes.push(now);
          if (this.crashes.length > MAX_RESTARTS) {
            const message = `the server stopped ${this.crashes.length} times in 3 minutes and will not be restarted`;
            this.log(message);
            this.status.update({ state: "stopped", lastError: message });
            void vscode.window
              .showErrorMessage(`CodeSieve: ${message}. The CodeSieve output has its log.`, "Show Log", "Restart Server")
              .then((choice) => this.handleFix(choice));
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          this.log("the server stopped; restarting it");
          return { action: CloseAction.Restart, handled: true };
        },
      },
      middleware: {
        executeCommand: async (command, args, next) => {
          if (command === ServerCommands.findSimilar || command === ServerCommands.find) {
            const client = this.client;
            const result = Promise.resolve(next(command, args));
            if (client) {
              showResults(client, this.resultTitle(command, args), result.then(asFindResult));
            }
            return result;
          }
          return next(command, args);
        },
        workspace: {
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) return result;
            return params.items.map((item, index) =>
              item.section === SECTION ? serverSettings(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined) : result[index],
            );
          },
        },
      },
    };
  }

  private resultTitle(command: string, args: unknown[]): string {
    if (command === ServerCommands.find) {
      return `CodeSieve: ${typeof args[0] === "string" ? args[0] : "Find Code"}`;
    }
    const [uri, position] = args as [unknown, { line?: number } | undefined];
    if (typeof uri === "string") {
      const where = vscode.workspace.asRelativePath(vscode.Uri.parse(uri), false);
      const line = typeof position?.line === "number" ? `:${position.line + 1}` : "";
      return `CodeSieve: Similar to ${where}${line}`;
    }
    return "CodeSieve: Similar Code";
  }

  /** Asks the server for its status and shows it (the notifications keep it current afterwards). */
  async refreshStatus(): Promise<IndexStatus | undefined> {
    const client = this.running;
    if (!client) return undefined;
    try {
      const status = await client.sendRequest(StatusRequest, {});
      if (status && typeof status === "object") {
        if (typeof status.state === "string") this.status.update(status);
        else this.status.merge(status);
      }
      return this.status.status;
    } catch (error) {
      this.log(`codeSearch/status failed: ${String(error)}`);
      return undefined;
    }
  }

  /** Asks for the status a little later (after a save, the server updates the index without a state change). */
  refreshStatusSoon(delayMs = 2000): void {
    if (this.statusRefresh) clearTimeout(this.statusRefresh);
    this.statusRefresh = setTimeout(() => {
      this.statusRefresh = undefined;
      void this.refreshStatus();
    }, delayMs);
  }

  async reindex(): Promise<void> {
    const client = await this.ready();
    if (!client) return;
    this.status.merge({ state: "indexing" });
    try {
      await client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.reindex, arguments: [] });
    } catch (error) {
      void vscode.window.showErrorMessage(`CodeSieve: reindexing failed: ${String(error)}`);
    }
    void this.refreshStatus();
  }

  /** Sends the server settings to a running server (workspace/didChangeConfiguration). */
  sendSettings(): void {
    const client = this.running;
    if (!client) return;
    void client
      .sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: serverSettings() } })
      .then(undefined, (error: unknown) => this.log(`didChangeConfiguration failed: ${String(error)}`));
  }

  private async notifyLaunchError(error: LaunchError): Promise<void> {
    const actions = error.fix === "install" ? ["Open Settings", "Show Log"] : ["Open Settings"];
    const choice = await vscode.window.showErrorMessage(error.message, ...actions);
    await this.handleFix(choice);
  }

  /** No Python has CodeSieve and none was configured: offers to set up CodeSieve's own environment. */
  private async offerSetup(): Promise<void> {
    const choice = await vscode.window.showWarningMessage(
      "CodeSieve: no Python with CodeSieve was found (the CodeSieve output lists what was tried). Set up CodeSieve's " +
        "own environment? It creates a virtual environment in VS Code's storage and installs the CodeSieve this " +
        "extension carries, with its dependencies from the package index (about 70 MB; or from the folder of " +
        "wheels in codesieve.setup.wheelhouse).",
      "Set Up",
      "Open Settings",
      "Show Log",
    );
    if (choice === "Set Up") await this.setUpEnvironment();
    else await this.handleFix(choice);
  }

  /** CodeSieve: Set Up Python Environment: creates (or updates) CodeSieve's own environment, then restarts. */
  async setUpEnvironment(): Promise<void> {
    if (this.settingUp) {
      await this.settingUp; // the setup under way restarts the server, or says why it could not
      return;
    }
    if (await this.runSetUp()) await this.restart("CodeSieve's own environment was set up");
  }

  /** One setup at a time: the command's, or the update at a start. */
  private runSetUp(): Promise<boolean> {
    this.settingUp ??= this.doSetUp().finally(() => (this.settingUp = undefined));
    return this.settingUp;
  }

  /** Whether the environment was set up; if not, the user was told why. */
  private async doSetUp(): Promise<boolean> {
    const before = this.status.status;
    this.status.update({ state: "setup" });
    let outcome;
    try {
      outcome = await this.environment.setUp();
    } catch (error) {
      this.status.update(this.running ? before : { state: "stopped", lastError: "CodeSieve's environment is not set up" });
      void this.reportSetupError(error);
      return false;
    }
    void vscode.window.showInformationMessage(
      `CodeSieve: its environment is ready (${outcome.python}).` +
        (outcome.hnswlib
          ? ""
          : " hnswlib could not be installed (it has no wheel for this machine and needs a C++ compiler), so search is " +
            "exact: the same results, slower on very large indexes."),
    );
    return true;
  }

  private async reportSetupError(error: unknown): Promise<void> {
    if (error instanceof vscode.CancellationError) {
      this.log("setup: cancelled");
      void vscode.window.showInformationMessage("CodeSieve: setup cancelled. CodeSieve: Set Up Python Environment starts it again.");
      return;
    }
    const setupError =
      error instanceof SetupError
        ? error
        : new SetupError(`CodeSieve: setting up its environment failed (${String(error)}).`, ["Show Log", "Retry"]);
    this.log(setupError.message);
    const choice = await vscode.window.showErrorMessage(setupError.message, ...setupError.actions);
    if (choice === "Retry") await this.setUpEnvironment();
    else if (choice === "Download Python") await vscode.env.openExternal(vscode.Uri.parse(PYTHON_DOWNLOAD));
    else if (choice === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", setupError.setting);
    else await this.handleFix(choice);
  }

  async handleFix(choice: string | undefined): Promise<void> {
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "codesieve.pythonPath");
    } else if (choice === "Show Log") {
      this.output.show(true);
    } else if (choice === "Restart Server") {
      this.crashes = [];
      await this.restart("requested by the user");
    }
  }

  dispose(): void {
    void this.stop();
  }
}

function asFindResult(value: unknown): FindResult {
  return isFindResult(value) ? value : { hits: [] };
}
