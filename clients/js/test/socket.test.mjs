// The WebSocket client against a real server: what a user of connect()
// sees, in the order the Go client (client/ws.go) produces it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloseCode, CloseError, ClosedError, SessiondError, connect as dial } from "../dist/index.js";
import { countingTokens, recorder, signJwt, startServer, uniqueSubject, waitFor } from "./harness.mjs";

const config = `
default_policy: web
connect_policy: device
policies:
  web:
    ttl: 1h
    idle_timeout: 30m
  rotating:
    ttl: 1h
    idle_timeout: 30m
    rotate_after: 1s
    rotation_grace: 500ms
  device:
    ttl: 1h
    idle_timeout: 30m
    disconnect_grace: 30s
  sleepy:
    ttl: 1h
    idle_timeout: 30m
    hibernate_after: 1s
`;

let server;
before(async () => {
  server = await startServer({ config });
});
// Every socket a test opened is closed at the end, also those of a test
// that failed half-way (a socket left open would reconnect for ever).
const sockets = [];
after(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await server?.stop();
});

/** connect(), remembering the socket. */
async function connect(opts) {
  const socket = await dial(opts);
  sockets.push(socket);
  return socket;
}

describe("device mode", () => {
  test("connects, acknowledges, exchanges messages and pings, and closes", async () => {
    const subject = uniqueSubject("glasses");
    const rec = recorder();
    const messages = [];
    const tokens = countingTokens(subject);
    const socket = await connect({
      url: server.wsUrl,
      token: tokens.source,
      deviceId: "glasses-7",
      deviceType: "glasses",
      onState: rec.onState,
      onMessage: (m) => messages.push(m),
    });
    assert.equal(socket.state, "connected");
    assert.equal(tokens.calls(), 1);
    const connected = rec.events[1];
    assert.deepEqual(rec.states(), ["connecting", "connected"]);
    assert.equal(rec.events[0].attempt, 0);
    assert.equal(connected.resumed, false, "a new session for a new device");
    assert.equal(connected.waking, false);
    assert.equal(connected.sessionId, socket.sessionId);
    assert.match(socket.sessionToken ?? "", /^sd_/, "the session created now comes with its token");
    assert.equal(socket.ack.state, "active");
    assert.ok(socket.ack.heartbeatInterval > 0);
    assert.ok(socket.credentialExpires instanceof Date);

    const session = await server.api.get(socket.sessionId);
    assert.equal(session.subject, subject);
    assert.equal(session.device?.id, "glasses-7");
    assert.equal(session.policy, "device");
    assert.equal(session.connections, 1);

    // An application message reaches the server, whose answer (it knows
    // no type "hello") comes back through onMessage.
    socket.send({ type: "hello" });
    await waitFor(() => messages.length > 0, "the answer to hello");
    assert.equal(messages[0].type, "error");
    assert.equal(messages[0].code, "unknown_type");
    assert.equal(messages[0].re, "hello");

    await socket.ping(); // answered by a pong, which is not an application message
    assert.equal(messages.length, 1);

    await socket.close();
    assert.deepEqual(rec.states(), ["connecting", "connected", "disconnected", "stopped"]);
    assert.equal(rec.events[2].code, CloseCode.Normal);
    assert.ok(rec.events[3].error instanceof ClosedError);
    assert.ok((await socket.closed) instanceof ClosedError);
    assert.throws(() => socket.send({ type: "hello" }), ClosedError);
    await waitFor(async () => (await server.api.get(socket.sessionId)).state === "disconnected", "the session to wait out its grace");
  });

  test("a second socket of the same device resumes its session", async () => {
    const subject = uniqueSubject("phone");
    const one = await connect({ url: server.wsUrl, token: () => signJwt(subject), deviceId: "phone-1" });
    await one.close();
    const rec = recorder();
    const two = await connect({ url: server.wsUrl, token: () => signJwt(subject), deviceId: "phone-1", onState: rec.onState });
    assert.equal(two.sessionId, one.sessionId);
    assert.equal(two.resumed, true);
    assert.equal(rec.events[1].resumed, true);
    assert.equal(two.ack.sessionToken, undefined, "no new token for a resumed session");
    await two.close();
  });

  test("revoking the session closes the socket with 4500 and stops it without a reconnect", async () => {
    const subject = uniqueSubject("revoked");
    const rec = recorder();
    const tokens = countingTokens(subject);
    const socket = await connect({
      url: server.wsUrl,
      token: tokens.source,
      deviceId: "d1",
      onState: rec.onState,
      minBackoff: 10,
      maxBackoff: 20,
    });
    await server.api.revoke(socket.sessionId);
    const stopped = await rec.next("stopped");
    assert.deepEqual(rec.states(), ["connecting", "connected", "disconnected", "stopped"]);
    assert.equal(rec.events[2].code, CloseCode.SessionRevoked);
    assert.equal(rec.events[2].reason, "session revoked");
    assert.ok(stopped.error instanceof CloseError);
    assert.equal(stopped.error.code, 4500);
    const err = await socket.closed;
    assert.equal(err, stopped.error);
    assert.equal(socket.error, err);
    assert.equal(socket.state, "stopped");
    // Nothing more: no reconnect, no new credential asked for.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(rec.events.length, 4);
    assert.equal(tokens.calls(), 1);
  });

  test("a credential the server refuses rejects connect with its error, without retrying", async () => {
    const rec = recorder();
    let calls = 0;
    const err = await connect({
      url: server.wsUrl,
      token: () => {
        calls++;
        return "not.a.jwt";
      },
      onState: rec.onState,
      minBackoff: 10,
      maxBackoff: 20,
    }).then(
      () => assert.fail("connected with a bad credential"),
      (e) => e,
    );
    assert.ok(err instanceof SessiondError, String(err));
    assert.equal(err.code, "unauthorized");
    assert.equal(err.status, 401);
    assert.deepEqual(rec.states(), ["connecting", "stopped"]);
    assert.equal(calls, 1);
  });

  test("a failing token source is retried with backoff until it gives a credential", async () => {
    const subject = uniqueSubject("flaky");
    const rec = recorder();
    let calls = 0;
    const socket = await connect({
      url: server.wsUrl,
      token: () => {
        if (++calls < 3) throw new Error("identity provider down");
        return signJwt(subject);
      },
      onState: rec.onState,
      minBackoff: 5,
      maxBackoff: 10,
    });
    assert.deepEqual(rec.states(), ["connecting", "reconnecting", "connecting", "reconnecting", "connecting", "connected"]);
    assert.match(rec.events[1].error.message, /identity provider down/);
    assert.deepEqual(rec.events.filter((e) => e.state === "connecting").map((e) => e.attempt), [0, 1, 2]);
    await socket.close();
  });
});

