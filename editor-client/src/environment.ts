// CodeSieve's own Python environment. When no interpreter has CodeSieve, the extension can create a
// virtual environment in its global storage and install there the wheel it carries (wheel/codesieve-*.whl),
// with its dependencies from the package index or from a folder of wheels (codesieve.setup.wheelhouse).
// A file in the environment records the wheel's digest: a later extension version with another wheel
// installs that one over it. hnswlib (the `hnsw` extra) is asked for and may fail: it has no wheels and
// needs a C++ compiler, and without it the server searches exactly.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import { log } from "./log/logging";
import { runProcess, RunResult } from "./process";
import { pythonFromPythonExtension } from "./pythonExtension";
import { wheelhouseSetting } from "./settings";

/** What the environment holds, written last by a setup that finished. */
interface Stamp {
  wheel: string;
  sha256: string;
  /** The interpreter the environment was created with. */
  basePython: string;
  hnswlib: boolean;
  installedAt: string;
}

export interface SetupOutcome {
  python: string;
  hnswlib: boolean;
}

export type SetupAction = "Retry" | "Show Log" | "Open Settings" | "Download Python";

type SetupProgress = vscode.Progress<{ message?: string; increment?: number }>;

/** A setup that failed, with what the user can do next (`setting`: the one Open Settings shows). */
export class SetupError extends Error {
  constructor(
    message: string,
    readonly actions: SetupAction[],
    readonly setting = "codesieve.setup.wheelhouse",
  ) {
    super(message);
  }
}

