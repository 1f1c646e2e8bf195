// The index status in the status bar: starting, indexing N %, ready with the chunk count, or the error;
// in Restricted Mode, that the folder must be trusted.
import * as vscode from "vscode";
import { IndexStatus, progressPercent } from "./protocol";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private current: IndexStatus = { state: "starting" };

  constructor(command: string) {
    this.item = vscode.window.createStatusBarItem("codesieve.indexStatus", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "CodeSieve Index";
    this.item.command = command;
    this.render();
    this.item.show();
  }

  get status(): IndexStatus {
    return this.current;
  }

  update(status: IndexStatus): void {
    this.current = { ...status };
    this.render();
  }

  /** Merges a partial status (e.g. $/progress) into the current one. */
  merge(partial: Partial<IndexStatus>): void {
    this.update({ ...this.current, ...partial } as IndexStatus);
  }

  private render(): void {
    const status = this.current;
    const item = this.item;
    item.backgroundColor = undefined;
    switch (status.state) {
      case "setup":
        item.text = "$(loading~spin) CodeSieve: setting up";
        item.tooltip = "CodeSieve: setting up its Python environment (the notification shows the progress)";
        break;
      case "starting":
        item.text = "$(loading~spin) CodeSieve: starting";
        item.tooltip = "CodeSieve: starting the language server";
        break;
      case "indexing": {
        const percent = progressPercent(status);
        item.text = `$(sync~spin) CodeSieve: indexing${percent === undefined ? "" : ` ${percent}%`}`;
        item.tooltip = this.tooltip("Indexing the workspace");
        break;
      }
      case "ready":
        item.text = `$(search) CodeSieve: ${formatCount(status.chunks ?? 0)} chunks`;
        item.tooltip = this.tooltip("Index ready — click for details, Ctrl+Alt+F to search");
        break;
      case "error":
        item.text = "$(error) CodeSieve: error";
        item.tooltip = this.tooltip(`Error: ${status.lastError ?? "unknown"}`);
        item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
        break;
      case "stopped":
        item.text = "$(circle-slash) CodeSieve: stopped";
        item.tooltip = this.tooltip(`Server not running${status.lastError ? `: ${status.lastError}` : ""}`);
        item.backgroundColor = new vscode.ThemeColor("statusBarItem.warningBackground");
        break;
      default:
        item.text = `$(question) CodeSieve: ${String(status.state)}`;
        item.tooltip = this.tooltip("");
    }
  }

  private tooltip(headline: string): string {
    return [`CodeSieve — ${headline}`, ...describe(this.current)].join("\n");
  }

  dispose(): void {
    this.item.dispose();
  }
}

const TRUST_NEEDED =
  "CodeSieve needs this folder to be trusted: it runs a Python interpreter, possibly the workspace's own .venv.";
const MANAGE_TRUST = "workbench.trust.manage";

/**
 * Restricted Mode: a status bar item that says the folder must be trusted and opens the Workspace Trust
 * dialog, and `commands` (the extension's, so their keybindings answer) saying the same. Dispose it
 * before registering the real commands.
 */
export function showTrustNeeded(commands: string[]): vscode.Disposable {
  const item = vscode.window.createStatusBarItem("codesieve.indexStatus", vscode.StatusBarAlignment.Left, 10);
  item.name = "CodeSieve Index";
  item.text = "$(workspace-untrusted) CodeSieve: trust this folder";
  item.tooltip = `${TRUST_NEEDED} Click to manage Workspace Trust.`;
  item.command = MANAGE_TRUST;
  item.backgroundColor = new vscode.ThemeColor("statusBarItem.warningBackground");
  item.show();
  const explain = async (): Promise<void> => {
    const choice = await vscode.window.showWarningMessage(TRUST_NEEDED, "Manage Workspace Trust");
    if (choice) await vscode.commands.executeCommand(MANAGE_TRUST);
  };
  return vscode.Disposable.from(item, ...commands.map((id) => vscode.commands.registerCommand(id, explain)));
}

export function formatCount(value: number): string {
  return value.toLocaleString("en-US");
}

/** Human-readable lines about a status, for the tooltip and the details dialog. */
export function describe(status: IndexStatus): string[] {
  const lines: string[] = [];
  const percent = progressPercent(status);
  lines.push(`State: ${status.state}${status.state === "indexing" && percent !== undefined ? ` (${percent}%)` : ""}`);
  if (status.files !== undefined) lines.push(`Files: ${formatCount(status.files)}`);
  if (status.chunks !== undefined) lines.push(`Chunks: ${formatCount(status.chunks)}`);
  if (status.model) lines.push(`Model: ${status.model}`);
  if (typeof status.modelPath === "string") lines.push(`Model folder: ${status.modelPath}`);
  if (status.indexPath) lines.push(`Index: ${status.indexPath}`);
  if (status.lastSynced) lines.push(`Last full sync: ${new Date(status.lastSynced).toLocaleString()}`);
  if (status.lastError) lines.push(`Last error: ${status.lastError}`);
  if (Array.isArray(status.warnings)) {
    for (const warning of status.warnings) lines.push(`Warning: ${String(warning)}`);
  }
  return lines;
}
