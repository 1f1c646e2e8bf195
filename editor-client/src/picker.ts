// The results picker shared by Find Code (results as you type) and Find Similar Code.
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import { FindRequest, FindResult, Hit } from "./protocol";
import { resultLimit } from "./settings";

const DEBOUNCE_MS = 250;

const KIND_ICONS: Record<number, string> = {
  5: "symbol-class",
  6: "symbol-method",
  9: "symbol-constructor",
  10: "symbol-enum",
  11: "symbol-interface",
  12: "symbol-function",
  2: "symbol-module",
  3: "symbol-namespace",
  23: "symbol-struct",
  13: "symbol-variable",
  14: "symbol-constant",
};

export interface HitItem extends vscode.QuickPickItem {
  hit: Hit;
  uri: vscode.Uri;
  range: vscode.Range;
}

function onePreviewLine(preview: string | undefined): string {
  if (!preview) return "";
  const lines = preview.split(/\r?\n/).map((line) => line.trim());
  const first = lines.find((line) => line !== "") ?? "";
  return first.length > 160 ? first.slice(0, 157) + "…" : first;
}

export function toItem(client: LanguageClient, hit: Hit): HitItem {
  const uri = client.protocol2CodeConverter.asUri(hit.uri);
  const range = client.protocol2CodeConverter.asRange(hit.range);
  const icon = KIND_ICONS[hit.kind ?? 12] ?? "symbol-misc";
  const language = hit.language ?? "";
  const preview = onePreviewLine(hit.preview);
  const twins = (hit.alsoAt ?? []).map(
    (twin) => `${vscode.workspace.asRelativePath(client.protocol2CodeConverter.asUri(twin.uri), false)}:${twin.line + 1}`,
  );
  const alsoAt = twins.length > 0 ? `also at ${twins.join(", ")}` : "";
  return {
    label: `$(${icon}) ${hit.name}`,
    description: `${vscode.workspace.asRelativePath(uri, false)}:${range.start.line + 1}`,
    detail: [language, preview, alsoAt].filter((part) => part !== "").join(" · "),
    alwaysShow: true, // semantic matches rarely match VS Code's fuzzy filter
    hit,
    uri,
    range,
  };
}

