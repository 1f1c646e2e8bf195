// Drives code-server (VS Code in the browser) in headless Chromium with playwright-core and checks the
// CodeSieve extension end to end. Started by tests/e2e/test_vscode.py, which starts code-server with
// the .vsix installed and a workspace open; this script only uses the UI, like a person would.
//
// Environment: CS_URL (code-server base URL), CS_FOLDER (the workspace folder), ARTIFACTS (where the
// screenshots go), RESULT (JSON file written at the end), BROWSER_PROFILE (empty folder for Chromium),
// CHROMIUM (default /usr/bin/chromium), USER_SETTINGS (code-server's User/settings.json, which the
// pythonPath step edits), MODE ("full", the default: everything; "discovery": no pythonPath set, the
// server found through the workspace's .venv, two queries typed, and the button that includes test
// code; "setup": an untrusted folder and no Python with CodeSieve: trust it, accept the offer to set up
// CodeSieve's own environment (which fails: the wheelhouse setting is an empty folder; the user sets
// it to WHEELHOUSE and sets up again), search, then have the environment updated to the wheel the
// extension carries). NODE_PATH must make playwright-core resolvable. USER_DATA: code-server's user data folder
// (MODE "setup" finds the environment's record there).
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const URL_BASE = process.env.CS_URL;
const FOLDER = process.env.CS_FOLDER;
const ARTIFACTS = process.env.ARTIFACTS;
const RESULT = process.env.RESULT;
const USER_SETTINGS = process.env.USER_SETTINGS; // code-server's User/settings.json (the browser's user settings)
const MODE = process.env.MODE || "full";
const PROFILE = process.env.BROWSER_PROFILE;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const READY_TIMEOUT_MS = Number(process.env.READY_TIMEOUT_MS || 150000);
const SETUP_TIMEOUT_MS = Number(process.env.SETUP_TIMEOUT_MS || 300000);
const USER_DATA = process.env.USER_DATA;
const WHEELHOUSE = process.env.WHEELHOUSE; // MODE "setup": the folder of wheels the user sets after the first try fails

// The text of a function in sample.py: the query equals the chunk, so even a random model retrieves it first.
const FETCH_QUERY = "async def fetch(url: str) -> bytes: 'Fetch a URL; naïve and slow.' return url.encode()";
const FETCH_LINE = 49;
const NEW_FUNCTION = "def quokka_zebra_checksum(values): return sum(values) * 7919";
// MODE "discovery": the text of tests/test_headers.py's function, which selfcheck.py has a near copy of
// (e2e/test_vscode.py writes both); with one result shown, the copy is listed until tests are included.
const TEST_QUERY = 'def test_parse_header(): key, value = "Host: example.org".split(":", 1) ' +
  'assert (key.strip(), value.strip()) == ("Host", "example.org")';

const result = { ok: false, checks: [], timings: {}, statusTexts: [], notes: [], error: null };
const started = Date.now();

function check(name, ok, detail) {
  result.checks.push({ name, ok: Boolean(ok), detail: detail === undefined ? "" : String(detail) });
  console.log(`${ok ? "PASS" : "FAIL"} ${name}${detail === undefined ? "" : `: ${detail}`}`);
  return Boolean(ok);
}

function elapsed() {
  return ((Date.now() - started) / 1000).toFixed(1) + " s";
}

function log(message) {
  console.log(`[${elapsed()}] ${message}`);
}

async function poll(fn, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// A JSON file another process may be rewriting: null while it is empty or half written.
function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf-8"));
  } catch {
    return null;
  }
}

// A row's aria-label is "ICON-NAME  label, description, detail"; the label without the icon.
const rowName = (text) =>
  (text || "").replace(/\$\([a-z0-9~-]+\)\s*/g, "").replace(/^\s*symbol-[a-z]+\s+/, "").split(",")[0].trim();

async function statusText(page) {
  const item = page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "CodeSieve" }).first();
  if ((await item.count()) === 0) return "";
  return ((await item.textContent()) || "").trim();
}

async function cursorLine(page) {
  const text = ((await page.locator("#status\\.editor\\.selection").first().textContent().catch(() => "")) || "").trim();
  const match = /Ln (\d+)/.exec(text);
  return { line: match ? Number(match[1]) : null, text };
}

const quickInput = (page) => page.locator(".quick-input-widget");
const quickInputBox = (page) => page.locator(".quick-input-widget .quick-input-box input");
const quickTitle = async (page) =>
  ((await page.locator(".quick-input-widget .quick-input-title").first().textContent().catch(() => "")) || "").trim();

