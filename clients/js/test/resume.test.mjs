// Losing the server and getting the same session back: a restart on the
// same port and data directory (the embedded store keeps the session),
// and a server that falls silent (frozen with SIGSTOP).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { CloseCode, NotConnectedError, SilenceError, connect } from "../dist/index.js";
import { countingTokens, recorder, signJwt, startServer, tempDir, uniqueSubject, waitFor } from "./harness.mjs";

const config = `
default_policy: device
connect_policy: device
policies:
  device:
    ttl: 1h
    idle_timeout: 30m
    disconnect_grace: 30s
    heartbeat_interval: 500ms
    heartbeat_timeout: 1500ms
`;

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test("a restarted server (same port, same data directory) gives the same session back: disconnected 1001, reconnecting, resumed", async () => {
  const dataDir = tempDir("sessiond-embedded-");
  let server = await startServer({ store: "embedded", dataDir, config });
  cleanup.push(() => server.stop());
  const subject = uniqueSubject("glasses");
  const rec = recorder();
  const tokens = countingTokens(subject);
  const socket = await connect({
    url: server.wsUrl,
    token: tokens.source,
    deviceId: "glasses-7",
    onState: rec.onState,
    minBackoff: 50,
    maxBackoff: 200,
  });
  cleanup.push(() => socket.close());
  const sessionId = socket.sessionId;
  assert.equal(socket.resumed, false);

  await server.stop(); // SIGTERM: every socket gets 1001, going away
  const lost = await rec.next("disconnected");
  assert.equal(lost.code, CloseCode.GoingAway);
  const retry = await rec.next("reconnecting");
  assert.equal(retry.attempt, 1);
  assert.ok(retry.wait >= 50 && retry.wait <= 100, `the first wait is between min and min*factor: ${retry.wait}`);
  // Between sockets nothing is sent or queued.
  assert.throws(() => socket.send({ type: "hello" }), NotConnectedError);
  await assert.rejects(socket.ping(), NotConnectedError);
  // Dials fail while nothing listens: more retries, each with its wait.
  await rec.next("reconnecting");
  await rec.next("reconnecting");

  server = await startServer({ store: "embedded", dataDir, config, addr: `127.0.0.1:${server.port}` });
  const back = await rec.next("connected", 10_000);
  assert.equal(back.sessionId, sessionId, "the same session");
  assert.equal(back.resumed, true);
  assert.equal(socket.sessionId, sessionId);
  const states = rec.states();
  assert.deepEqual(states.slice(0, 4), ["connecting", "connected", "disconnected", "reconnecting"]);
  assert.ok(!states.includes("stopped"));
  // Each dial asked the token source for a credential.
  assert.equal(tokens.calls(), rec.events.filter((e) => e.state === "connecting").length);
  const s = await server.api.get(sessionId);
  assert.equal(s.state, "active");
  assert.equal(s.connections, 1);
  await socket.ping();
  // The retry count starts again after an acknowledged connection.
  await server.stop();
  assert.equal((await rec.next("reconnecting")).attempt, 1);
});

test("a server that falls silent for its heartbeat timeout is taken for lost, and the session resumed once it answers again", async () => {
  const server = await startServer({ config });
  cleanup.push(async () => {
    server.resume();
    await server.stop();
  });
  const subject = uniqueSubject("silent");
  const rec = recorder();
  const socket = await connect({
    url: server.wsUrl,
    token: () => signJwt(subject),
    deviceId: "d",
    onState: rec.onState,
    minBackoff: 50,
    maxBackoff: 200,
    handshakeTimeout: 1000,
  });
  cleanup.push(() => socket.close());
  assert.equal(socket.ack.heartbeatTimeout, 1500);
  // The server's pings (every 500ms) keep the socket alive meanwhile.
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual(rec.states(), ["connecting", "connected"]);

  server.pause(); // SIGSTOP: no pings, no answers, no close
  const lost = await rec.next("disconnected", 5000);
  assert.equal(lost.code, CloseCode.Abnormal);
  assert.ok(lost.error instanceof SilenceError);
  await rec.next("reconnecting");
  server.resume();
  const back = await rec.next("connected", 10_000);
  assert.equal(back.sessionId, socket.sessionId);
  assert.equal(back.resumed, true);
});