/** Opens the hit with the cursor on its first line and the whole range selected. */
export async function openHit(item: HitItem, preview: boolean, preserveFocus: boolean): Promise<void> {
  const document = await vscode.workspace.openTextDocument(item.uri);
  const editor = await vscode.window.showTextDocument(document, { preview, preserveFocus });
  // Anchor at the end, cursor at the start: the cursor (and "Ln" in the status bar) is on the definition.
  editor.selection = new vscode.Selection(item.range.end, item.range.start);
  editor.revealRange(item.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}

/**
 * The title's summary. `showStage` (Find Code): "reranked" when the ranker reordered the list, "retrieved"
 * for the first list of a model with a ranker (the reranked one follows), "retrieval only" without one.
 */
function describeStats(result: FindResult, count: number, showStage: boolean): string {
  const stats = result.stats;
  const parts = [`${count} result${count === 1 ? "" : "s"}`];
  if (stats) {
    const reranked = (stats.reranked ?? 0) > 0 || result.hits.some((hit) => hit.stage === "rerank");
    const ms = (stats.retrieveMs ?? 0) + (reranked ? stats.rerankMs ?? 0 : 0);
    if (showStage) parts.push(reranked ? "reranked" : stats.ranker === false ? "retrieval only" : "retrieved");
    if (ms > 0) parts.push(`${Math.round(ms)} ms`);
    if (stats.indexState && stats.indexState !== "ready") parts.push(`index ${stats.indexState}`);
  }
  return parts.join(" · ");
}

function sameLocation(a: HitItem, b: HitItem): boolean {
  return a.uri.toString() === b.uri.toString() && a.range.isEqual(b.range);
}

/**
 * A QuickPick that previews the item the user moves to and opens the accepted one.
 *
 * Nothing opens before the user moves. VS Code makes the first item active whenever the items change,
 * and tells the extension later, by position in the list: by the time the event comes, a newer list may
 * have replaced the one it was about. So an event is the user's only when it lands on an item other than
 * the first of the current list, or once the user has moved in this list.
 */
class ResultsPicker {
  readonly quickPick = vscode.window.createQuickPick<HitItem>();
  private readonly disposables: vscode.Disposable[] = [];
  private previewed: HitItem | undefined;
  private accepted = false;
  private readonly originalEditor = vscode.window.activeTextEditor;
  /** Whether the user moved through the current query's results (a reranked list then keeps their place). */
  private userMoved = false;

  constructor(
    readonly client: LanguageClient,
    title: string,
    placeholder: string,
  ) {
    this.quickPick.title = title;
    this.quickPick.placeholder = placeholder;
    this.quickPick.matchOnDescription = false;
    this.quickPick.matchOnDetail = false;
    this.quickPick.ignoreFocusOut = false;
    this.disposables.push(
      this.quickPick.onDidChangeActive((items) => this.activeChanged(items[0])),
      this.quickPick.onDidAccept(() => {
        const item = this.quickPick.selectedItems[0] ?? this.quickPick.activeItems[0];
        if (!item) return;
        this.accepted = true;
        this.quickPick.hide();
        void openHit(item, false, false).catch((error: unknown) =>
          vscode.window.showErrorMessage(`CodeSieve: cannot open ${item.uri.fsPath}: ${String(error)}`),
        );
      }),
      this.quickPick.onDidHide(() => {
        if (!this.accepted && this.previewed && this.originalEditor) {
          // Escape: go back where the user was.
          void vscode.window
            .showTextDocument(this.originalEditor.document, {
              selection: this.originalEditor.selection,
              viewColumn: this.originalEditor.viewColumn,
            })
            .then(undefined, () => undefined);
        }
        this.dispose();
      }),
    );
  }

  private activeChanged(item: HitItem | undefined): void {
    if (!item) return;
    if (!this.userMoved && item === this.quickPick.items[0]) return; // VS Code's doing, not the user's
    this.userMoved = true;
    if (this.previewed && sameLocation(this.previewed, item)) return; // already shown
    this.previewed = item;
    void openHit(item, true, true).catch(() => undefined);
  }

  /**
   * Show a query's results. `replacing`: the reranked list of the query whose first list is shown;
   * it keeps the user's place when they moved. A new query's list starts at the top, unpreviewed.
   */
  setResult(result: FindResult, prefix: string | undefined, replacing: boolean, showStage: boolean): void {
    const items = result.hits.map((hit) => toItem(this.client, hit));
    const active = replacing && this.userMoved ? this.quickPick.activeItems[0] : undefined;
    if (!replacing) this.userMoved = false;
    this.quickPick.items = items;
    if (active) {
      const same = items.find((item) => sameLocation(item, active));
      if (same) this.quickPick.activeItems = [same];
    }
    const summary = items.length === 0 ? "no results" : describeStats(result, items.length, showStage);
    this.quickPick.title = prefix ? `${prefix} — ${summary}` : summary;
  }

  dispose(): void {
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
    this.quickPick.dispose();
  }
}

/** workspaceState key: whether Find Code ranks test code like any other (its beaker button was pressed). */
const INCLUDE_TESTS_KEY = "codesieve.findCode.includeTests";

/** The button that shows or stops showing test code: its icon is what a click does, its tooltip says both. */
function testsButton(includeTests: boolean): vscode.QuickInputButton {
  return includeTests
    ? {
        iconPath: new vscode.ThemeIcon("beaker-stop"),
        tooltip: "Test code shown like any other: click to rank it after implementation",
      }
    : {
        iconPath: new vscode.ThemeIcon("beaker"),
        tooltip: "Test code ranked after implementation: click to show it like any other",
      };
}

const findCodeTitle = (includeTests: boolean): string =>
  includeTests ? "CodeSieve: Find Code (tests included)" : "CodeSieve: Find Code";

const findCodePlaceholder = (includeTests: boolean): string =>
  includeTests
    ? "Describe the code you are looking for, or paste some (test code ranked like any other)"
    : "Describe the code you are looking for, or paste some";

/**
 * CodeSieve: Find Code — results as you type: the retriever's list first, then, when the model has a
 * ranker (the first answer's `stats.ranker` says), the reranked list in its place. One list a query otherwise.
 * The beaker button flips `includeTests` (kept in `state`, the workspace's) and asks again.
 */
// eslint-disable-next-line max-lines-per-function -- Long on purpose: its handlers share the query's state (debounce timer, generation, pending request)
export function showFindCode(client: LanguageClient, state: vscode.Memento, initialQuery = ""): void {
  let includeTests = state.get<boolean>(INCLUDE_TESTS_KEY, false) === true;
  const picker = new ResultsPicker(client, findCodeTitle(includeTests), findCodePlaceholder(includeTests));
  const quickPick = picker.quickPick;
  quickPick.buttons = [testsButton(includeTests)];
  let timer: NodeJS.Timeout | undefined;
  let generation = 0;
  let pending: vscode.CancellationTokenSource | undefined;

  const cancelPending = (): void => {
    pending?.cancel();
    pending?.dispose();
    pending = undefined;
  };

  const search = async (query: string): Promise<void> => {
    const mine = ++generation;
    cancelPending();
    const source = new vscode.CancellationTokenSource();
    pending = source;
    const title = findCodeTitle(includeTests);
    if (query.trim() === "") {
      quickPick.items = [];
      quickPick.title = title;
      quickPick.busy = false;
      return;
    }
    quickPick.busy = true;
    const params = { query, limit: resultLimit(), includeTests };
    try {
      const fast = await client.sendRequest(FindRequest, { ...params, rerank: false }, source.token);
      if (mine !== generation) return; // a newer query is under way
      const ranker = fast.stats?.ranker === true;
      picker.setResult(fast, title, false, true);
      if (!ranker) return;
      const full = await client.sendRequest(FindRequest, { ...params, rerank: true }, source.token);
      if (mine !== generation) return;
      picker.setResult(full, title, true, true);
    } catch (error) {
      if (mine !== generation || source.token.isCancellationRequested) return;
      quickPick.title = `${title} — ${errorMessage(error)}`;
    } finally {
      if (mine === generation) {
        quickPick.busy = false;
        if (pending === source) pending = undefined;
        source.dispose();
      }
    }
  };

  quickPick.onDidChangeValue((value) => {
    if (timer) clearTimeout(timer);
    generation++; // results for the previous text are stale from now on
    cancelPending();
    quickPick.title = findCodeTitle(includeTests); // and so is their summary in the title
    timer = setTimeout(() => void search(value), DEBOUNCE_MS);
  });
  quickPick.onDidTriggerButton(() => {
    includeTests = !includeTests;
    void state.update(INCLUDE_TESTS_KEY, includeTests);
    quickPick.buttons = [testsButton(includeTests)];
    quickPick.placeholder = findCodePlaceholder(includeTests);
    quickPick.title = findCodeTitle(includeTests);
    if (timer) clearTimeout(timer);
    void search(quickPick.value); // the same query again, at once
  });
  quickPick.onDidHide(() => {
    if (timer) clearTimeout(timer);
    generation++;
    cancelPending();
  });
  quickPick.value = initialQuery;
  quickPick.show();
  if (initialQuery) void search(initialQuery);
}

/** Shows results that are already known or on their way (a code action's Find Similar Code). */
export function showResults(client: LanguageClient, title: string, result: Thenable<FindResult | undefined>): void {
  const picker = new ResultsPicker(client, title, SIMILAR_PLACEHOLDER);
  picker.quickPick.show();
  void showAnswer(picker, title, result);
}

const SIMILAR_PLACEHOLDER = "Similar code — move to preview, Enter to open";

async function showAnswer(picker: ResultsPicker, title: string, result: Thenable<FindResult | undefined>): Promise<void> {
  picker.quickPick.busy = true;
  try {
    picker.setResult((await result) ?? { hits: [] }, title, false, false);
  } catch (error) {
    picker.quickPick.title = `${title} — ${errorMessage(error)}`;
  } finally {
    picker.quickPick.busy = false;
  }
}

/**
 * CodeSieve: Find Similar Code — `request(includeTests)` asks for the code like the function at the cursor.
 * The beaker button flips `includeTests` (the same workspace state as Find Code's) and asks again.
 */
export function showSimilar(
  client: LanguageClient,
  state: vscode.Memento,
  title: string,
  request: (includeTests: boolean) => Thenable<FindResult | undefined>,
): void {
  let includeTests = state.get<boolean>(INCLUDE_TESTS_KEY, false) === true;
  const titled = (): string => (includeTests ? `${title} (tests included)` : title);
  const picker = new ResultsPicker(client, titled(), SIMILAR_PLACEHOLDER);
  picker.quickPick.buttons = [testsButton(includeTests)];
  picker.quickPick.onDidTriggerButton(() => {
    includeTests = !includeTests;
    void state.update(INCLUDE_TESTS_KEY, includeTests);
    picker.quickPick.buttons = [testsButton(includeTests)];
    picker.quickPick.title = titled();
    void showAnswer(picker, titled(), request(includeTests));
  });
  picker.quickPick.show();
  void showAnswer(picker, titled(), request(includeTests));
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "object" && error !== null && "message" in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}