/** aria-labels of the rendered rows of the quick pick list (the visible ones). */
async function rows(page) {
  return page
    .locator(".quick-input-widget .quick-input-list .monaco-list-row")
    .evaluateAll((elements) => elements.map((el) => el.getAttribute("aria-label") || el.textContent || ""));
}

async function focusedRow(page) {
  const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row.focused").first();
  if ((await row.count()) === 0) return "";
  return (await row.getAttribute("aria-label")) || (await row.textContent()) || "";
}

/**
 * Runs a command from the palette (F1). A palette opened while the previous picker is still closing
 * can itself be closed or made inert a moment later, so it is opened again, up to three times.
 */
async function runFromPalette(page, command) {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.keyboard.press("F1");
      await quickInputBox(page).waitFor({ state: "visible", timeout: 10000 });
      await quickInputBox(page).fill(">" + command, { timeout: 5000 });
      const match = page.locator(".quick-input-widget .monaco-list-row", { hasText: command }).filter({ hasNotText: "JSON" }).first();
      await match.waitFor({ timeout: 10000 });
      await match.click({ timeout: 5000 });
      return;
    } catch (error) {
      if (attempt === 3) throw error;
      log(`palette for ${command} closed under us (${String(error.message).split("\n")[0]}); again`);
      await page.keyboard.press("Escape");
      await page.waitForTimeout(1000);
    }
  }
}

async function openFindCode(page) {
  // The keybinding first (Ctrl+Alt+F); the command palette if the keybinding did not open it.
  await page.keyboard.press("Control+Alt+f");
  const opened = await poll(async () => (await quickTitle(page)).includes("CodeSieve: Find Code"), 4000);
  if (opened) return "keybinding";
  await page.keyboard.press("Escape");
  await runFromPalette(page, "CodeSieve: Find Code");
  await poll(async () => (await quickTitle(page)).includes("CodeSieve: Find Code"), 10000);
  return "command palette";
}

/** Types a query and waits for the reranked list; returns the visible rows and the titles seen on the way. */
async function search(page, query, timeoutMs) {
  const titles = [];
  await quickInputBox(page).fill(query);
  // The picker drops the previous query's summary from its title when the text changes; wait for that
  // (briefly: a fast answer may already be back), so the old "reranked" is not read as the new one.
  await poll(async () => !/reranked|no results/.test(await quickTitle(page)), 2000, 20);
  const done = await poll(async () => {
    const title = await quickTitle(page);
    if (title && titles[titles.length - 1] !== title) titles.push(title);
    return /reranked|no results/.test(title);
  }, timeoutMs, 50);
  return { labels: await rows(page), titles, done: Boolean(done) };
}

/** Moves down the list (previewing each item, as a person would) until `name` is focused. */
async function moveTo(page, name, maxMoves = 25) {
  let moves = 0;
  let focused = await focusedRow(page);
  while (rowName(focused) !== name && moves < maxMoves) {
    await page.keyboard.press("ArrowDown");
    moves += 1;
    await page.waitForTimeout(120);
    focused = await focusedRow(page);
  }
  return { found: rowName(focused) === name, moves, focused };
}

async function screenshot(locator, name) {
  const file = path.join(ARTIFACTS, name);
  await locator.screenshot({ path: file, animations: "disabled" });
  result.notes.push(`screenshot ${file}`);
  return file;
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const context = await chromium.launchPersistentContext(PROFILE, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (error) => result.notes.push(`page error: ${error.message}`));
  try {
    await run(page);
  } catch (error) {
    result.error = String(error && error.stack ? error.stack : error);
    console.log(`ERROR ${result.error}`);
    await page.screenshot({ path: path.join(ARTIFACTS, "vscode-failure.png") }).catch(() => undefined);
  } finally {
    await context.close().catch(() => undefined);
  }
  result.timings.total = elapsed();
  result.ok = !result.error && result.checks.length > 0 && result.checks.every((c) => c.ok);
  fs.writeFileSync(RESULT, JSON.stringify(result, null, 2));
  console.log(`driver finished in ${elapsed()}: ${result.ok ? "ok" : "FAILED"}`);
}

