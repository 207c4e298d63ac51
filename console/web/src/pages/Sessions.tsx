import { useState } from "preact/hooks";
import { api, type ListOptions, type Session, type SessionState } from "../api";
import { href, navigate, query, useWhere } from "../router";
import { Empty, ErrorBox, Link, PageHead, StateBadge, Time, useLiveReload, useLoad } from "../ui";

export const STATES: SessionState[] = ["active", "disconnected", "hibernating", "hibernated", "waking", "ending", "ended"];
const PAGE = 50;

/**
 * All sessions, filtered by subject and state, a page at a time with the
 * API's cursor; an id goes straight to its session. The page in view is
 * read again when events of its sessions arrive.
 */
export function Sessions() {
  const w = useWhere();
  const subject = w.query.get("subject") ?? "";
  const state = w.query.get("state") ?? "";
  const cursor = w.query.get("cursor") ?? "";
  // The cursors of the pages before this one, for "Previous".
  const [trail, setTrail] = useState<string[]>([]);
  const list = useLoad(
    (signal) => {
      const opts: ListOptions = { limit: PAGE, signal };
      if (subject) opts.subject = subject;
      if (state) opts.state = state as SessionState;
      if (cursor) opts.cursor = cursor;
      return api().list(opts);
    },
    [subject, state, cursor],
  );
  useLiveReload((ev) => (!subject || ev.event.subject === subject), list.reload, [subject]);

  const go = (params: Record<string, string>) => navigate("/sessions" + query(params));
  const sessions = list.value?.sessions;
  return (
    <>
      <PageHead title="Sessions" sub="Every session in the store, in id order, a page at a time." />
      <Filters
        key={`${subject}|${state}`}
        subject={subject}
        state={state}
        onSearch={(f) => {
          setTrail([]);
          if (f.id) navigate(href("sessions", f.id));
          else go({ subject: f.subject, state: f.state });
        }}
      />
      {list.error ? <ErrorBox error={list.error} /> : null}
      {sessions ? <SessionTable sessions={sessions} /> : list.loading ? <Empty>Loading…</Empty> : null}
      <div class="pager">
        <button
          type="button"
          class="btn"
          disabled={!cursor}
          onClick={() => {
            const prev = trail.slice(0, -1);
            setTrail(prev);
            go({ subject, state, cursor: trail[trail.length - 1] ?? "" });
          }}
        >
          ← Previous
        </button>
        <span class="muted">{sessions ? `${sessions.length} on this page` : ""}</span>
        <button
          type="button"
          class="btn"
          disabled={!list.value?.next_cursor}
          onClick={() => {
            setTrail([...trail, cursor]);
            go({ subject, state, cursor: list.value?.next_cursor ?? "" });
          }}
        >
          Next →
        </button>
      </div>
    </>
  );
}

interface Filter {
  subject: string;
  state: string;
  id: string;
}

function Filters(p: { subject: string; state: string; onSearch: (f: Filter) => void }) {
  const [f, setF] = useState<Filter>({ subject: p.subject, state: p.state, id: "" });
  const field = (k: keyof Filter) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <form
      class="filters"
      onSubmit={(e) => {
        e.preventDefault();
        p.onSearch({ subject: f.subject.trim(), state: f.state, id: f.id.trim() });
      }}
    >
      <label>
        Subject
        <input name="subject" type="search" value={f.subject} onInput={field("subject")} placeholder="alice" autocomplete="off" spellcheck={false} />
      </label>
      <label>
        State
        <select name="state" value={f.state} onChange={field("state")}>
          <option value="">any</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Session id
        <input name="id" type="search" value={f.id} onInput={field("id")} placeholder="06h3ehckp4w6m4s399qhkpg9cm" autocomplete="off" spellcheck={false} />
      </label>
      <button type="submit" class="btn btn-primary">
        Search
      </button>
    </form>
  );
}

/** Sessions as a table, each row linking to its session and subject. */
export function SessionTable(p: { sessions: Session[]; showSubject?: boolean }) {
  if (p.sessions.length === 0) return <Empty>No sessions match.</Empty>;
  return (
    <div class="table-wrap">
    <table class="table" data-testid="sessions">
      <thead>
        <tr>
          <th>Session</th>
          {p.showSubject === false ? null : <th>Subject</th>}
          <th>State</th>
          <th>Policy</th>
          <th>Device</th>
          <th class="num">Conns</th>
          <th>Created</th>
          <th>Last active</th>
        </tr>
      </thead>
      <tbody>
        {p.sessions.map((s) => (
          <tr key={s.id} data-session={s.id}>
            <td>
              <Link to={href("sessions", s.id)} class="mono">
                {s.id}
              </Link>
            </td>
            {p.showSubject === false ? null : (
              <td>
                <Link to={href("subjects", s.subject)}>{s.subject}</Link>
              </td>
            )}
            <td>
              <StateBadge state={s.state} reason={s.end_reason} />
            </td>
            <td>{s.policy}</td>
            <td class="truncate" title={s.device?.name ?? s.device?.id}>
              {s.device?.name ?? s.device?.id ?? <span class="muted">—</span>}
            </td>
            <td class="num">{s.connections ?? 0}</td>
            <td>
                  <Time at={s.created_at} short />
                </td>
            <td>
                  <Time at={s.last_active_at} short />
                </td>
          </tr>
        ))}
      </tbody>
    </table>
    </div>
  );
}
