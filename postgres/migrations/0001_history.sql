-- The lifecycle history: every event of the store's log, once, partitioned
-- by day on the event's time (partitions are made as events arrive and
-- dropped after the retention: postgres.go).
CREATE TABLE IF NOT EXISTS {{.Schema}}.sessiond_events (
    at          timestamptz NOT NULL,          -- the event's time
    log_part    integer     NOT NULL,          -- its partition in the store's log
    seq         bigint      NOT NULL,          -- and its Seq there
    type        text        NOT NULL,
    session_id  text        NOT NULL,
    subject     text        NOT NULL,
    state       text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    version     bigint      NOT NULL,
    generation  bigint      NOT NULL,
    connection  text        NOT NULL DEFAULT '',
    event       jsonb       NOT NULL,          -- the whole event, as GET /v1/events sends it
    PRIMARY KEY (at, log_part, seq)
) PARTITION BY RANGE (at);

CREATE INDEX IF NOT EXISTS sessiond_events_session ON {{.Schema}}.sessiond_events (session_id, at);
CREATE INDEX IF NOT EXISTS sessiond_events_subject ON {{.Schema}}.sessiond_events (subject, at);

-- Where the sink is in the store's log: one row per log followed. It is
-- updated in the transaction that writes the events it moved past, so a
-- restart, a second node or a lost connection never writes an event twice.
CREATE TABLE IF NOT EXISTS {{.Schema}}.sessiond_history_cursor (
    name       text        PRIMARY KEY,
    position   text        NOT NULL,       -- a sessiond.Cursor
    updated_at timestamptz NOT NULL
);

-- Events the store's log no longer held when the sink came to read them
-- (an outage longer than the log's retention): from after_seq + 1 to
-- next_seq - 1 of the log's partition, recorded at noticed_at.
CREATE TABLE IF NOT EXISTS {{.Schema}}.sessiond_history_gaps (
    noticed_at timestamptz NOT NULL,
    log_part   integer     NOT NULL,
    after_seq  bigint      NOT NULL,
    next_seq   bigint      NOT NULL
);