async function run(page) {
  const url = `${URL_BASE}/?folder=${encodeURIComponent(FOLDER)}`;
  log(`opening ${url}`);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.locator(".monaco-workbench").waitFor({ timeout: 60000 });
  await page.locator("#workbench\\.parts\\.statusbar").waitFor({ timeout: 60000 });
  result.timings.workbench = elapsed();
  log("workbench loaded");
  if (MODE === "setup") return firstRun(page);

  // 1. The extension activates, starts the Python server, and the status bar reaches "ready".
  const seen = result.statusTexts;
  let stoppedSince = 0;
  const ready = await poll(async () => {
    const text = await statusText(page);
    if (text && seen[seen.length - 1] !== text) {
      seen.push(text);
      log(`status bar: ${text}`);
    }
    // "stopped" or "error" for 20 s (the client restarts a crashed server a few times first): give up.
    if (/CodeSieve: (stopped|error)/.test(text)) {
      stoppedSince = stoppedSince || Date.now();
      if (Date.now() - stoppedSince > 20000) return "gave up";
    } else {
      stoppedSince = 0;
    }
    return /CodeSieve: [\d,]+ chunks/.test(text) ? text : false;
  }, READY_TIMEOUT_MS, 100).then((value) => (value === "gave up" ? false : value));
  check("status bar shows the extension started", seen.some((t) => t.includes("CodeSieve")), seen.join(" -> "));
  check("status bar reaches ready with a chunk count", ready, ready || seen.join(" -> "));
  if (!ready) return;
  result.timings.ready = elapsed();
  const chunks = Number(/([\d,]+) chunks/.exec(ready)[1].replace(/,/g, ""));
  check("index has chunks", chunks > 10, `${chunks} chunks`);
  if (MODE === "discovery") return discovery(page);
  if (MODE === "screenshots") return readmeScreenshots(page);
  await screenshot(page.locator("#workbench\\.parts\\.statusbar"), "vscode-status-bar.png");

  // 2. Find Code: results as you type, then the reranked list; opening one lands on its line.
  await page.locator(".part.editor").click({ position: { x: 200, y: 200 } }).catch(() => undefined);
  const how = await openFindCode(page);
  check("Find Code opens", (await quickTitle(page)).includes("CodeSieve: Find Code"), `via ${how}`);
  const first = await search(page, FETCH_QUERY, 30000);
  result.timings.findCode = elapsed();
  log(`titles: ${first.titles.join(" | ")}`);
  check(
    "the reranked list replaced the first one",
    first.done && first.titles.some((t) => t.includes("reranked")),
    first.titles.join(" | "),
  );
  check(
    "items show name, path:line and language · preview",
    first.labels.length > 0 && first.labels.every((label) => /, [\w./-]+:\d+, \w+ · ./.test(label)),
    first.labels[0],
  );
  await page.waitForTimeout(1500); // time for a preview to open, if one were going to
  const tabsBeforeMoving = await page.locator(".tabs-container .tab").count();
  check("no preview before the user moves", tabsBeforeMoving === 0, `${tabsBeforeMoving} editor tabs open`);
  await page.mouse.move(5, 5); // no hover highlight in the screenshots
  // Move through the list to the hit (previewing each), then Enter.
  let target = await moveTo(page, "fetch");
  if (target.found && target.moves === 0) {
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowUp");
    target = { ...target, moves: 2 };
  }
  check("Find Code lists the function whose text was typed", target.found, `${target.focused} after ${target.moves} moves`);
  await screenshot(quickInput(page), "vscode-find-code.png");
  const previewTab = await poll(
    async () => (await page.locator(".tabs-container .tab", { hasText: "sample.py" }).count()) > 0,
    15000, // generous: this machine is often loaded
  );
  check("moving through results previews the location", previewTab, `${target.moves} moves`);
  log("step: enter on hit");
  await page.keyboard.press("Enter");
  const landed = await poll(async () => {
    const where = await cursorLine(page);
    return where.line === FETCH_LINE ? where : false;
  }, 20000);
  const where = landed || (await cursorLine(page));
  const activeTab = (await page.locator(".tabs-container .tab.active").first().textContent().catch(() => "")) || "";
  check("Enter opens the hit on its line", landed && activeTab.includes("sample.py"), `${where.text} in ${activeTab.trim()}`);

  log("step: code action");
  // 3. Find Similar Code from the server's code action (Ctrl+. on the function).
  const action = page.locator(".action-widget .action-item, .action-widget .monaco-list-row", { hasText: "Find similar code" }).first();
  let actionShown = false;
  for (let attempt = 0; attempt < 4 && !actionShown; attempt++) {
    // The light bulb menu may open before the server has answered: close it and ask again.
    if (attempt > 0) await page.keyboard.press("Escape");
    await page.keyboard.press("Control+.");
    actionShown = await action.waitFor({ state: "visible", timeout: 4000 }).then(() => true, () => false);
  }
  check("the code action menu offers Find similar code", actionShown);
  if (actionShown) {
    await action.click();
    const similar = await poll(async () => {
      const title = await quickTitle(page);
      if (!/Similar to/.test(title) || !/results?|no results/.test(title)) return false;
      return { title, labels: await rows(page) };
    }, 30000);
    check(
      "Find Similar lists similar functions",
      similar && similar.labels.length > 0 && /sample\.py:49/.test(similar.title),
      similar ? `${similar.title}: ${similar.labels.slice(0, 4).join(" | ")}` : await quickTitle(page),
    );
    if (similar) await screenshot(quickInput(page), "vscode-find-similar.png");
    await page.keyboard.press("Escape");
  }

  log("step: find similar command");
  // The same from the command (editor context menu / palette): CodeSieve: Find Similar Code.
  const cursorBefore = await cursorLine(page);
  await runFromPalette(page, "CodeSieve: Find Similar Code");
  const fromCommand = await poll(async () => {
    const title = await quickTitle(page);
    return /Similar to .*results?/.test(title) ? { title, labels: await rows(page) } : false;
  }, 30000);
  check(
    "CodeSieve: Find Similar Code (command) lists similar code",
    fromCommand && fromCommand.labels.length > 0 && fromCommand.title.includes(`sample.py:${cursorBefore.line}`),
    fromCommand ? fromCommand.title : await quickTitle(page),
  );
  await page.keyboard.press("Escape");

  log("step: status details");
  // The status bar item opens the details, whose Reindex button reindexes: the details then show
  // a later "Last full sync" (the status bar's "indexing" may be too brief to see on a small folder).
  const openDetails = async () => {
    await page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "CodeSieve" }).first().click();
    const dialog = page.locator(".monaco-dialog-box");
    const shown = await dialog.waitFor({ state: "visible", timeout: 10000 }).then(() => true, () => false);
    const text = shown ? ((await dialog.textContent()) || "").replace(/\s+/g, " ") : "";
    const at = text.indexOf("Last full sync: ");
    const synced = at < 0 ? "" : text.slice(at, at + 40); // the time, then the same buttons each time
    return { dialog, shown, text, synced };
  };
  const details = await openDetails();
  check(
    "clicking the status bar shows the index details",
    details.shown && /CodeSieve index: ready/.test(details.text) && /Chunks: \d+/.test(details.text) &&
      /Model: /.test(details.text) && details.synced !== "",
    details.text.slice(0, 400),
  );
  if (details.shown) {
    await details.dialog.locator(".monaco-button", { hasText: "Reindex" }).first().click();
    let after = details;
    const reindexed = await poll(async () => {
      if (!/CodeSieve: [\d,]+ chunks/.test(await statusText(page))) return false;
      after = await openDetails();
      await page.keyboard.press("Escape");
      return after.synced !== "" && after.synced !== details.synced;
    }, 30000, 500);
    check("Reindex from the details reindexes and gets back to ready", reindexed, `last full sync ${details.synced} -> ${after.synced}`);
  }

  log("step: edit");
  // 4. Edit and save a file; the next search finds the new function.
  const samplePath = path.join(FOLDER, "sample.py");
  await page.keyboard.press("Control+p");
  await quickInputBox(page).waitFor({ state: "visible", timeout: 10000 });
  await quickInputBox(page).fill("sample.py");
  await page.locator(".quick-input-widget .monaco-list-row", { hasText: "sample.py" }).first().waitFor({ timeout: 10000 });
  await page.keyboard.press("Enter");
  await poll(async () => ((await page.locator(".tabs-container .tab.active").first().textContent()) || "").includes("sample.py"), 10000);
  await page.locator(".monaco-editor .view-lines").first().click();
  await page.keyboard.press("Control+End");
  await page.keyboard.press("Enter");
  await page.keyboard.type(NEW_FUNCTION, { delay: 5 });
  await page.keyboard.press("Enter");
  await page.keyboard.press("Control+s");
  const saved = await poll(() => fs.readFileSync(samplePath, "utf-8").includes(NEW_FUNCTION), 10000);
  check("the edit was saved to disk", saved);
  const newLine = fs.readFileSync(samplePath, "utf-8").split("\n").findIndex((line) => line.startsWith("def quokka_zebra_checksum")) + 1;
  result.timings.saved = elapsed();
  log("step: saved; searching for the new function");

  await openFindCode(page);
  let fresh = { found: false, moves: 0, focused: "" };
  for (let attempt = 0; attempt < 8 && !fresh.found; attempt++) {
    // Each attempt changes the text a little, so the picker asks the server again.
    await search(page, NEW_FUNCTION + " ".repeat(attempt), 10000);
    fresh = await moveTo(page, "quokka_zebra_checksum");
  }
  result.timings.foundEdit = elapsed();
  log("step: new function found");
  check("a saved edit is found by the next search", fresh.found, fresh.focused);
  if (fresh.found) {
    await page.keyboard.press("Enter");
    const at = await poll(async () => {
      const w = await cursorLine(page);
      return w.line === newLine ? w : false;
    }, 10000);
    check("opening the new function lands on its line", at, `${(at || (await cursorLine(page))).text}, expected Ln ${newLine}`);
  }
  // 5. Retrain on This Workspace: `trainer fit` runs in a terminal task and writes a report; on a folder
  //    this small the report says there are too few pairs, and a modal asks whether to train anyway.
  log("step: retrain");
  await runFromPalette(page, "CodeSieve: Retrain on This Workspace");
  const retrainDialog = page.locator(".monaco-dialog-box", { hasText: "Train Anyway" });
  const asked = await retrainDialog.waitFor({ state: "visible", timeout: 60000 }).then(() => true, () => false);
  const retrainText = asked ? ((await retrainDialog.textContent()) || "").replace(/\s+/g, " ") : "";
  check(
    "Retrain runs trainer fit in a task and acts on its report (too few pairs: train anyway?)",
    asked && /yields \d+ \(description, code\) pairs/.test(retrainText),
    retrainText.slice(0, 300),
  );
  if (asked) await page.keyboard.press("Escape");
  result.timings.retrain = elapsed();

  // 6. A Python without codesieve: setting codesieve.pythonPath in the User settings (this is a remote
  //    window) restarts the server, which cannot start, and a notification says what to fix; its
  //    "Open Settings" shows the setting; putting the right path back brings the server back.
  log("step: bad pythonPath");
  const original = JSON.parse(fs.readFileSync(USER_SETTINGS, "utf-8"))["codesieve.pythonPath"];
  const pythonInput = page.locator(".settings-editor .setting-item-contents", { hasText: "Python Path" }).locator("input").first();
  await runFromPalette(page, "Preferences: Open User Settings");
  await page.locator(".settings-editor").waitFor({ state: "visible", timeout: 15000 });
  await page.waitForTimeout(1000);
  await page.keyboard.type("codesieve.pythonPath", { delay: 10 });
  const inSettings = await pythonInput.waitFor({ state: "visible", timeout: 15000 }).then(() => true, () => false);
  check("the User settings show codesieve.pythonPath", inSettings);
  if (inSettings) {
    await pythonInput.fill("/nonexistent/bin/python3");
    await pythonInput.press("Tab");
    const toast = page.locator(".notifications-toasts .notification-toast", { hasText: "codesieve.pythonPath" }).first();
    const shown = await toast.waitFor({ state: "visible", timeout: 30000 }).then(() => true, () => false);
    const toastText = shown ? ((await toast.textContent()) || "").replace(/\s+/g, " ") : "";
    check(
      "a Python that cannot run gives a notification saying to set codesieve.pythonPath",
      shown && /Set codesieve\.pythonPath/.test(toastText) && toastText.includes("/nonexistent/bin/python3"),
      toastText.slice(0, 200),
    );
    const stopped = await poll(async () => /CodeSieve: stopped/.test(await statusText(page)), 10000);
    check("the status bar shows the server stopped", stopped, await statusText(page));
    if (shown) {
      await screenshot(toast, "vscode-no-python.png");
      await toast.locator(".monaco-button", { hasText: "Open Settings" }).first().click();
      await page.waitForTimeout(1500);
      const found = await pythonInput.waitFor({ state: "visible", timeout: 15000 }).then(() => true, () => false);
      const count = ((await page.locator(".settings-editor .settings-count-widget").textContent().catch(() => "")) || "").trim();
      const noResults = await page.locator(".settings-editor .no-results-message").isVisible().catch(() => false);
      check("its Open Settings shows the codesieve.pythonPath setting", found && !noResults, `${count}; "No Settings Found" shown: ${noResults}`);
    }
    await pythonInput.fill(original);
    await pythonInput.press("Tab");
    const again = await poll(async () => {
      const text = await statusText(page);
      return /CodeSieve: [\d,]+ chunks/.test(text) ? text : false;
    }, 60000);
    check("restoring codesieve.pythonPath restarts the server", again, again || (await statusText(page)));
  }

  const countOf = (text) => Number(((/([\d,]+) chunks/.exec(text) || [])[1] || "0").replace(/,/g, ""));
  const finalStatus = await poll(async () => {
    const text = await statusText(page);
    return countOf(text) > chunks ? text : false;
  }, 15000);
  check("status bar shows the new chunk after the save", finalStatus, `${finalStatus || (await statusText(page))}, was ${chunks}`);
}

