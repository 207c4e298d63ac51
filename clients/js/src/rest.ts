import { errorFromResponse } from "./errors.js";
import type { components } from "./generated/openapi.js";
import { parseEventStream } from "./sse.js";

type Schemas = components["schemas"];

/** A session as the server returns it (never with its token). */
export type Session = Schemas["Session"];
export type SessionState = Schemas["State"];
export type EndReason = Schemas["EndReason"];
export type Device = Schemas["Device"];
export type CreateRequest = Schemas["CreateRequest"];
export type CreateResponse = Schemas["CreateResponse"];
/** The answer to a validate or a rotate: `token` is set when the call issued a new one. */
export type TokenResponse = Schemas["TokenResponse"];
export type ListResponse = Schemas["ListResponse"];
export type HistoryResponse = Schemas["HistoryResponse"];
export type StatsResponse = Schemas["StatsResponse"];
export type Node = Schemas["Node"];
export type Connection = Schemas["Connection"];
export type ConnectionRequest = Schemas["ConnectionRequest"];
export type ConnectionResponse = Schemas["ConnectionResponse"];
/** One lifecycle transition (`/v1/events`, history). */
export type SessionEvent = Schemas["Event"];
export type EventType = Schemas["EventType"];
export type ReadyResponse = Schemas["Ready"];

/** Options of every call. */
export interface CallOptions {
  /** Aborts the call. */
  signal?: AbortSignal;
}

export interface ValidateOptions extends CallOptions {
  /** The device the client presents; only `id` is checked, and only under a policy that binds devices. */
  device?: Device;
  /** For a hibernated session, begin waking it: the session returned is then `waking`. */
  wake?: boolean;
}

export interface ListOptions extends CallOptions {
  subject?: string;
  state?: SessionState;
  /** 1 to 1000. */
  limit?: number;
  /** The `next_cursor` of the previous page. */
  cursor?: string;
}

export interface HistoryOptions extends CallOptions {
  /** An RFC 3339 time, or a duration back from now ("1h"). */
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export interface EventsOptions {
  /**
   * Resume after this position (the `id` of the last event received):
   * every event after it that the server still holds, then live ones.
   * `"0"` replays the whole retained log; absent means from now on.
   */
  after?: string;
  /** Ends the stream. */
  signal?: AbortSignal;
}

/** One server-sent event of `/v1/events`. */
export interface StreamedEvent {
  /** The stream's position after this event: pass it as `after` to resume. */
  id: string;
  /** The event's type. */
  type: EventType;
  event: SessionEvent;
}

export interface SessiondClientOptions {
  /** The server: "http://127.0.0.1:7600". A URL without a scheme gets http://. */
  baseUrl: string;
  /** The admin API key. Keep it on your backend: it is not for end users. */
  apiKey: string;
  /** The fetch to use; default: the global one. */
  fetch?: typeof fetch;
  /** Bounds each call but hibernate, wake and events, in milliseconds: 30000. 0: none. */
  timeoutMs?: number;
  /** Bounds hibernate and wake, which wait for the session's runtime: 300000 (5 minutes). 0: none. */
  longTimeoutMs?: number;
}

/**
 * A client of the sessiond REST admin API (docs/openapi.yaml). Errors the
 * server answers are thrown as {@link SessiondError} with the server's
 * stable code, field, message and HTTP status.
 *
 * ```ts
 * const api = new SessiondClient({ baseUrl: "http://127.0.0.1:7600", apiKey });
 * const { id, token } = await api.create({ subject: "alice" });
 * const { session } = await api.validate(token);
 * ```
 */
export class SessiondClient {
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #timeout: number;
  readonly #longTimeout: number;

  constructor(opts: SessiondClientOptions) {
    let base = opts.baseUrl;
    if (!base.includes("://")) base = "http://" + base;
    this.baseUrl = base.replace(/\/+$/, "");
    this.#apiKey = opts.apiKey;
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("sessiond: no fetch: pass SessiondClientOptions.fetch");
    this.#fetch = f.bind(globalThis);
    this.#timeout = opts.timeoutMs ?? 30_000;
    this.#longTimeout = opts.longTimeoutMs ?? 300_000;
  }