describe("session-token mode", () => {
  for (const credentials of ["header", "query"]) {
    test(`attaches to a REST session and follows its token rotation (credentials in the ${credentials})`, async () => {
      const subject = uniqueSubject("rot");
      const created = await server.api.create({ subject, policy: "rotating" });
      // Past rotate_after: the validation of the connect rotates the token.
      await waitFor(() => Date.now() - Date.parse(created.session.created_at) > 1100, "rotate_after to pass", 5000);
      const socket = await connect({ url: server.wsUrl, token: () => signJwt(subject), sessionToken: created.token, credentials });
      assert.equal(socket.sessionId, created.id);
      assert.equal(socket.resumed, true, "the session existed");
      assert.match(socket.ack.sessionToken ?? "", /^sd_/, "the connect rotated the token");
      assert.notEqual(socket.sessionToken, created.token);
      assert.equal(socket.sessionToken, socket.ack.sessionToken, "the rotated token replaces the old one");
      const v = await server.api.validate(socket.sessionToken);
      assert.equal(v.session.id, created.id);
      assert.equal((await server.api.get(created.id)).connections, 1);
      await socket.close();
    });
  }

  test("a session token of another subject stops the socket (header: 403 before the upgrade; attach message: 4504)", async () => {
    const created = await server.api.create({ subject: uniqueSubject("owner") });
    const thief = uniqueSubject("thief");
    const refused = await connect({ url: server.wsUrl, token: () => signJwt(thief), sessionToken: created.token, credentials: "header" }).then(
      () => assert.fail("attached to another subject's session"),
      (e) => e,
    );
    assert.ok(refused instanceof SessiondError);
    assert.equal(refused.code, "subject_mismatch");
    assert.equal(refused.status, 403);

    const closed = await connect({ url: server.wsUrl, token: () => signJwt(thief), sessionToken: created.token, credentials: "query" }).then(
      () => assert.fail("attached to another subject's session"),
      (e) => e,
    );
    assert.ok(closed instanceof CloseError, String(closed));
    assert.equal(closed.code, CloseCode.Unauthorized);
  });
});