/** The README's screenshots, of a real repository (QUERY: what to type in Find Code). */
async function readmeScreenshots(page) {
  await page.mouse.move(5, 5);
  await screenshot(page.locator("#workbench\\.parts\\.statusbar"), "vscode-status-bar.png");
  await page.locator(".part.editor").click({ position: { x: 200, y: 200 } }).catch(() => undefined);
  await openFindCode(page);
  await quickInputBox(page).fill(process.env.QUERY);
  const listed = await poll(async () => /\d+ results? · /.test(await quickTitle(page)), 60000, 100);
  check("Find Code lists results", listed, await quickTitle(page));
  await page.waitForTimeout(1500);
  await page.keyboard.press("ArrowDown"); // a preview of the second hit behind the list
  await page.keyboard.press("ArrowUp");
  await page.waitForTimeout(1500);
  await page.mouse.move(5, 5);
  await screenshot(page, "vscode-find-code.png");
  await page.keyboard.press("Enter");
  await page.waitForTimeout(1500);
  await runFromPalette(page, "CodeSieve: Find Similar Code");
  const similar = await poll(async () => /Similar to .*results?/.test(await quickTitle(page)), 60000);
  check("Find Similar lists results", similar, await quickTitle(page));
  await page.waitForTimeout(1000);
  await page.mouse.move(5, 5);
  await screenshot(page, "vscode-find-similar.png");
  await page.keyboard.press("Escape");
}

