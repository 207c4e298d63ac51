// The README's example is examples/quickstart.mjs, and it runs against the
// server as the README says.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { API_KEY, JWT_SECRET, packageRoot, startServer } from "./harness.mjs";

test("the README shows examples/quickstart.mjs as it is", () => {
  const readme = readFileSync(join(packageRoot, "README.md"), "utf8");
  const example = readFileSync(join(packageRoot, "examples/quickstart.mjs"), "utf8");
  const m = readme.match(/<!-- example: examples\/quickstart\.mjs -->\n```js\n([\s\S]*?)```\n/);
  assert.ok(m, "the README has the example block");
  assert.equal(m[1], example);
});

test("examples/quickstart.mjs runs against the server: a session, a socket, a revoke", async () => {
  const server = await startServer();
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ["examples/quickstart.mjs"], {
      cwd: packageRoot,
      env: { ...process.env, SESSIOND_URL: server.url, SESSIOND_API_KEY: API_KEY, SESSIOND_JWT_SECRET: JWT_SECRET },
      timeout: 30_000,
    });
    const lines = stdout.trim().split("\n");
    const id = lines[0].match(/^session (\S+): active$/)?.[1];
    assert.ok(id, lines[0]);
    assert.deepEqual(lines.slice(1), [
      "socket: connecting",
      "socket: connected",
      `attached to ${id}, resumed true`,
      'answer: {"type":"error","code":"unknown_type","message":"unknown message type \\"hello\\"","re":"hello"}',
      "socket: disconnected 4500",
      "socket: stopped",
      "stopped: websocket closed with code 4500 (session revoked)",
      "validate: 410 session_ended",
    ]);
    assert.equal((await server.api.get(id)).end_reason, "revoked");
  } finally {
    await server.stop();
  }
});
