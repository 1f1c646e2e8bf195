// CodeSieve for VS Code: semantic code search through the `codesieve serve` language server, and
// `codesieve mcp` for agent mode. This module only wires the pieces together: the log, the server, the
// status bar, the commands, the MCP server definition and the events. In Restricted Mode it starts nothing
// (the server is a Python, possibly the workspace's own) until the folder is trusted.
import * as vscode from "vscode";
import manifest from "../package.json";
import { findCode, findSimilar, showStatusDetails } from "./commands";
import { OwnEnvironment } from "./environment";
import { Indexing } from "./indexing";
import { openLogChannel, showLog } from "./log/logging";
import { registerMcpServer } from "./mcp";
import { onPythonExtensionInterpreterChange } from "./pythonExtension";
import { retrain } from "./retrain";
import { Server } from "./server";
import { PROCESS_SETTINGS, SECTION, pythonPathSetting, serverCommandSetting } from "./settings";
import { StatusBar, showTrustNeeded } from "./status";

/** The server of this activation, for deactivate. */
let activeServer: Server | undefined;

export function activate(context: vscode.ExtensionContext): void {
  if (vscode.workspace.isTrusted) {
    start(context);
    return;
  }
  const commands = manifest.contributes.commands.map((contributed) => contributed.command);
  const trustNeeded = showTrustNeeded(commands);
  context.subscriptions.push(
    trustNeeded,
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      trustNeeded.dispose(); // frees the command ids for the real commands
      start(context);
    }),
  );
}

/** Starts the server and registers everything, in a trusted workspace. */
function start(context: vscode.ExtensionContext): void {
  const output = openLogChannel();
  const status = new StatusBar("codesieve.showStatus");
  const environment = new OwnEnvironment(context.globalStorageUri.fsPath, context.extensionPath);
  const server = new Server(output, status, environment);
  activeServer = server;
  const indexing = new Indexing(server, status);
  context.subscriptions.push(output, status, server, indexing);
  const mcp = registerMcpServer();
  if (mcp) context.subscriptions.push(mcp);

  const register = (id: string, handler: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  };

  register("codesieve.findCode", (query?: unknown) => findCode(server, context.workspaceState, query));
  register("codesieve.findSimilar", () => findSimilar(server, context.workspaceState));
  register("codesieve.reindex", () => indexing.reindex());
  register("codesieve.restartServer", () => server.restart("requested by the user"));
  register("codesieve.showLog", showLog);
  register("codesieve.setUpEnvironment", () => server.setup.setUpEnvironment());
  register("codesieve.showStatus", () => showStatusDetails(server, indexing, status));
  register("codesieve.retrain", () => retrain(server));

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) return;
      if (PROCESS_SETTINGS.some((name) => event.affectsConfiguration(`${SECTION}.${name}`))) {
        void server.restart("codesieve.pythonPath or codesieve.serverCommand changed");
      } else {
        server.sendSettings();
      }
    }),
    vscode.workspace.onDidSaveTextDocument((document) => {
      if (document.uri.scheme === "file") indexing.refreshSoon();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      if (!server.running) void server.start();
    }),
  );

  // The Python extension's interpreter is one place the server's Python comes from: follow its changes.
  void onPythonExtensionInterpreterChange(() => {
    if (!pythonPathSetting() && !serverCommandSetting()) {
      void server.restart("the Python extension's selected interpreter changed");
      mcp?.refresh();
    }
  }).then((subscription) => subscription && context.subscriptions.push(subscription));

  void server.start();
}

export async function deactivate(): Promise<void> {
  await activeServer?.stop();
  activeServer = undefined;
}
