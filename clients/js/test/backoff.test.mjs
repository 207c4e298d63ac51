// Backoff and close codes, with time and randomness injected: no sleeps.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { ClosedError, SessionSocket, backoff, shouldReconnect } from "../dist/index.js";

test("backoff: full jitter between min and min·factorⁿ, capped at max", () => {
  // As the Go client: defaults 250ms, 30s, factor 2.
  assert.equal(backoff(1, 250, 30_000, 2, 0), 250);
  assert.equal(backoff(1, 250, 30_000, 2, 0.5), 375);
  assert.equal(backoff(3, 250, 30_000, 2, 0.5), 1125);
  assert.equal(backoff(20, 250, 30_000, 2, 0.999999), 30_000);
  assert.equal(backoff(5000, 250, 30_000, 2, 0.5), 15_125, "an overflowing ceiling is the max");
  assert.equal(backoff(4, 100, 100, 3, 0.7), 100, "min = max: no jitter");
  for (let n = 1; n <= 12; n++) {
    for (const r of [0, 0.1, 0.5, 0.9, 0.999]) {
      const w = backoff(n, 250, 30_000, 2, r);
      assert.ok(w >= 250 && w <= Math.min(30_000, 250 * 2 ** n), `retry ${n}, r ${r}: ${w}`);
    }
  }
});

test("close codes: reconnect after 1000-1015 and 4000-4499 but 1003, 1008, 1009; stop after 4500-4999", () => {
  for (const code of [1000, 1001, 1005, 1006, 1011, 4000, 4001, 4002, 4003, 4499]) assert.equal(shouldReconnect(code), true, String(code));
  for (const code of [1003, 1008, 1009, 4500, 4501, 4502, 4503, 4504, 4505, 4506, 4999, 3000, 999]) assert.equal(shouldReconnect(code), false, String(code));
});

/** A clock whose time moves only when the test says so. */
function fakeClock() {
  let now = 0;
  let next = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const h = ++next;
      timers.set(h, { at: now + ms, ms, fn });
      return h;
    },
    clearTimeout: (h) => timers.delete(h),
    /** Durations of the timers pending. */
    pending: () => [...timers.values()].map((t) => t.ms),
    advance(ms) {
      now += ms;
      for (const [h, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at > now) break;
        timers.delete(h);
        t.fn();
      }
    },
  };
}

/** A port nothing listens on: dials to it are refused at once. */
async function closedPort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Resolves at the next event of the socket's recorder that matches. */
function nextEvent(events, i) {
  return new Promise((resolve) => {
    const check = () => (events.length > i ? resolve(events[i]) : setImmediate(check));
    check();
  });
}

test("reconnects wait out the backoff on the injected clock, with the injected randomness", async () => {
  const clock = fakeClock();
  const draws = [0, 0.5, 0.999, 0.5];
  const events = [];
  const socket = new SessionSocket({
    url: `ws://127.0.0.1:${await closedPort()}`,
    token: () => "a.b.c",
    clock,
    random: () => draws.shift() ?? 0,
    minBackoff: 100,
    maxBackoff: 1000,
    onState: (ev) => events.push(ev),
  });
  // min 100, factor 2, max 1000: ceilings 200, 400, 800, 1000.
  const want = [100, 250, 799, 550];
  for (let n = 1; n <= want.length; n++) {
    const connecting = await nextEvent(events, 2 * n - 2);
    assert.equal(connecting.state, "connecting");
    assert.equal(connecting.attempt, n - 1);
    const retry = await nextEvent(events, 2 * n - 1);
    assert.equal(retry.state, "reconnecting");
    assert.equal(retry.attempt, n);
    assert.equal(retry.wait, want[n - 1]);
    assert.match(retry.error.message, /ECONNREFUSED|refused/i);
    // Nothing happens before the wait is over.
    assert.deepEqual(clock.pending(), [want[n - 1]]);
    clock.advance(want[n - 1] - 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(events.length, 2 * n);
    clock.advance(1);
  }
  // Closing during a backoff stops at once, without waiting it out.
  await nextEvent(events, 2 * want.length + 1);
  assert.equal(events.at(-1).state, "reconnecting");
  await socket.close();
  assert.equal(events.at(-1).state, "stopped");
  assert.ok(events.at(-1).error instanceof ClosedError);
  assert.deepEqual(clock.pending(), []);
  await assert.rejects(socket.opened, ClosedError);
});

test("a connect bounded by an aborted signal stops, with the last failure in its error", async () => {
  const clock = fakeClock();
  const ctl = new AbortController();
  const events = [];
  const socket = new SessionSocket({
    url: `ws://127.0.0.1:${await closedPort()}`,
    token: () => "a.b.c",
    clock,
    signal: ctl.signal,
    onState: (ev) => {
      events.push(ev);
      if (ev.state === "reconnecting") ctl.abort(new Error("gave up"));
    },
  });
  const err = await socket.opened.then(
    () => assert.fail("connected"),
    (e) => e,
  );
  assert.match(err.message, /gave up/);
  assert.match(err.message, /last attempt/);
  assert.deepEqual(events.map((e) => e.state), ["connecting", "reconnecting", "stopped"]);
});

test("a WebSocket that cannot do what the options ask stops the socket at once instead of retrying", async () => {
  class StandardLike {
    constructor() {
      throw new Error("never constructed");
    }
  }
  const events = [];
  const socket = new SessionSocket({ url: "ws://127.0.0.1:1", token: () => "a.b.c", WebSocket: StandardLike, credentials: "header", onState: (e) => events.push(e.state) });
  const err = await socket.closed;
  assert.match(err.message, /needs the ws package/);
  assert.deepEqual(events, ["connecting", "stopped"]);
});