const MIN_PYTHON: [number, number] = [3, 10];
const WINDOWS = process.platform === "win32";
const PIP_TIMEOUT_MS = 30 * 60_000;
export const PYTHON_DOWNLOAD = "https://www.python.org/downloads/";

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function sha256(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

let current: OwnEnvironment | undefined;

/** The Python of CodeSieve's own environment when one was set up, else undefined. */
export function ownEnvironmentPython(): string | undefined {
  return current?.installedPython();
}

/** The wheel this extension carries, for install commands in messages (undefined in a build without it). */
export function bundledWheel(): string | undefined {
  return current?.wheel();
}

export class OwnEnvironment {
  /** The virtual environment's folder. */
  readonly folder: string;

  constructor(
    storage: string,
    private readonly extensionPath: string,
  ) {
    this.folder = path.join(storage, "env");
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the one environment ownEnvironmentPython and bundledWheel answer for
    current = this;
  }

  get python(): string {
    return path.join(this.folder, ...(WINDOWS ? ["Scripts", "python.exe"] : ["bin", "python"]));
  }

  private get stampFile(): string {
    return path.join(this.folder, "codesieve-setup.json");
  }

  private stamp(): Stamp | undefined {
    try {
      const stamp = JSON.parse(fs.readFileSync(this.stampFile, "utf-8")) as Stamp;
      return typeof stamp.sha256 === "string" ? stamp : undefined;
    } catch {
      return undefined;
    }
  }

  /** The environment's Python when a setup finished there. */
  installedPython(): string | undefined {
    return this.stamp() && isFile(this.python) ? this.python : undefined;
  }

  /** The wheel in the extension's wheel/ folder. */
  wheel(): string | undefined {
    const folder = path.join(this.extensionPath, "wheel");
    try {
      const name = fs.readdirSync(folder).find((file) => /^codesieve-.+\.whl$/.test(file));
      return name ? path.join(folder, name) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether the environment holds another wheel than the one this extension carries. */
  outdated(): boolean {
    const stamp = this.stamp();
    const wheel = this.wheel();
    return stamp !== undefined && wheel !== undefined && this.installedPython() !== undefined && stamp.sha256 !== sha256(wheel);
  }

  /**
   * Creates the environment (or, when one was set up, installs the carried wheel over it) with progress
   * shown. Resolves to the environment's Python; rejects with a SetupError saying what to do next, or
   * with vscode.CancellationError when the user cancelled.
   */
  setUp(): Promise<SetupOutcome> {
    const upgrading = this.installedPython() !== undefined;
    const title = upgrading ? "CodeSieve: updating its Python environment" : "CodeSieve: setting up its Python environment";
    return Promise.resolve(
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        (progress, cancel) => this.install(upgrading, progress, cancel),
      ),
    );
  }

  private async install(upgrading: boolean, progress: SetupProgress, cancel: vscode.CancellationToken): Promise<SetupOutcome> {
    const wheel = this.wheelToInstall();
    const sources = this.sources();
    const step = (message: string, increment: number, command: string, args: string[]): Promise<RunResult> =>
      this.step(progress, cancel, message, increment, command, args);

    let basePython = this.stamp()?.basePython ?? "";
    fs.mkdirSync(path.dirname(this.folder), { recursive: true });
    if (!upgrading) {
      progress.report({ message: "finding Python 3.10 or later", increment: 5 });
      basePython = await this.basePython();
      fs.rmSync(this.folder, { recursive: true, force: true }); // what an interrupted setup left
      const venv = await step(`creating a virtual environment with ${basePython}`, 10, basePython, ["-m", "venv", this.folder]);
      if (venv.code !== 0 || !isFile(this.python)) throw this.venvFailed(basePython, venv);
    }
    const pip = [this.python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"];
    const pipStep = (message: string, increment: number, ...args: string[]): Promise<RunResult> =>
      step(message, increment, pip[0], [...pip.slice(1), ...args]);
    if (upgrading) {
      const replaced = await pipStep("installing the new CodeSieve wheel", 10, "--force-reinstall", "--no-deps", wheel);
      if (replaced.code !== 0) throw this.pipFailed(replaced, sources);
    }
    const installed = await pipStep("installing CodeSieve and its dependencies", 55, ...sources, wheel);
    if (installed.code !== 0) throw this.pipFailed(installed, sources);
    const hnsw = await pipStep("adding hnswlib (fast approximate search; optional)", 15, ...sources, `${wheel}[hnsw]`);
    const hnswlib = hnsw.code === 0;
    if (!hnswlib) {
      log.warn(
        "setup: hnswlib did not install (it has no wheel for this machine, and building it needs a C++ compiler): " +
          "the server searches exactly with numpy instead, with the same results, slower on very large indexes",
      );
    }
    const check = await step("checking the server", 10, this.python, ["-c", "import codesieve.server"]);
    if (check.code !== 0) {
      throw new SetupError(
        `CodeSieve: its environment was installed, but '${this.python} -c "import codesieve.server"' fails ` +
          `(exit ${check.code ?? "?"}). The CodeSieve output has the details.`,
        ["Show Log", "Retry"],
      );
    }
    const stamp: Stamp = { wheel: path.basename(wheel), sha256: sha256(wheel), basePython, hnswlib, installedAt: new Date().toISOString() };
    fs.writeFileSync(this.stampFile, JSON.stringify(stamp, null, 2));
    log.info(`setup: CodeSieve's environment is ready at ${this.folder} (${stamp.wheel}, hnswlib: ${hnswlib ? "yes" : "no"})`);
    return { python: this.python, hnswlib };
  }

  /** The wheel this extension carries, which the setup installs; a SetupError when this build has none. */
  private wheelToInstall(): string {
    const wheel = this.wheel();
    if (wheel) return wheel;
    throw new SetupError(
      "CodeSieve: this build of the extension carries no CodeSieve wheel (wheel/ is empty), so it cannot set up " +
        "its environment. Install the .vsix that `npm run package` makes, or set codesieve.pythonPath.",
      ["Open Settings"],
      "codesieve.pythonPath",
    );
  }

  /**
   * One step of the setup: its message in the notification, its command and output in the CodeSieve output
   * (pip's lines that say what it fetches also in the notification). Throws CancellationError once cancelled.
   */
  private async step(
    progress: SetupProgress,
    cancel: vscode.CancellationToken,
    message: string,
    increment: number,
    command: string,
    args: string[],
  ): Promise<RunResult> {
    progress.report({ message, increment });
    log.info(`setup: ${[command, ...args].join(" ")}`);
    const result = await runProcess(command, args, {
      cwd: path.dirname(this.folder), // not the workspace, nor the extension host's: a `codesieve` folder there would shadow the package
      timeoutMs: PIP_TIMEOUT_MS,
      cancel,
      onLine: (line) => {
        log.info(`  ${line}`); // pip's own log: the messages on a failure point to it
        const shown = /^\s*(Collecting|Downloading|Processing|Installing collected packages|Building wheel)\b.*/.exec(line);
        if (shown) progress.report({ message: `${message}: ${shown[0].trim().slice(0, 90)}` });
      },
    });
    if (result.stopped === "cancelled" || cancel.isCancellationRequested) throw new vscode.CancellationError();
    return result;
  }

  /** pip's arguments that say where packages come from: the index, or only the wheelhouse folder. */
  private sources(): string[] {
    const wheelhouse = wheelhouseSetting();
    if (wheelhouse === undefined) return [];
    if (!fs.existsSync(wheelhouse) || !fs.statSync(wheelhouse).isDirectory()) {
      throw new SetupError(
        `CodeSieve: codesieve.setup.wheelhouse is '${wheelhouse}', which is not a folder. Set it to a folder of ` +
          "wheels (made with `pip download -d FOLDER <the CodeSieve wheel>`), or clear it to use the package index.",
        ["Open Settings"],
      );
    }
    return ["--no-index", "--find-links", wheelhouse];
  }

  /** A Python of 3.10 or later: the Python extension's interpreter, else one on the PATH. */
  private async basePython(): Promise<string> {
    const names = WINDOWS
      ? ["python", "python3"]
      : ["python3", "python", "python3.14", "python3.13", "python3.12", "python3.11", "python3.10"];
    const fromExtension = await pythonFromPythonExtension();
    const tried: string[] = [];
    for (const python of [...(fromExtension ? [fromExtension] : []), ...names]) {
      const probe = await runProcess(python, ["-c", "import sys; print(sys.version_info[0], sys.version_info[1])"], {
        cwd: path.dirname(this.folder),
        timeoutMs: 30_000,
      });
      if (probe.error || probe.code !== 0) {
        if (python === fromExtension || probe.error?.code !== "ENOENT") tried.push(`${python}: cannot be run`);
        continue;
      }
      const [major, minor] = probe.stdout.trim().split(/\s+/).map(Number);
      if ((major ?? 0) > MIN_PYTHON[0] || ((major ?? 0) === MIN_PYTHON[0] && (minor ?? 0) >= MIN_PYTHON[1])) return python;
      tried.push(`${python}: Python ${major}.${minor}`);
    }
    throw new SetupError(
      `CodeSieve: setting up its environment needs Python 3.10 or later, and none was found ` +
        `(${tried.length > 0 ? `found ${tried.join("; ")}` : "no python3 or python on the PATH, and no interpreter selected in the Python extension"}). ` +
        "Install Python 3.10 or later (python.org; on Debian or Ubuntu `sudo apt install python3 python3-venv`; " +
        "on macOS `brew install python`), or select one with the Python extension, then Retry.",
      ["Download Python", "Retry"],
    );
  }

  private venvFailed(basePython: string, venv: RunResult): SetupError {
    const output = `${venv.stdout}\n${venv.stderr}`;
    const debian = /ensurepip is not available|No module named venv|python3(\.\d+)?-venv/.test(output);
    const why = venv.error ? venv.error.message : `exit ${venv.code ?? "?"}`;
    return new SetupError(
      `CodeSieve: creating a virtual environment with ${basePython} failed (${why}).` +
        (debian
          ? " On Debian and Ubuntu the venv module is a package of its own: `sudo apt install python3-venv`, then Retry."
          : " The CodeSieve output has the details; on Debian or Ubuntu, installing python3-venv is the usual fix."),
      ["Retry", "Show Log"],
    );
  }

  private pipFailed(result: RunResult, sources: string[]): SetupError {
    const errors = `${result.stdout}\n${result.stderr}`.split("\n").filter((line) => /^ERROR:/.test(line.trim()));
    const last = errors[errors.length - 1]?.trim() ?? (result.error ? result.error.message : `exit ${result.code ?? "?"}`);
    const offline =
      sources.length > 0
        ? " The folder in codesieve.setup.wheelhouse lacks a wheel this machine needs: add it (`pip download -d FOLDER <the CodeSieve wheel>`)."
        : " Without access to the package index, set codesieve.setup.wheelhouse to a folder of wheels (`pip download -d FOLDER <the CodeSieve wheel>` on a machine that has access).";
    return new SetupError(`CodeSieve: pip could not install CodeSieve into its environment (${last}).${offline} The CodeSieve output has pip's log.`, [
      "Show Log",
      "Open Settings",
      "Retry",
    ]);
  }
}
