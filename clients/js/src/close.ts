// WebSocket close codes (docs/protocol.md, "Close codes"), as defined in
// the server's wire/close.go.

/** The close codes the server sends, and `Abnormal`, which it never sends. */
export const CloseCode = {
  /** The client closed. */
  Normal: 1000,
  /** The server is shutting down: reconnect (to another node). */
  GoingAway: 1001,
  /** The client sent a binary frame. Terminal. */
  UnsupportedData: 1003,
  /** No status in the close frame; never sent by the server. */
  NoStatus: 1005,
  /** The connection was lost without a close frame; never sent by the server. */
  Abnormal: 1006,
  /** The client exceeded the message rate limit. Terminal. */
  PolicyViolation: 1008,
  /** A message exceeded the size limit. Terminal. */
  MessageTooBig: 1009,
  /** The server failed: reconnect. */
  InternalError: 1011,
  /** The server asks the client to reconnect. */
  Reconnect: 4000,
  /** The JWT expired without a refresh: reconnect with a fresh one. */
  CredentialExpired: 4001,
  /** The server heard nothing for the heartbeat timeout. */
  HeartbeatTimeout: 4002,
  /** The session's runtime did not wake it within wake_timeout; a reconnect wakes it again. */
  WakeFailed: 4003,
  /** The session was revoked. Terminal. */
  SessionRevoked: 4500,
  /** The session reached its ttl or idle timeout. Terminal. */
  SessionExpired: 4501,
  /** A newer connection replaced this one. Terminal. */
  Replaced: 4502,
  /** The session ended for another reason (evicted, token reused, ...). Terminal. */
  SessionEnded: 4503,
  /** An attach token was refused or belongs to another subject. Terminal. */
  Unauthorized: 4504,
  /** The session is at its max_connections. Terminal. */
  TooManyConnections: 4505,
  /** An `?attach=message` connection sent no valid attach in time. Terminal. */
  BadRequest: 4506,
} as const;

const reasons: Record<number, string> = {
  1000: "normal closure",
  1001: "server shutting down",
  1003: "binary frames are not supported",
  1006: "abnormal closure",
  1008: "message rate exceeded",
  1009: "message too big",
  1011: "internal error",
  4000: "reconnect",
  4001: "credential expired",
  4002: "heartbeat timeout",
  4003: "wake failed",
  4500: "session revoked",
  4501: "session expired",
  4502: "replaced by a newer connection",
  4503: "session ended",
  4504: "unauthorized",
  4505: "too many connections",
  4506: "bad request",
};

/** The text the server puts in the close frame with `code`; "" for a code it does not send. */
export function closeReason(code: number): string {
  return reasons[code] ?? "";
}

/**
 * Whether a client should reconnect after a close with `code`: yes for
 * 1000-1015 and 4000-4499 except 1003, 1008 and 1009; no for 4500-4999 and
 * every other code.
 */
export function shouldReconnect(code: number): boolean {
  if (code === 1003 || code === 1008 || code === 1009) return false;
  return (code >= 1000 && code <= 1015) || (code >= 4000 && code <= 4499);
}
