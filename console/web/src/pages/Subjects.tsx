import { useState } from "preact/hooks";
import { api } from "../api";
import { HistoryPanel } from "../history";
import { href, navigate, query } from "../router";
import { Confirm, Empty, ErrorBox, Link, PageHead, useLiveReload, useLoad } from "../ui";
import { SessionTable } from "./Sessions";

/** Look up a subject. */
export function SubjectSearch() {
  const [subject, setSubject] = useState("");
  return (
    <>
      <PageHead title="Subjects" sub="A subject owns sessions: a user id, an email, a service." />
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          if (subject.trim()) navigate(href("subjects", subject.trim()));
        }}
      >
        <label>
          Subject
          <input name="subject" type="search" value={subject} onInput={(e) => setSubject(e.currentTarget.value)} placeholder="alice" autocomplete="off" spellcheck={false} />
        </label>
        <button type="submit" class="btn btn-primary">
          Open
        </button>
      </form>
      <Empty>Name a subject to see its live sessions and revoke them all.</Empty>
    </>
  );
}

/** The windows of a subject's history, as `since` takes them. */
const SINCE = [
  { value: "1h", label: "the last hour" },
  { value: "24h", label: "the last day" },
  { value: "168h", label: "the last 7 days" },
  { value: "720h", label: "the last 30 days" },
  { value: "", label: "all recorded" },
];

/** One subject: its live sessions, revoke all, and its history. */
export function SubjectPage(p: { subject: string }) {
  const [since, setSince] = useState("24h");
  const sessions = useLoad((signal) => api().listSubject(p.subject, { signal }), [p.subject]);
  useLiveReload((ev) => ev.event.subject === p.subject, sessions.reload, [p.subject]);
  const [asking, setAsking] = useState(false);
  const [result, setResult] = useState<{ revoked?: number; error?: unknown } | undefined>();
  const n = sessions.value?.length ?? 0;
  const revokeAll = async () => {
    setAsking(false);
    try {
      setResult({ revoked: await api().revokeSubject(p.subject) });
    } catch (error) {
      setResult({ error });
    }
    sessions.reload();
  };
  return (
    <>
      <PageHead title={<>Subject {p.subject}</>} sub="Its live sessions, oldest first.">
        <button type="button" class="btn btn-danger" disabled={n === 0} onClick={() => setAsking(true)}>
          Revoke all
        </button>
      </PageHead>
      {asking ? (
        <Confirm title="Revoke all of this subject's sessions?" confirm={`Revoke ${n} session${n === 1 ? "" : "s"}`} danger onConfirm={() => void revokeAll()} onCancel={() => setAsking(false)}>
          <p>
            Every live session of <strong>{p.subject}</strong> ends now (reason revoked), and their WebSockets close with code 4500. This cannot be undone.
          </p>
        </Confirm>
      ) : null}
      {result?.error ? <ErrorBox error={result.error} title="Revoke all failed" /> : null}
      {result?.revoked !== undefined ? (
        <div class="notice" role="status">
          Revoked {result.revoked} session{result.revoked === 1 ? "" : "s"}.
        </div>
      ) : null}
      {sessions.error ? <ErrorBox error={sessions.error} /> : null}
      {sessions.value ? <SessionTable sessions={sessions.value} showSubject={false} /> : sessions.loading ? <Empty>Loading…</Empty> : null}
      <p class="note after-table">
        Ended sessions of this subject: <Link to={"/sessions" + query({ subject: p.subject, state: "ended" })}>sessions, state ended</Link>.
      </p>
      <HistoryPanel
        load={(opts) => api().subjectHistory(p.subject, since ? { ...opts, since } : opts)}
        deps={[p.subject, since]}
        match={(ev) => ev.event.subject === p.subject}
        showSession
      >
        <div class="filters">
          <label>
            Events of
            <select name="since" value={since} onChange={(e) => setSince(e.currentTarget.value)}>
              {SINCE.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          </label>
        </div>
      </HistoryPanel>
    </>
  );
}
