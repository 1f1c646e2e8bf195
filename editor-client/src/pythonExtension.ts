// The Python extension (ms-python.python), through its typed API (@vscode/python-extension): the
// interpreter selected there, and its changes. It is optional: when it is not installed, is disabled or
// fails, these answer nothing and the other places a Python comes from are tried (python.ts).
import { PythonExtension } from "@vscode/python-extension";
import * as vscode from "vscode";

/** The Python extension's API (activating it if needed), or undefined when it is not installed or fails. */
async function pythonExtensionApi(): Promise<PythonExtension | undefined> {
  try {
    return await PythonExtension.api();
  } catch {
    return undefined; // not installed, disabled, or its activation failed
  }
}

/** The interpreter selected in the Python extension, if it is installed. */
export async function pythonFromPythonExtension(resource?: vscode.Uri): Promise<string | undefined> {
  const api = await pythonExtensionApi();
  if (!api) return undefined;
  try {
    const active = api.environments.getActiveEnvironmentPath(resource);
    const resolved = await api.environments.resolveEnvironment(active);
    // An environment it cannot resolve still has its path: the executable, or the environment's folder.
    return resolved?.executable.uri?.fsPath || active.path || undefined;
  } catch {
    return undefined; // the Python extension failing is no reason not to fall back to python3
  }
}

/** Calls `listener` when the interpreter selected in the Python extension changes (if it is installed). */
export async function onPythonExtensionInterpreterChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  const api = await pythonExtensionApi();
  try {
    return api?.environments.onDidChangeActiveEnvironmentPath(() => listener());
  } catch {
    return undefined; // a Python extension older than its environments API: its changes go unnoticed
  }
}
