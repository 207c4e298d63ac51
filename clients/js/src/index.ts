/**
 * The sessiond client for browsers and Node: {@link SessiondClient} calls
 * the REST admin API (docs/openapi.yaml); {@link connect} holds a live
 * WebSocket to a session (docs/protocol.md), reconnecting with backoff and
 * resuming the same session within its disconnect grace.
 *
 * @packageDocumentation
 */
export { SessiondClient } from "./rest.js";
export type {
  CallOptions,
  Connection,
  ConnectionRequest,
  ConnectionResponse,
  CreateRequest,
  CreateResponse,
  Device,
  EndReason,
  EventType,
  EventsOptions,
  HistoryOptions,
  HistoryResponse,
  ListOptions,
  ListResponse,
  Node,
  ReadyResponse,
  Session,
  SessionEvent,
  SessionState,
  SessiondClientOptions,
  StatsResponse,
  StreamedEvent,
  TokenResponse,
  ValidateOptions,
} from "./rest.js";
export { connect, SessionSocket, SilenceError } from "./socket.js";
export type { Clock, Logger, SocketAck, SocketEvent, SocketOptions, SocketState } from "./socket.js";
export type { WebSocketConstructor } from "./transport.js";
export { CloseCode, closeReason, shouldReconnect } from "./close.js";
export { ClosedError, CloseError, NotConnectedError, SessiondError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { backoff } from "./backoff.js";
export type {
  ClientMessage,
  ConnectedMessage,
  ErrorMessage,
  PongMessage,
  ReadyMessage,
  RefreshMessage,
  RefreshedMessage,
  ServerMessage,
} from "./protocol.js";
export type { components, operations, paths } from "./generated/openapi.js";
