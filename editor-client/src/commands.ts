// The commands that search: Find Code, Find Similar, and the status details.
import * as vscode from "vscode";
import type { Indexing } from "./indexing";
import { showFindCode, showSimilar } from "./picker";
import { FindSimilarRequest } from "./protocol";
import type { Server } from "./server";
import { StatusBar, describe } from "./status";

/** Opens the Find Code picker, starting from `query` or the selected text; `state`: the workspace's. */
export async function findCode(server: Server, state: vscode.Memento, query?: unknown): Promise<void> {
  const client = await server.ready();
  if (client) showFindCode(client, state, typeof query === "string" ? query : initialQuery());
}

/** Shows the code most similar to the function at the cursor. */
export async function findSimilar(server: Server, state: vscode.Memento): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showInformationMessage("CodeSieve: put the cursor in a function to find code similar to it.");
    return;
  }
  const client = await server.ready();
  if (!client) return;
  const position = editor.selection.active;
  const params = {
    textDocument: { uri: client.code2ProtocolConverter.asUri(editor.document.uri) },
    position: client.code2ProtocolConverter.asPosition(position),
  };
  const where = `${vscode.workspace.asRelativePath(editor.document.uri, false)}:${position.line + 1}`;
  showSimilar(client, state, `CodeSieve: Similar to ${where}`, (includeTests) =>
    client.sendRequest(FindSimilarRequest, { ...params, includeTests }),
  );
}

/** The selected text (one line) as a starting query. */
function initialQuery(): string {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.selection.isEmpty) return "";
  const text = editor.document.getText(editor.selection).trim();
  return text.includes("\n") || text.length > 200 ? "" : text;
}

/** The index status in a dialog, with what can be done about it. */
export async function showStatusDetails(server: Server, indexing: Indexing, status: StatusBar): Promise<void> {
  await indexing.refresh();
  const current = status.status;
  const running = server.running !== undefined;
  const actions = running ? ["Reindex", "Show Log"] : ["Restart Server", "Show Log", "Open Settings"];
  const choice = await vscode.window.showInformationMessage(
    `CodeSieve index: ${current.state}`,
    { modal: true, detail: describe(current).join("\n") },
    ...actions,
  );
  if (choice === "Reindex") await indexing.reindex();
  else await server.handleFix(choice);
}
