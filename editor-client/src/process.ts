// Running a child process to completion: its output, its exit code, or why it could not start.
import { spawn } from "child_process";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: NodeJS.ErrnoException;
  /** Stopped by the timeout or the cancellation, not by itself. */
  stopped?: "timeout" | "cancelled";
}

export interface RunOptions {
  cwd?: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Each line the process writes, on either stream, as it comes. */
  onLine?: (line: string) => void;
  /** Stops the process when it fires. */
  cancel?: { onCancellationRequested: (listener: () => void) => { dispose(): void } };
}

export function runProcess(command: string, args: string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let settled = false;
    let stopped: RunResult["stopped"];
    const partial = { stdout: "", stderr: "" };
    const lines = (stream: "stdout" | "stderr", text: string): void => {
      if (!options.onLine) return;
      const parts = (partial[stream] + text).split(/\r?\n/);
      partial[stream] = parts.pop() ?? "";
      for (const line of parts) if (line.trim() !== "") options.onLine(line);
    };
    let child: ReturnType<typeof spawn>;
    const finish = (result: RunResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cancellation?.dispose();
      for (const rest of [partial.stdout, partial.stderr]) if (rest.trim() !== "") options.onLine?.(rest);
      resolve(stopped ? { ...result, stopped } : result);
    };
    try {
      child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      resolve({ code: null, stdout, stderr, error: error as NodeJS.ErrnoException });
      return;
    }
    const stop = (why: "timeout" | "cancelled"): void => {
      stopped = why;
      child.kill();
    };
    const timer = setTimeout(() => stop("timeout"), options.timeoutMs);
    const cancellation = options.cancel?.onCancellationRequested(() => stop("cancelled"));
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      lines("stdout", chunk.toString());
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      lines("stderr", chunk.toString());
    });
    child.on("error", (error: NodeJS.ErrnoException) => finish({ code: null, stdout, stderr, error }));
    child.on("close", (code) => {
      const note = stopped === "timeout" ? `\n(timed out after ${options.timeoutMs} ms)` : "";
      finish({ code, stdout, stderr: stderr + note });
    });
  });
}
