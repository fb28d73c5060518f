// Browser smoke test for the chatbot web page (crates/chat/web/index.html).
//
// Launches headless Chromium, drives it over the Chrome DevTools Protocol
// (Node standard library + the global WebSocket only, no npm packages), types
// <message> into the page with the keyboard, presses Enter, waits for the bot's
// reply (or an error), saves a PNG screenshot and prints one JSON line:
//   {"reply", "intent", "action", "error", "activeElementId", "labelled"}
// Exit status: 0 if a reply arrived without an error, 1 otherwise.
//
// Run:  node --experimental-websocket tests/browser/chat_page.mjs <page-url> <screenshot.png> <message>
// Env:  CHROMIUM=/path/to/chromium (default: `chromium` on PATH)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, shotPath, message] = process.argv.slice(2);
if (!url || !shotPath || !message) {
  console.error("usage: node --experimental-websocket chat_page.mjs <page-url> <screenshot.png> <message>");
  process.exit(2);
}
if (typeof WebSocket === "undefined") {
  console.error("error: global WebSocket missing; run node with --experimental-websocket (Node 20)");
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const profileDir = mkdtempSync(join(tmpdir(), "chat-page-chromium-"));
let browser = null; // ChildProcess
let ws = null;

// Synchronous last-resort cleanup (also runs on process exit); safe to call repeatedly.
function cleanupSync() {
  try { ws?.close(); } catch {}
  if (browser && browser.exitCode === null && browser.signalCode === null) {
    try { browser.kill("SIGKILL"); } catch {}
  }
  // Chromium's helper processes may still be writing the profile for a moment.
  for (let i = 0; i < 20; i++) {
    try { rmSync(profileDir, { recursive: true, force: true }); return; } catch {}
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100); // sleep 100 ms
  }
  console.error(`warning: could not remove ${profileDir}`);
}

// Close the browser politely, give it up to 3 s to exit, then remove the profile.
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    try { ws?.close(); } catch {}
    if (browser && browser.exitCode === null && browser.signalCode === null) {
      const exited = new Promise((r) => browser.once("exit", r));
      browser.kill("SIGTERM");
      await Promise.race([exited, sleep(3000)]);
    }
    cleanupSync();
  })();
  return cleaning;
}

function bail(message, code) {
  console.error(message);
  cleanup().finally(() => process.exit(code));
}
process.on("exit", cleanupSync);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => bail(`error: interrupted by ${sig}`, 130));
setTimeout(() => bail("error: overall 60 s timeout exceeded", 1), 60_000).unref();

// Start Chromium and resolve with the browser's DevTools WebSocket URL.
function launchChromium() {
  const bin = process.env.CHROMIUM || "chromium";
  browser = spawn(bin, [
    "--headless=new", "--remote-debugging-port=0", `--user-data-dir=${profileDir}`,
    "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--no-sandbox",
    "--window-size=1000,800", "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    let stderr = "";
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(stderr ? `${why}\n--- chromium stderr ---\n${stderr}` : why));
    };
    const timer = setTimeout(() => fail("no 'DevTools listening on' line from chromium within 20 s"), 20_000);
    browser.on("error", (e) => fail(`cannot start ${bin}: ${e.message}`));
    browser.on("exit", (code, sig) => fail(`chromium exited early (code ${code}, signal ${sig})`));
    browser.stderr.setEncoding("utf8");
    browser.stderr.on("data", (chunk) => {
      stderr += chunk;
      const m = stderr.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
}

// Minimal CDP client: send(method, params, sessionId) -> Promise<result>.
async function connect(wsUrl) {
  ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot connect to DevTools at ${wsUrl}`));
  });
  let nextId = 1;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    const p = msg.id !== undefined && pending.get(msg.id);
    if (!p) return; // events are not needed
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
    else p.resolve(msg.result);
  };
  ws.onclose = () => { for (const p of pending.values()) p.reject(new Error("DevTools connection closed")); };
  return (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, method });
    ws.send(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }));
  });
}

// Poll `fn` every 100 ms until it returns a truthy value; errors count as "not yet".
async function waitFor(what, timeoutMs, fn) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try { if (await fn()) return; } catch {}
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

const READ_RESULT = `(() => {
  const bots = document.querySelectorAll('.msg.bot[data-intent]');
  const last = bots[bots.length - 1];
  const err = document.querySelector('.msg.error');
  const replyEl = last && (last.querySelector('.reply') || last.firstChild);
  return {
    reply: replyEl ? replyEl.textContent : null,
    intent: last ? last.dataset.intent : null,
    action: last ? last.dataset.action : null,
    error: err ? err.textContent : null,
    activeElementId: document.activeElement ? document.activeElement.id : null,
    labelled: !!document.querySelector('label[for=message]'),
  };
})()`;

async function main() {
  const send = await connect(await launchChromium());
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const page = (method, params) => send(method, params, sessionId);
  const evaluate = async (expression) => {
    const r = await page("Runtime.evaluate", { expression, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`page exception: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  };

  await page("Page.enable");
  await page("Runtime.enable");
  const nav = await page("Page.navigate", { url });
  if (nav.errorText) throw new Error(`cannot load ${url}: ${nav.errorText}`);
  await waitFor("the page to set body.dataset.ready", 15_000,
    () => evaluate(`document.body && document.body.dataset.ready === "1"`));

  // Type the message and press Enter, like a keyboard user.
  await evaluate(`document.getElementById('message').focus()`);
  await page("Input.insertText", { text: message });
  const enter = { key: "Enter", code: "Enter", windowsVirtualKeyCode: 13 };
  await page("Input.dispatchKeyEvent", { type: "keyDown", ...enter, text: "\r" });
  await page("Input.dispatchKeyEvent", { type: "keyUp", ...enter });

  await waitFor("a bot reply or an error message", 20_000,
    () => evaluate(`!!document.querySelector('.msg.bot[data-intent], .msg.error')`));
  const result = await evaluate(READ_RESULT);

  const { data } = await page("Page.captureScreenshot", { format: "png" });
  writeFileSync(shotPath, Buffer.from(data, "base64"));

  console.log(JSON.stringify(result));
  if (result.error !== null) throw new Error(`the page showed an error: ${result.error}`);
  if (result.reply === null) throw new Error("no bot reply found");
}

let status = 0;
try {
  await main();
} catch (e) {
  console.error(`error: ${e.message}`);
  status = 1;
} finally {
  await cleanup();
}
process.exit(status);