/** With no ranker installed: each query gets one list (the test counts the requests in the trace). */
async function discovery(page) {
  await page.locator(".part.editor").click({ position: { x: 200, y: 200 } }).catch(() => undefined);
  await openFindCode(page);
  for (const [index, query] of [FETCH_QUERY, "say hello to a person"].entries()) {
    await quickInputBox(page).fill(query);
    const listed = await poll(async () => {
      const title = await quickTitle(page);
      return /\d+ results?|no results/.test(title) ? title : false;
    }, 30000, 50);
    await page.waitForTimeout(2000); // a second list, if one were coming, would come now
    const title = await quickTitle(page);
    result.notes.push(`query ${index + 1}: ${title}`);
    check(`query ${index + 1} is answered`, listed, title);
    check(`query ${index + 1}'s title does not claim a reranked list`, listed && !/reranked/.test(title), title);
    check(`query ${index + 1}'s title says retrieval only`, listed && /retrieval only/.test(title), title);
  }
  await includeTests(page);
  await page.keyboard.press("Escape");
}

/** The first row's name once it is `name` (the list for a query typed earlier may still show), else after 30 s. */
async function firstRowBecomes(page, name) {
  const first = async () => rowName((await rows(page))[0]);
  return (await poll(async () => (await first()) === name, 30000, 100)) ? name : await first();
}