describe("credential refresh", () => {
  test("a refresh that fails lets the credential expire: the server closes with 4001 and the reconnect, with a new credential and the rotated session token, resumes", async () => {
    const subject = uniqueSubject("expiring");
    const created = await server.api.create({ subject, policy: "rotating" });
    await waitFor(() => Date.now() - Date.parse(created.session.created_at) > 1100, "rotate_after to pass", 5000);
    const rec = recorder();
    const calls = [];
    const socket = await connect({
      url: server.wsUrl,
      token: () => {
        calls.push(Date.now());
        if (calls.length === 1) return signJwt(subject, 2);
        if (calls.length === 2) throw new Error("identity provider down"); // the refresh
        return signJwt(subject, 3600);
      },
      sessionToken: created.token,
      onState: rec.onState,
      minBackoff: 10,
      maxBackoff: 20,
    });
    const rotated = socket.sessionToken;
    assert.notEqual(rotated, created.token, "the connect rotated the token");
    const lost = await rec.next("disconnected", 8000);
    assert.equal(lost.code, CloseCode.CredentialExpired);
    const back = await rec.next("connected", 8000);
    // The old token is past its rotation grace by now: had the reconnect
    // used it, the server would have ended the session as stolen.
    assert.equal(back.sessionId, created.id);
    assert.equal(back.resumed, true);
    assert.equal(calls.length, 3);
    // Over a second since the last rotation: the reconnect rotated it again.
    assert.match(socket.ack.sessionToken ?? "", /^sd_/);
    assert.equal(socket.sessionToken, socket.ack.sessionToken);
    assert.notEqual(socket.sessionToken, rotated);
    assert.equal((await server.api.validate(socket.sessionToken)).session.id, created.id);
    assert.equal((await server.api.get(created.id)).state, "active");
  });

  test("the server's refresh is answered with a new token, and the socket outlives the first credential", async () => {
    const subject = uniqueSubject("refresh");
    const rec = recorder();
    const lifetimes = [3, 3600];
    const issued = [];
    const socket = await connect({
      url: server.wsUrl,
      token: () => {
        const ttl = lifetimes[Math.min(issued.length, 1)];
        issued.push(ttl);
        return signJwt(subject, ttl);
      },
      deviceId: "d",
      onState: rec.onState,
    });
    const first = socket.credentialExpires.getTime();
    assert.ok(first - Date.now() <= 3000);
    // The server asks at nine tenths of the credential's life.
    await waitFor(() => issued.length === 2, "the refresh", 6000);
    await waitFor(() => socket.credentialExpires.getTime() > first + 3_000_000, "the refreshed message", 3000);
    // Past the first credential's expiry the socket is still the same one:
    // without the refresh the server would have closed it with 4001.
    await waitFor(() => Date.now() > first + 1000, "the first credential to expire", 5000);
    assert.deepEqual(rec.states(), ["connecting", "connected"]);
    await socket.ping();
    await socket.close();
  });
});

describe("hibernation", () => {
  test("a hibernated session gives connected with waking, then ready", async () => {
    const subject = uniqueSubject("workspace");
    const created = await server.api.create({ subject, policy: "sleepy" });
    // No connection and no activity for hibernate_after: it sleeps.
    await waitFor(async () => (await server.api.get(created.id)).state === "hibernated", "the session to hibernate", 10_000);
    const rec = recorder();
    const socket = await connect({ url: server.wsUrl, token: () => signJwt(subject), sessionToken: created.token, onState: rec.onState });
    const connected = rec.events[1];
    assert.equal(connected.state, "connected");
    assert.equal(connected.waking, true);
    assert.equal(connected.resumed, true);
    const ready = await rec.next("ready");
    assert.equal(ready.sessionId, created.id);
    assert.equal(socket.ack.state, "active");
    assert.deepEqual(rec.states(), ["connecting", "connected", "ready"]);
    assert.equal((await server.api.get(created.id)).state, "active");
    await socket.close();
  });
});
