// Runs Clerk's own authenticateRequest (the decision Clerk's middleware makes) over the cases on stdin, offline.
// stdin: JSON list of {url, cookies: {name: value}, jwtKey, publishableKey, authorizedParties}
// stdout: JSON list of {status, reason, isSignedIn, location, auth: {userId, orgId, orgRole, orgSlug, orgPermissions, sessionStatus}}
import { createClerkClient } from "@clerk/backend";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const cases = JSON.parse(Buffer.concat(chunks).toString("utf8"));
// A secret key is required by the client's constructor; with jwtKey given, nothing is fetched with it.
const clerk = createClerkClient({ secretKey: "sk_test_offline", apiUrl: "http://127.0.0.1:9" });
const out = [];
for (const c of cases) {
  const cookie = Object.entries(c.cookies).map(([k, v]) => `${k}=${v}`).join("; ");
  const request = new Request(c.url, {
    headers: { cookie, accept: "text/html", "sec-fetch-dest": "document", host: new URL(c.url).host },
  });
  const state = await clerk.authenticateRequest(request, {
    jwtKey: c.jwtKey,
    publishableKey: c.publishableKey,
    authorizedParties: c.authorizedParties,
  });
  const auth = state.isSignedIn ? state.toAuth() : null;
  out.push({
    status: state.status,
    reason: state.reason ?? null,
    isSignedIn: state.isSignedIn,
    location: state.headers.get("location"),
    auth: auth && {
      userId: auth.userId, orgId: auth.orgId ?? null, orgRole: auth.orgRole ?? null, orgSlug: auth.orgSlug ?? null,
      orgPermissions: auth.orgPermissions ?? null, sessionStatus: auth.sessionStatus ?? null,
    },
  });
}
process.stdout.write(JSON.stringify(out));
