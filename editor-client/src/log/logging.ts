// The CodeSieve output channel. It is a LogOutputChannel: VS Code puts the time and the level on each
// line, and the user picks the lowest level shown (the Output view's "Set Log Level"; Info by default).
// The extension's own messages, the server's log and vscode-languageclient's protocol trace all go there.
import * as vscode from "vscode";

/** The channel's name: VS Code names its log file after it, which the end-to-end tests look for. */
const CHANNEL_NAME = "CodeSieve";

let channel: vscode.LogOutputChannel | undefined;

/** Creates the channel that `log` writes to; the caller disposes it. Until then `log` writes nothing. */
export function openLogChannel(): vscode.LogOutputChannel {
  channel = vscode.window.createOutputChannel(CHANNEL_NAME, { log: true });
  return channel;
}

/** Writes a message (it may span lines) to the CodeSieve output at a level. */
export const log = {
  error: (message: string): void => channel?.error(message),
  warn: (message: string): void => channel?.warn(message),
  info: (message: string): void => channel?.info(message),
  debug: (message: string): void => channel?.debug(message),
  trace: (message: string): void => channel?.trace(message),
};

/** Shows the CodeSieve output without taking the focus from the editor. */
export function showLog(): void {
  channel?.show(true);
}
