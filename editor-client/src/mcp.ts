// Offers `codesieve mcp` to VS Code's agent mode: an MCP server definition provider (VS Code 1.101+).
import * as vscode from "vscode";
import manifest from "../package.json";
import { log } from "./log/logging";
import { LaunchError, resolveMcpLaunch } from "./python";
import { PROCESS_SETTINGS, SECTION, mcpEnabled, serverSettings } from "./settings";

/** The provider's id, as contributes.mcpServerDefinitionProviders in package.json declares it. */
export const MCP_PROVIDER_ID = "codesieve.mcp";

/** Settings that change the definition: whether there is one, its Python, and its index and model flags. */
const MCP_SETTINGS = ["mcp.enabled", ...PROCESS_SETTINGS, "model", "indexDir", "threads", "maxFileSize", "exclude"];

// The part of VS Code 1.101's API used here. It is declared here because @types/vscode follows
// engines.vscode (1.91, which has no MCP API): older VS Codes keep the rest of the extension.
interface McpStdioServerDefinition {
  readonly label: string;
  cwd?: vscode.Uri;
}

interface McpServerDefinitionProvider {
  readonly onDidChangeMcpServerDefinitions?: vscode.Event<void>;
  provideMcpServerDefinitions(token: vscode.CancellationToken): Promise<McpStdioServerDefinition[]>;
}

interface McpApi {
  lm?: {
    registerMcpServerDefinitionProvider?: (id: string, provider: McpServerDefinitionProvider) => vscode.Disposable;
  };
  McpStdioServerDefinition?: new (
    label: string,
    command: string,
    args?: string[],
    env?: Record<string, string | number | null>,
    version?: string,
  ) => McpStdioServerDefinition;
}

/** `codesieve mcp`'s flags for the settings the language server would get that decide the index. */
function settingsArguments(settings: Record<string, unknown>): string[] {
  const flags: string[] = [];
  const flag = { model: "--model", indexDir: "--index-dir", threads: "--threads", maxFileSize: "--max-file-size" };
  for (const [name, option] of Object.entries(flag)) {
    const value = settings[name];
    if (typeof value === "string" || typeof value === "number") flags.push(option, String(value));
  }
  const exclude = settings.exclude;
  if (Array.isArray(exclude)) {
    for (const glob of exclude) if (typeof glob === "string" && glob !== "") flags.push("--exclude", glob);
  }
  return flags;
}

/**
 * Registers the provider when this VS Code has the API (else logs that agent mode cannot have the
 * server, and returns nothing to dispose). The definition runs
 * `<python> -m codesieve.server.cli mcp <workspace folders>` with the language server's Python, so
 * both share each folder's index; it changes with the settings and the workspace folders.
 */
export function registerMcpServer(): McpServerRegistration | undefined {
  const api = vscode as unknown as McpApi;
  const Definition = api.McpStdioServerDefinition;
  if (typeof api.lm?.registerMcpServerDefinitionProvider !== "function" || typeof Definition !== "function") {
    log.info(
      `agent mode is unavailable: VS Code ${vscode.version} has no MCP server definition API (1.101+), ` +
        "so CodeSieve's MCP server is not offered to it (the README's \"Coding agents\" shows .vscode/mcp.json)",
    );
    return undefined;
  }
  const changed = new vscode.EventEmitter<void>();
  const provider: McpServerDefinitionProvider = {
    onDidChangeMcpServerDefinitions: changed.event,
    provideMcpServerDefinitions: async () => {
      if (!mcpEnabled()) {
        log.info("MCP server for agent mode: off (codesieve.mcp.enabled is false)");
        return [];
      }
      const folders = (vscode.workspace.workspaceFolders ?? []).filter((folder) => folder.uri.scheme === "file");
      if (folders.length === 0) return [];
      let launch;
      try {
        launch = await resolveMcpLaunch(folders[0]?.uri);
      } catch (error) {
        if (!(error instanceof LaunchError)) throw error;
        log.warn(`MCP server for agent mode: none, ${error.message}`);
        return [];
      }
      const args = [...launch.args, ...folders.map((folder) => folder.uri.fsPath), ...settingsArguments(serverSettings())];
      const definition = new Definition("CodeSieve", launch.command, args, {}, manifest.version);
      definition.cwd = folders[0]?.uri;
      log.info(`MCP server for agent mode: ${[launch.command, ...args].join(" ")} (from ${launch.source})`);
      return [definition];
    },
  };
  const registration = api.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, provider);
  log.info(`registered MCP server definition provider ${MCP_PROVIDER_ID}`);
  const subscriptions = [
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (MCP_SETTINGS.some((name) => event.affectsConfiguration(`${SECTION}.${name}`))) changed.fire();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => changed.fire()),
  ];
  return {
    refresh: () => changed.fire(),
    dispose: () => {
      for (const item of [registration, changed, ...subscriptions]) item.dispose();
    },
  };
}

export interface McpServerRegistration extends vscode.Disposable {
  /** Asks VS Code to read the definition again (the Python extension's interpreter changed, say). */
  refresh(): void;
}