  /** Creates a session. The token in the answer is shown this once. */
  create(req: CreateRequest, opts?: CallOptions): Promise<CreateResponse> {
    return this.#call("POST", "/v1/sessions", { body: req, signal: opts?.signal });
  }

  /**
   * Checks a session token and returns its session. When the answer has a
   * `token`, the session was rotated: use the new token from now on.
   */
  validate(token: string, opts?: ValidateOptions): Promise<TokenResponse> {
    const body: Schemas["ValidateRequest"] = { token };
    if (opts?.device) body.device = opts.device;
    if (opts?.wake) body.wake = true;
    return this.#call("POST", "/v1/sessions/validate", { body, signal: opts?.signal });
  }

  /** Returns a session by id, in any state (until purged). */
  get(id: string, opts?: CallOptions): Promise<Session> {
    return this.#call("GET", `/v1/sessions/${enc(id)}`, { signal: opts?.signal });
  }

  /** Returns one page of sessions; pass `next_cursor` back as `cursor` for the next. */
  list(opts: ListOptions = {}): Promise<ListResponse> {
    const q = query({ subject: opts.subject, state: opts.state, limit: opts.limit, cursor: opts.cursor });
    return this.#call("GET", `/v1/sessions${q}`, { signal: opts.signal });
  }

  /** Returns a subject's live sessions, oldest first. */
  async listSubject(subject: string, opts?: CallOptions): Promise<Session[]> {
    const r: ListResponse = await this.#call("GET", `/v1/subjects/${enc(subject)}/sessions`, { signal: opts?.signal });
    return r.sessions;
  }

  /** Issues a new token for a session now; the old one keeps working for the policy's rotation grace. */
  rotate(id: string, opts?: CallOptions): Promise<TokenResponse & { token: string }> {
    return this.#call("POST", `/v1/sessions/${enc(id)}/rotate`, { signal: opts?.signal });
  }

  /** Ends a session; its sockets close with 4500. Revoking an ended session succeeds. */
  async revoke(id: string, opts?: CallOptions): Promise<void> {
    await this.#call("DELETE", `/v1/sessions/${enc(id)}`, { signal: opts?.signal });
  }

  /** Ends all of a subject's live sessions; returns how many. */
  async revokeSubject(subject: string, opts?: CallOptions): Promise<number> {
    const r: Schemas["RevokeSubjectResponse"] = await this.#call("DELETE", `/v1/subjects/${enc(subject)}/sessions`, { signal: opts?.signal });
    return r.revoked;
  }

  /**
   * Puts a session with no connections to sleep now, and returns it once
   * its runtime did. A session with connections is refused (`invalid_state`).
   */
  hibernate(id: string, opts?: CallOptions): Promise<Session> {
    return this.#call("POST", `/v1/sessions/${enc(id)}/hibernate`, { signal: opts?.signal, long: true });
  }

  /** Wakes a hibernated session now, and returns it once its runtime did. */
  wake(id: string, opts?: CallOptions): Promise<Session> {
    return this.#call("POST", `/v1/sessions/${enc(id)}/wake`, { signal: opts?.signal, long: true });
  }

  /**
   * Registers a connection of a kind other than WebSocket (`http`, `vnc`,
   * ...); keep it alive with {@link heartbeat} every `heartbeat_interval`.
   */
  addConnection(sessionId: string, req: ConnectionRequest, opts?: CallOptions): Promise<ConnectionResponse> {
    return this.#call("POST", `/v1/sessions/${enc(sessionId)}/connections`, { body: req, signal: opts?.signal });
  }

  /** Keeps a connection registered by {@link addConnection} alive. */
  heartbeat(connectionId: string, opts?: CallOptions): Promise<ConnectionResponse> {
    return this.#call("POST", `/v1/connections/${enc(connectionId)}/heartbeat`, { signal: opts?.signal });
  }

