// The index as the status bar shows it: the server's codeSearch/indexStatus notifications, its indexing
// progress ($/progress, also shown as VS Code's window progress), the status asked for after each start
// and after saves, and Reindex.
import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressReport,
} from "vscode-languageclient/node";
import { log } from "./log/logging";
import { IndexStatus, IndexStatusNotification, ServerCommands, StatusRequest } from "./protocol";
import type { Server } from "./server";
import { StatusBar } from "./status";

type WindowProgress = vscode.Progress<{ message?: string }>;

export class Indexing implements vscode.Disposable {
  /** Ends VS Code's progress indicators of the running server (they would spin forever after a crash). */
  private readonly progressFinishers = new Set<() => void>();
  private statusRefresh: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly server: Server,
    private readonly status: StatusBar,
  ) {
    this.subscriptions = [
      server.onDidStart((client) => this.follow(client)),
      server.onWillStop(() => this.endProgress()),
    ];
  }

  /** Asks the server for its status and shows it (the notifications keep it current afterwards). */
  async refresh(): Promise<IndexStatus | undefined> {
    const client = this.server.running;
    if (!client) return undefined;
    try {
      const status = await client.sendRequest(StatusRequest, {});
      if (status && typeof status === "object") {
        if (typeof status.state === "string") this.status.update(status);
        else this.status.merge(status);
      }
      return this.status.status;
    } catch (error) {
      log.warn(`codeSearch/status failed: ${String(error)}`);
      return undefined;
    }
  }

  /** Asks for the status a little later (after a save, the server updates the index without a state change). */
  refreshSoon(delayMs = 2000): void {
    if (this.statusRefresh) clearTimeout(this.statusRefresh);
    this.statusRefresh = setTimeout(() => {
      this.statusRefresh = undefined;
      void this.refresh();
    }, delayMs);
  }

  async reindex(): Promise<void> {
    const client = await this.server.ready();
    if (!client) return;
    this.status.merge({ state: "indexing" });
    try {
      await client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.reindex, arguments: [] });
    } catch (error) {
      void vscode.window.showErrorMessage(`CodeSieve: reindexing failed: ${String(error)}`);
    }
    void this.refresh();
  }

  dispose(): void {
    this.endProgress();
    for (const subscription of this.subscriptions) subscription.dispose();
  }

  /** A client that just started: its notifications and progress go to the status bar, starting from its status now. */
  private follow(client: LanguageClient): void {
    client.onNotification(IndexStatusNotification, (status) => this.status.update(status));
    this.trackProgress(client);
    void this.refresh();
  }

  private endProgress(): void {
    for (const finish of this.progressFinishers) finish();
    this.progressFinishers.clear();
  }

  /**
   * Indexing progress ($/progress) into the status bar item as a percentage, and as VS Code's own
   * window progress. This replaces vscode-languageclient's handler for window/workDoneProgress/create
   * (a token can have one handler only), so it does both.
   */
  private trackProgress(client: LanguageClient): void {
    client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      const { finished, finish } = this.finishable();
      let reporter: WindowProgress | undefined;
      const subscription = client.onProgress(WorkDoneProgress.type, token, (value) => {
        if (value.kind === "begin") {
          this.status.merge({ state: "indexing", percentage: value.percentage ?? 0, message: value.message ?? "" });
          void vscode.window.withProgress(
            { location: vscode.ProgressLocation.Window, title: value.title, cancellable: value.cancellable ?? false },
            (progress, cancel) => {
              reporter = progress;
              cancel.onCancellationRequested(() => {
                void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
              });
              return finished;
            },
          );
        } else if (value.kind === "report") {
          this.report(value, reporter);
        } else {
          subscription.dispose();
          finish();
        }
      });
    });
  }

  /** What a window progress waits for: `finish`, called by its end, or by endProgress. */
  private finishable(): { finished: Promise<void>; finish: () => void } {
    let resolveFinished: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
    const finish = (): void => {
      this.progressFinishers.delete(finish);
      resolveFinished();
    };
    this.progressFinishers.add(finish);
    return { finished, finish };
  }

  private report(value: WorkDoneProgressReport, reporter: WindowProgress | undefined): void {
    const partial: { percentage?: number; message?: string } = {};
    if (value.percentage !== undefined) partial.percentage = value.percentage;
    if (value.message !== undefined) partial.message = value.message;
    if (this.status.status.state === "indexing") this.status.merge(partial);
    const text = [value.percentage !== undefined ? `${value.percentage}%` : "", value.message ?? ""];
    reporter?.report({ message: text.filter((part) => part !== "").join(" ") });
  }
}
