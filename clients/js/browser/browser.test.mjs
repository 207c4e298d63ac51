// The client in Chromium (Debian's, driven by playwright-core): the built
// ESM bundle loaded by a page, against the real server. Browsers cannot set
// headers on a WebSocket: the JWT goes in ?token= and the session token in
// the attach message.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { after, before, test } from "node:test";
import { browserSkip, launchChromium, packageRoot, signJwt, startServer, uniqueSubject, waitFor } from "../test/harness.mjs";

const skip = browserSkip();

let server;
let pages;
let browser;
let page;
before(async () => {
  if (skip) return;
  server = await startServer();
  pages = await serveStatic();
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.exposeFunction("signJwt", (subject) => signJwt(subject));
  await page.goto(`${pages.url}/browser/page.html`);
  await page.waitForFunction(() => window.loaded === true);
});
after(async () => {
  await browser?.close();
  await new Promise((r) => (pages ? pages.server.close(r) : r()));
  await server?.stop();
});

/** Serves the package's files (dist/ and browser/) over HTTP, as a web server would. */
async function serveStatic() {
  const types = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };
  const srv = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    const file = join(packageRoot, path);
    if (!(path.startsWith("/dist/") || path.startsWith("/browser/")) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { server: srv, url: `http://127.0.0.1:${srv.address().port}` };
}

/** Opens a socket in the page; its events and messages are recorded in window.runs[name]. */
function openInPage(name, options) {
  return page.evaluate(
    async ({ name, options }) => {
      const run = { events: [], messages: [] };
      (window.runs ??= {})[name] = run;
      const socket = await window.sessiond.connect({
        ...options,
        token: () => window.signJwt(options.subject),
        onState: (e) =>
          run.events.push({
            state: e.state,
            code: e.code,
            resumed: e.resumed,
            waking: e.waking,
            sessionId: e.sessionId,
            error: e.error && { name: e.error.name, code: e.error.code },
          }),
        onMessage: (m) => run.messages.push(m),
      });
      run.socket = socket;
      return { sessionId: socket.sessionId, resumed: socket.resumed, sessionToken: socket.sessionToken };
    },
    { name, options },
  );
}

const run = (name) => page.evaluate((name) => ({ events: window.runs[name].events, messages: window.runs[name].messages }), name);

test("attach by message to a REST session, a message round trip, then revoke: 4500 and stopped", { skip }, async () => {
  const subject = uniqueSubject("browser");
  const created = await server.api.create({ subject });
  const opened = await openInPage("revoke", { url: server.wsUrl, subject, sessionToken: created.token });
  assert.equal(opened.sessionId, created.id);
  assert.equal(opened.resumed, true);

  // The connection is the browser's.
  const [conn] = await server.api.connections(created.id);
  assert.equal(conn.kind, "websocket");
  assert.match(conn.user_agent ?? "", /Chrome/);

  // A message the server does not know comes back as an error message.
  await page.evaluate(() => window.runs.revoke.socket.send({ type: "hello" }));
  await waitFor(async () => (await run("revoke")).messages.length > 0, "the answer to hello");
  const { messages } = await run("revoke");
  assert.deepEqual([messages[0].type, messages[0].code, messages[0].re], ["error", "unknown_type", "hello"]);
  await page.evaluate(() => window.runs.revoke.socket.ping());

  await server.api.revoke(created.id);
  await waitFor(async () => (await run("revoke")).events.some((e) => e.state === "stopped"), "stopped in the page");
  const { events } = await run("revoke");
  assert.deepEqual(events.map((e) => e.state), ["connecting", "connected", "disconnected", "stopped"]);
  assert.equal(events[2].code, 4500);
  assert.deepEqual(events[3].error, { name: "CloseError", code: 4500 });
  // No reconnect follows.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await run("revoke")).events.length, 4);
});

test("device mode: a new session, then the same one resumed by the next socket", { skip }, async () => {
  const subject = uniqueSubject("browser-device");
  const first = await openInPage("device1", { url: server.wsUrl, subject, deviceId: "tab-1" });
  assert.equal(first.resumed, false);
  assert.match(first.sessionToken ?? "", /^sd_/);
  await page.evaluate(() => window.runs.device1.socket.close());
  const { events } = await run("device1");
  assert.deepEqual(events.map((e) => e.state), ["connecting", "connected", "disconnected", "stopped"]);
  assert.equal(events[3].error.name, "ClosedError");

  const second = await openInPage("device2", { url: server.wsUrl, subject, deviceId: "tab-1" });
  assert.equal(second.sessionId, first.sessionId);
  assert.equal(second.resumed, true);
  await page.evaluate(() => window.runs.device2.socket.close());
  assert.equal((await server.api.get(first.sessionId)).device?.id, "tab-1");
});