  /** Detaches a connection. */
  async removeConnection(connectionId: string, opts?: CallOptions): Promise<void> {
    await this.#call("DELETE", `/v1/connections/${enc(connectionId)}`, { signal: opts?.signal });
  }

  /** Lists a session's live connections, oldest first. */
  async connections(sessionId: string, opts?: CallOptions): Promise<Connection[]> {
    const r: Schemas["ConnectionsResponse"] = await this.#call("GET", `/v1/sessions/${enc(sessionId)}/connections`, { signal: opts?.signal });
    return r.connections;
  }

  /** A page of a session's lifecycle history (a server run with --history). */
  sessionHistory(id: string, opts: HistoryOptions = {}): Promise<HistoryResponse> {
    return this.#call("GET", `/v1/sessions/${enc(id)}/history${historyQuery(opts)}`, { signal: opts.signal });
  }

  /** A page of the lifecycle history of a subject's sessions (a server run with --history). */
  subjectHistory(subject: string, opts: HistoryOptions = {}): Promise<HistoryResponse> {
    return this.#call("GET", `/v1/subjects/${enc(subject)}/history${historyQuery(opts)}`, { signal: opts.signal });
  }

  /** The server's counts. */
  stats(opts?: CallOptions): Promise<StatsResponse> {
    return this.#call("GET", "/v1/stats", { signal: opts?.signal });
  }

  /** The nodes sharing the server's store, by name, with their leases and sockets. */
  async nodes(opts?: CallOptions): Promise<Node[]> {
    const r: Schemas["NodesResponse"] = await this.#call("GET", "/v1/nodes", { signal: opts?.signal });
    return r.nodes;
  }

  /** The server's readiness (`/readyz`); throws while it is not ready. */
  ready(opts?: CallOptions): Promise<ReadyResponse> {
    return this.#call("GET", "/readyz", { signal: opts?.signal });
  }

  /**
   * Streams lifecycle events (`GET /v1/events`, server-sent events) until
   * `signal` aborts or the server ends the stream. To resume without loss,
   * call again with `after` set to the `id` of the last event received.
   *
   * ```ts
   * for await (const { id, type, event } of api.events({ after: "0", signal })) { ... }
   * ```
   */
  async *events(opts: EventsOptions = {}): AsyncGenerator<StreamedEvent, void, undefined> {
    const q = query({ after: opts.after });
    const res = await this.#fetch(this.baseUrl + "/v1/events" + q, {
      method: "GET",
      headers: { authorization: `Bearer ${this.#apiKey}`, accept: "text/event-stream" },
      signal: opts.signal ?? null,
    });
    if (res.status !== 200) {
      throw errorFromResponse(res.status, await res.text(), res.headers, "GET /v1/events");
    }
    if (!res.body) return;
    try {
      for await (const m of parseEventStream(res.body)) {
        if (m.data === "") continue;
        const event = JSON.parse(m.data) as SessionEvent;
        yield { id: m.id, type: (m.event || event.type) as EventType, event };
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw err;
    }
  }

  async #call<T>(method: string, path: string, o: { body?: unknown; signal?: AbortSignal | undefined; long?: boolean }): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#apiKey}`, accept: "application/json" };
    let body: string | undefined;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers["content-type"] = "application/json";
    }
    const timeout = o.long ? this.#longTimeout : this.#timeout;
    const signals: AbortSignal[] = [];
    if (o.signal) signals.push(o.signal);
    if (timeout > 0) signals.push(AbortSignal.timeout(timeout));
    const signal = signals.length === 0 ? null : signals.length === 1 ? signals[0]! : anySignal(signals);
    const res = await this.#fetch(this.baseUrl + path, { method, headers, body: body ?? null, signal });
    const text = await res.text();
    if (!res.ok) throw errorFromResponse(res.status, text, res.headers, `${method} ${path.split("?")[0]}`);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

function historyQuery(o: HistoryOptions): string {
  return query({ since: o.since, until: o.until, cursor: o.cursor, limit: o.limit });
}

/** AbortSignal.any where it exists (Node 20.3+, current browsers), else by hand. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return any(signals);
  const c = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      c.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}
