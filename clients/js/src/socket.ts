import { backoff } from "./backoff.js";
import { CloseCode, shouldReconnect } from "./close.js";
import { ClosedError, CloseError, NotConnectedError, SessiondError, errorFromResponse } from "./errors.js";
import type { ClientMessage, ConnectedMessage, ServerMessage } from "./protocol.js";
import { defaultImplementation, implementation, openTransport, type Implementation, type Transport, type WebSocketConstructor } from "./transport.js";

/**
 * Where a {@link SessionSocket} is in its life. Each change is one
 * {@link SocketEvent}, in order:
 *
 * ```
 * connecting ──► connected ──► disconnected ──► reconnecting ──► connecting ...
 *      │  dial failed,  │                            ▲
 *      │  may pass      └─► ready ──► disconnected   │
 *      └─────────────────────────────────────────────┘
 * any of them ──► stopped (a terminal close code or refusal, or close())
 * ```
 *
 * `ready` follows `connected` only when the connection woke a hibernated
 * session (its `connected` event has `waking` set).
 */
export type SocketState = "connecting" | "connected" | "ready" | "disconnected" | "reconnecting" | "stopped";

/** One state change. Fields other than `state` are set for the states noted. */
export interface SocketEvent {
  state: SocketState;
  /**
   * Retries since the last acknowledged connection: 0 for the first
   * connect, 1 for the first retry, ... (connecting, reconnecting)
   */
  attempt?: number;
  /** The backoff before the next dial, in milliseconds. (reconnecting) */
  wait?: number;
  /** The ack's session id (connected, ready), connection id and resumed (connected). */
  sessionId?: string;
  connectionId?: string;
  resumed?: boolean;
  /** The session was hibernated and this connection is waking it: `ready` follows. (connected) */
  waking?: boolean;
  /**
   * How the socket closed: the server's close code and reason, 1000 after
   * close(), 1006 when it was lost without a close frame. (disconnected)
   */
  code?: number;
  reason?: string;
  /**
   * The cause: of a lost connection (disconnected), of the failed dial
   * being retried (reconnecting), of the stop (stopped: a ClosedError
   * after close(), else the terminal error).
   */
  error?: Error;
}

/** The server's connected message, the first of every connection. */
export interface SocketAck {
  sessionId: string;
  connectionId: string;
  /** The session existed before this connection. */
  resumed: boolean;
  /** "active", or "waking" until `ready` (then "active"). */
  state: string;
  /** Milliseconds. */
  heartbeatInterval: number;
  heartbeatTimeout: number;
  /** The JWT's expiry, if it has one. */
  credentialExpires: Date | undefined;
  /** Set when the server issued a token with this connection; shown once. */
  sessionToken: string | undefined;
}

/** Time, for the backoff and the heartbeat watch; tests pass their own. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface Logger {
  debug?(msg: string, ...args: unknown[]): void;
  info?(msg: string, ...args: unknown[]): void;
  warn?(msg: string, ...args: unknown[]): void;
}

export interface SocketOptions {
  /**
   * The server: "ws://127.0.0.1:7600", "wss://...", or the full connect
   * URL. A URL without a path gets /v1/connect; one without a scheme gets
   * ws://; http and https work as ws and wss.
   */
  url: string;
  /**
   * Returns a fresh credential (a JWT). Called for every connect and
   * reconnect, and when the server asks for a refresh. Its errors are
   * retried with backoff on connect; a failed refresh lets the server close
   * the connection when the credential expires (4001), and the reconnect
   * calls it again.
   */
  token: (signal: AbortSignal) => string | Promise<string>;
  /**
   * Device mode: the subject's session for this device is found or
   * created, and every reconnect comes back to it. Without a deviceId or a
   * sessionToken it is device mode for the server's default device.
   */
  deviceId?: string;
  deviceType?: string;
  deviceName?: string;
  /**
   * Session-token mode: attach to the session of this token, created over
   * REST. When the server rotates it on connect, the new one is used from
   * then on ({@link SessionSocket.sessionToken}).
   */
  sessionToken?: string;
  /**
   * How the credentials travel. "header": `Authorization: Bearer` and
   * `X-Session-Token` (only the `ws` package can set headers). "query":
   * `?token=<jwt>`, and the session token in an attach message
   * (`?attach=message`), as browsers must. Default: "header" with the `ws`
   * package, else "query".
   */
  credentials?: "header" | "query";
  /** Reconnect backoff in milliseconds: before retry n, a random wait between minBackoff and min(maxBackoff, minBackoff·factorⁿ). Defaults 250, 30000, 2. */
  minBackoff?: number;
  maxBackoff?: number;
  backoffFactor?: number;
  /** Bounds each connect (credential, dial, upgrade, ack), in milliseconds: 10000. */
  handshakeTimeout?: number;
  /** Receives every state change, in order. It must not throw (what it throws is logged). */
  onState?: (ev: SocketEvent) => void;
  /**
   * Receives the server's messages other than the protocol's own
   * (connected, ready, refresh, refreshed, pong, and the errors answering
   * this client's refreshes), such as the errors answering send().
   */
  onMessage?: (msg: ServerMessage) => void;
  /**
   * Bounds the first connect, as connect()'s wait: when it aborts before
   * the first ack, the socket stops. Ignored after.
   */
  signal?: AbortSignal;
  /** The WebSocket class; default: the global one, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  logger?: Logger;
  /** For tests: time and randomness of the backoff and the heartbeat watch. */
  clock?: Clock;
  random?: () => number;
}

