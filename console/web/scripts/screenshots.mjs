// Saves a PNG of each page of the console into docs/console/: the real
// server (built from this repository, the embedded store in a temporary
// directory) with some demo data, in Debian's chromium.
//
//   cd clients/js && npm ci && npm run build     # the harness comes from there
//   cd console/web && npm run screenshots   # builds the server first
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { API_KEY, findChromium, launchChromium, repoRoot, signJwt, startServer } from "../../../clients/js/test/harness.mjs";

if (!findChromium()) throw new Error("no chromium: apt-get install -y chromium, or set CHROMIUM_PATH");
const out = join(repoRoot, "docs/console");
mkdirSync(out, { recursive: true });

const config = `
default_policy: web
policies:
  web:
    ttl: 720h
    idle_timeout: 24h
  device:
    ttl: 24h
    disconnect_grace: 30s
    max_connections: 1
    on_connect: replace
  workspace:
    ttl: 12h
    idle_timeout: 2h
    hibernate_after: 30m
`;
const server = await startServer({ store: "embedded", config, args: ["--node", "node-a"] });
const api = server.api;
const sockets = [];

/** A WebSocket attached to a session created over REST, kept open. */
function attach(subject, token, userAgent) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/v1/connect`, {
      headers: { authorization: `Bearer ${signJwt(subject)}`, "x-session-token": token, "user-agent": userAgent },
    });
    ws.once("message", () => resolve(ws));
    ws.once("error", reject);
    sockets.push(ws);
  });
}

/** A device's WebSocket: its session is created by the connection. */
function device(subject, id) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/v1/connect?device_id=${id}`, {
      headers: { authorization: `Bearer ${signJwt(subject)}`, "user-agent": "GlassesOS/3.2 (sessiond-client)" },
    });
    ws.once("message", (m) => resolve(JSON.parse(m.toString())));
    ws.once("error", reject);
    sockets.push(ws);
  });
}

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

async function demoData() {
  const alice = await api.create({
    subject: "alice@example.com",
    device: { id: "laptop-7", type: "browser", name: "Firefox on Linux", ip: "203.0.113.7", user_agent: firefox },
    metadata: { plan: "pro", tenant: "acme", roles: ["admin", "billing"] },
  });
  await attach("alice@example.com", alice.token, firefox);
  await api.addConnection(alice.id, { kind: "http", client_ip: "203.0.113.7", user_agent: "acme-sync/2.4" });
  await api.create({ subject: "alice@example.com", device: { id: "phone-2", type: "ios", name: "Safari on iPhone", user_agent: safari }, metadata: { plan: "pro" } });
  const bob = await api.create({ subject: "bob", device: { id: "ws-12", type: "desktop", name: "Workstation 12" } });
  await api.addConnection(bob.id, { kind: "vnc", client_ip: "10.0.0.7", user_agent: "TigerVNC/1.13.1" });
  await device("carol", "glasses-1");
  await device("dave", "glasses-4");
  const ws = await api.create({ subject: "erin", policy: "workspace", device: { id: "ws-erin", type: "workspace", name: "erin's workspace" } });
  await api.hibernate(ws.id).catch(() => {});
  const old = await api.create({ subject: "frank", device: { id: "kiosk-3", type: "kiosk", name: "Lobby kiosk" } });
  await api.revoke(old.id);
  for (let i = 1; i <= 6; i++) await api.create({ subject: `user-${100 + i}`, metadata: { source: "signup" } });
  const grace = await api.create({ subject: "grace" });
  await api.revoke(grace.id);
  return alice;
}

const alice = await demoData();
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const shot = async (name, fullPage = false) => {
  await page.waitForTimeout(400); // the last reloads after events settle
  await page.screenshot({ path: join(out, `${name}.png`), fullPage });
  console.log(`docs/console/${name}.png`);
};
try {
  await page.goto(`${server.url}/console`);
  await page.locator("#api-key").waitFor();
  await shot("login");
  await page.locator("#api-key").fill(API_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('[data-testid="stream-status"].stream-live').waitFor();
  // Some traffic while the overview is open: the live events and the rate.
  for (let i = 0; i < 14; i++) {
    const s = await api.create({ subject: `user-${200 + i}`, device: { id: `d${i}`, type: "browser" } });
    if (i % 3 === 0) await api.revoke(s.id);
    await new Promise((r) => setTimeout(r, 180 + (i % 4) * 120));
  }
  await shot("overview");
  await page.getByRole("link", { name: "Sessions", exact: true }).click();
  await page.locator('[data-testid="sessions"]').waitFor();
  await shot("sessions");
  await page.goto(`${server.url}/console/sessions/${alice.id}`).catch(() => {});
  // A reload asks for the key again.
  await page.locator("#api-key").fill(API_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('[data-testid="connections"]').waitFor();
  await api.rotate(alice.id);
  await api.validate("sd_not-a-token").catch(() => {});
  await page.locator('[data-testid="timeline"]').waitFor();
  await shot("session", true);
  await page.locator(".page-sub a").first().click();
  await page.getByRole("heading", { name: "Subject alice@example.com" }).waitFor();
  await page.getByRole("button", { name: "Revoke all" }).click();
  await page.getByRole("dialog").waitFor();
  await shot("subject");
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.getByRole("link", { name: "Nodes", exact: true }).click();
  await page.locator('[data-testid="nodes"]').waitFor();
  await shot("nodes");
} finally {
  for (const ws of sockets) ws.close();
  await browser.close();
  await server.stop();
}
