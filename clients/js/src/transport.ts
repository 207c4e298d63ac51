// One WebSocket, over whichever implementation is at hand: the standard
// WebSocket (browsers, Node 22+), or the `ws` package (Node 20), which can
// also set headers, see the server's pings and read a refused handshake.

/** A WebSocket constructor: the standard one, or the `ws` package's. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WebSocketConstructor = new (url: string, ...args: any[]) => any;

/** What happens on one socket. `onClose` is called once, last, however it ends. */
export interface TransportHandlers {
  onOpen(): void;
  onText(text: string): void;
  onBinary(bytes: number): void;
  /** A WebSocket ping from the server (only where the implementation shows them). */
  onPing(): void;
  /** The server answered the handshake with an HTTP status instead of upgrading (only where the implementation shows it). */
  onRefused(status: number, body: string, retryAfter: string | undefined): void;
  onClose(code: number, reason: string): void;
  onError(err: Error): void;
}

export interface Transport {
  send(text: string): void;
  /** Starts the closing handshake. */
  close(code: number, reason: string): void;
  /** Drops the connection without a closing handshake, where the implementation can. */
  terminate(): void;
}

/** An implementation and what it can do. */
export interface Implementation {
  ctor: WebSocketConstructor;
  /** The `ws` package: headers, pings and refusals are visible. */
  isWsPackage: boolean;
}

/** Tells the `ws` package's class from the standard WebSocket. */
export function implementation(ctor: WebSocketConstructor): Implementation {
  const p = (ctor as { prototype?: Record<string, unknown> }).prototype;
  return { ctor, isWsPackage: typeof p?.["on"] === "function" && typeof p?.["terminate"] === "function" };
}

let fallback: Promise<Implementation> | undefined;

/**
 * The WebSocket to use when none is given: the global one where there is
 * one (browsers, Node 22+), else the `ws` package, loaded on first use.
 */
export function defaultImplementation(): Promise<Implementation> {
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof g === "function") return Promise.resolve(implementation(g));
  fallback ??= import("ws").then(
    (m: { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor }) => {
      const ctor = m.WebSocket ?? m.default;
      if (typeof ctor !== "function") throw new Error("sessiond: the ws package has no WebSocket export");
      return implementation(ctor);
    },
    (err: unknown) => {
      fallback = undefined;
      throw new Error("sessiond: no global WebSocket here, and the ws package could not be loaded (npm install ws)", { cause: err });
    },
  );
  return fallback;
}

/** Opens a socket to `url`, with `headers` where the implementation can send them. */
export function openTransport(impl: Implementation, url: string, headers: Record<string, string>, h: TransportHandlers): Transport {
  return impl.isWsPackage ? openWs(impl.ctor, url, headers, h) : openStandard(impl.ctor, url, h);
}

interface NodeStream {
  on(event: string, fn: (...args: never[]) => void): unknown;
}

function openWs(Ctor: WebSocketConstructor, url: string, headers: Record<string, string>, h: TransportHandlers): Transport {
  const sock = new Ctor(url, { headers, perMessageDeflate: false, maxPayload: 1 << 20 });
  let closed = false;
  sock.on("open", () => h.onOpen());
  sock.on("message", (data: { toString(enc?: string): string; length?: number; byteLength?: number }, isBinary: boolean) => {
    if (isBinary) h.onBinary(data.byteLength ?? data.length ?? 0);
    else h.onText(data.toString("utf8"));
  });
  sock.on("ping", () => h.onPing());
  sock.on("error", (err: Error) => h.onError(err));
  sock.on("close", (code: number, reason: { toString(): string }) => {
    if (closed) return;
    closed = true;
    h.onClose(code, reason.toString());
  });
  sock.on("unexpected-response", (_req: unknown, res: NodeStream & { statusCode?: number; headers?: Record<string, string | string[] | undefined> }) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    res.on("data", (c: Uint8Array) => {
      if (size < 64 << 10) chunks.push(c);
      size += c.length;
    });
    const done = () => {
      const ra = res.headers?.["retry-after"];
      h.onRefused(res.statusCode ?? 0, new TextDecoder().decode(concat(chunks)), Array.isArray(ra) ? ra[0] : ra);
      sock.terminate();
    };
    res.on("end", done);
    res.on("error", () => sock.terminate());
  });
  return {
    send: (text) => sock.send(text),
    close: (code, reason) => sock.close(code, reason),
    terminate: () => sock.terminate(),
  };
}

function openStandard(Ctor: WebSocketConstructor, url: string, h: TransportHandlers): Transport {
  const sock = new Ctor(url);
  sock.binaryType = "arraybuffer";
  let closed = false;
  let opened = false;
  sock.addEventListener("open", () => {
    opened = true;
    h.onOpen();
  });
  sock.addEventListener("message", (e: { data: unknown }) => {
    if (typeof e.data === "string") h.onText(e.data);
    else h.onBinary((e.data as { byteLength?: number; size?: number })?.byteLength ?? (e.data as { size?: number })?.size ?? 0);
  });
  sock.addEventListener("error", () => {
    h.onError(new Error("websocket error (a network failure, or the server refused the handshake)"));
    // A failed handshake is an error, then a close with 1006; Node's
    // WebSocket (undici, Node 20-21) never sends that close and stays
    // CONNECTING: the error ends the dial.
    if (!opened && !closed) {
      closed = true;
      h.onClose(1006, "");
      try {
        sock.close();
      } catch {
        // not closable
      }
    }
  });
  sock.addEventListener("close", (e: { code: number; reason: string }) => {
    if (closed) return;
    closed = true;
    h.onClose(e.code, e.reason);
  });
  return {
    send: (text) => sock.send(text),
    close: (code, reason) => sock.close(code, reason),
    terminate: () => {
      // The standard WebSocket cannot drop a connection: it closes it,
      // and the caller does not wait for the server's answer.
      try {
        sock.close(1000, "client gave up");
      } catch {
        // already closing
      }
    },
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let i = 0;
  for (const c of chunks) {
    out.set(c, i);
    i += c.length;
  }
  return out;
}
