import { api, type StatsResponse } from "../api";
import { RATE_WINDOW } from "../live";
import { href } from "../router";
import { NodeTable } from "./Nodes";
import { Empty, ErrorBox, Link, PageHead, StateBadge, Time, useLive, useLiveReload, useLoad } from "../ui";

const STATES = ["active", "disconnected", "hibernating", "hibernated", "waking", "ending", "ended"];

export function Overview() {
  const stats = useLoad((signal) => api().stats({ signal }), []);
  const nodes = useLoad((signal) => api().nodes({ signal }), []);
  useLiveReload(() => true, () => {
    stats.reload();
    nodes.reload();
  }, []);
  const s = stats.value;
  return (
    <>
      <PageHead title="Overview" sub={s ? `sessiond ${s.version} · up ${s.uptime}` : undefined} />
      {stats.error ? <ErrorBox error={stats.error} title="Stats" /> : null}
      <div class="cards">
        <Card label="Sessions" value={s?.total} hint="in the store, ended ones not yet purged included" />
        <Card label="Live subjects" value={s?.subjects} hint="subjects with a live session" />
        <Card label="Connections" value={s?.connections.total} hint="attached to live sessions, all nodes" />
        <RateCard />
      </div>
      <div class="grid-2">
        <section class="panel">
          <h2>Sessions by state</h2>
          {s ? <StateBars stats={s} /> : <Empty>Loading…</Empty>}
        </section>
        <section class="panel">
          <h2>Connections by kind</h2>
          {s ? <Kinds byKind={s.connections.by_kind} /> : <Empty>Loading…</Empty>}
        </section>
      </div>
      <div class="grid-2">
        <section class="panel">
          <h2>
            Nodes <Link to="/nodes" class="more">all nodes →</Link>
          </h2>
          {nodes.error ? <ErrorBox error={nodes.error} /> : null}
          {nodes.value ? <NodeTable nodes={nodes.value} compact /> : null}
        </section>
        <RecentEvents />
      </div>
    </>
  );
}

function Card(p: { label: string; value: number | undefined; hint: string }) {
  return (
    <div class="card" title={p.hint}>
      <div class="card-label">{p.label}</div>
      <div class="card-value">{p.value ?? "…"}</div>
    </div>
  );
}

function StateBars(p: { stats: StatsResponse }) {
  const counts = p.stats.sessions as Record<string, number | undefined>;
  const max = Math.max(1, ...STATES.map((st) => counts[st] ?? 0));
  return (
    <table class="bars">
      <tbody>
        {STATES.map((st) => {
          const n = counts[st] ?? 0;
          return (
            <tr key={st} data-state-count={st}>
              <td class="bars-label">
                <Link to={`/sessions?state=${st}`}>
                  <StateBadge state={st} />
                </Link>
              </td>
              <td class="bars-bar">
                <svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
                  <rect class={`bar bar-${st}`} x="0" y="0" height="10" width={String((n / max) * 100)} />
                </svg>
              </td>
              <td class="num bars-count">{n}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Kinds(p: { byKind: Record<string, number> }) {
  const kinds = Object.entries(p.byKind).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (kinds.length === 0) return <Empty>No connections.</Empty>;
  return (
    <table class="table compact">
      <thead>
        <tr>
          <th>Kind</th>
          <th class="num">Connections</th>
        </tr>
      </thead>
      <tbody>
        {kinds.map(([k, n]) => (
          <tr key={k}>
            <td class="mono">{k}</td>
            <td class="num">{n}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Events per second over the last minute, from the live stream. */
function RateCard() {
  const l = useLive();
  const rate = l.rate();
  const total = rate.reduce((a, b) => a + b, 0);
  const max = Math.max(1, ...rate);
  return (
    <div class="card card-rate" title="lifecycle events per minute, counted by this tab from the live stream">
      <div class="card-label">Events / min</div>
      <div class="card-value" data-testid="event-rate">
        {total}
      </div>
      <svg class="spark" viewBox={`0 0 ${RATE_WINDOW} 20`} preserveAspectRatio="none" aria-hidden="true">
        {rate.map((n, i) => (n > 0 ? <rect key={i} x={String(i + 0.1)} width="0.8" y={String(20 - (n / max) * 20)} height={String((n / max) * 20)} /> : null))}
      </svg>
    </div>
  );
}

function RecentEvents() {
  const l = useLive();
  const recent = l.events.slice(-12).reverse();
  return (
    <section class="panel">
      <h2>Latest events</h2>
      {recent.length === 0 ? (
        <Empty>No events since this page opened. They appear here as they happen.</Empty>
      ) : (
        <table class="table compact" data-testid="recent-events">
          <thead>
            <tr>
              <th>Time</th>
              <th>Event</th>
              <th>Subject</th>
              <th>Session</th>
            </tr>
          </thead>
          <tbody>
            {recent.map(({ id, type, event }) => (
              <tr key={id}>
                <td>
                  <Time at={event.time} short />
                </td>
                <td>
                  <span class="event-type">{type}</span>
                  {event.reason ? <span class="muted"> · {event.reason}</span> : null}
                </td>
                <td>
                  <Link to={href("subjects", event.subject)}>{event.subject}</Link>
                </td>
                <td class="truncate id-cell">
                  <Link to={href("sessions", event.session_id)} class="mono">
                    {event.session_id}
                  </Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
