import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { onSignOut, signedIn, signIn, signOut } from "./api";
import { live } from "./live";
import { Nodes } from "./pages/Nodes";
import { Overview } from "./pages/Overview";
import { SessionPage } from "./pages/SessionPage";
import { Sessions } from "./pages/Sessions";
import { SubjectPage, SubjectSearch } from "./pages/Subjects";
import { useWhere } from "./router";
import { ErrorBox, Link, useLive } from "./ui";
import "./style.css";

function App() {
  const [authed, setAuthed] = useState(signedIn());
  const [why, setWhy] = useState<string | undefined>();
  useEffect(
    () =>
      onSignOut((reason) => {
        live.stop();
        setWhy(reason);
        setAuthed(false);
      }),
    [],
  );
  if (!authed)
    return (
      <Login
        notice={why}
        onIn={() => {
          setWhy(undefined);
          live.start();
          setAuthed(true);
        }}
      />
    );
  return <Shell />;
}

function Login(p: { notice: string | undefined; onIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main class="login">
      <form
        class="login-box"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            await signIn(key.trim());
            setKey("");
            p.onIn();
          } catch (err) {
            setError(err);
            setBusy(false);
          }
        }}
      >
        <div class="brand brand-login">
          <Logo /> sessiond <span class="brand-sub">console</span>
        </div>
        <label for="api-key">Admin API key</label>
        <input
          id="api-key"
          ref={input}
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          placeholder="sdk_…"
        />
        <button type="submit" class="btn btn-primary" disabled={busy || key.trim() === ""}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        {p.notice && !error ? <div class="notice">{p.notice}</div> : null}
        {error ? <ErrorBox error={error} title="Sign-in refused" /> : null}
        <p class="note">
          The key stays in this tab's memory only: it is not saved in a cookie or in storage, and a reload asks for it again. The server prints where it keeps
          its key when it starts (by default <code>sessiond-data/api_key</code>).
        </p>
      </form>
    </main>
  );
}

function Logo() {
  return (
    <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="7" />
      <path d="M9 21a7 7 0 1 0 0-10M23 11a7 7 0 1 0 0 10" />
    </svg>
  );
}

const NAV = [
  { to: "/", label: "Overview", match: (p: string[]) => p.length === 0 },
  { to: "/sessions", label: "Sessions", match: (p: string[]) => p[0] === "sessions" },
  { to: "/subjects", label: "Subjects", match: (p: string[]) => p[0] === "subjects" },
  { to: "/nodes", label: "Nodes", match: (p: string[]) => p[0] === "nodes" },
];

function Shell() {
  const w = useWhere();
  return (
    <div class="shell">
      <aside class="side">
        <div class="brand">
          <Logo /> sessiond <span class="brand-sub">console</span>
        </div>
        <nav>
          {NAV.map((n) => (
            <Link key={n.to} to={n.to} class={n.match(w.parts) ? "nav nav-on" : "nav"}>
              {n.label}
            </Link>
          ))}
        </nav>
        <div class="side-foot">
          <StreamStatus />
          <button type="button" class="btn btn-quiet" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </aside>
      <main class="content">
        <Page parts={w.parts} />
      </main>
    </div>
  );
}

function StreamStatus() {
  const l = useLive();
  const label = l.status === "live" ? "live" : l.status === "connecting" ? "connecting…" : "reconnecting…";
  return (
    <div class={`stream stream-${l.status}`} data-testid="stream-status" title={l.lastError ? `${l.lastError.code}: ${l.lastError.message}` : "GET /v1/events"}>
      <span class="dot" /> events {label}
    </div>
  );
}

function Page({ parts }: { parts: string[] }) {
  const [a, b] = parts;
  if (parts.length === 0) return <Overview />;
  if (a === "sessions" && parts.length === 1) return <Sessions />;
  if (a === "sessions" && b !== undefined && parts.length === 2) return <SessionPage key={b} id={b} />;
  if (a === "subjects" && parts.length === 1) return <SubjectSearch />;
  if (a === "subjects" && b !== undefined && parts.length === 2) return <SubjectPage key={b} subject={b} />;
  if (a === "nodes" && parts.length === 1) return <Nodes />;
  return (
    <div class="empty">
      No such page. <Link to="/">Overview</Link>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