/**
 * Opens a live WebSocket to a session at `GET /v1/connect`
 * (docs/protocol.md), reconnecting after every close whose code allows it
 * and resuming the same session within its disconnect grace. It resolves
 * once the first connection is acknowledged, or rejects with what stops it:
 * a refusal before the upgrade ({@link SessiondError}: 401, 403, 404, 410,
 * other 4xx but 408, 429 and 409 too_many_connections; only the `ws`
 * package sees these: the standard WebSocket shows a refusal as a network
 * failure, which is retried), a close code that does not allow a reconnect
 * ({@link CloseError}), or the abort of `signal`.
 *
 * ```ts
 * const socket = await connect({
 *   url: "ws://127.0.0.1:7600",
 *   token: () => getJwt(),
 *   deviceId: "glasses-7",
 *   onState: (ev) => console.log(ev.state),
 *   onMessage: (msg) => console.log(msg),
 * });
 * ```
 */
export async function connect(opts: SocketOptions): Promise<SessionSocket> {
  const s = new SessionSocket(opts);
  await s.opened;
  return s;
}

/** A refused handshake: the server answered with an HTTP status. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly error: SessiondError,
  ) {
    super(`HTTP ${status}: ${error.message}`, { cause: error });
  }
}

/** A connect that cannot work as configured: it stops the socket rather than being retried. */
class UsageError extends Error {}

