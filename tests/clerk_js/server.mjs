// A practice target on Clerk's own code: pages guarded by @clerk/backend's authenticateRequest, as Clerk's
// middleware guards them, networkless (the instance's PEM as jwtKey). Env: PORT, CLERK_JWT_KEY,
// CLERK_PUBLISHABLE_KEY, CLERK_NODE_FLAWS (comma-separated: denied_loops, handshake_loop).
import { createServer } from "node:http";
import { createClerkClient } from "@clerk/backend";

const KNOWN = new Set(["denied_loops", "handshake_loop"]);
const flaws = new Set((process.env.CLERK_NODE_FLAWS || "").split(",").map((f) => f.trim()).filter(Boolean));
for (const flaw of flaws) {
  if (!KNOWN.has(flaw)) {
    console.error(`error: unknown flaw ${JSON.stringify(flaw)}; known: ${[...KNOWN].join(", ")}`);
    process.exit(2);
  }
}
for (const name of ["PORT", "CLERK_JWT_KEY", "CLERK_PUBLISHABLE_KEY"]) {
  if (!process.env[name]) {
    console.error(`error: ${name} is required`);
    process.exit(2);
  }
}
// handshake_loop: the server's clock runs two minutes ahead (every 60 s session token is expired on arrival,
// the fresh ones from the handshake too) and a proxy strips the redirect-count cookie, Clerk's only loop guard.
const clockSkewInMs = flaws.has("handshake_loop") ? -120_000 : 5_000;
const jwtKey = process.env.CLERK_JWT_KEY;
const clerk = createClerkClient({ secretKey: "sk_test_offline", apiUrl: "http://127.0.0.1:9" });
const NO_STORE = { "Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8" };

function page(title, body) {
  return `<!doctype html><html><head><title>${title}</title></head><body>${body}</body></html>`;
}

async function handle(req, res) {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (url.pathname === "/health") {
    res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    return;
  }
  const request = new Request(url, { headers: new Headers(Object.entries(req.headers).map(([k, v]) => [k, String(v)])) });
  const state = await clerk.authenticateRequest(request, {
    jwtKey,
    clockSkewInMs,
    publishableKey: process.env.CLERK_PUBLISHABLE_KEY,
  });
  let cookies = state.headers.getSetCookie();
  if (flaws.has("handshake_loop")) cookies = cookies.filter((c) => !c.startsWith("__clerk_redirect_count="));
  const location = state.headers.get("location");
  if (location) {  // a handshake to start, or one resolved (development): Clerk's middleware redirects
    res.writeHead(307, { Location: location, "Cache-Control": "no-store", "Set-Cookie": cookies }).end();
    return;
  }
  const auth = state.isSignedIn ? state.toAuth() : null;
  const headers = { ...NO_STORE, "Set-Cookie": cookies };
  if (url.pathname === "/dashboard") {
    if (!auth) {
      res.writeHead(303, { Location: "/sign-in", ...headers }).end();
    } else if (auth.has({ permission: "org:dashboard:view" })) {
      res.writeHead(200, headers).end(page("Dashboard", `<main data-testid="dashboard">Welcome ${auth.userId}</main>`));
    } else {
      const loop = flaws.has("denied_loops") ? `<script>setTimeout(() => location.assign("/sign-in"), 400)</script>` : "";
      const ref = Math.random().toString(16).slice(2, 14);
      res.writeHead(403, headers).end(page("Access denied",
        `<main data-testid="access-denied">No access. Reference: <code>${ref}</code></main>${loop}`));
    }
  } else if (url.pathname === "/sign-in") {
    const body = auth
      ? `<script>location.assign("/dashboard")</script>`  // like Clerk's SignIn: a signed-in visitor is sent on
      : `<main data-testid="sign-in"><form>Sign in</form></main>`;
    res.writeHead(200, headers).end(page("Sign in", body));
  } else {
    res.writeHead(404, headers).end(page("Not found", "<p>not found</p>"));
  }
}

createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(`error: ${err?.message ?? err}`);
    if (!res.headersSent) res.writeHead(500, NO_STORE).end(page("Error", "<main data-testid=\"error-page\">error</main>"));
  });
}).listen(Number(process.env.PORT), "127.0.0.1", () => console.log(`listening on ${process.env.PORT}`));
