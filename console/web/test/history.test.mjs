// The session page's history panel in Chromium against the real server run
// with --history on a real PostgreSQL: a database of its own, created for
// the run in the server that SESSIOND_TEST_POSTGRES_URL names (with psql)
// and dropped after. Under CI=true a missing PostgreSQL fails the run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { API_KEY, browserSkip, launchChromium, startServer, uniqueSubject, waitFor } from "../../../clients/js/test/harness.mjs";

/** Why the test cannot run here, or false. */
function pgSkip() {
  const ci = process.env.CI === "true" || process.env.CI === "1";
  const why = !process.env.SESSIOND_TEST_POSTGRES_URL
    ? "SESSIOND_TEST_POSTGRES_URL is not set (postgres://user@host:port/db)"
    : spawnSync("psql", ["--version"]).status !== 0
      ? "psql is not installed (apt-get install -y postgresql-client)"
      : false;
  if (why && ci) throw new Error(`CI is set and ${why}: the history browser test must run in CI`);
  return why;
}

const skip = browserSkip() || pgSkip();

/** Runs one SQL statement with psql on the database url names. */
function psql(url, sql) {
  const r = spawnSync("psql", [url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr || r.error}`);
}

let admin; // the server's maintenance URL
let dbName;
let server;
let browser;
let page;
const problems = [];

before(async () => {
  if (skip) return;
  admin = process.env.SESSIOND_TEST_POSTGRES_URL;
  dbName = `sessiond_console_${process.pid}_${Date.now()}`;
  psql(admin, `CREATE DATABASE ${dbName}`);
  const dsn = new URL(admin);
  dsn.pathname = `/${dbName}`;
  server = await startServer({ store: "embedded", args: ["--history", dsn.toString()] });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console: ${msg.text()}`));
  await page.goto(`${server.url}/console`);
  await page.locator("#api-key").fill(API_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (dbName) psql(admin, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
});

const testid = (id) => page.locator(`[data-testid="${id}"]`);

/** Every event of the session's history, read page by page over REST. */
async function historyOf(id) {
  const events = [];
  let cursor;
  do {
    const r = await server.api.sessionHistory(id, cursor ? { cursor } : {});
    events.push(...r.events);
    cursor = r.next_cursor;
  } while (cursor);
  return events;
}

test("the history panel pages through a long history, oldest first, and follows it live", { skip }, async () => {
  const subject = uniqueSubject("history");
  const created = await server.api.create({ subject });
  // 110 connections registered and removed: 221 events, over a page.
  for (let i = 0; i < 110; i++) {
    const c = await server.api.addConnection(created.id, { kind: "vnc", client_ip: "198.51.100.7", user_agent: `vnc-${i}` });
    await server.api.removeConnection(c.connection.id, { closeReason: "closed", closeCode: 1000 });
  }
  await waitFor(async () => (await historyOf(created.id)).length === 221, "the sink to write the 221 events to PostgreSQL", 20_000);

  await page.getByRole("link", { name: "Sessions", exact: true }).click();
  await page.getByLabel("Session id").fill(created.id);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("heading", { name: `Session ${created.id}` }).waitFor();

  // The first page: the oldest 200, created first.
  const items = testid("history").locator("li");
  await waitFor(async () => (await items.count()) === 200, "the history's first page");
  assert.equal(await testid("history-count").innerText(), "200 events, oldest first; later ones recorded");
  assert.match(await items.first().innerText(), /created/);

  // The next page, appended.
  await page.getByRole("button", { name: "Later events →" }).click();
  await waitFor(async () => (await items.count()) === 221, "the history's second page");
  assert.equal(await testid("history-count").innerText(), "221 events, oldest first");
  assert.equal(await page.getByRole("button", { name: "Later events →" }).count(), 0);
  assert.match(await items.last().innerText(), /connection_closed[\s\S]*vnc · close 1000/);

  // Revoked: its ending and end reach the panel without a reload.
  await server.api.revoke(created.id);
  await waitFor(async () => /ended/.test(await items.last().innerText()), "the history to show the session's end", 15_000);
  assert.equal(await testid("history-count").innerText(), "223 events, oldest first");
  assert.deepEqual(problems, []);
});

test("the subject page shows the history of all of the subject's sessions, each linked to its session", { skip }, async () => {
  const subject = uniqueSubject("subject-history");
  const first = await server.api.create({ subject });
  const second = await server.api.create({ subject });
  await server.api.revoke(first.id);
  const recorded = async () => (await server.api.subjectHistory(subject, { since: "1h" })).events.length;
  await waitFor(async () => (await recorded()) === 4, "the sink to write the subject's 4 events to PostgreSQL", 20_000);

  await page.getByRole("link", { name: "Subjects", exact: true }).click();
  await page.getByLabel("Subject").fill(subject);
  await page.getByRole("button", { name: "Open" }).click();
  await page.getByRole("heading", { name: `Subject ${subject}` }).waitFor();
  const items = testid("history").locator("li");
  await waitFor(async () => (await items.count()) === 4, "the subject's history");
  assert.equal(await testid("history-count").innerText(), "4 events, oldest first");
  const texts = await items.allInnerTexts();
  assert.match(texts[0], new RegExp(`created[\\s\\S]*${first.id}`));
  assert.match(texts[1], new RegExp(`created[\\s\\S]*${second.id}`));
  assert.match(texts[3], new RegExp(`ended[\\s\\S]*${first.id}`));

  // Another window, and a new session arriving live.
  await page.getByLabel("Events of").selectOption({ label: "the last hour" });
  await waitFor(async () => (await items.count()) === 4, "the last hour's history");
  const third = await server.api.create({ subject });
  await waitFor(async () => (await items.count()) === 5, "the new session's created event", 15_000);
  assert.match(await items.last().innerText(), new RegExp(`created[\\s\\S]*${third.id}`));

  // Each event links to its session.
  await items.nth(1).getByRole("link", { name: second.id }).click();
  await page.getByRole("heading", { name: `Session ${second.id}` }).waitFor();
  assert.deepEqual(problems, []);
});
