// CodeSieve: Retrain on This Workspace. `trainer fit` runs in a terminal task and writes a report
// (--report); the report says what happened and what the user can do next: the new model is in use,
// the current one was kept (install anyway?), the workspace has too few pairs (train anyway?), or the
// training dependencies are missing (install them?).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as vscode from "vscode";
import { log } from "./log/logging";
import { LaunchError, resolvePython } from "./python";
import type { Server } from "./server";
import { serverSettings } from "./settings";

/** What `trainer fit --report` writes (trainer/cli.py). */
interface FitReport {
  status: "installed" | "kept" | "too-few-pairs" | "missing-extras" | "error";
  message?: string;
  table?: string;
  install?: string[][];
}

/** Picks the folder, runs the fit, then acts on its report. */
export async function retrain(server: Server): Promise<void> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const folder =
    folders.length > 1
      ? await vscode.window.showWorkspaceFolderPick({ placeHolder: "Workspace folder to train on" })
      : folders[0];
  if (!folder) {
    if (folders.length === 0) void vscode.window.showInformationMessage("CodeSieve: open a folder to train on first.");
    return;
  }
  await fit(server, folder, []);
}

async function fit(server: Server, folder: vscode.WorkspaceFolder, flags: string[]): Promise<void> {
  let python: string;
  try {
    python = (await resolvePython(folder.uri)).python;
  } catch (error) {
    if (!(error instanceof LaunchError)) throw error;
    const choice = await vscode.window.showErrorMessage(error.message, "Open Settings");
    await server.handleFix(choice);
    return;
  }
  const reportPath = path.join(os.tmpdir(), `codesieve-fit-${process.pid}-${Date.now()}.json`);
  // the index folder exactly as the server finds it: the setting, else the environment the server inherits
  const indexDir = serverSettings(folder.uri).indexDir;
  const where = typeof indexDir === "string" ? ["--index-dir", indexDir] : [];
  const args = ["-m", "codesieve.trainer.cli", "fit", folder.uri.fsPath, "--report", reportPath, ...where, ...flags];
  const exitCode = await runTask(folder, `Retrain on ${folder.name}`, python, args);
  const report = readReport(reportPath);
  if (!report) {
    void vscode.window.showErrorMessage(
      `CodeSieve: retraining failed (exit code ${exitCode ?? "unknown"}); the terminal shows why. The previous model stays in use.`,
    );
    return;
  }
  if (report.table) log.info(`retraining on ${folder.name}:\n${report.table}\n${report.message ?? ""}`);
  await act(server, folder, report);
}

async function act(server: Server, folder: vscode.WorkspaceFolder, report: FitReport): Promise<void> {
  const message = `CodeSieve: ${report.message ?? report.status}`;
  const detail = report.table ? { modal: true, detail: `${report.table}\n\n${report.message ?? ""}` } : { modal: false };
  switch (report.status) {
    case "installed": {
      await server.restart("a new model was trained");
      void vscode.window.showInformationMessage(`${message} The index is being rebuilt with it.`, detail);
      return;
    }
    case "kept": {
      const choice = await vscode.window.showInformationMessage(message, detail, "Install Anyway");
      if (choice === "Install Anyway") await fit(server, folder, ["--resume", "--force"]);
      return;
    }
    case "too-few-pairs": {
      const choice = await vscode.window.showWarningMessage(message, { modal: true }, "Train Anyway");
      if (choice === "Train Anyway") await fit(server, folder, ["--force"]);
      return;
    }
    case "missing-extras": {
      const commands = report.install ?? [];
      const choice = await vscode.window.showWarningMessage(
        "CodeSieve: retraining needs torch, transformers and onnx (the `train` extra) and the base weights. Install them now?",
        { modal: true, detail: commands.map((command) => command.join(" ")).join("\n") },
        "Install",
      );
      if (choice !== "Install") return;
      for (const [command, ...args] of commands) {
        const code = await runTask(folder, "Install the training dependencies", command, args);
        if (code !== 0) {
          void vscode.window.showErrorMessage("CodeSieve: installing the training dependencies failed; the terminal shows why.");
          return;
        }
      }
      await fit(server, folder, []);
      return;
    }
    default:
      void vscode.window.showErrorMessage(`${message} The previous model stays in use.`);
  }
}

/** Runs one process as a terminal task and resolves with its exit code. */
async function runTask(
  folder: vscode.WorkspaceFolder,
  name: string,
  command: string,
  args: string[],
): Promise<number | undefined> {
  const execution = new vscode.ProcessExecution(command, args, { cwd: folder.uri.fsPath });
  const task = new vscode.Task({ type: "codesieve", task: "retrain" }, folder, name, "CodeSieve", execution, []);
  task.presentationOptions = { reveal: vscode.TaskRevealKind.Always, panel: vscode.TaskPanelKind.Dedicated, clear: true };
  log.info(`${name}: ${[command, ...args].join(" ")}`);
  return new Promise((resolve) => {
    let running: vscode.TaskExecution | undefined;
    const ended = new Map<vscode.TaskExecution, number | undefined>(); // ends seen before executeTask resolved
    const listener = vscode.tasks.onDidEndTaskProcess((event) => {
      if (running === undefined) {
        ended.set(event.execution, event.exitCode);
      } else if (event.execution === running) {
        listener.dispose();
        resolve(event.exitCode);
      }
    });
    void vscode.tasks.executeTask(task).then((execution) => {
      running = execution;
      if (ended.has(execution)) {
        listener.dispose();
        resolve(ended.get(execution));
      }
    });
  });
}

function readReport(file: string): FitReport | undefined {
  try {
    const report = JSON.parse(fs.readFileSync(file, "utf-8")) as FitReport;
    fs.rmSync(file, { force: true });
    return report;
  } catch {
    return undefined;
  }
}
