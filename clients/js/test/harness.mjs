// The test harness: the real sessiond server, built from this repository
// and run as a child process on 127.0.0.1:0 (or a given port), and HS256
// credentials signed with its --jwt-secret. Nothing of the server is
// mocked.
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SessiondClient } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
export const packageRoot = resolve(here, "..");
export const repoRoot = resolve(packageRoot, "../..");
export const JWT_SECRET = "a-test-secret-of-at-least-32-bytes!!";
export const API_KEY = "test-api-key-0123456789abcdef0123456789abcdef";
const defaultBinary = join(packageRoot, "node_modules/.cache/sessiond-test/sessiond");

/**
 * Builds the server into node_modules/.cache (go build is incremental) and
 * returns its path. `flags` go to go build: CI passes -race, which reuses
 * what go test -race compiled and checks the server for races meanwhile.
 */
export function buildServer(flags = []) {
  mkdirSync(dirname(defaultBinary), { recursive: true });
  execFileSync("go", ["build", ...flags, "-o", defaultBinary, "./cmd/sessiond"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  return defaultBinary;
}

/** The server binary: $SESSIOND_BIN, or the one scripts/build-server.mjs built (built now if missing). */
export function serverBinary() {
  if (process.env.SESSIOND_BIN) return process.env.SESSIOND_BIN;
  if (!existsSync(defaultBinary)) buildServer();
  return defaultBinary;
}

/** A fresh temporary directory, removed at exit. */
export function tempDir(prefix = "sessiond-js-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts `sessiond serve` and resolves once it announced its address in
 * its JSON log ("sessiond listening", with its url).
 *
 * @param {{store?: string, dataDir?: string, addr?: string, config?: string, args?: string[]}} [o]
 *   store: "memory" (default) or "embedded"; config: YAML written to a file and passed with --config.
 */
export async function startServer(o = {}) {
  const dataDir = o.dataDir ?? tempDir("sessiond-data-");
  const args = [
    "serve",
    "--addr", o.addr ?? "127.0.0.1:0",
    "--store", o.store ?? "memory",
    "--data-dir", dataDir,
    "--api-key", API_KEY,
    "--jwt-secret", JWT_SECRET,
    "--log-format", "json",
    "--access-log=false",
    "--min-free-space", "0",
  ];
  if (o.config) {
    const file = join(tempDir("sessiond-config-"), "sessiond.yaml");
    writeFileSync(file, o.config);
    args.push("--config", file);
  }
  args.push(...(o.args ?? []));
  const child = spawn(serverBinary(), args, { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" } });
  const logs = [];
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sessiond did not announce its address within 20s:\n${logs.join("\n")}`));
    }, 20_000);
    let buf = "";
    const onData = (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        if (process.env.SESSIOND_TEST_LOGS) console.error(`[sessiond] ${line}`);
        try {
          const rec = JSON.parse(line);
          if (rec.msg === "sessiond listening" && typeof rec.url === "string") {
            clearTimeout(timer);
            resolve(rec.url);
          }
        } catch {
          // the text banner
        }
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`sessiond exited (${code ?? signal}) before listening:\n${logs.join("\n")}`));
    });
  });
  const port = Number(new URL(url).port);
  let stopped = false;
  const server = {
    url,
    wsUrl: url.replace(/^http/, "ws"),
    port,
    dataDir,
    logs,
    api: new SessiondClient({ baseUrl: url, apiKey: API_KEY }),
    /**
     * Stops the server gracefully (SIGTERM: its sockets get 1001), waits
     * for it to exit, and fails unless it exited 0 (a server built with
     * -race that saw a data race exits 66).
     */
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const { code, signal } = await exited;
      clearTimeout(t);
      if (code !== 0) throw new Error(`sessiond exited with ${code ?? signal} on SIGTERM:\n${logs.slice(-50).join("\n")}`);
    },
    /** Freezes (SIGSTOP) or thaws (SIGCONT) the server process. */
    pause: () => child.kill("SIGSTOP"),
    resume: () => child.kill("SIGCONT"),
  };
  process.on("exit", () => {
    if (!stopped) child.kill("SIGKILL");
  });
  return server;
}

/** An HS256 JWT for `subject`, valid for `ttlSeconds`, signed with the server's secret. */
export function signJwt(subject, ttlSeconds = 3600, now = Date.now()) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const iat = Math.floor(now / 1000);
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub: subject, iat, exp: iat + ttlSeconds });
  const sig = createHmac("sha256", JWT_SECRET).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/**
 * A token source for `subject` that counts its calls: `source` is what
 * connect takes, `calls()` how many credentials it handed out.
 */
export function countingTokens(subject) {
  let calls = 0;
  return {
    source: () => {
      calls++;
      return signJwt(subject);
    },
    calls: () => calls,
  };
}

/** Debian's chromium for the browser tests, or $CHROMIUM_PATH; undefined if there is none. */
export function findChromium() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      const p = execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
      if (p) return p;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/**
 * The `skip` option of a browser test: false when chromium is installed,
 * else the reason. Under CI=true a missing chromium throws instead: the
 * browser tests must run in CI.
 */
export function browserSkip() {
  if (findChromium()) return false;
  if (process.env.CI === "true" || process.env.CI === "1") {
    throw new Error("CI is set and no chromium is installed (apt-get install -y chromium, or set CHROMIUM_PATH): the browser tests must run in CI");
  }
  return "chromium is not installed (apt-get install -y chromium); set CI=true to make this a failure";
}

/** Launches headless chromium (findChromium's) with playwright-core. */
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: findChromium(), headless: true, args: ["--no-sandbox", "--disable-gpu"] });
}

/** A subject no other test uses (the server limits connects per subject). */
let n = 0;
export function uniqueSubject(prefix = "user") {
  return `${prefix}-${process.pid}-${++n}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Resolves when `pred()` is truthy, polling; rejects after `timeoutMs` with `what`. */
export async function waitFor(pred, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Records a socket's state events; `next(state)` resolves at the next one of that state not yet taken. */
export function recorder() {
  const events = [];
  const waiters = [];
  let taken = 0;
  return {
    events,
    onState(ev) {
      events.push(ev);
      for (const w of waiters.splice(0)) w();
    },
    states: () => events.map((e) => e.state),
    /** The next event in `states` after the last one returned by next. */
    async next(state, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let i = taken; i < events.length; i++) {
          if (events[i].state === state) {
            taken = i + 1;
            return events[i];
          }
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no "${state}" event within ${timeoutMs} ms; events: ${JSON.stringify(events.map((e) => e.state))}`);
        await new Promise((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  };
}
