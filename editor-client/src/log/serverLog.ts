// The language server's log in the CodeSieve output, each message at its own level. Over stdio the
// server sends its log records as window/logMessage with the record's level as the message type
// (server/lsp/client_log.py). vscode-languageclient would write them all at the info level, behind a
// "[Error - time]" prefix of its own. Its handler stays in charge until the server has answered
// `initialize` (what the server logs while answering comes at the info level); this one from then on.
// What the server writes to stderr (records from before `initialize`, a crash's traceback) comes in
// chunks that vscode-languageclient writes as they arrive, at the info level.
import { LanguageClient, LogMessageNotification, MessageType } from "vscode-languageclient/node";
import { log } from "./logging";

/** LSP's message types, from the most to the least severe, as log levels. */
const LEVELS: Record<MessageType, (message: string) => void> = {
  [MessageType.Error]: log.error,
  [MessageType.Warning]: log.warn,
  [MessageType.Info]: log.info,
  [MessageType.Log]: log.debug, // the server sends its debug records as Log
  [MessageType.Debug]: log.trace,
};

/** Call before `client.start()`: the handler then holds for every start, vscode-languageclient's own restarts included. */
export function forwardServerLog(client: LanguageClient): void {
  // A type outside LSP's five (a newer protocol's, say) is logged at the info level.
  client.onNotification(LogMessageNotification.type, ({ type, message }) => (LEVELS[type] ?? log.info)(message));
}
