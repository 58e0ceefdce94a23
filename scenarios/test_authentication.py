"""C1: authentication is solid.

For Clerk targets: every valid token shape is accepted and every entry of the attack catalogue refused, on
the API (by header) and on pages (by cookie); a refusal echoes nothing, is logged, and provisions nothing;
forged `kid`s do not make the target hammer its JWKS; a deleted user's still-valid session is refused.
For targets whose own login hands out JWTs: each principal's real token, re-signed as an attacker can, is
refused.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness.clerk import jwks
from harness.clerk.attacks import CATALOGUE, Forge, crack, login_forgeries, parse_jwt
from harness.clerk.issuer import ActiveOrg, Issuer, SessionToken, clerk_id
from harness.clerk.webhooks import ClerkWebhooks, new_secret
from harness.database import traces
from harness.engine.world import ClerkCredentials, Principal, StaticCredentials, World, fill_template
from harness.report.evidence import Evidence
from harness.target.running import Target

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id")
MAX_TOKEN_SHOWN = 2048  # characters of an accepted forgery the evidence quotes
JWKS_REFETCH_PERIOD = 60  # seconds: an unknown kid may cost the issuer one fetch per minute, no more


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A loopback server that counts every request: a target fetching a `jku` or `x5u` shows here."""
    hits: list[str] = []

    class Count(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Count)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.decides("C1")
def test_authentication_is_solid(
    target: Target,
    world: World,
    issuer: Issuer,
    evidence: Evidence,
    listener: tuple[str, list[str]],
    harness_rng: random.Random,
) -> None:
    """Every forgery refused, for each kind of credential the target's principals present."""
    victim = _clerk_victim(world)
    logins = _login_tokens(world)
    if victim is None and not logins:
        pytest.skip("the principals present neither Clerk sessions nor JWTs from a login: nothing to forge")
    wrong: list[str] = []
    if victim is not None:
        wrong += _clerk_catalogue(target, world, issuer, victim, evidence, listener)
        wrong += _nothing_provisioned(target, issuer, evidence, listener[0], harness_rng)
        wrong += _deleted_user(target, issuer, evidence, harness_rng)
        wrong += _role_claim_ignored(target, world, issuer, evidence, harness_rng)
    if logins:
        wrong += _login_token_forgeries(target, world, logins, evidence)
    assert not wrong, f"{len(wrong)} authentication failures: " + "; ".join(wrong[:10])


# -- Clerk sessions ----------------------------------------------------------------------------------------------


def _clerk_victim(world: World) -> ClerkCredentials | None:
    owner = world.org("org1").owner if "org1" in world.orgs else None
    return owner.credentials if owner is not None and isinstance(owner.credentials, ClerkCredentials) else None


def _api_path(target: Target) -> str:
    if target.config.identity is None:
        pytest.skip("the config has no [identity]: no operation to sign in to")
    return target.config.identity.me


def _page(client: httpx.Client, target: Target, token: SessionToken | str, iat: int) -> int:
    if target.config.pages is None:
        return 0
    value = token.jwt if isinstance(token, SessionToken) else token
    client.cookies.clear()
    return client.get(target.config.pages.dashboard, cookies={"__session": value, "__client_uat": str(iat)}).status_code


def _request_id(response: httpx.Response) -> str | None:
    return next((response.headers[name] for name in REQUEST_ID_HEADERS if response.headers.get(name)), None)


