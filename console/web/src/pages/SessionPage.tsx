import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { api, isCode, type Session, type SessionEvent } from "../api";
import { href } from "../router";
import { EventList, HistoryPanel } from "../history";
import { Confirm, Empty, ErrorBox, Link, PageHead, StateBadge, Time, useLive, useLiveReload, useLoad } from "../ui";

type Action = "revoke" | "hibernate" | "wake";

const LIVE = new Set(["active", "disconnected", "hibernating", "hibernated", "waking"]);

/** One session: its fields, connections, events, history, and what an admin can do to it. */
export function SessionPage(p: { id: string }) {
  const session = useLoad((signal) => api().get(p.id, { signal }), [p.id]);
  const conns = useLoad((signal) => api().connections(p.id, { signal }), [p.id]);
  useLiveReload((ev) => ev.event.session_id === p.id, () => {
    session.reload();
    conns.reload();
  }, [p.id]);
  const [asking, setAsking] = useState<Action | undefined>();
  const [acting, setActing] = useState(false);
  const [actionError, setActionError] = useState<unknown>();

  const s = session.value;
  const run = async (a: Action) => {
    setAsking(undefined);
    setActing(true);
    setActionError(undefined);
    try {
      if (a === "revoke") await api().revoke(p.id);
      else if (a === "hibernate") await api().hibernate(p.id);
      else await api().wake(p.id);
    } catch (err) {
      setActionError(err);
    } finally {
      setActing(false);
      session.reload();
      conns.reload();
    }
  };
  const live = s ? LIVE.has(s.state) : false;
  return (
    <>
      <PageHead
        title={
          <>
            Session <span class="mono">{p.id}</span>
          </>
        }
        sub={
          s ? (
            <>
              of <Link to={href("subjects", s.subject)}>{s.subject}</Link> · <StateBadge state={s.state} reason={s.end_reason} />
            </>
          ) : undefined
        }
      >
        <button type="button" class="btn" disabled={!s || acting || s.state !== "hibernated"} onClick={() => setAsking("wake")}>
          Wake
        </button>
        <button type="button" class="btn" disabled={!s || acting || (s.state !== "active" && s.state !== "disconnected")} onClick={() => setAsking("hibernate")}>
          Hibernate
        </button>
        <button type="button" class="btn btn-danger" disabled={!s || acting || !live} onClick={() => setAsking("revoke")}>
          Revoke
        </button>
      </PageHead>
      {asking ? <ConfirmAction action={asking} session={p.id} onConfirm={() => void run(asking)} onCancel={() => setAsking(undefined)} /> : null}
      {actionError ? <ErrorBox error={actionError} title="The action failed" /> : null}
      {session.error ? <ErrorBox error={session.error} /> : null}
      {s ? <Fields s={s} /> : null}
      <section class="panel">
        <h2>Connections</h2>
        {conns.error && !(isCode(conns.error, "session_not_found") || isCode(conns.error, "session_ended") || isCode(conns.error, "session_expired")) ? (
          <ErrorBox error={conns.error} />
        ) : null}
        {conns.value && conns.value.length > 0 && !conns.error ? (
          <table class="table compact" data-testid="connections">
            <thead>
              <tr>
                <th>Connection</th>
                <th>Kind</th>
                <th>Node</th>
                <th>Client IP</th>
                <th>User agent</th>
                <th>Connected</th>
                <th>Last heard</th>
              </tr>
            </thead>
            <tbody>
              {conns.value.map((c) => (
                <tr key={c.id} data-connection={c.id}>
                  <td class="mono truncate id-cell" title={c.id}>
                    {c.id}
                  </td>
                  <td>{c.kind}</td>
                  <td class="mono">{c.node ?? "—"}</td>
                  <td class="mono">{c.client_ip ?? "—"}</td>
                  <td class="truncate" title={c.user_agent}>
                    {c.user_agent ?? "—"}
                  </td>
                  <td>
                  <Time at={c.connected_at} short />
                </td>
                  <td>
                  <Time at={c.last_heartbeat_at} short />
                </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>No live connections.</Empty>
        )}
      </section>
      <div class="grid-2">
        <Timeline id={p.id} />
        <HistoryPanel
          load={(opts) => api().sessionHistory(p.id, opts)}
          deps={[p.id]}
          match={(ev) => ev.event.session_id === p.id}
        />
      </div>
    </>
  );
}

function ConfirmAction(p: { action: Action; session: string; onConfirm: () => void; onCancel: () => void }) {
  const text: Record<Action, ComponentChildren> = {
    revoke: "The session ends now (reason revoked): its token stops working and its WebSockets close with code 4500. This cannot be undone.",
    hibernate: "The session's runtime is told to put it to sleep; the next connection or a wake brings it back. A session with connections is refused.",
    wake: "The session's runtime is told to wake it now.",
  };
  return (
    <Confirm
      title={`${p.action[0]!.toUpperCase()}${p.action.slice(1)} this session?`}
      confirm={p.action === "revoke" ? "Revoke session" : p.action === "hibernate" ? "Hibernate" : "Wake"}
      danger={p.action === "revoke"}
      onConfirm={p.onConfirm}
      onCancel={p.onCancel}
    >
      <p>
        <span class="mono">{p.session}</span>
      </p>
      <p>{text[p.action]}</p>
    </Confirm>
  );
}

function Field(p: { label: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{p.label}</dt>
      <dd>{p.children}</dd>
    </>
  );
}

function Fields({ s }: { s: Session }) {
  return (
    <div class="grid-2">
      <section class="panel">
        <h2>Session</h2>
        <dl class="fields" data-testid="session-fields">
          <Field label="State">
            <StateBadge state={s.state} reason={s.end_reason} /> <span class="muted">since </span>
            <Time at={s.state_since} />
          </Field>
          <Field label="Subject">
            <Link to={href("subjects", s.subject)}>{s.subject}</Link>
          </Field>
          <Field label="Policy">{s.policy}</Field>
          <Field label="Created">
            <Time at={s.created_at} />
          </Field>
          <Field label="Last active">
            <Time at={s.last_active_at} />
          </Field>
          <Field label="Expires">
            <Time at={s.expires_at} />
          </Field>
          <Field label="Idle timeout">{s.idle_timeout ?? <span class="muted">off</span>}</Field>
          {s.disconnected_at ? (
            <Field label="Disconnected">
              <Time at={s.disconnected_at} />
            </Field>
          ) : null}
          {s.ended_at ? (
            <Field label="Ended">
              <Time at={s.ended_at} />
            </Field>
          ) : null}
          <Field label="Connections">{s.connections ?? 0}</Field>
          <Field label="Version · generation">
            {s.version} · {s.generation}
            {s.rotated_at ? (
              <>
                <span class="muted"> · rotated </span>
                <Time at={s.rotated_at} />
              </>
            ) : null}
          </Field>
          {s.hibernations ? <Field label="Hibernations">{s.hibernations}</Field> : null}
        </dl>
      </section>
      <section class="panel">
        <h2>Device and metadata</h2>
        <dl class="fields">
          <Field label="Device id">{s.device?.id ?? <span class="muted">—</span>}</Field>
          <Field label="Type">{s.device?.type ?? <span class="muted">—</span>}</Field>
          <Field label="Name">{s.device?.name ?? <span class="muted">—</span>}</Field>
          <Field label="IP">{s.device?.ip ?? <span class="muted">—</span>}</Field>
          <Field label="User agent">{s.device?.user_agent ?? <span class="muted">—</span>}</Field>
        </dl>
        <h3>Metadata</h3>
        {s.metadata && Object.keys(s.metadata).length > 0 ? <pre class="json">{JSON.stringify(s.metadata, null, 2)}</pre> : <Empty>None.</Empty>}
      </section>
    </div>
  );
}

/** The events of the session that this tab received on the live stream. */
function Timeline(p: { id: string }) {
  const l = useLive();
  const events = l.events.filter((e) => e.event.session_id === p.id).map((e) => e.event);
  return (
    <section class="panel">
      <h2>Live events</h2>
      <p class="note">Events of this session received since the console was opened, newest first.</p>
      {events.length === 0 ? <Empty>None yet.</Empty> : <EventList events={events.slice().reverse()} testid="timeline" />}
    </section>
  );
}