/**
 * The beaker button in Find Code's title bar: test code ranks after implementation until it is pressed,
 * then like any other code, and the title says so; the choice holds when Find Code opens again.
 */
async function includeTests(page) {
  const button = (icon) => page.locator(`.quick-input-widget .quick-input-titlebar .action-label.codicon-${icon}`).first();
  const tooltip = async (locator) =>
    (await locator.getAttribute("aria-label").catch(() => null)) || (await locator.getAttribute("title").catch(() => null)) || "";
  await quickInputBox(page).fill(TEST_QUERY);
  const before = await firstRowBecomes(page, "check_parse_header");
  const beaker = button("beaker");
  const shown = await beaker.waitFor({ state: "visible", timeout: 10000 }).then(() => true, () => false);
  const offTip = shown ? await tooltip(beaker) : "";
  const titleBefore = await quickTitle(page);
  check(
    "Find Code ranks test code after implementation until the beaker button is pressed",
    shown && before === "check_parse_header" && /ranked after implementation/.test(offTip) && !/tests included/.test(titleBefore),
    `first row ${before}; title ${titleBefore}; button ${shown ? `"${offTip}"` : "not found"}`,
  );
  if (!shown) return;
  await beaker.click();
  const after = await firstRowBecomes(page, "test_parse_header");
  const titleAfter = await quickTitle(page);
  const onTip = await tooltip(button("beaker-stop")).catch(() => "");
  check(
    "pressing the beaker button brings the test function into the results",
    after === "test_parse_header" && /\(tests included\)/.test(titleAfter) && /shown like any other/.test(onTip),
    `first row ${after}; title ${titleAfter}; button "${onTip}"`,
  );
  await page.keyboard.press("Escape");
  await openFindCode(page);
  const reopened = await quickTitle(page);
  check("Find Code opens again with tests included (remembered for the workspace)", /\(tests included\)/.test(reopened), reopened);
}