def _clerk_catalogue(
    target: Target,
    world: World,
    issuer: Issuer,
    victim: ClerkCredentials,
    evidence: Evidence,
    listener: tuple[str, list[str]],
) -> list[str]:
    """Valid shapes accepted; every catalogue entry refused with 401 and logged; no key fetched or hammered."""
    api = _api_path(target)
    url, hits = listener
    now = int(time.time())
    wrong = []
    log_mark = target.log_offset()
    refused: dict[str, str] = {}  # request id -> entry
    with httpx.Client(base_url=target.base_url, timeout=10) as client:
        for version in (1, 2):
            for category in (False, True):
                token = issuer.mint(victim.sub, org=victim.org, version=version, category=category)
                seen = client.get(api, headers=token.headers)
                page = _page(client, target, token, token.claims["iat"])
                evidence.add(f"valid v{version}{' with cat' if category else ''}: API {seen.status_code}, page {page}")
                if seen.status_code != 200 or page not in (0, 200):
                    wrong.append(f"valid v{version} token refused: API {seen.status_code}, page {page}")
        fetched_before, started = _jwks_fetches(target), time.monotonic()
        forge = Forge(issuer, victim.sub, victim.org, now, url)
        for entry in CATALOGUE:
            forged = entry.build(forge)
            seen = client.get(api, headers={"Authorization": f"Bearer {forged}"})
            page = _page(client, target, forged, now)
            evidence.add(f"{entry.name}: API {seen.status_code}, page {page}")
            if seen.status_code not in entry.statuses:
                wrong.append(f"{entry.name} ({entry.doc}): API answered {seen.status_code}")
                evidence.add(f"accepted forgery ({entry.name}): {forged[:MAX_TOKEN_SHOWN]}")
            elif seen.status_code == 401 and "bearer" not in seen.headers.get("www-authenticate", "").lower():
                wrong.append(f"{entry.name}: a 401 without WWW-Authenticate: Bearer (RFC 6750 3)")
            if 200 <= page < 300:
                wrong.append(f"{entry.name}: the page answered {page} to the forged cookie")
            if forged[:40] in seen.text:
                wrong.append(f"{entry.name}: the refusal echoes the token")
            if seen.status_code == 401 and (request_id := _request_id(seen)):
                refused[request_id] = entry.name
        wrong += _jwks_not_hammered(target, fetched_before, time.monotonic() - started, evidence)
        stranger = _stranger_in(world, issuer, victim)
        if stranger is not None:
            seen = client.get(api, headers=stranger.headers)
            evidence.add(f"org claim naming an organisation the user is not in: API {seen.status_code}")
            if seen.status_code not in (401, 403, 404):
                wrong.append(f"a token naming an organisation its user is not in answered {seen.status_code}")
    if hits:
        wrong.append(f"the target fetched keys a token pointed at: {hits}")
    wrong += _refusals_logged(target, log_mark, refused, evidence)
    if not wrong:
        evidence.add(f"all {len(CATALOGUE)} attacks refused; valid v1 and v2 tokens accepted; no key fetched")
    return wrong


def _stranger_in(world: World, issuer: Issuer, victim: ClerkCredentials) -> SessionToken | None:
    """The victim's own valid session, naming the other organisation (which it is not a member of)."""
    other = world.org("org2").owner.credentials if "org2" in world.orgs else None
    if not isinstance(other, ClerkCredentials) or other.org is None:
        return None
    return issuer.mint(victim.sub, org=ActiveOrg(other.org.id, other.org.slug, "admin"))


def _jwks_fetches(target: Target) -> int | None:
    return jwks.fetches(target.jwks_url) if target.jwks_url else None


