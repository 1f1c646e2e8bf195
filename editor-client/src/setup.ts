// CodeSieve: Set Up Python Environment, the offer of it when no Python has CodeSieve, and the update of
// CodeSieve's own environment at a start: one setup at a time, what it tells the user, and the restart
// of the server after it. The installing itself is OwnEnvironment's (environment.ts).
import * as vscode from "vscode";
import { OwnEnvironment, PYTHON_DOWNLOAD, SetupError } from "./environment";
import { log } from "./log/logging";
import type { Server } from "./server";
import { pythonPathSetting, serverCommandSetting } from "./settings";
import { StatusBar } from "./status";

export class EnvironmentSetup {
  private settingUp: Promise<boolean> | undefined;

  constructor(
    private readonly environment: OwnEnvironment,
    private readonly status: StatusBar,
    private readonly server: Server,
  ) {}

  /** Whether a setup is under way; it starts the server when it is done. */
  get busy(): boolean {
    return this.settingUp !== undefined;
  }

  /**
   * Before a start: when the server would run from CodeSieve's own environment and that holds another
   * wheel than this extension carries, installs the carried one (on failure the user is told, and the
   * environment as it was is used).
   */
  async updateIfOutdated(): Promise<void> {
    if (pythonPathSetting() || serverCommandSetting() || !this.environment.outdated()) return;
    log.info("CodeSieve's own environment holds another wheel than this extension carries: updating it");
    await this.run();
  }

  /** No Python has CodeSieve and none was configured: offers to set up CodeSieve's own environment. */
  async offer(): Promise<void> {
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
    else await this.server.handleFix(choice);
  }

  /** CodeSieve: Set Up Python Environment: creates (or updates) CodeSieve's own environment, then restarts. */
  async setUpEnvironment(): Promise<void> {
    if (this.settingUp) {
      await this.settingUp; // the setup under way restarts the server, or says why it could not
      return;
    }
    if (await this.run()) await this.server.restart("CodeSieve's own environment was set up");
  }

  /** One setup at a time: the command's, or the update at a start. */
  private run(): Promise<boolean> {
    this.settingUp ??= this.setUp().finally(() => (this.settingUp = undefined));
    return this.settingUp;
  }

  /** Whether the environment was set up; if not, the user was told why. */
  private async setUp(): Promise<boolean> {
    const before = this.status.status;
    this.status.update({ state: "setup" });
    let outcome;
    try {
      outcome = await this.environment.setUp();
    } catch (error) {
      this.status.update(this.server.running ? before : { state: "stopped", lastError: "CodeSieve's environment is not set up" });
      void this.reportError(error);
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

  private async reportError(error: unknown): Promise<void> {
    if (error instanceof vscode.CancellationError) {
      log.info("setup: cancelled");
      void vscode.window.showInformationMessage("CodeSieve: setup cancelled. CodeSieve: Set Up Python Environment starts it again.");
      return;
    }
    const setupError =
      error instanceof SetupError
        ? error
        : new SetupError(`CodeSieve: setting up its environment failed (${String(error)}).`, ["Show Log", "Retry"]);
    log.error(setupError.message);
    const choice = await vscode.window.showErrorMessage(setupError.message, ...setupError.actions);
    if (choice === "Retry") await this.setUpEnvironment();
    else if (choice === "Download Python") await vscode.env.openExternal(vscode.Uri.parse(PYTHON_DOWNLOAD));
    else if (choice === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", setupError.setting);
    else await this.server.handleFix(choice);
  }
}