/** Polls the status bar until `pattern` matches it (recording each text seen), or `timeoutMs` passes. */
async function statusBecomes(page, pattern, timeoutMs) {
  const seen = result.statusTexts;
  return poll(async () => {
    const text = await statusText(page);
    if (text && seen[seen.length - 1] !== text) {
      seen.push(text);
      log(`status bar: ${text}`);
    }
    return pattern.test(text) ? text : false;
  }, timeoutMs, 100);
}

/** A notification's message (its text without the buttons, the source or the list's style sheet). */
async function toastMessage(toast) {
  const message = toast.locator(".notification-list-item-message").first();
  return ((await message.textContent().catch(() => "")) || "").replace(/\s+/g, " ").trim();
}

/** The record of CodeSieve's own environment (codesieve-setup.json) under code-server's user data. */
function setupRecord(folder = USER_DATA, depth = 0) {
  if (depth > 6) return undefined;
  for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isFile() && entry.name === "codesieve-setup.json" && full.includes("codesieve.codesieve")) return full;
    if (entry.isDirectory() && entry.name !== "logs" && entry.name !== "lib") {
      const found = setupRecord(full, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

/** Trusts the folder: the dialog that asks on opening, else CodeSieve's status item and the trust editor. */
async function trustFolder(page) {
  const dialog = page.locator(".monaco-dialog-box", { hasText: "trust" }).first();
  const restricted = await poll(async () => {
    if (await dialog.isVisible().catch(() => false)) return "dialog";
    return statusBecomes(page, /trust this folder/, 1);
  }, 30000, 200);
  if (restricted === "dialog") {
    await dialog.locator(".monaco-button", { hasText: /Yes, I trust/ }).first().click();
    return "the dialog on opening";
  }
  check("in Restricted Mode the status bar says to trust the folder", restricted, await statusText(page));
  await page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "CodeSieve" }).first().click();
  await page.locator(".workspace-trust-editor .monaco-button", { hasText: /^Trust/ }).first().click({ timeout: 15000 });
  return "the trust editor";
}

/**
 * A first run: the folder is trusted, nothing has CodeSieve, so the extension offers to set up its own
 * environment; accepted, it installs the wheel it carries and starts the server from there. Then Find
 * Code; then the environment's record says another wheel (as after an extension update), and a restart
 * installs the carried one over it.
 */
