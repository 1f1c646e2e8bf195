// The language client's options: every file goes to the server, file events reach it through a watcher,
// the settings it asks for come from `codesieve.*`, and the results of its find commands (a code action's
// Find Similar Code) open in the results picker.
import * as vscode from "vscode";
import {
  CloseHandlerResult,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  Middleware,
  RevealOutputChannelOn,
} from "vscode-languageclient/node";
import { showResults } from "./picker";
import { FindResult, ServerCommands, isFindResult } from "./protocol";
import { SECTION, serverSettings } from "./settings";

/**
 * `output`: where the client and the server log; `current`: the client these options are for, once made;
 * `closed`: what to do when the connection closes (restart or not).
 */
export function clientOptions(
  output: vscode.OutputChannel,
  current: () => LanguageClient | undefined,
  closed: () => CloseHandlerResult,
): LanguageClientOptions {
  return {
    documentSelector: [{ scheme: "file" }],
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: serverSettings(),
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*"),
    },
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue }),
      closed,
    },
    middleware: middleware(current),
  };
}

function middleware(current: () => LanguageClient | undefined): Middleware {
  return {
    // `unknown`: whatever the server answers goes back to the caller of the command as it is
    executeCommand: (command, args: unknown[], next): unknown => {
      if (command === ServerCommands.findSimilar || command === ServerCommands.find) {
        const client = current();
        const result = Promise.resolve(next(command, args));
        if (client) {
          showResults(client, resultTitle(command, args), result.then(asFindResult));
        }
        return result;
      }
      return next(command, args);
    },
    workspace: {
      configuration: async (params, token, next) => {
        const result = await next(params, token);
        if (!Array.isArray(result)) return result;
        return params.items.map((item, index): unknown =>
          item.section === SECTION ? serverSettings(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined) : result[index],
        );
      },
    },
  };
}

function resultTitle(command: string, args: unknown[]): string {
  if (command === ServerCommands.find) {
    return `CodeSieve: ${typeof args[0] === "string" ? args[0] : "Find Code"}`;
  }
  const [uri, position] = args as [unknown, { line?: number } | undefined];
  if (typeof uri === "string") {
    const where = vscode.workspace.asRelativePath(vscode.Uri.parse(uri), false);
    const line = typeof position?.line === "number" ? `:${position.line + 1}` : "";
    return `CodeSieve: Similar to ${where}${line}`;
  }
  return "CodeSieve: Similar Code";
}

function asFindResult(value: unknown): FindResult {
  return isFindResult(value) ? value : { hits: [] };
}