def _jwks_not_hammered(target: Target, before: int | None, elapsed: float, evidence: Evidence) -> list[str]:
    """Forged kids cost the issuer at most one JWKS fetch per minute (plus one cache expiry)."""
    after = _jwks_fetches(target)
    if before is None or after is None:
        evidence.add("JWKS fetches: not counted (the target was not told the harness's JWKS URL)")
        return []
    fetched = after - before
    allowed = 2 + int(elapsed // JWKS_REFETCH_PERIOD)
    evidence.add(f"JWKS fetches during the catalogue: {fetched} in {elapsed:.1f} s (at most {allowed} allowed)")
    if fetched > allowed:
        return [f"forged kids made the target fetch its JWKS {fetched} times in {elapsed:.1f} s (allowed {allowed})"]
    return []


def _refusals_logged(target: Target, mark: int, refused: dict[str, str], evidence: Evidence) -> list[str]:
    """Every refusal shows in the server's log, found by the request id the response carried."""
    log = target.server_log(mark)
    if log is None:
        evidence.add("refusal logging: not checked (the target's log is not the harness's to read)")
        return []
    if not refused:
        evidence.add("refusal logging: not checked (the refusals carried no request id header)")
        return []
    missing = sorted({entry for request_id, entry in refused.items() if request_id not in log})
    evidence.add(f"refusals logged: {len(refused) - len(missing)} of {len(refused)}, found by request id")
    return [f"refusals not in the server log: {', '.join(missing)}"] if missing else []


def _nothing_provisioned(
    target: Target, issuer: Issuer, evidence: Evidence, listener: str, rng: random.Random
) -> list[str]:
    """The catalogue once more, each forgery naming a user and an organisation nobody has used; none may
    leave a trace of them in the database."""
    api = _api_path(target)
    sub, org_id = clerk_id("user", rng), clerk_id("org", rng)
    org = ActiveOrg(org_id, f"untouched-{org_id[-6:].lower()}", "admin")
    forge = Forge(issuer, sub, org, int(time.time()), listener)
    accepted = []
    with httpx.Client(base_url=target.base_url, timeout=10) as client:
        for entry in CATALOGUE:
            forged = entry.build(forge)
            seen = client.get(api, headers={"Authorization": f"Bearer {forged}"})
            page = _page(client, target, forged, forge.now)
            if 200 <= seen.status_code < 300 or 200 <= page < 300:
                accepted.append(entry.name)
    if accepted:
        return [f"forgeries naming a new user accepted: {', '.join(accepted)}"]
    if target.database_url is None:
        evidence.add("refusals provision nothing: not checked (the harness may not read the target's database)")
        return []
    found = traces.mentions(target.database_url, [sub, org_id])
    evidence.add(f"refusals provision nothing: {sub} and {org_id} in no table after {len(CATALOGUE)} forgeries")
    return [f"refused forgeries left {sub} or {org_id} in {', '.join(found)}"] if found else []


def _deleted_user(target: Target, issuer: Issuer, evidence: Evidence, rng: random.Random) -> list[str]:
    """A user signs in, Clerk deletes the account (webhook `user.deleted`): the session token, still within
    its lifetime, is refused on the API and opens no page. Before that, deliveries signed with another secret
    or too long ago are refused and delete nobody."""
    webhooks = target.config.webhooks
    if webhooks is None:
        evidence.add("deleted user: not exercised (the config has no [webhooks]: the target learns of no deletion)")
        return []
    if target.webhook_secret is None:
        return [f"deleted user: [webhooks] is configured but ${webhooks.secret_env} holds no signing secret"]
    api = _api_path(target)
    sub = clerk_id("user", rng)
    org = ActiveOrg(clerk_id("org", rng), f"deleted-{sub[-6:].lower()}", "admin")
    sender = ClerkWebhooks(target.base_url, webhooks.clerk, target.webhook_secret, issuer.kid)
    forgers: dict[str, Callable[[], httpx.Response]] = {
        "signed with another secret": lambda: ClerkWebhooks(
            target.base_url, webhooks.clerk, new_secret(), issuer.kid
        ).user_deleted(sub),
        "signed 10 minutes ago": lambda: sender.user_deleted(sub, at=datetime.now(tz=UTC) - timedelta(minutes=10)),
    }
    wrong = []
    with httpx.Client(base_url=target.base_url, timeout=10) as client:
        first = client.get(api, headers=issuer.mint(sub, org=org).headers)
        if first.status_code != 200:
            return [f"deleted user: the user's first login answered {first.status_code}, so nothing to delete"]
        for label, forged_delivery in forgers.items():
            answer = forged_delivery().status_code
            after = client.get(api, headers=issuer.mint(sub, org=org).headers).status_code
            evidence.add(f"forged user.deleted ({label}): {answer}; the user's next request {after}")
            if not 400 <= answer < 500 or after != 200:
                wrong.append(f"a user.deleted {label} was not refused: {answer}, then the user's request {after}")
        delivered = sender.user_deleted(sub)
        if not delivered.is_success:
            return [*wrong, f"deleted user: the target answered {delivered.status_code} to a signed user.deleted"]
        token = issuer.mint(sub, org=org)
        seen = client.get(api, headers=token.headers)
        page = _page(client, target, token, token.claims["iat"])
    evidence.add(
        f"deleted user: user.deleted {delivered.status_code}; their valid token: API {seen.status_code}, page {page}"
    )
    if seen.status_code != 401:
        wrong.append(f"a deleted user's valid session token answered {seen.status_code} on the API")
    if 200 <= page < 300:
        wrong.append(f"a deleted user's valid session opened the page ({page})")
    return wrong


# Clerk's own organisation admin: its role key, and the system permissions its sessions carry.
CLERK_ADMIN = ActiveOrg("", "", "admin", ("org:sys_memberships:manage", "org:sys_profile:manage"))


def _role_claim_ignored(
    target: Target, world: World, issuer: Issuer, evidence: Evidence, rng: random.Random
) -> list[str]:
    """A read-only member whose validly signed session claims the admin role (v2 `o.rol`, v1 `org_role`) is
    still refused a write: roles come from the target's own records, never from the token alone."""
    org = world.orgs.get("org1")
    read_only = target.config.roles.read_only
    member = next((p for p in org.principals if p.role in read_only), None) if org is not None else None
    if org is None or member is None or not target.config.canaries:
        evidence.add("role claim: not exercised (no read-only member, or no record to create)")
        return []
    creds = member.credentials
    if not isinstance(creds, ClerkCredentials) or creds.org is None:
        evidence.add("role claim: not exercised (the read-only member's session is not a Clerk one naming an org)")
        return []
    resource = target.config.canaries[0]
    values = {**{c.resource: c.id for c in org.canaries}, "marker": f"roleclaim{rng.getrandbits(48):012x}"}
    path, body = fill_template(resource.create.path, values), fill_template(resource.body, values)
    claimed = ActiveOrg(creds.org.id, creds.org.slug, CLERK_ADMIN.role, CLERK_ADMIN.permissions)
    with httpx.Client(base_url=target.base_url, timeout=10) as client:
        # The control: the same request succeeds for the owner, so a refusal below is about the role alone.
        owner = client.request(resource.create.method, path, json=body, headers=org.owner.credentials.headers())
        honest = client.request(resource.create.method, path, json=body, headers=creds.headers()).status_code
        if not owner.is_success or 200 <= honest < 300:
            evidence.add(
                f"role claim: not exercised ({resource.create}: the owner got {owner.status_code}, "
                f"{member.name} with its own role {honest}; see M3)"
            )
            return []
        seen = {
            version: client.request(
                resource.create.method,
                path,
                json=body,
                headers=issuer.mint(creds.sub, org=claimed, version=version).headers,
            ).status_code
            for version in (2, 1)
        }
    evidence.add(
        f"role claim: {member.name} ({member.role}) on {resource.create}: owner {owner.status_code}, "
        f"own session {honest}, claiming admin v2 {seen[2]}, v1 {seen[1]}"
    )
    return [
        f"{member.name}'s session claiming the admin role (v{version}) was let {resource.create}: {status}"
        for version, status in seen.items()
        if 200 <= status < 300
    ]


# -- a target's own login tokens ---------------------------------------------------------------------------------


class LoginToken:
    """A principal's JWT as the target handed it out, and how it is presented."""

    def __init__(self, principal: Principal, header: str, prefix: str, token: str) -> None:
        self.principal = principal
        self.header = header
        self.prefix = prefix
        self.token = token
        parsed = parse_jwt(token)
        assert parsed is not None
        self.jose, self.claims = parsed

    def present(self, token: str) -> dict[str, str]:
        """Headers presenting `token` as this principal presents its own."""
        return {self.header: self.prefix + token}


def _login_tokens(world: World) -> list[LoginToken]:
    """The principals whose credentials carry a JWT (a login's token, or a static bearer token)."""
    found = []
    for principal in world.principals():
        if not isinstance(principal.credentials, StaticCredentials):
            continue
        for name, value in principal.credentials.static_headers:
            candidate = value.rsplit(" ", 1)[-1]
            if parse_jwt(candidate) is not None:
                found.append(LoginToken(principal, name, value[: len(value) - len(candidate)], candidate))
                break
    return found


def _read_path(world: World, principal: Principal) -> str | None:
    org = world.orgs.get(principal.org or "")
    return org.canaries[0].read_path if org is not None and org.canaries else None


def _login_token_forgeries(target: Target, world: World, logins: list[LoginToken], evidence: Evidence) -> list[str]:
    """Each principal's own token re-signed (claims kept), and with `sub` swapped for a principal of another
    organisation: sent where the real token succeeds, every one must fail."""
    wrong = []
    with httpx.Client(base_url=target.base_url, timeout=10) as client:
        for login in logins:
            name = login.principal.name
            if (secret := crack(login.token)) is not None:
                wrong.append(f"{name}'s token is signed with the weak secret {secret!r} (found offline)")
            plans = [("re-signed", login.claims, login)]
            other = next((o for o in logins if o.principal.org != login.principal.org and "sub" in o.claims), None)
            if other is not None and "sub" in login.claims:
                swapped = {**login.claims, "sub": other.claims["sub"]}
                plans.append((f"sub swapped to {other.principal.name}'s", swapped, other))
            for label, claims, owner in plans:
                path = _read_path(world, owner.principal)
                if path is None:
                    wrong.append(f"{name}: no record of {owner.principal.name}'s organisation to read: not exercised")
                    continue
                real = client.get(path, headers=owner.present(owner.token)).status_code
                if not 200 <= real < 300:
                    wrong.append(f"{owner.principal.name}'s real token answered {real} on GET {path}: not exercised")
                    continue
                statuses: dict[int, int] = {}
                for probe in login_forgeries(login.jose, claims):
                    seen = client.get(path, headers=login.present(probe.token)).status_code
                    statuses[seen] = statuses.get(seen, 0) + 1
                    if 200 <= seen < 300:
                        wrong.append(f"{name}'s token {label}, forged by {probe.attack}, answered {seen} on GET {path}")
                        evidence.add(f"accepted forgery ({name}, {label}, {probe.attack}): {probe.token}")
                evidence.add(f"{name}'s token {label}: {sum(statuses.values())} forgeries on GET {path} -> {statuses}")
    return wrong
