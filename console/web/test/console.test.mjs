// The console in Chromium (Debian's, driven by playwright-core) against the
// real server, built from this repository with the console embedded: the
// page as the server serves it at /console, its API calls and event stream
// to the same server, and a real WebSocket from Node. Nothing is mocked.
//
// The harness (server, JWTs, chromium) is the JS client's: build that
// package first (cd clients/js && npm ci && npm run build).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { API_KEY, browserSkip, launchChromium, signJwt, startServer, uniqueSubject, waitFor } from "../../../clients/js/test/harness.mjs";

const skip = browserSkip();

let server;
let browser;
let page;
/** What the page logged as errors: CSP violations among them. */
const problems = [];
/** The answers the page got that were not 2xx, as "401 /v1/stats". */
const refused = new Set();

before(async () => {
  if (skip) return;
  server = await startServer({ store: "embedded" });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    // A failed load is an answer of the API that the page shows: counted below.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) problems.push(`console: ${msg.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) {
      const path = new URL(r.url()).pathname.replace(/\/sessions\/[^/]+\//, "/sessions/{id}/").replace(/\/subjects\/[^/]+\//, "/subjects/{subject}/");
      refused.add(`${r.status()} ${path}`);
    }
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const testid = (id) => page.locator(`[data-testid="${id}"]`);

async function signIn(key) {
  await page.locator("#api-key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}

test("a wrong key is refused with the API's code and message, and the form stays", { skip }, async () => {
  await page.goto(`${server.url}/console`);
  await signIn("not-the-key-0123456789abcdef0123456789");
  const err = page.getByRole("alert");
  await err.waitFor();
  assert.match(await err.innerText(), /Sign-in refused: unauthorized missing or wrong API key/);
  assert.equal(await page.locator("#api-key").count(), 1);
  assert.equal(await page.locator(".shell").count(), 0);
});

test("sign in: the overview, its counts and the live event stream", { skip }, async () => {
  await signIn(API_KEY);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await page.locator('[data-testid="stream-status"].stream-live').waitFor();
  await page.getByText("this node").first().waitFor(); // the nodes panel: this server
  // The key is in the tab's memory only.
  const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
  assert.deepEqual(stored, { local: 0, session: 0, cookie: "" });
});

test("a session created over REST appears live; found by subject; its WebSocket shows; revoked with confirmation", { skip }, async () => {
  const subject = uniqueSubject("console");
  // Text from users is shown as text, never as HTML.
  const created = await server.api.create({
    subject,
    device: { id: "glasses-1", name: "<img src=x id=injected>" },
    metadata: { note: "<script>window.pwned=1</script>" },
  });

  // The overview lists it as it happens, without a reload.
  await testid("recent-events").getByText(subject).first().waitFor();

  // The sessions page, searched by subject.
  await page.getByRole("link", { name: "Sessions", exact: true }).click();
  await page.getByLabel("Subject").fill(subject);
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator(`tr[data-session="${created.id}"]`).waitFor();
  assert.match(page.url(), new RegExp(`/console/sessions\\?subject=${subject}$`));
  // Another session of the subject shows up on this page live.
  const second = await server.api.create({ subject });
  await page.locator(`tr[data-session="${second.id}"]`).waitFor();

  // Its page: fields, no connection yet, and no history on this server.
  await page.locator(`tr[data-session="${created.id}"] a.mono`).click();
  await page.getByRole("heading", { name: `Session ${created.id}` }).waitFor();
  await testid("history-off").waitFor();
  assert.equal(await testid("history-off").innerText(), "History is not configured");
  assert.match(await testid("session-fields").innerText(), new RegExp(subject));
  await page.getByText("<script>window.pwned=1</script>").waitFor();
  await page.getByText("<img src=x id=injected>").waitFor();
  assert.equal(await page.locator("#injected").count(), 0);
  assert.equal(await page.evaluate(() => window.pwned), undefined);

  // A WebSocket attached to it from Node shows as a connection, live.
  const ws = new WebSocket(`${server.wsUrl}/v1/connect`, {
    headers: { authorization: `Bearer ${signJwt(subject)}`, "x-session-token": created.token, "user-agent": "console-test/1" },
  });
  const closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  const ack = await new Promise((resolve, reject) => {
    ws.once("message", (data) => resolve(JSON.parse(data.toString())));
    ws.once("error", reject);
  });
  assert.equal(ack.type, "connected");
  assert.equal(ack.session_id, created.id);
  const row = page.locator(`tr[data-connection="${ack.connection_id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /websocket[\s\S]*console-test\/1/);

  // Revoke, confirmed in the dialog.
  await page.getByRole("button", { name: "Revoke", exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /Revoke this session\?/);
  await dialog.getByRole("button", { name: "Revoke session" }).click();

  // The socket closes with the terminal code; the page shows the session
  // revoked and its connection gone.
  const close = await closed;
  assert.equal(close.code, 4500, `close code ${close.code} (${close.reason})`);
  await page.locator('h1 ~ .page-sub [data-state="ended"]').waitFor();
  assert.match(await page.locator(".page-sub").innerText(), /ended · revoked/);
  await row.waitFor({ state: "detached" });
  await page.getByText("No live connections.").waitFor();
  assert.equal((await server.api.get(created.id)).state, "ended");
  assert.equal((await server.api.get(second.id)).state, "active");
});

test("the subject page revokes all of a subject's sessions, after confirmation", { skip }, async () => {
  const subject = uniqueSubject("console-all");
  const a = await server.api.create({ subject });
  const b = await server.api.create({ subject });
  await page.goto(`${server.url}/console/subjects/${subject}`); // a reload: sign in again
  await signIn(API_KEY);
  await page.locator(`tr[data-session="${a.id}"]`).waitFor();
  await page.locator(`tr[data-session="${b.id}"]`).waitFor();
  await testid("history-off").waitFor(); // this server keeps no history
  await page.getByRole("button", { name: "Revoke all" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke 2 sessions" }).click();
  await page.getByRole("status").getByText("Revoked 2 sessions.").waitFor();
  await page.getByText("No sessions match.").waitFor();
  await waitFor(async () => (await server.api.get(a.id)).state === "ended" && (await server.api.get(b.id)).state === "ended", "both ended");
});

test("the nodes page lists this node with its lease and connections", { skip }, async () => {
  await page.getByRole("link", { name: "Nodes", exact: true }).click();
  const table = testid("nodes");
  await table.waitFor();
  assert.match(await table.innerText(), /this node[\s\S]*alive/);
});

test("a reload forgets the key: the login form again", { skip }, async () => {
  await page.reload();
  await page.locator("#api-key").waitFor();
  assert.equal(await page.locator(".shell").count(), 0);
  // And the API refuses what is not signed: no key was kept anywhere.
  const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
  assert.deepEqual(stored, { local: 0, session: 0, cookie: "" });
});

test("a 401 from the API (the server restarted with another key) sends the tab back to the login form", { skip }, async () => {
  const other = await startServer({ store: "embedded" });
  const tab = await browser.newPage();
  try {
    await tab.goto(`${other.url}/console/sessions`);
    await tab.locator("#api-key").fill(API_KEY);
    await tab.getByRole("button", { name: "Sign in" }).click();
    await tab.locator('[data-testid="stream-status"].stream-live').waitFor();
    await other.stop();
    const again = await startServer({ store: "embedded", addr: `127.0.0.1:${other.port}`, dataDir: other.dataDir, args: ["--api-key", `${API_KEY}-rotated`] });
    try {
      // The event stream reconnects, or the next call is made: either is refused.
      await tab.getByRole("link", { name: "Overview" }).click({ timeout: 2000 }).catch(() => {});
      await tab.locator("#api-key").waitFor();
      assert.match(await tab.locator(".notice").innerText(), /refused the API key \(401 unauthorized\): sign in again/);
    } finally {
      await again.stop();
    }
  } finally {
    await tab.close();
  }
});

test("the page ran without errors or CSP violations, and the API refused only what the tests made it", { skip }, () => {
  assert.deepEqual(problems, []);
  // The wrong key, and the history of a server without one.
  assert.deepEqual([...refused].sort(), ["401 /v1/stats", "404 /v1/sessions/{id}/history", "404 /v1/subjects/{subject}/history"]);
});
