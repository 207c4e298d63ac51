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

test("over the standard WebSocket: attach by message, a message round trip, revoke gives 4500 and stopped; a refused handshake is retried", async () => {
  const server = await startServer();
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
