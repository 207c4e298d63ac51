// The REST client against a real server: round trips and typed errors.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SessiondClient, SessiondError } from "../dist/index.js";
import { startServer, uniqueSubject, waitFor } from "./harness.mjs";

const config = `
default_policy: web
connect_policy: device
policies:
  web:
    ttl: 1h
    idle_timeout: 30m
    rotation_grace: 30s
    max_per_subject: 2
    on_limit: reject
  device:
    ttl: 1h
    idle_timeout: 30m
    disconnect_grace: 30s
`;

let server;
let api;
before(async () => {
  server = await startServer({ config });
  api = server.api;
});
after(() => server?.stop());

/** Resolves with what `p` rejected with; fails if it resolved. */
async function rejection(p) {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail("expected the call to fail");
}

describe("sessions", () => {
  test("create, validate, get, list, rotate, revoke", async () => {
    const subject = uniqueSubject("alice");
    const created = await api.create({ subject, device: { id: "laptop-7", type: "browser" }, metadata: { plan: "pro" } });
    assert.match(created.token, /^sd_/);
    assert.equal(created.session.subject, subject);
    assert.equal(created.session.state, "active");
    assert.equal(created.session.policy, "web");
    assert.deepEqual(created.session.metadata, { plan: "pro" });

    const v = await api.validate(created.token);
    assert.equal(v.session.id, created.id);
    assert.equal(v.token, undefined, "no rotation under a policy without rotate_after");

    const got = await api.get(created.id);
    assert.equal(got.id, created.id);
    assert.equal(got.device?.id, "laptop-7");

    const page = await api.list({ subject, limit: 10 });
    assert.deepEqual(page.sessions.map((s) => s.id), [created.id]);
    assert.deepEqual((await api.listSubject(subject)).map((s) => s.id), [created.id]);

    const rotated = await api.rotate(created.id);
    assert.match(rotated.token, /^sd_/);
    assert.notEqual(rotated.token, created.token);
    assert.equal((await api.validate(rotated.token)).session.id, created.id);
    // The old token keeps working for the rotation grace.
    assert.equal((await api.validate(created.token)).session.id, created.id);

    await api.revoke(created.id);
    await api.revoke(created.id); // idempotent
    const err = await rejection(api.validate(rotated.token));
    assert.ok(err instanceof SessiondError);
    assert.equal(err.code, "session_ended");
    assert.equal(err.status, 410);
    assert.equal((await api.get(created.id)).end_reason, "revoked");
  });

  test("revokeSubject ends every live session of the subject and counts them", async () => {
    const subject = uniqueSubject("bob");
    await api.create({ subject });
    await api.create({ subject });
    assert.equal(await api.revokeSubject(subject), 2);
    assert.deepEqual(await api.listSubject(subject), []);
    assert.equal(await api.revokeSubject(subject), 0);
  });

  test("validate with wake wakes a hibernated session; hibernate and wake by hand", async () => {
    const { id, token } = await api.create({ subject: uniqueSubject("sleeper") });
    const slept = await api.hibernate(id);
    assert.equal(slept.state, "hibernated");
    assert.equal(slept.hibernations, 1);
    // A validation without wake returns it as it is.
    assert.equal((await api.validate(token)).session.state, "hibernated");
    // With wake it begins waking it; with no runtime configured, that
    // completes at once.
    const woken = await api.validate(token, { wake: true });
    assert.equal(woken.session.state, "waking");
    await waitFor(async () => (await api.get(id)).state === "active", "the session to be awake");
    await api.hibernate(id);
    assert.equal((await api.wake(id)).state, "active");
  });
});

describe("connections", () => {
  test("add, heartbeat, list, remove", async () => {
    const { id } = await api.create({ subject: uniqueSubject("vnc") });
    const added = await api.addConnection(id, { kind: "vnc", client_ip: "10.0.0.7" });
    assert.equal(added.connection.kind, "vnc");
    assert.equal(added.state, "active");
    assert.match(added.heartbeat_interval, /s$/);
    assert.equal((await api.get(id)).connections, 1);

    const hb = await api.heartbeat(added.connection.id);
    assert.equal(hb.connection.id, added.connection.id);
    assert.deepEqual((await api.connections(id)).map((c) => c.id), [added.connection.id]);

    // A session with a connection does not hibernate.
    const busy = await rejection(api.hibernate(id));
    assert.equal(busy.code, "invalid_state");
    assert.equal(busy.status, 409);

    await api.removeConnection(added.connection.id);
    assert.deepEqual(await api.connections(id), []);
    const gone = await rejection(api.heartbeat(added.connection.id));
    assert.equal(gone.code, "connection_not_found");
    assert.equal(gone.status, 404);
  });
});

