// CodeSieve for VS Code: semantic code search through the `codesieve serve` language server, and
// `codesieve mcp` for agent mode. This module only wires the pieces together: the client, the status
// bar, the commands, the MCP server definition and the events. In Restricted Mode it starts nothing
// (the server is a Python, possibly the workspace's own) until the folder is trusted.
import * as vscode from "vscode";
import { ClientController } from "./client";
import { findCode, findSimilar, showStatusDetails } from "./commands";
import { OwnEnvironment } from "./environment";
import { registerMcpServer } from "./mcp";
import { onPythonExtensionInterpreterChange } from "./pythonExtension";
import { retrain } from "./retrain";
import { PROCESS_SETTINGS, SECTION, pythonPathSetting, serverCommandSetting } from "./settings";
import { StatusBar, showTrustNeeded } from "./status";

let controller: ClientController | undefined;

export function activate(context: vscode.ExtensionContext): void {
  if (vscode.workspace.isTrusted) {
    start(context);
    return;
  }
  const commands = (context.extension.packageJSON.contributes.commands as { command: string }[]).map(
    (contributed) => contributed.command,
  );
  const trustNeeded = showTrustNeeded(commands);
  context.subscriptions.push(
    trustNeeded,
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      trustNeeded.dispose(); // frees the command ids for the real commands
      start(context);
    }),
  );
}

/** Starts the client and registers everything, in a trusted workspace. */
function start(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("CodeSieve");
  const status = new StatusBar("codesieve.showStatus");
  const environment = new OwnEnvironment(context.globalStorageUri.fsPath, context.extensionPath, (message) =>
    clients.log(message),
  );
  controller = new ClientController(output, status, environment);
  const clients = controller;
  context.subscriptions.push(output, status, clients);
  const mcp = registerMcpServer((message) => clients.log(message));
  if (mcp) context.subscriptions.push(mcp);

  const register = (id: string, handler: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  };

  register("codesieve.findCode", (query?: unknown) => findCode(clients, context.workspaceState, query));
  register("codesieve.findSimilar", () => findSimilar(clients, context.workspaceState));
  register("codesieve.reindex", () => clients.reindex());
  register("codesieve.restartServer", () => clients.restart("requested by the user"));
  register("codesieve.showLog", () => output.show(true));
  register("codesieve.setUpEnvironment", () => clients.setUpEnvironment());
  register("codesieve.showStatus", () => showStatusDetails(clients, status));
  register("codesieve.retrain", () => retrain(clients));

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) return;
      if (PROCESS_SETTINGS.some((name) => event.affectsConfiguration(`${SECTION}.${name}`))) {
        void clients.restart("codesieve.pythonPath or codesieve.serverCommand changed");
      } else {
        clients.sendSettings();
      }
    }),
    vscode.workspace.onDidSaveTextDocument((document) => {
      if (document.uri.scheme === "file") clients.refreshStatusSoon();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      if (!clients.running) void clients.start();
    }),
  );

  // The Python extension's interpreter is one place the server's Python comes from: follow its changes.
  void onPythonExtensionInterpreterChange(() => {
    if (!pythonPathSetting() && !serverCommandSetting()) {
      void clients.restart("the Python extension's selected interpreter changed");
      mcp?.refresh();
    }
  }).then((subscription) => subscription && context.subscriptions.push(subscription));

  void clients.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
