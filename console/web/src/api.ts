// The API key and the client that sends it. The key is kept in this
// module's memory only: never in a cookie, localStorage or sessionStorage,
// so it is gone when the tab closes or reloads (docs/console.md says why).
import { SessiondError } from "@sessiond/client/errors";
import { SessiondClient } from "@sessiond/client/rest";

export { SessiondError };
export type { Connection, HistoryOptions, HistoryResponse, ListOptions, Node, Session, SessionEvent, SessionState, StatsResponse, StreamedEvent } from "@sessiond/client/rest";

let client: SessiondClient | undefined;
const listeners = new Set<(why: string | undefined) => void>();
let onStreamOpen: (() => void) | undefined;

/** The client of the signed-in tab; throws when signed out. */
export function api(): SessiondClient {
  if (!client) throw new SessiondError({ code: "unauthorized", message: "signed out", status: 401 });
  return client;
}

export function signedIn(): boolean {
  return client !== undefined;
}

/** Called with the reason whenever the tab signs out (a 401 from any call, or the button). */
export function onSignOut(fn: (why: string | undefined) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Called each time GET /v1/events answers 200: the live stream is open. */
export function onEventStreamOpen(fn: (() => void) | undefined): void {
  onStreamOpen = fn;
}

/** Forgets the key. */
export function signOut(why?: string): void {
  if (!client) return;
  client = undefined;
  for (const fn of listeners) fn(why);
}

function newClient(apiKey: string): SessiondClient {
  const self: SessiondClient = new SessiondClient({
    baseUrl: location.origin,
    apiKey,
    // Every answer of the API passes here: a 401 signs the tab out (when
    // this client is the tab's, not a sign-in attempt), and the opening of
    // the event stream is noticed.
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (res.status === 401 && client === self) {
        signOut("The server refused the API key (401 unauthorized): sign in again.");
      } else if (res.status === 200 && new URL(String(input instanceof Request ? input.url : input)).pathname === "/v1/events") {
        onStreamOpen?.();
      }
      return res;
    },
  });
  return self;
}

/**
 * Checks the key with GET /v1/stats and keeps it if the server takes it.
 * Throws the server's error (unauthorized, rate_limited, ...) otherwise.
 */
export async function signIn(apiKey: string): Promise<void> {
  const c = newClient(apiKey);
  await c.stats();
  client = c;
}

/** The wire form of an error, for people: the API's stable code and its message. */
export function describe(err: unknown): { code: string; message: string } {
  if (err instanceof SessiondError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: err.name === "TypeError" ? "network" : err.name, message: err.message };
  return { code: "error", message: String(err) };
}

/** Whether err is the API's answer with this stable code. */
export function isCode(err: unknown, code: string): boolean {
  return err instanceof SessiondError && err.code === code;
}

