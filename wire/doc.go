// Package wire is sessiond's protocol as it travels: the REST request and
// response bodies, the error body and the table from error code to HTTP
// status, the WebSocket messages, and the WebSocket close codes. The edges
// (httpapi, ws) and the Go client share these definitions, so that each
// thing is defined once and the two ends cannot drift apart.
//
// docs/openapi.yaml documents the REST bodies and docs/protocol.md the
// WebSocket messages and close codes; tests keep both in agreement with
// this package.
//
// The package holds types, their JSON form and the few functions that are
// part of the protocol itself (the status of an error code, the close code
// of an end reason). Converting to and from the engine's requests is the
// job of the edges.
package wire
