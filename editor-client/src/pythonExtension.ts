// The Python extension (ms-python.python), when installed: the interpreter selected there, and its changes.
import * as vscode from "vscode";

interface PythonEnvironmentsApi {
  getActiveEnvironmentPath?: (resource?: vscode.Uri) => { path?: string } | undefined;
  onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
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

/** Calls `listener` when the interpreter selected in the Python extension changes (if it is installed). */
export async function onPythonExtensionInterpreterChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (!extension) return undefined;
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    return api?.environments?.onDidChangeActiveEnvironmentPath?.(() => listener());
  } catch {
    return undefined;
  }
}
