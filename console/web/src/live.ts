// The live event stream: GET /v1/events read with fetch() and a
// ReadableStream (an EventSource cannot send the Authorization header),
// reconnected with backoff from the id of the last event received, so that
// nothing is missed across a drop. Pages subscribe to what arrives.
import { api, describe, onEventStreamOpen, type StreamedEvent } from "./api";

export type StreamStatus = "connecting" | "live" | "reconnecting";

/** The events kept for the pages (the newest last). */
const KEEP = 2000;
/** The event rate is counted per second over this many seconds. */
export const RATE_WINDOW = 60;

class LiveStream {
  events: StreamedEvent[] = [];
  status: StreamStatus = "connecting";
  lastError: { code: string; message: string } | undefined;
  /** The id of the last event received: where a reconnect resumes. */
  lastId: string | undefined;
  /** Events per second, RATE_WINDOW of them, the last one for the current second. */
  private counts = new Map<number, number>();
  private subs = new Set<(ev: StreamedEvent | undefined) => void>();
  private abort: AbortController | undefined;

  start(): void {
    this.stop();
    this.events = [];
    this.lastId = undefined;
    this.counts.clear();
    const ctl = new AbortController();
    this.abort = ctl;
    onEventStreamOpen(() => this.setStatus("live"));
    void this.run(ctl.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    onEventStreamOpen(undefined);
  }

  /** Calls fn for every event (and with undefined on a change of status); returns the unsubscribe. */
  subscribe(fn: (ev: StreamedEvent | undefined) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  /** Events per second over the last RATE_WINDOW seconds, oldest first. */
  rate(now = Date.now()): number[] {
    const sec = Math.floor(now / 1000);
    const out: number[] = [];
    for (let s = sec - RATE_WINDOW + 1; s <= sec; s++) out.push(this.counts.get(s) ?? 0);
    return out;
  }

  private setStatus(s: StreamStatus): void {
    if (s === "live") this.lastError = undefined;
    this.status = s;
    for (const fn of this.subs) fn(undefined);
  }

  private add(ev: StreamedEvent): void {
    this.lastId = ev.id;
    this.events.push(ev);
    if (this.events.length > KEEP) this.events.splice(0, this.events.length - KEEP);
    const sec = Math.floor(Date.now() / 1000);
    this.counts.set(sec, (this.counts.get(sec) ?? 0) + 1);
    for (const s of this.counts.keys()) if (s <= sec - RATE_WINDOW) this.counts.delete(s);
    for (const fn of this.subs) fn(ev);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let delay = 500;
    while (!signal.aborted) {
      try {
        // after: the last id received, as Last-Event-ID would carry it; the
        // first connection starts from now.
        for await (const ev of api().events(this.lastId === undefined ? { signal } : { after: this.lastId, signal })) {
          this.add(ev);
          delay = 500;
        }
      } catch (err) {
        if (signal.aborted) return;
        this.lastError = describe(err);
        if (this.lastError.code === "unauthorized") return; // signed out by the API layer
      }
      if (signal.aborted) return;
      this.setStatus("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }
}

export const live = new LiveStream();
