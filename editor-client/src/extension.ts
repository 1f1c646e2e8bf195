// CodeSieve for VS Code: semantic code search through the `codesieve serve` language server.
import * as vscode from "vscode";
import { ClientController } from "./client";
import { showFindCode, showResults } from "./picker";
import { FindSimilarRequest } from "./protocol";
import { onPythonExtensionInterpreterChange } from "./python";
import { PROCESS_SETTINGS, SECTION, pythonPathSetting, serverCommandSetting } from "./settings";
import { retrain } from "./retrain";
import { StatusBar, describe } from "./status";

let controller: ClientController | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("CodeSieve");
  const status = new StatusBar("codesieve.showStatus");
  controller = new ClientController(output, status);
  const clients = controller;
  context.subscriptions.push(output, status, clients);

  const register = (id: string, handler: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  };

  register("codesieve.findCode", async (query?: unknown) => {
    const client = await clients.ready();
    if (client) showFindCode(client, typeof query === "string" ? query : initialQuery());
  });

  register("codesieve.findSimilar", async () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage("CodeSieve: put the cursor in a function to find code similar to it.");
      return;
    }
    const client = await clients.ready();
    if (!client) return;
    const position = editor.selection.active;
    const params = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(editor.document.uri) },
      position: client.code2ProtocolConverter.asPosition(position),
    };
    const where = `${vscode.workspace.asRelativePath(editor.document.uri, false)}:${position.line + 1}`;
    showResults(client, `CodeSieve: Similar to ${where}`, client.sendRequest(FindSimilarRequest, params));
  });

  register("codesieve.reindex", () => clients.reindex());
  register("codesieve.restartServer", () => clients.restart("requested by the user"));
  register("codesieve.showLog", () => output.show(true));
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
    }
  }).then((subscription) => subscription && context.subscriptions.push(subscription));

  void clients.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}

/** The selected text (one line) as a starting query. */
function initialQuery(): string {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.selection.isEmpty) return "";
  const text = editor.document.getText(editor.selection).trim();
  return text.includes("\n") || text.length > 200 ? "" : text;
}

async function showStatusDetails(clients: ClientController, status: StatusBar): Promise<void> {
  await clients.refreshStatus();
  const current = status.status;
  const running = clients.running !== undefined;
  const actions = running ? ["Reindex", "Show Log"] : ["Restart Server", "Show Log", "Open Settings"];
  const choice = await vscode.window.showInformationMessage(
    `CodeSieve index: ${current.state}`,
    { modal: true, detail: describe(current).join("\n") },
    ...actions,
  );
  if (choice === "Reindex") await clients.reindex();
  else await clients.handleFix(choice);
}
