// Finding the Python that runs the server, and checking it can before starting the client.
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import { bundledWheel, ownEnvironmentPython } from "./environment";
import { runProcess } from "./process";
import { pythonFromPythonExtension } from "./pythonExtension";
import { pythonPathSetting, serverCommandSetting } from "./settings";

export interface ServerLaunch {
  command: string;
  args: string[];
  /** Where the command came from, for messages ("codesieve.pythonPath", "Python extension", ...). */
  source: string;
  /** The Python interpreter, when the server is started through one (not for serverCommand). */
  python?: string;
}

export class LaunchError extends Error {
  constructor(
    message: string,
    /** What fixes it; "setup": nothing chose a Python, and CodeSieve can set up its own environment. */
    readonly fix: "pythonPath" | "install" | "serverCommand" | "setup",
    readonly detail?: string,
    /** The problem in a few words, for a list of what was tried. */
    readonly reason: string = message,
  ) {
    super(message);
  }
}

export interface PythonCandidate {
  python: string;
  /** Where it came from, for messages. */
  source: string;
}

/**
 * The command that installs CodeSieve for `python`. It is not on the package index: from the wheel this
 * extension carries, else (a build without it) from a clone of its repository.
 */
function installCommand(python: string): string {
  const wheel = bundledWheel();
  return wheel ? `${python} -m pip install "${wheel}"` : `${python} -m pip install -e /path/to/codesieve (a clone of its repository)`;
}
const DEFAULT_PYTHON = process.platform === "win32" ? "python" : "python3";
const VENV_PYTHONS =
  process.platform === "win32"
    ? [".venv/Scripts/python.exe", "venv/Scripts/python.exe"]
    : [".venv/bin/python", "venv/bin/python"];

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The Python behind a `codesieve` command on the PATH: the one beside it, else its #! line's. */
export function pythonOfCodesieveOnPath(): string | undefined {
  const names = process.platform === "win32" ? ["codesieve.exe", "codesieve.cmd"] : ["codesieve"];
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const script = names.map((name) => path.join(dir, name)).find(isFile);
    if (!script) continue;
    const beside = [process.platform === "win32" ? "python.exe" : "python", "python3"].map((name) => path.join(dir, name));
    const python = beside.find(isFile);
    if (python) return python;
    try {
      const shebang = /^#!\s*(\S+python[\d.]*)\s*$/m.exec(fs.readFileSync(script, "utf-8").split("\n", 1)[0] ?? "");
      if (shebang?.[1] && isFile(shebang[1])) return shebang[1];
    } catch {
      // an unreadable script: try the next folder
    }
  }
  return undefined;
}

/**
 * Where to look for a Python with codesieve when codesieve.pythonPath is not set, in order: the
 * Python extension's interpreter, the workspace's .venv (trusted workspaces only: it is the
 * workspace's code), the Python of a `codesieve` on the PATH, CodeSieve's own environment (once set
 * up), python3.
 */
export async function pythonCandidates(folder?: vscode.Uri): Promise<PythonCandidate[]> {
  const candidates: PythonCandidate[] = [];
  const fromExtension = await pythonFromPythonExtension(folder);
  if (fromExtension) candidates.push({ python: fromExtension, source: "the Python extension's interpreter" });
  if (folder?.scheme === "file" && vscode.workspace.isTrusted) {
    for (const relative of VENV_PYTHONS) {
      const python = path.join(folder.fsPath, relative);
      if (isFile(python)) candidates.push({ python, source: `the workspace's ${relative.split("/")[0]}` });
    }
  }
  const onPath = pythonOfCodesieveOnPath();
  if (onPath) candidates.push({ python: onPath, source: "codesieve on the PATH" });
  const own = ownEnvironmentPython();
  if (own) candidates.push({ python: own, source: "CodeSieve's own environment" });
  candidates.push({ python: DEFAULT_PYTHON, source: `the default ${DEFAULT_PYTHON}` });
  return candidates;
}

/**
 * The Python that runs the server and the trainer: codesieve.pythonPath when set (checked, never
 * second-guessed), else the first candidate that can import codesieve. Throws a LaunchError saying
 * what was tried and how to fix it.
 */
