// The WebSocket messages (docs/protocol.md, "Messages"), as defined in the
// server's wire/messages.go. Every message is a JSON object with a type.

/** The server's first message on a connection: it is attached to its session. */
export interface ConnectedMessage {
  type: "connected";
  session_id: string;
  connection_id: string;
  /** The session existed before this connection (a resume), rather than being created by it. */
  resumed: boolean;
  /** "active", or "waking" when this connection woke a hibernated session: a `ready` message follows. */
  state: string;
  heartbeat_interval_ms: number;
  heartbeat_timeout_ms: number;
  /** The credential's (JWT's) expiry, RFC 3339; absent if it has none. */
  expires_at?: string;
  /** Set only when the server issued a token with this connection (a session created now, or its token rotated); shown once. */
  session_token?: string;
}

/** A session this connection woke is awake. */
export interface ReadyMessage {
  type: "ready";
  state: string;
}

/** The credential expires soon: send a new one before `expires_at`. */
export interface RefreshMessage {
  type: "refresh";
  expires_at: string;
}

/** A new credential was accepted. */
export interface RefreshedMessage {
  type: "refreshed";
  expires_at?: string;
}

/** A message the server refused; the connection stays open. */
export interface ErrorMessage {
  type: "error";
  /** `invalid_message`, `unknown_type`, or `unauthorized` (a refused refresh). */
  code: string;
  message: string;
  /** The type of the message this answers, if it had one. */
  re?: string;
}

/** The answer to a `{"type":"ping"}`. */
export interface PongMessage {
  type: "pong";
}

/** Any message of the server; messages of types added later come as `{type: string}`. */
export type ServerMessage =
  | ConnectedMessage
  | ReadyMessage
  | RefreshMessage
  | RefreshedMessage
  | ErrorMessage
  | PongMessage
  | { type: string; [key: string]: unknown };

/** A message of the client: a ping, a refresh with a new credential, or an attach. */
export type ClientMessage =
  | { type: "ping" }
  | { type: "refresh"; token: string }
  | { type: "attach"; session_token: string };
