import { closeReason } from "./close.js";
import type { components } from "./generated/openapi.js";

/** The server's stable error codes (docs/openapi.yaml, "Errors"). */
export type ErrorCode = components["schemas"]["ErrorCode"];

/**
 * An error answered by the server: its stable `code` (switch on it, never
 * on `message`), the `field` it concerns for `invalid_argument`, its
 * human-readable `message`, and the HTTP `status`.
 *
 * An answer that is not the API's error body (a proxy's page, say) has
 * the code `"unexpected_response"`, which the server never sends.
 */
export class SessiondError extends Error {
  override readonly name = "SessiondError";
  /** The server's stable code; a code this client does not know is passed through as is. */
  readonly code: ErrorCode | "unexpected_response" | (string & {});
  /** The input the error concerns (`subject`, `device.id`, `limit`, ...), for `invalid_argument`. */
  readonly field: string | undefined;
  /** The HTTP status. */
  readonly status: number;
  /** Seconds to wait before retrying, from a `Retry-After` header (429, 503). */
  readonly retryAfter: number | undefined;

  constructor(init: { code: string; message: string; status: number; field?: string | undefined; retryAfter?: number | undefined }) {
    super(init.message);
    this.code = init.code;
    this.field = init.field;
    this.status = init.status;
    this.retryAfter = init.retryAfter;
  }
}

/**
 * The WebSocket closed with a code that does not allow a reconnect
 * (4500-4999, 1003, 1008, 1009): what stops a {@link SessionSocket}.
 */
export class CloseError extends Error {
  override readonly name = "CloseError";
  /** The close code (see {@link CloseCode}). */
  readonly code: number;
  /** The reason text of the close frame: for people, not for parsing. */
  readonly reason: string;

  constructor(code: number, reason = "") {
    const known = closeReason(code);
    super(`websocket closed with code ${code}${known ? ` (${known})` : ""}`);
    this.code = code;
    this.reason = reason;
  }
}

/** The socket is between connections (reconnecting); try again after the next `connected` state. */
export class NotConnectedError extends Error {
  override readonly name = "NotConnectedError";
  constructor() {
    super("sessiond: websocket not connected");
  }
}

/** `close()` stopped the socket. */
export class ClosedError extends Error {
  override readonly name = "ClosedError";
  constructor() {
    super("sessiond: websocket closed");
  }
}

/**
 * Decodes an error answer: the API's error body into a
 * {@link SessiondError} with its code, anything else with the code
 * `unexpected_response`.
 */
export function errorFromResponse(status: number, body: string, headers?: { get(name: string): string | null }, what = ""): SessiondError {
  const ra = headers?.get("retry-after");
  const retryAfter = ra != null && /^\d+$/.test(ra) ? Number(ra) : undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; field?: unknown } };
    const e = parsed?.error;
    if (e && typeof e.code === "string" && e.code !== "") {
      return new SessiondError({
        code: e.code,
        message: typeof e.message === "string" ? e.message : e.code,
        field: typeof e.field === "string" ? e.field : undefined,
        status,
        retryAfter,
      });
    }
  } catch {
    // not JSON: below
  }
  return new SessiondError({
    code: "unexpected_response",
    message: `sessiond: ${what ? what + ": " : ""}unexpected status ${status}`,
    status,
    retryAfter,
  });
}