export async function resolvePython(folder?: vscode.Uri): Promise<PythonCandidate> {
  const cwd = folder?.scheme === "file" ? folder.fsPath : undefined;
  const configured = pythonPathSetting();
  if (configured) {
    const candidate = { python: configured, source: "codesieve.pythonPath" };
    const problem = await checkPython(candidate, cwd);
    if (problem) throw problem;
    return candidate;
  }
  const tried: string[] = [];
  let detail: string | undefined;
  for (const candidate of await pythonCandidates(folder)) {
    const problem = await checkPython(candidate, cwd);
    if (!problem) return candidate;
    tried.push(`${candidate.python} (${candidate.source}): ${problem.reason}`);
    detail = detail ?? problem.detail;
  }
  const setUp = bundledWheel() ? "Let CodeSieve set up its own environment (CodeSieve: Set Up Python Environment), set " : "Set ";
  throw new LaunchError(
    "CodeSieve: no Python with the codesieve package was found (codesieve.pythonPath is not set; tried " +
      `${tried.join("; ")}). ${setUp}codesieve.pythonPath to a Python that has codesieve installed, or install it ` +
      `in the workspace's .venv (${installCommand(VENV_PYTHONS[0])}).`,
    bundledWheel() ? "setup" : "pythonPath",
    detail,
  );
}

/** Why `python` cannot run the server (a LaunchError with a short `reason`), or undefined when it can. */
async function checkPython(candidate: PythonCandidate, cwd: string | undefined): Promise<LaunchError | undefined> {
  const { python, source } = candidate;
  const check = await runProcess(python, ["-c", "import codesieve.server"], { cwd, timeoutMs: 60_000 });
  if (check.error) {
    const reason = check.error.code === "ENOENT" ? "was not found" : `could not be run (${check.error.message})`;
    return new LaunchError(
      `CodeSieve: Python '${python}' (${source}) ${reason}. Set codesieve.pythonPath to a Python that has codesieve installed.`,
      "pythonPath",
      undefined,
      reason,
    );
  }
  if (check.code === 0) return undefined;
  if (/ModuleNotFoundError|No module named/.test(check.stderr)) {
    return new LaunchError(
      `CodeSieve: the codesieve package is not installed for '${python}' (${source}). ` +
        `Install it there (${installCommand(python)}), ` +
        "or set codesieve.pythonPath to one that has it.",
      "install",
      check.stderr,
      "no codesieve package",
    );
  }
  return new LaunchError(
    `CodeSieve: '${python} -c "import codesieve.server"' failed (exit ${check.code ?? "?"}). See the CodeSieve output for details.`,
    "install",
    check.stderr,
    `import codesieve.server failed (exit ${check.code ?? "?"})`,
  );
}

/**
 * The command that starts `codesieve serve` over stdio. Throws a LaunchError that says how to fix it
 * when no interpreter can run it.
 */
export async function resolveServerLaunch(folder?: vscode.Uri): Promise<ServerLaunch> {
  const override = serverCommandSetting();
  if (override) {
    const [command, ...args] = override;
    return { command, args, source: "codesieve.serverCommand" };
  }
  return pythonLaunch(folder, "serve");
}

/** `<python> -m codesieve.server.cli SUBCOMMAND` with the Python `resolvePython` finds. */
async function pythonLaunch(folder: vscode.Uri | undefined, subcommand: string): Promise<ServerLaunch> {
  const { python, source } = await resolvePython(folder);
  return { command: python, args: ["-m", "codesieve.server.cli", subcommand], source, python };
}

/**
 * The command that starts `codesieve mcp` over stdio, with the language server's Python (or its
 * codesieve.serverCommand, `serve` and what follows it replaced by `mcp`). Folders and settings are
 * for the caller to append. Throws a LaunchError like resolveServerLaunch.
 */
export async function resolveMcpLaunch(folder?: vscode.Uri): Promise<ServerLaunch> {
  const override = serverCommandSetting();
  const serve = override?.indexOf("serve") ?? -1;
  if (override && serve > 0) {
    const [command, ...args] = [...override.slice(0, serve), "mcp"];
    return { command, args, source: "codesieve.serverCommand" };
  }
  return pythonLaunch(folder, "mcp");
}
