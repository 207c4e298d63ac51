// A session over REST, a live WebSocket to it, and a revoke that ends both.
// Run against `sessiond serve` with SESSIOND_API_KEY and SESSIOND_JWT_SECRET set.
import { createHmac } from "node:crypto";
import { SessiondClient, SessiondError, connect } from "@sessiond/client";

const url = process.env.SESSIOND_URL ?? "http://127.0.0.1:7600";
const api = new SessiondClient({ baseUrl: url, apiKey: process.env.SESSIOND_API_KEY ?? "" });

// Your backend creates the session and checks its token on each request.
const { id, token } = await api.create({ subject: "alice", metadata: { plan: "pro" } });
const { session } = await api.validate(token);
console.log(`session ${session.id}: ${session.state}`);

// WebSocket credentials are JWTs from your identity provider. For this
// example, an HS256 one signed with the server's --jwt-secret.
function jwt(subject, seconds = 3600) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: subject, iat: now, exp: now + seconds })}`;
  const sig = createHmac("sha256", process.env.SESSIOND_JWT_SECRET ?? "").update(unsigned).digest("base64url");
  return `${unsigned}.${sig}`;
}

// A live connection to that session: the token source is called on every
// (re)connect and refresh; reconnects back off and resume the session.
let answered;
const answer = new Promise((resolve) => (answered = resolve));
const socket = await connect({
  url,
  token: () => jwt("alice"),
  sessionToken: token,
  onState: (ev) => console.log(`socket: ${ev.state}${ev.code ? ` ${ev.code}` : ""}`),
  onMessage: (msg) => answered(msg),
});
console.log(`attached to ${socket.sessionId}, resumed ${socket.resumed}`);
await socket.ping();
socket.send({ type: "hello" }); // a type the server does not know: it answers with an error message
console.log("answer:", JSON.stringify(await answer));

// Revoking the session closes its sockets with 4500: the client stops.
await api.revoke(id);
console.log(`stopped: ${(await socket.closed).message}`);

try {
  await api.validate(token);
} catch (err) {
  if (!(err instanceof SessiondError)) throw err;
  console.log(`validate: ${err.status} ${err.code}`);
}
