// The console's small components. Everything shown goes through JSX text
// or attributes, which Preact escapes: no HTML is built from data.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { describe, type StreamedEvent } from "./api";
import { live } from "./live";
import { BASE, navigate } from "./router";

/** A link inside the console: a real href, followed without a reload. */
export function Link(p: { to: string; class?: string; children: ComponentChildren; title?: string }) {
  return (
    <a
      href={BASE + p.to}
      class={p.class}
      title={p.title}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(p.to);
      }}
    >
      {p.children}
    </a>
  );
}

const stateTone: Record<string, string> = {
  active: "ok",
  disconnected: "warn",
  hibernating: "info",
  hibernated: "info",
  waking: "info",
  ending: "bad",
  ended: "muted",
};

/** A session state as a coloured badge. */
export function StateBadge(p: { state: string; reason?: string | undefined }) {
  return (
    <span class={`badge badge-${stateTone[p.state] ?? "muted"}`} data-state={p.state}>
      {p.state}
      {p.reason ? <span class="badge-reason"> · {p.reason}</span> : null}
    </span>
  );
}

/** An error of the API: its stable code and its message. */
export function ErrorBox(p: { error: unknown; title?: string }) {
  const { code, message } = describe(p.error);
  return (
    <div class="error" role="alert">
      {p.title ? <strong>{p.title}: </strong> : null}
      <code class="error-code">{code}</code> <span class="error-message">{message}</span>
    </div>
  );
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * A time in the browser's zone: "2026-12-02 15:01:09", or with `short`
 * only the time of day when it is today ("15:01:09") and the day and
 * minute otherwise ("2026-12-01 09:12"); the full ISO form on hover.
 */
export function Time(p: { at: string | undefined; short?: boolean }) {
  if (!p.at) return <span class="muted">—</span>;
  const d = new Date(p.at);
  if (Number.isNaN(d.getTime())) return <span>{p.at}</span>;
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  let text = `${day} ${clock}:${pad(d.getSeconds())}`;
  if (p.short) text = d.toDateString() === new Date().toDateString() ? `${clock}:${pad(d.getSeconds())}` : `${day} ${clock}`;
  return (
    <time dateTime={p.at} title={p.at}>
      {text}
    </time>
  );
}

/** A confirmation dialog (a modal <dialog>): onConfirm runs on the confirm button. */
export function Confirm(p: {
  title: string;
  children: ComponentChildren;
  confirm: string;
  danger?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} class="confirm" onCancel={p.onCancel} aria-labelledby="confirm-title">
      <h2 id="confirm-title">{p.title}</h2>
      <div class="confirm-body">{p.children}</div>
      <div class="confirm-actions">
        <button type="button" class="btn" onClick={p.onCancel}>
          Cancel
        </button>
        <button type="button" class={p.danger ? "btn btn-danger" : "btn btn-primary"} onClick={p.onConfirm} autofocus>
          {p.confirm}
        </button>
      </div>
    </dialog>
  );
}

/** The result of an async load: value, error, and whether it is loading. */
export interface Loaded<T> {
  value: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs load when deps change and on reload(); a newer load supersedes an
 * older one still running.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ value: T | undefined; error: unknown; loading: boolean }>({ value: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(ctl.signal).then(
      (value) => !ctl.signal.aborted && setState({ value, error: undefined, loading: false }),
      (error: unknown) => !ctl.signal.aborted && setState((s) => ({ value: s.value, error, loading: false })),
    );
    return () => ctl.abort();
    // deps are the caller's: what the load or the match reads
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/**
 * fn, called at most once per `ms` however often the result is: a burst
 * of events makes one reload, not one each.
 */
export function throttle(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}

/** A page's title row. */
export function PageHead(p: { title: ComponentChildren; sub?: ComponentChildren; children?: ComponentChildren }) {
  return (
    <div class="page-head">
      <div>
        <h1>{p.title}</h1>
        {p.sub ? <div class="page-sub">{p.sub}</div> : null}
      </div>
      {p.children ? <div class="page-actions">{p.children}</div> : null}
    </div>
  );
}

export function Empty(p: { children: ComponentChildren }) {
  return <div class="empty">{p.children}</div>;
}

/**
 * Calls fn, shortly after events that `match` arrive on
 * the live stream, and each time the stream (re)opens, since events may
 * have been missed while it was down.
 */
export function useLiveReload(match: (ev: StreamedEvent) => boolean, fn: () => void, deps: unknown[]): void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    const run = throttle(() => fnRef.current(), 300);
    let status = live.status;
    return live.subscribe((ev) => {
      if (ev ? match(ev) : live.status === "live" && status !== "live") run();
      status = live.status;
    });
    // deps are the caller's: what the load or the match reads
  }, deps);
}

/** Re-renders on every event and change of the stream's status. */
export function useLive(): typeof live {
  const [, setTick] = useState(0);
  useEffect(() => {
    const unsubscribe = live.subscribe(() => setTick((t) => t + 1));
    setTick((t) => t + 1); // what changed between the first render and now
    return unsubscribe;
  }, []);
  return live;
}
