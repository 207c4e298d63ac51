// The client over the standard WebSocket, as in browsers and on Node 22+
// (its global WebSocket): the JWT in ?token=, the session token in the
// attach message, application pings. On Node 20 the global WebSocket is
// behind --experimental-websocket, so the scenario runs in a child Node.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { API_KEY, packageRoot, startServer } from "./harness.mjs";

const config = `
default_policy: web
policies:
  web:
    ttl: 1h
    idle_timeout: 30m
    heartbeat_interval: 300ms
    heartbeat_timeout: 900ms
`;

test("over the standard WebSocket: attach by message, application pings keep it alive, a message round trip, revoke gives 4500 and stopped; a refused handshake is retried", async () => {
  const server = await startServer({ config });
  try {
    const flags = typeof globalThis.WebSocket === "function" ? [] : ["--experimental-websocket", "--no-warnings"];
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, join(packageRoot, "test/fixtures/standard-websocket.mjs")], {
      env: { ...process.env, SERVER_URL: server.url, API_KEY },
      timeout: 30_000,
    });
    const out = JSON.parse(stdout);
    assert.equal(out.globalWebSocket, "function");
    assert.equal(out.attached, out.sessionId);
    assert.equal(out.connectionKind, "websocket");
    // 2.5 heartbeat timeouts without a disconnect: the pongs to its pings
    // kept it from taking the server for silent.
    assert.equal(out.heartbeatTimeout, 900);
    assert.deepEqual(out.quietEvents, ["connecting", "connected"]);
    assert.ok(out.pingsSent >= 4, `${out.pingsSent} pings in 2.25 s at one per 300 ms`);
    assert.deepEqual([out.answer.type, out.answer.code, out.answer.re], ["error", "unknown_type", "hello"]);
    assert.deepEqual(out.stop, { name: "CloseError", code: 4500 });
    assert.deepEqual(out.events, [{ state: "connecting" }, { state: "connected" }, { state: "disconnected", code: 4500 }, { state: "stopped" }]);
    assert.match(out.refused, /aborted|timeout/i);
    assert.match(out.refused, /last attempt/);
    assert.ok(out.retries >= 2, `retried ${out.retries} times`);
  } finally {
    await server.stop();
  }
});