async function firstRun(page) {
  const how = await trustFolder(page);
  check("the folder is trusted", true, `through ${how}`);
  const offer = page.locator(".notifications-toasts .notification-toast", { hasText: "Set up CodeSieve's own environment" }).first();
  const offered = await offer.waitFor({ state: "visible", timeout: 60000 }).then(() => true, () => false);
  const offerText = offered ? await toastMessage(offer) : "";
  check("with no Python that has CodeSieve, the extension offers to set up its own environment", offered, offerText.slice(0, 300) || (await statusText(page)));
  if (!offered) return;
  await screenshot(offer, "vscode-setup-offer.png");
  await offer.locator(".monaco-button", { hasText: "Set Up" }).first().click();

  // codesieve.setup.wheelhouse is an empty folder: pip fails, and the message says what to do
  const failure = page.locator(".notifications-toasts .notification-toast", { hasText: "pip could not install CodeSieve" }).first();
  const failed = await failure.waitFor({ state: "visible", timeout: SETUP_TIMEOUT_MS }).then(() => true, () => false);
  const failureText = failed ? await toastMessage(failure) : "";
  const buttons = failed ? ((await failure.locator(".monaco-button").allTextContents()) || []).join(", ") : "";
  check(
    "a failed install names the log, the wheelhouse setting and Retry",
    failed && /codesieve\.setup\.wheelhouse/.test(failureText) && /Show Log/.test(buttons) && /Open Settings/.test(buttons) && /Retry/.test(buttons),
    `${failureText.slice(0, 300)} [${buttons}]`,
  );
  if (!failed) return;
  await screenshot(failure, "vscode-setup-failed.png");
  // its Open Settings shows the setting, which the user points at a folder with the wheels
  await failure.locator(".monaco-button", { hasText: "Open Settings" }).first().click();
  const wheelhouseInput = page.locator(".settings-editor .setting-item-contents", { hasText: "Wheelhouse" }).locator("input").first();
  const shown = await wheelhouseInput.waitFor({ state: "visible", timeout: 15000 }).then(() => true, () => false);
  check("its Open Settings shows codesieve.setup.wheelhouse", shown);
  if (!shown) return;
  await wheelhouseInput.fill(WHEELHOUSE);
  await wheelhouseInput.press("Tab");
  await poll(() => readJson(USER_SETTINGS)?.["codesieve.setup.wheelhouse"] === WHEELHOUSE, 10000);
  await page.waitForTimeout(1000);
  await runFromPalette(page, "CodeSieve: Set Up Python Environment");
  await statusBecomes(page, /setting up/, 30000);
  const accepted = Date.now(); // the setup's time: from the status bar's "setting up" to its chunk count

  // the progress notification, while it lasts
  const progress = page.locator(".notifications-toasts .notification-toast", { hasText: "setting up its Python environment" }).first();
  const messages = [];
  let shot = false;
  const ready = await poll(async () => {
    if (await progress.isVisible().catch(() => false)) {
      const text = await toastMessage(progress);
      if (text && messages[messages.length - 1] !== text) messages.push(text);
      if (!shot && /installing CodeSieve/.test(text)) {
        shot = true;
        await screenshot(progress, "vscode-setup-progress.png").catch(() => undefined);
      }
    }
    return statusBecomes(page, /CodeSieve: [\d,]+ chunks/, 1);
  }, SETUP_TIMEOUT_MS, 250);
  result.timings.setupSeconds = ((Date.now() - accepted) / 1000).toFixed(1);
  result.notes.push(...messages.map((message) => `progress: ${message}`));
  check("the setup shows its progress", messages.some((m) => /installing CodeSieve and its dependencies/.test(m)), messages.join(" | "));
  check("the server starts from the new environment and reaches ready", ready, ready || result.statusTexts.join(" -> "));
  if (!ready) return;
  log(`setup to ready: ${result.timings.setupSeconds} s`);

  await page.locator(".part.editor").click({ position: { x: 200, y: 200 } }).catch(() => undefined);
  await openFindCode(page);
  await quickInputBox(page).fill(FETCH_QUERY);
  const listed = await poll(async () => /\d+ results?/.test(await quickTitle(page)), 30000, 50);
  check("Find Code answers", listed, await quickTitle(page));
  const target = await moveTo(page, "fetch");
  check("Find Code lists the function whose text was typed", target.found, `${target.focused} after ${target.moves} moves`);
  if (target.found) {
    await page.keyboard.press("Enter");
    const landed = await poll(async () => ((await cursorLine(page)).line === FETCH_LINE ? true : false), 20000);
    check("Enter opens the hit on its line", landed, (await cursorLine(page)).text);
  } else {
    await page.keyboard.press("Escape");
  }

  // An extension update that carries another wheel: the record says the environment holds another one.
  const record = setupRecord();
  check("the environment's record is in the extension's storage", record, record || `nothing under ${USER_DATA}`);
  if (!record) return;
  const installed = JSON.parse(fs.readFileSync(record, "utf-8"));
  fs.writeFileSync(record, JSON.stringify({ ...installed, sha256: "0".repeat(64) }));
  const restarted = Date.now();
  await runFromPalette(page, "CodeSieve: Restart Server");
  const updating = await statusBecomes(page, /setting up/, 30000);
  const again = await statusBecomes(page, /CodeSieve: [\d,]+ chunks/, SETUP_TIMEOUT_MS);
  result.timings.updateSeconds = ((Date.now() - restarted) / 1000).toFixed(1); // from the restart command
  const after = (await poll(() => readJson(record), 10000)) || {};
  check(
    "a restart with another wheel recorded installs the carried one and gets back to ready",
    updating && again && after.sha256 === installed.sha256,
    `${result.statusTexts.slice(-4).join(" -> ")}; record ${after.sha256.slice(0, 12)}, carried ${installed.sha256.slice(0, 12)}`,
  );
}

main().catch((error) => {
  console.error(error);
  result.error = String(error);
  try {
    fs.writeFileSync(RESULT, JSON.stringify(result, null, 2));
  } catch {}
  process.exit(1);
});
