// Finding the Python that runs the server, and checking it can before starting the client.
import { spawn } from "child_process";
import * as vscode from "vscode";
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
    readonly fix: "pythonPath" | "install" | "serverCommand",
    readonly detail?: string,
  ) {
    super(message);
  }
}

interface PythonEnvironmentsApi {
  getActiveEnvironmentPath?: (resource?: vscode.Uri) => { path?: string } | undefined;
  resolveEnvironment?: (
    env: unknown,
  ) => Promise<{ executable?: { uri?: vscode.Uri } } | undefined> | { executable?: { uri?: vscode.Uri } } | undefined;
}

interface PythonExtensionApi {
  environments?: PythonEnvironmentsApi;
  settings?: { getExecutionDetails?: (resource?: vscode.Uri) => { execCommand?: string[] } | undefined };
}

/** The interpreter selected in the Python extension (ms-python.python), if it is installed. */
export async function pythonFromPythonExtension(resource?: vscode.Uri): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (!extension) return undefined;
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    const environments = api?.environments;
    if (environments?.getActiveEnvironmentPath) {
      const active = environments.getActiveEnvironmentPath(resource);
      if (active && environments.resolveEnvironment) {
        const resolved = await environments.resolveEnvironment(active);
        const path = resolved?.executable?.uri?.fsPath;
        if (path) return path;
      }
      if (active?.path) return active.path;
    }
    const command = api?.settings?.getExecutionDetails?.(resource)?.execCommand;
    if (command && command.length > 0) return command[0];
  } catch {
    // The Python extension failing is no reason not to fall back to python3.
  }
  return undefined;
}

/** The Python to use for the server and the trainer: setting, then the Python extension, then python3. */
export async function resolvePython(resource?: vscode.Uri): Promise<{ python: string; source: string }> {
  const configured = pythonPathSetting();
  if (configured) return { python: configured, source: "codesieve.pythonPath" };
  const fromExtension = await pythonFromPythonExtension(resource);
  if (fromExtension) return { python: fromExtension, source: "the Python extension's interpreter" };
  return { python: process.platform === "win32" ? "python" : "python3", source: "the default python3" };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: NodeJS.ErrnoException;
}

function run(command: string, args: string[], cwd: string | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let settled = false;
    const finish = (result: RunResult): void => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(result);
      }
    };
    let child;
    try {
      child = spawn(command, args, { cwd, env: process.env, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      resolve({ code: null, stdout, stderr, error: error as NodeJS.ErrnoException });
      return;
    }
    const timer = setTimeout(() => {
      child.kill();
      finish({ code: null, stdout, stderr: stderr + `\n(timed out after ${timeoutMs} ms)` });
    }, timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (error: NodeJS.ErrnoException) => finish({ code: null, stdout, stderr, error }));
    child.on("close", (code) => finish({ code, stdout, stderr }));
  });
}

/**
 * The command that starts `codesieve serve` over stdio. Throws a LaunchError that says how to fix it
 * when the interpreter cannot run or has no codesieve package.
 */
export async function resolveServerLaunch(cwd: string | undefined, resource?: vscode.Uri): Promise<ServerLaunch> {
  const override = serverCommandSetting();
  if (override) {
    const [command, ...args] = override;
    return { command: command as string, args, source: "codesieve.serverCommand" };
  }
  const { python, source } = await resolvePython(resource);
  const check = await run(python, ["-c", "import codesieve.server"], cwd, 60_000);
  if (check.error) {
    const reason = check.error.code === "ENOENT" ? "was not found" : `could not be run (${check.error.message})`;
    throw new LaunchError(
      `CodeSieve: Python '${python}' (${source}) ${reason}. Set codesieve.pythonPath to a Python that has codesieve installed.`,
      "pythonPath",
    );
  }
  if (check.code !== 0) {
    const missing = /ModuleNotFoundError|No module named/.test(check.stderr);
    if (missing) {
      throw new LaunchError(
        `CodeSieve: the codesieve package is not installed for '${python}' (${source}). ` +
          `Run pip install codesieve in that environment, or set codesieve.pythonPath to one that has it.`,
        "install",
        check.stderr,
      );
    }
    throw new LaunchError(
      `CodeSieve: '${python} -c "import codesieve.server"' failed (exit ${check.code ?? "?"}). See the CodeSieve output for details.`,
      "install",
      check.stderr,
    );
  }
  return { command: python, args: ["-m", "codesieve.server.cli", "serve"], source, python };
}