class TokenError extends Error {
  constructor(cause: unknown) {
    super(`sessiond: credential: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Nothing came from the server within its heartbeat timeout. */
export class SilenceError extends Error {
  override readonly name = "SilenceError";
  constructor() {
    super("sessiond: nothing heard from the server within its heartbeat timeout");
  }
}

/** Whether a failed connect must not be retried. */
function terminal(err: unknown): boolean {
  if (err instanceof Refusal) {
    if (err.status === 408 || err.status === 425 || err.status === 429) return false;
    // A reconnect may come before the server noticed that this client's
    // previous socket died: try again.
    if (err.error.code === "too_many_connections") return false;
    return err.status >= 400 && err.status < 500;
  }
  if (err instanceof CloseError) return !shouldReconnect(err.code);
  return err instanceof UsageError;
}

interface Ended {
  code: number;
  reason: string;
  error?: Error;
}

/** One socket, from its ack to its close. */
class Link {
  ack!: SocketAck;
  heard = 0;
  refreshing = false;
  pongs: Array<{ resolve(): void; reject(e: Error): void }> = [];
  readonly stop = new AbortController();
  /** Messages that came after the ack, before the socket took them (its connected event first). */
  inbox: string[] | undefined = [];
  onText: (text: string) => void = (text) => this.inbox?.push(text);
  #finish!: (e: Ended) => void;
  #finished = false;
  readonly ended: Promise<Ended>;
  constructor(
    readonly transport: Transport,
    readonly impl: Implementation,
  ) {
    this.ended = new Promise((resolve) => (this.#finish = resolve));
  }
  finish(e: Ended): void {
    if (this.#finished) return;
    this.#finished = true;
    this.stop.abort();
    for (const p of this.pongs.splice(0)) p.reject(new NotConnectedError());
    this.#finish(e);
  }
  get finished(): boolean {
    return this.#finished;
  }
}

/**
 * A WebSocket connection to a session that reconnects by itself. Create
 * it with {@link connect}.
 */
export class SessionSocket {
  readonly #o: SocketOptions;
  readonly #url: URL;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #min: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #handshakeTimeout: number;
  readonly #log: Logger;
  readonly #stopping = new AbortController();

  #state: SocketState = "connecting";
  #link: Link | undefined;
  #ack: SocketAck | undefined;
  #sessionToken: string | undefined;
  #credentialExpires: Date | undefined;
  #error: Error | undefined;
  #closeCalled = false;
  #impl: Promise<Implementation>;

  /** Resolves at the first acknowledged connection; rejects if the socket stops before. */
  readonly opened: Promise<void>;
  /** Resolves when the socket has stopped for good, with why: a {@link ClosedError} after close(), else the terminal error. */
  readonly closed: Promise<Error>;

  constructor(opts: SocketOptions) {
    if (!opts.url || typeof opts.token !== "function") throw new TypeError("sessiond: SocketOptions.url and SocketOptions.token are required");
    if (opts.deviceId && opts.sessionToken) throw new TypeError("sessiond: SocketOptions takes a deviceId (device mode) or a sessionToken, not both");
    this.#o = opts;
    this.#url = connectURL(opts);
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#min = opts.minBackoff ?? 250;
    this.#max = opts.maxBackoff ?? 30_000;
    this.#factor = opts.backoffFactor ?? 2;
    this.#handshakeTimeout = opts.handshakeTimeout ?? 10_000;
    this.#log = opts.logger ?? {};
    if (!(this.#min > 0) || !(this.#max >= this.#min)) throw new RangeError(`sessiond: need 0 < minBackoff <= maxBackoff (got ${this.#min}, ${this.#max})`);
    if (!(this.#factor >= 1) || !Number.isFinite(this.#factor)) throw new RangeError(`sessiond: backoffFactor must be at least 1 (got ${this.#factor})`);
    this.#sessionToken = opts.sessionToken;
    this.#impl = opts.WebSocket ? Promise.resolve(implementation(opts.WebSocket)) : defaultImplementation();
    this.#impl.catch(() => {}); // the first dial reports it

    let opened!: { resolve(): void; reject(e: Error): void };
    this.opened = new Promise<void>((resolve, reject) => (opened = { resolve, reject }));
    this.opened.catch(() => {}); // connect() reports it; a caller of the constructor may not wait
    let firstDone = false;
    const first = {
      resolve: () => {
        if (!firstDone) {
          firstDone = true;
          opened.resolve();
        }
      },
      reject: (e: Error) => {
        if (!firstDone) {
          firstDone = true;
          opened.reject(e);
        }
      },
    };
    const signal = opts.signal;
    let lastErr: Error | undefined;
    let aborted = false;
    const onAbort = () => {
      if (firstDone) return;
      aborted = true;
      this.#stop();
    };
    if (signal?.aborted) queueMicrotask(onAbort);
    else signal?.addEventListener("abort", onAbort, { once: true });
    this.closed = this.#run(first, (e) => (lastErr = e)).then((err) => {
      signal?.removeEventListener("abort", onAbort);
      if (aborted && !firstDone) {
        const why = signal?.reason instanceof Error ? signal.reason.message : "aborted";
        first.reject(new Error(`sessiond: connecting to ${this.#url.origin}: ${why}${lastErr ? ` (last attempt: ${lastErr.message})` : ""}`, { cause: lastErr }));
      } else {
        first.reject(err);
      }
      return err;
    });
  }

  /** The current state. */
  get state(): SocketState {
    return this.#state;
  }

  /** The last connected message (the ack), once there was one. */
  get ack(): SocketAck | undefined {
    return this.#ack;
  }

  /** The session of the last acknowledged connection. */
  get sessionId(): string | undefined {
    return this.#ack?.sessionId;
  }

  /** Whether the last acknowledged connection found its session existing (true) rather than creating it. */
  get resumed(): boolean {
    return this.#ack?.resumed ?? false;
  }

  /**
   * The latest session token: in session-token mode the one the client
   * attaches with (rotated by the server or not); in device mode the one
   * issued when the session was created, if this client saw it.
   */
  get sessionToken(): string | undefined {
    return this.#sessionToken;
  }

  /** When the credential of the current connection expires (from the ack, then each refreshed message). */
  get credentialExpires(): Date | undefined {
    return this.#credentialExpires;
  }

  /** Undefined until the socket stopped; then why (as `closed` resolves). */
  get error(): Error | undefined {
    return this.#error;
  }

  /**
   * Sends `msg` as one JSON text message on the current socket. Between
   * sockets it throws {@link NotConnectedError}; nothing is queued. After
   * the stop it throws the stop's error.
   */
  send(msg: unknown): void {
    this.#current().transport.send(JSON.stringify(msg));
  }

  /**
   * Sends an application ping (`{"type":"ping"}`) and resolves at the
   * pong, for networks that drop WebSocket control frames. Rejects with
   * {@link NotConnectedError} if the socket closes first.
   */
  ping(opts: { signal?: AbortSignal } = {}): Promise<void> {
    let link: Link;
    try {
      link = this.#current();
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      const signal = opts.signal;
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        link.pongs = link.pongs.filter((p) => p !== waiter);
        reject(signal!.reason);
      };
      const waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (e: Error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      link.pongs.push(waiter);
      link.transport.send(JSON.stringify({ type: "ping" } satisfies ClientMessage));
    });
  }

  /**
   * Stops the socket: it closes with 1000, no reconnect follows. Resolves
   * once the socket has stopped (as `closed`).
   */
  async close(): Promise<void> {
    this.#closeCalled = true;
    this.#stop();
    await this.closed;
  }

  #stop(): void {
    this.#stopping.abort();
  }

  #current(): Link {
    if (this.#link && !this.#link.finished) return this.#link;
    if (this.#error) throw this.#error;
    if (this.#stopping.signal.aborted) throw new ClosedError();
    throw new NotConnectedError();
  }

  #emit(ev: SocketEvent): void {
    this.#state = ev.state;
    try {
      this.#o.onState?.(ev);
    } catch (err) {
      this.#log.warn?.("sessiond: onState threw", err);
    }
  }

  async #run(first: { resolve(): void; reject(e: Error): void }, failed: (e: Error) => void): Promise<Error> {
    let err = await this.#loop(first, failed);
    if (this.#closeCalled || this.#stopping.signal.aborted) err = new ClosedError();
    this.#error = err;
    this.#link = undefined;
    if (err instanceof ClosedError) this.#log.info?.("sessiond: websocket closed");
    else this.#log.warn?.("sessiond: websocket stopped", err);
    this.#emit({ state: "stopped", error: err });
    return err;
  }

  /** Returns the error that stops the socket. */
  async #loop(first: { resolve(): void }, failed: (e: Error) => void): Promise<Error> {
    const stopping = this.#stopping.signal;
    let retries = 0;
    for (;;) {
      this.#emit({ state: "connecting", attempt: retries });
      let link: Link | undefined;
      let err: Error | undefined;
      try {
        link = await this.#dial();
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e));
      }
      if (stopping.aborted) {
        if (link) {
          link.transport.close(CloseCode.Normal, "client closed");
          link.finish({ code: CloseCode.Normal, reason: "client closed" });
        }
        return new ClosedError();
      }
      if (err) {
        if (terminal(err)) return err instanceof Refusal ? err.error : err;
        failed(err);
        this.#log.info?.(`sessiond: websocket connect failed; retry ${retries + 1}`, err);
      } else if (link) {
        retries = 0;
        const ack = link.ack;
        this.#link = link;
        this.#ack = ack;
        if (ack.sessionToken) this.#sessionToken = ack.sessionToken;
        this.#credentialExpires = ack.credentialExpires;
        this.#log.info?.("sessiond: websocket connected", ack.sessionId, { resumed: ack.resumed });
        this.#emit({ state: "connected", sessionId: ack.sessionId, connectionId: ack.connectionId, resumed: ack.resumed, waking: ack.state === "waking" });
        first.resolve();
        const ended = await this.#serve(link);
        this.#link = undefined;
        this.#log.info?.("sessiond: websocket disconnected", ended);
        const ev: SocketEvent = { state: "disconnected", code: ended.code, reason: ended.reason };
        if (ended.error) ev.error = ended.error;
        this.#emit(ev);
        if (stopping.aborted) return new ClosedError();
        if (!shouldReconnect(ended.code)) return new CloseError(ended.code, ended.reason);
      }
      retries++;
      const wait = backoff(retries, this.#min, this.#max, this.#factor, this.#random());
      const rev: SocketEvent = { state: "reconnecting", attempt: retries, wait };
      if (err) rev.error = err;
      this.#emit(rev);
      if (!(await this.#sleep(wait))) return new ClosedError();
    }
  }

  /** Waits `ms`; false if the socket was stopped meanwhile. */
  #sleep(ms: number): Promise<boolean> {
    const stopping = this.#stopping.signal;
    if (stopping.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onStop = () => {
        this.#clock.clearTimeout(h);
        resolve(false);
      };
      const h = this.#clock.setTimeout(() => {
        stopping.removeEventListener("abort", onStop);
        resolve(true);
      }, ms);
      stopping.addEventListener("abort", onStop, { once: true });
    });
  }

  /** Dials once and waits for the ack. */
  async #dial(): Promise<Link> {
    const stopping = this.#stopping.signal;
    const ctl = new AbortController();
    const timer = this.#clock.setTimeout(() => ctl.abort(new Error(`sessiond: no ack within ${this.#handshakeTimeout} ms`)), this.#handshakeTimeout);
    const onStop = () => ctl.abort(new ClosedError());
    stopping.addEventListener("abort", onStop, { once: true });
    if (stopping.aborted) onStop();
    try {
      let cred: string;
      try {
        cred = await abortable(Promise.resolve().then(() => this.#o.token(ctl.signal)), ctl.signal);
      } catch (e) {
        if (ctl.signal.aborted) throw ctl.signal.reason;
        throw new TokenError(e);
      }
      if (typeof cred !== "string" || cred === "") throw new TokenError(new Error("the token function returned no credential"));
      let impl: Implementation;
      try {
        impl = await this.#impl;
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e), { cause: e });
      }
      const mode = this.#o.credentials ?? (impl.isWsPackage ? "header" : "query");
      const url = new URL(this.#url);
      const headers: Record<string, string> = {};
      const sessionToken = this.#o.sessionToken !== undefined ? this.#sessionToken : undefined;
      if (mode === "header") {
        if (!impl.isWsPackage) throw new UsageError('sessiond: credentials "header" needs the ws package: this WebSocket cannot set headers');
        headers["authorization"] = `Bearer ${cred}`;
        if (sessionToken) headers["x-session-token"] = sessionToken;
      } else {
        url.searchParams.set("token", cred);
        if (sessionToken) url.searchParams.set("attach", "message");
      }
      if (ctl.signal.aborted) throw ctl.signal.reason;
      return await this.#open(impl, url.toString(), headers, mode === "query" ? sessionToken : undefined, ctl.signal);
    } finally {
      this.#clock.clearTimeout(timer);
      stopping.removeEventListener("abort", onStop);
    }
  }

  #open(impl: Implementation, url: string, headers: Record<string, string>, attach: string | undefined, signal: AbortSignal): Promise<Link> {
    return new Promise<Link>((resolve, reject) => {
      let settled = false;
      let lastError: Error | undefined;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        reject(e);
      };
      let link: Link | undefined;
      const transport = openTransport(impl, url, headers, {
        onOpen: () => {
          if (attach) transport.send(JSON.stringify({ type: "attach", session_token: attach } satisfies ClientMessage));
        },
        onText: (text) => {
          if (settled) {
            if (link) {
              link.heard = this.#clock.now();
              link.onText(text);
            }
            return;
          }
          const ack = parseAck(text);
          if (!ack) {
            transport.close(1000, "expected the connected message");
            fail(new Error(`sessiond: the first message is not the connected ack: ${text.slice(0, 200)}`));
            return;
          }
          settled = true;
          signal.removeEventListener("abort", onAbort);
          link = new Link(transport, impl);
          link.ack = ack;
          link.heard = this.#clock.now();
          resolve(link);
        },
        onBinary: (n) => {
          if (link) link.heard = this.#clock.now();
          this.#log.warn?.(`sessiond: ignoring a binary message of ${n} bytes from the server`);
        },
        onPing: () => {
          if (link) link.heard = this.#clock.now();
        },
        onRefused: (status, body, retryAfter) => {
          fail(new Refusal(status, errorFromResponse(status, body, { get: (n) => (n.toLowerCase() === "retry-after" ? (retryAfter ?? null) : null) }, "websocket handshake")));
        },
        onError: (e) => {
          lastError = e;
        },
        onClose: (code, reason) => {
          if (link) {
            link.finish({ code, reason });
            return;
          }
          if (code === CloseCode.Abnormal && lastError) fail(new Error(`sessiond: websocket dial: ${lastError.message}`, { cause: lastError }));
          else fail(new CloseError(code, reason));
        },
      });
      const onAbort = () => {
        if (settled) return;
        transport.terminate();
        fail(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Holds one link until it closes, close() is called, or the server
   * falls silent for its heartbeat timeout; says how it closed.
   */
  async #serve(link: Link): Promise<Ended> {
    const stopping = this.#stopping.signal;
    // What came before the connected event was emitted, then the rest as
    // it comes.
    const inbox = link.inbox ?? [];
    link.inbox = undefined;
    link.onText = (text) => this.#handle(link, text);
    for (const text of inbox) this.#handle(link, text);
    const hb = link.ack.heartbeatTimeout;
    const interval = link.ack.heartbeatInterval;
    // Where the server's WebSocket pings cannot be seen (the standard
    // WebSocket), an application ping every heartbeat interval keeps
    // something coming back.
    const appPings = !link.impl.isWsPackage && interval > 0;
    let nextPing = this.#clock.now() + interval;
    let timer: unknown;
    const tick = () => {
      timer = undefined;
      if (link.finished) return;
      const now = this.#clock.now();
      if (hb > 0 && now - link.heard >= hb) {
        this.#log.warn?.(`sessiond: websocket silent for ${hb} ms; reconnecting`);
        link.transport.terminate();
        link.finish({ code: CloseCode.Abnormal, reason: "heartbeat timeout", error: new SilenceError() });
        return;
      }
      if (appPings && now >= nextPing) {
        nextPing = now + interval;
        try {
          link.transport.send(JSON.stringify({ type: "ping" } satisfies ClientMessage));
        } catch {
          // the close is on its way
        }
      }
      schedule();
    };
    const schedule = () => {
      const at: number[] = [];
      if (hb > 0) at.push(link.heard + hb);
      if (appPings) at.push(nextPing);
      if (at.length === 0) return;
      timer = this.#clock.setTimeout(tick, Math.max(0, Math.min(...at) - this.#clock.now()));
    };
    schedule();
    const onStop = () => {
      link.transport.close(CloseCode.Normal, "client closed");
      // The server's answer ends it; a server that does not answer, this.
      const t = this.#clock.setTimeout(() => {
        link.transport.terminate();
        link.finish({ code: CloseCode.Normal, reason: "client closed" });
      }, Math.min(this.#handshakeTimeout, 5000));
      void link.ended.then(() => this.#clock.clearTimeout(t));
    };
    if (stopping.aborted) onStop();
    else stopping.addEventListener("abort", onStop, { once: true });
    const ended = await link.ended;
    stopping.removeEventListener("abort", onStop);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    if (stopping.aborted) return { code: CloseCode.Normal, reason: "client closed" };
    return ended;
  }

  /** Takes one message: the protocol's own, or the application's. */
  #handle(link: Link, text: string): void {
    let msg: ServerMessage;
    try {
      msg = JSON.parse(text) as ServerMessage;
    } catch {
      msg = undefined as unknown as ServerMessage;
    }
    if (!msg || typeof msg !== "object" || typeof msg.type !== "string" || msg.type === "") {
      this.#log.warn?.("sessiond: ignoring a message that is not a JSON object with a type");
      return;
    }
    switch (msg.type) {
      case "refresh":
        this.#refresh(link);
        return;
      case "refreshed": {
        link.refreshing = false;
        const exp = (msg as { expires_at?: unknown }).expires_at;
        this.#credentialExpires = typeof exp === "string" ? new Date(exp) : undefined;
        this.#log.debug?.("sessiond: credential refreshed", exp);
        return;
      }
      case "ready": {
        const state = (msg as { state?: unknown }).state;
        if (this.#link === link && this.#ack) this.#ack = { ...this.#ack, state: typeof state === "string" ? state : "active" };
        this.#emit({ state: "ready", sessionId: link.ack.sessionId });
        return;
      }
      case "pong":
        for (const p of link.pongs.splice(0)) p.resolve();
        return;
      case "error":
        if ((msg as { code?: unknown }).code === "unauthorized" && link.refreshing) {
          link.refreshing = false;
          this.#log.warn?.("sessiond: refresh refused; the connection closes when the credential expires, then reconnects", (msg as { message?: unknown }).message);
          return;
        }
        break;
    }
    try {
      this.#o.onMessage?.(msg);
    } catch (err) {
      this.#log.warn?.("sessiond: onMessage threw", err);
    }
  }

  /** Answers the server's refresh with a fresh credential. */
  #refresh(link: Link): void {
    if (link.refreshing) return;
    link.refreshing = true;
    const signal = link.stop.signal;
    void (async () => {
      try {
        const cred = await abortable(Promise.resolve().then(() => this.#o.token(signal)), signal);
        if (typeof cred !== "string" || cred === "") throw new Error("the token function returned no credential");
        if (link.finished) return;
        link.transport.send(JSON.stringify({ type: "refresh", token: cred } satisfies ClientMessage));
      } catch (err) {
        link.refreshing = false;
        if (!link.finished) this.#log.warn?.("sessiond: refreshing the credential failed; the connection closes when it expires, then reconnects", err);
      }
    })();
  }
}

/** The configured URL with the connect path and the device parameters. */
function connectURL(o: SocketOptions): URL {
  let raw = o.url;
  if (!raw.includes("://")) raw = "ws://" + raw;
  const u = new URL(raw);
  switch (u.protocol) {
    case "ws:":
    case "wss:":
      break;
    case "http:":
      u.protocol = "ws:";
      break;
    case "https:":
      u.protocol = "wss:";
      break;
    default:
      throw new TypeError(`sessiond: SocketOptions.url: scheme ${u.protocol} is not ws, wss, http or https`);
  }
  if (u.pathname === "" || u.pathname === "/") u.pathname = "/v1/connect";
  for (const [k, v] of [
    ["device_id", o.deviceId],
    ["device_type", o.deviceType],
    ["device_name", o.deviceName],
  ] as const) {
    if (v) u.searchParams.set(k, v);
  }
  return u;
}

function parseAck(text: string): SocketAck | undefined {
  let m: Partial<ConnectedMessage>;
  try {
    m = JSON.parse(text) as Partial<ConnectedMessage>;
  } catch {
    return undefined;
  }
  if (!m || m.type !== "connected" || typeof m.session_id !== "string" || m.session_id === "") return undefined;
  return {
    sessionId: m.session_id,
    connectionId: m.connection_id ?? "",
    resumed: m.resumed === true,
    state: m.state ?? "active",
    heartbeatInterval: m.heartbeat_interval_ms ?? 0,
    heartbeatTimeout: m.heartbeat_timeout_ms ?? 0,
    credentialExpires: m.expires_at ? new Date(m.expires_at) : undefined,
    sessionToken: m.session_token || undefined,
  };
}

/** p, or the abort of signal, whichever comes first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