describe("typed errors", () => {
  test("an unknown session is session_not_found, 404", async () => {
    const err = await rejection(api.get("no-such-session"));
    assert.ok(err instanceof SessiondError);
    assert.equal(err.name, "SessiondError");
    assert.equal(err.code, "session_not_found");
    assert.equal(err.status, 404);
  });

  test("a bad argument names its field", async () => {
    const err = await rejection(api.create({ subject: "" }));
    assert.equal(err.code, "invalid_argument");
    assert.equal(err.status, 400);
    assert.equal(err.field, "subject");
    assert.ok(err.message.length > 0);

    const limit = await rejection(api.list({ limit: 5000 }));
    assert.equal(limit.code, "invalid_argument");
    assert.equal(limit.field, "limit");
  });

  test("over max_per_subject with on_limit reject is limit_reached, 409", async () => {
    const subject = uniqueSubject("limited");
    await api.create({ subject });
    await api.create({ subject });
    const err = await rejection(api.create({ subject }));
    assert.equal(err.code, "limit_reached");
    assert.equal(err.status, 409);
  });

  test("a wrong API key is unauthorized, 401", async () => {
    const wrong = new SessiondClient({ baseUrl: server.url, apiKey: "not-the-key-0123456789abcdef0123456789" });
    const err = await rejection(wrong.stats());
    assert.equal(err.code, "unauthorized");
    assert.equal(err.status, 401);
  });
});

describe("operations", () => {
  test("stats count sessions by state", async () => {
    const before = await api.stats();
    await api.create({ subject: uniqueSubject("counted") });
    const after = await api.stats();
    assert.equal(after.sessions.active, before.sessions.active + 1);
    assert.equal(after.total, before.total + 1);
    assert.equal(typeof after.version, "string");
  });

  test("nodes lists the server's own node with its lease", async () => {
    const nodes = await api.nodes();
    assert.equal(nodes.length, 1);
    assert.equal(nodes[0].self, true);
    assert.equal(nodes[0].dead, false);
    assert.ok(Date.parse(nodes[0].until) > Date.now(), `lease until ${nodes[0].until}`);
    assert.equal(typeof nodes[0].connections, "number");
  });

  test("ready answers while the server is ready", async () => {
    assert.equal((await api.ready()).status, "ready");
  });

  test("events stream the lifecycle, resumable from a position", async () => {
    const subject = uniqueSubject("watched");
    const { id } = await api.create({ subject });
    await api.revoke(id);
    const ctl = new AbortController();
    const seen = [];
    let lastId = "";
    for await (const e of api.events({ after: "0", signal: ctl.signal })) {
      if (e.event.session_id !== id) continue;
      seen.push(e.type);
      lastId = e.id;
      if (e.type === "ended") ctl.abort();
    }
    assert.deepEqual(seen, ["created", "ending", "ended"]);
    assert.equal((await api.get(id)).state, "ended");

    // Resuming after the last one sees only what came later.
    const { id: id2 } = await api.create({ subject });
    const ctl2 = new AbortController();
    const later = [];
    for await (const e of api.events({ after: lastId, signal: ctl2.signal })) {
      later.push([e.event.session_id, e.type]);
      if (e.event.session_id === id2) ctl2.abort();
    }
    assert.ok(!later.some(([sid]) => sid === id), "no event of the first session again");
    assert.deepEqual(later.at(-1), [id2, "created"]);
  });

  test("history on a server without --history is not_found, saying so", async () => {
    const { id } = await api.create({ subject: uniqueSubject("history") });
    const err = await rejection(api.sessionHistory(id, { since: "1h" }));
    assert.ok(err instanceof SessiondError);
    assert.equal(err.code, "not_found");
    assert.equal(err.status, 404);
    assert.match(err.message, /--history/);
  });
});
