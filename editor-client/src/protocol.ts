// The custom part of the CodeSieve language server protocol (see server/lsp.py).
import { NotificationType, RequestType } from "vscode-languageclient/node";

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export interface FindParams {
  query: string;
  limit?: number;
  rerank?: boolean;
  /** Rank test code like any other; by default it comes after implementation of similar relevance. */
  includeTests?: boolean;
  include?: string[];
  exclude?: string[];
  languages?: string[];
}

export type FindSimilarParams = (
  | { textDocument: { uri: string }; position: LspPosition }
  | { code: string; language?: string }
) & {
  limit?: number;
  /** Rank test code like any other; by default it comes after implementation of similar relevance. */
  includeTests?: boolean;
};

export interface Hit {
  uri: string;
  range: LspRange;
  name: string;
  kind?: number;
  language?: string;
  score?: number;
  stage?: "retrieve" | "rerank";
  preview?: string;
  /** Near-copies ranked below this hit (its sync/async twin, a copied function), shown with it. */
  alsoAt?: { uri: string; line: number; name: string }[];
}

export interface FindStats {
  retrieved?: number;
  reranked?: number;
  retrieveMs?: number;
  rerankMs?: number;
  indexState?: string;
  /** Whether the model has a ranker: only then is a `rerank: true` list different from the first. */
  ranker?: boolean;
  note?: string;
}

export interface FindResult {
  hits: Hit[];
  stats?: FindStats;
}

/** The server's states, and the client's own: "setup" (CodeSieve's environment is being set up), "stopped". */
export type IndexState = "setup" | "starting" | "indexing" | "ready" | "error" | "stopped";

export interface IndexStatus {
  state: IndexState;
  files?: number;
  chunks?: number;
  model?: string;
  indexPath?: string;
  lastError?: string;
  lastSynced?: string; // when the last full sync finished, ISO 8601
  // Progress while indexing; servers may send any of these.
  percentage?: number;
  fraction?: number;
  progress?: number;
  filesDone?: number;
  filesTotal?: number;
  message?: string;
  [key: string]: unknown;
}

export const FindRequest = new RequestType<FindParams, FindResult, void>("codeSearch/find");
export const FindSimilarRequest = new RequestType<FindSimilarParams, FindResult, void>("codeSearch/findSimilar");
export const StatusRequest = new RequestType<Record<string, never> | null, IndexStatus, void>("codeSearch/status");
export const IndexStatusNotification = new NotificationType<IndexStatus>("codeSearch/indexStatus");

/** Commands the server advertises (executeCommandProvider); vscode-languageclient registers them. */
export const ServerCommands = {
  find: "codeSearch.find",
  findSimilar: "codeSearch.findSimilar",
  reindex: "codeSearch.reindex",
} as const;

export function isFindResult(value: unknown): value is FindResult {
  return (
    typeof value === "object" &&
    value !== null &&
    Array.isArray((value as { hits?: unknown }).hits)
  );
}

/** Indexing progress as a percentage, from whichever fields the server filled in. */
export function progressPercent(status: IndexStatus): number | undefined {
  const clamp = (value: number): number => Math.max(0, Math.min(100, Math.round(value)));
  if (typeof status.percentage === "number") {
    return clamp(status.percentage);
  }
  if (typeof status.fraction === "number") {
    return clamp(status.fraction * 100);
  }
  if (typeof status.progress === "number") {
    return clamp(status.progress <= 1 ? status.progress * 100 : status.progress);
  }
  if (typeof status.filesDone === "number" && typeof status.filesTotal === "number" && status.filesTotal > 0) {
    return clamp((100 * status.filesDone) / status.filesTotal);
  }
  return undefined;
}
