import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { isCode, type HistoryOptions, type HistoryResponse, type SessionEvent, type StreamedEvent } from "./api";
import { href } from "./router";
import { Empty, ErrorBox, Link, StateBadge, Time, useLiveReload, useLoad } from "./ui";

/** How many events a request of a history panel asks for. */
const HISTORY_PAGE = 200;

/**
 * How long after a live event a history panel reads again: the server's
 * history sink writes an event to PostgreSQL a moment after it happens.
 */
const SINK_LAG_MS = 1000;

type HistoryLoad = (opts: HistoryOptions) => Promise<HistoryResponse>;

/**
 * The first `pages` pages of a history, oldest first, and the cursor of
 * the page after them (absent once everything is read).
 */
async function loadHistory(load: HistoryLoad, pages: number, signal: AbortSignal): Promise<{ events: SessionEvent[]; next: string | undefined }> {
  const events: SessionEvent[] = [];
  let next: string | undefined;
  for (let i = 0; i < pages; i++) {
    const page = await load(next ? { signal, limit: HISTORY_PAGE, cursor: next } : { signal, limit: HISTORY_PAGE });
    events.push(...page.events);
    next = page.next_cursor;
    if (!next) break;
  }
  return { events, next };
}

/**
 * A history in PostgreSQL, on a server run with --history: oldest first,
 * a page at a time, and the pages shown read again as matching events
 * come. deps name what load reads (a new value starts from page one).
 */
export function HistoryPanel(p: { load: HistoryLoad; deps: unknown[]; match: (ev: StreamedEvent) => boolean; showSession?: boolean; children?: ComponentChildren }) {
  // Pages shown, counted for the deps they were read for: new deps start
  // from page one.
  const of = JSON.stringify(p.deps);
  const [shown, setShown] = useState({ of, pages: 1 });
  const pages = shown.of === of ? shown.pages : 1;
  const h = useLoad((signal) => loadHistory(p.load, pages, signal), [...p.deps, pages]);
  useLiveReload(p.match, () => setTimeout(h.reload, SINK_LAG_MS), p.deps);
  return (
    <section class="panel">
      <h2>History</h2>
      {isCode(h.error, "not_found") ? null : p.children}
      {isCode(h.error, "not_found") ? (
        <Empty>
          <span data-testid="history-off">History is not configured</span>: start the server with <code>--history postgres://…</code> to keep every event
          (docs/history.md).
        </Empty>
      ) : h.error ? (
        <ErrorBox error={h.error} />
      ) : h.value ? (
        h.value.events.length === 0 ? (
          <Empty>No recorded events.</Empty>
        ) : (
          <>
            <EventList events={h.value.events} testid="history" showSession={p.showSession ?? false} />
            <div class="pager">
              <span class="muted" data-testid="history-count">
                {h.value.events.length} {h.value.events.length === 1 ? "event" : "events"}, oldest first{h.value.next ? "; later ones recorded" : ""}
              </span>
              {h.value.next ? (
                <button type="button" class="btn" disabled={h.loading} onClick={() => setShown({ of, pages: pages + 1 })}>
                  Later events →
                </button>
              ) : null}
            </div>
          </>
        )
      ) : (
        <Empty>Loading…</Empty>
      )}
    </section>
  );
}

/** Events as a timeline, in the order given; showSession links each to its session. */
export function EventList(p: { events: SessionEvent[]; testid: string; showSession?: boolean }) {
  return (
    <ol class="timeline" data-testid={p.testid}>
      {p.events.map((e, i) => (
        <li key={`${e.partition ?? 0}.${e.seq}.${i}`}>
          <Time at={e.time} short /> <span class="event-type">{e.type}</span>
          {e.state ? <StateBadge state={e.state} reason={e.reason} /> : null}
          {e.conn ? (
            <span class="muted">
              {" "}
              {e.conn.kind}
              {e.conn.close_code ? ` · close ${e.conn.close_code}` : ""}
            </span>
          ) : null}
          {p.showSession ? (
            <>
              {" "}
              <Link to={href("sessions", e.session_id)} class="mono muted">
                {e.session_id}
              </Link>
            </>
          ) : null}
        </li>
      ))}
    </ol>
  );
}
