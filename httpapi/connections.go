package httpapi

import (
	"net/http"
	"strconv"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// Connections that are not WebSockets (HTTP, VNC, ...) are registered here
// and kept alive by heartbeats; WebSockets attach through /v1/connect.

func (s *Server) addConnection(w http.ResponseWriter, r *http.Request) error {
	var body wire.ConnectionRequest
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Kind == sessiond.KindWebSocket {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "kind", "websocket connections attach through GET /v1/connect")
	}
	c, err := s.m.ConnectTo(r.Context(), r.PathValue("id"), sessiond.ConnectRequest{
		Kind: body.Kind, ClientIP: body.ClientIP, UserAgent: body.UserAgent,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/connections/"+c.Conn.ID) // it answers DELETE and /heartbeat
	wire.WriteJSON(w, http.StatusCreated, connectionResponse(c))
	return nil
}

func connectionResponse(c *sessiond.Connected) wire.ConnectionResponse {
	return wire.ConnectionResponse{
		Connection: c.Conn, State: c.Session.State,
		HeartbeatInterval: c.Policy.HeartbeatInterval.String(), HeartbeatTimeout: c.Policy.HeartbeatTimeout.String(),
	}
}

func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) error {
	conns, err := s.m.Connections(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if conns == nil {
		conns = []sessiond.Connection{}
	}
	wire.WriteJSON(w, http.StatusOK, wire.ConnectionsResponse{Connections: conns})
	return nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	c, err := s.m.Heartbeat(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, connectionResponse(c))
	return nil
}

func (s *Server) removeConnection(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	cause := sessiond.CloseCause{Reason: sessiond.CloseReason(q.Get("close_reason"))}
	if v := q.Get("close_code"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil {
			return sessiond.Errorf(sessiond.CodeInvalidArgument, "close_code", "a WebSocket close code is a number from 1000 to 4999 (0: none)")
		}
		cause.Code = code
	}
	if err := s.m.RemoveConnectionWith(r.Context(), r.PathValue("id"), cause); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
