// Reading `codesieve.*` settings and turning them into what the server understands.
import * as vscode from "vscode";

export const SECTION = "codesieve";

/** Engine settings the server accepts (initializationOptions and didChangeConfiguration), camelCase. */
export interface EngineSettings {
  model?: string;
  indexDir?: string;
  retrieveDepth?: number;
  rerankDepth?: number;
  maxFileSize?: number;
  exclude?: string[];
  threads?: number;
}

/** Settings that change how the server process is started: changing them restarts the client. */
export const PROCESS_SETTINGS = ["pythonPath", "serverCommand"] as const;

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

/** Only values the user set to something meaningful: empty strings and nulls mean "server default". */
export function engineSettings(scope?: vscode.ConfigurationScope): EngineSettings {
  const c = config(scope);
  const settings: EngineSettings = {};
  const model = nonEmptyString(c.get("model"));
  if (model !== undefined) settings.model = model;
  const indexDir = nonEmptyString(c.get("indexDir"));
  if (indexDir !== undefined) settings.indexDir = indexDir;
  const retrieveDepth = positiveInt(c.get("retrieveDepth"));
  if (retrieveDepth !== undefined) settings.retrieveDepth = retrieveDepth;
  const rerankDepth = positiveInt(c.get("rerankDepth"));
  if (rerankDepth !== undefined) settings.rerankDepth = rerankDepth;
  const maxFileSize = positiveInt(c.get("maxFileSize"));
  if (maxFileSize !== undefined) settings.maxFileSize = maxFileSize;
  const exclude = c.get<unknown>("exclude");
  if (Array.isArray(exclude)) settings.exclude = exclude.filter((item): item is string => typeof item === "string");
  const threads = positiveInt(c.get("threads"));
  if (threads !== undefined) settings.threads = threads;
  return settings;
}

export function pythonPathSetting(): string | undefined {
  return nonEmptyString(config().get("pythonPath"));
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
