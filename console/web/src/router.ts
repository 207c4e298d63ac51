// Client-side routes under /console/: the server answers index.html for
// any of them, and the History API moves between them without a reload.
import { useEffect, useState } from "preact/hooks";

export const BASE = "/console";

const listeners = new Set<() => void>();
addEventListener("popstate", () => listeners.forEach((fn) => fn()));

/** Goes to a console path ("/sessions?subject=alice"). */
export function navigate(to: string, replace = false): void {
  const url = BASE + to;
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  listeners.forEach((fn) => fn());
  scrollTo(0, 0);
}

export interface Where {
  /** The path after /console, "/" at least: "/sessions/abc". */
  path: string;
  /** The path's segments, decoded: ["sessions", "abc"]. */
  parts: string[];
  query: URLSearchParams;
}

function where(): Where {
  let path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "/";
  if (path === "") path = "/";
  const parts = path
    .split("/")
    .filter((p) => p !== "")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { path, parts, query: new URLSearchParams(location.search) };
}

/** The current console location, re-rendering on every move. */
export function useWhere(): Where {
  const [w, setW] = useState(where);
  useEffect(() => {
    const fn = () => setW(where());
    listeners.add(fn);
    return () => void listeners.delete(fn);
  }, []);
  return w;
}

/** A console path with its segments encoded: href("sessions", id). */
export function href(...parts: string[]): string {
  return "/" + parts.map(encodeURIComponent).join("/");
}

/** A query string of the non-empty values: "?subject=alice". */
export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}
