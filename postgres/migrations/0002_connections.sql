-- Every connection, one row each, for audit and billing: written by the
-- sink from the events that describe connections (connected and resumed
-- open a row, connection_closed closes it), in the transaction that
-- writes those events and moves the cursor. Partitioned by day on
-- opened_at (partitions are made as connections arrive and dropped with
-- the events' retention: postgres.go).
CREATE TABLE IF NOT EXISTS {{.Schema}}.sessiond_connections (
    opened_at    timestamptz NOT NULL,
    conn_id      text        NOT NULL,
    session_id   text        NOT NULL,
    subject      text        NOT NULL,
    kind         text        NOT NULL,
    node         text        NOT NULL DEFAULT '',   -- the node that held it (WebSocket connections)
    client_ip    text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    closed_at    timestamptz,                        -- NULL while it is open
    duration     interval GENERATED ALWAYS AS (closed_at - opened_at) STORED,
    close_code   integer,                            -- the WebSocket close code; 0 for none
    close_reason text,                               -- closed, heartbeat_timeout, node_lost, replaced, session_ended, ...
    PRIMARY KEY (opened_at, conn_id)
) PARTITION BY RANGE (opened_at);

CREATE INDEX IF NOT EXISTS sessiond_connections_session ON {{.Schema}}.sessiond_connections (session_id, opened_at);
CREATE INDEX IF NOT EXISTS sessiond_connections_subject ON {{.Schema}}.sessiond_connections (subject, opened_at);
