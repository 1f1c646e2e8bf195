// Reading `codesieve.*` settings and handing the server the ones it reads.
import * as vscode from "vscode";
import manifest from "../package.json";

export const SECTION = "codesieve";

/**
 * Settings of this extension itself: how to start the server, how many results to ask for, the
 * protocol trace (read by vscode-languageclient as `codesieve.trace.server`), whether agent mode
 * gets the MCP server, and where the setup of CodeSieve's own environment finds wheels.
 */
const CLIENT_SETTINGS = ["pythonPath", "serverCommand", "resultLimit", "trace.server", "mcp.enabled", "setup.wheelhouse"];

/** Settings that change how the server process is started: changing them restarts the client. */
export const PROCESS_SETTINGS = ["pythonPath", "serverCommand"] as const;

/**
 * The settings the server reads: every `codesieve.*` setting package.json declares, but the client's.
 * The server checks them (its answer to an invalid value is a message and the default), so the names
 * are declared in package.json and in server/config.py only; tests/cli/test_settings.py compares the two.
 */
export const SERVER_SETTINGS: readonly string[] = Object.keys(manifest.contributes.configuration.properties)
  .map((key) => key.slice(SECTION.length + 1))
  .filter((name) => !CLIENT_SETTINGS.includes(name));

function config(scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION, scope);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? expandHome(value.trim()) : undefined;
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value > 0 ? value : undefined;
}

export function expandHome(path: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  if (home && (path === "~" || path.startsWith("~/"))) {
    return home + path.slice(1);
  }
  return path;
}

/** The server's settings the user set to something: empty strings and nulls mean "server default". */
export function serverSettings(scope?: vscode.ConfigurationScope): Record<string, unknown> {
  const c = config(scope);
  const settings: Record<string, unknown> = {};
  for (const name of SERVER_SETTINGS) {
    const value = c.get<unknown>(name);
    if (value === undefined || value === null || (typeof value === "string" && value.trim() === "")) continue;
    settings[name] = typeof value === "string" ? expandHome(value.trim()) : value;
  }
  return settings;
}

export function pythonPathSetting(): string | undefined {
  return nonEmptyString(config().get("pythonPath"));
}

/** codesieve.setup.wheelhouse: a folder of wheels that the environment setup installs from instead of the index. */
export function wheelhouseSetting(): string | undefined {
  return nonEmptyString(config().get("setup.wheelhouse"));
}

export function serverCommandSetting(): string[] | undefined {
  const value = config().get<unknown>("serverCommand");
  if (!Array.isArray(value)) return undefined;
  const parts = value.filter((item): item is string => typeof item === "string" && item !== "");
  return parts.length > 0 ? parts.map(expandHome) : undefined;
}

export function resultLimit(): number {
  return positiveInt(config().get("resultLimit")) ?? 20;
}

/** Whether VS Code's agent mode gets `codesieve mcp` (codesieve.mcp.enabled, default true). */
export function mcpEnabled(): boolean {
  return config().get<unknown>("mcp.enabled") !== false;
}
