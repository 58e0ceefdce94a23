"""C1 for Clerk sessions: every valid token shape accepted, every entry of the attack catalogue refused.

Each forgery is sent to the API (by header) and to a page (by cookie): it must answer 401 with
`WWW-Authenticate: Bearer` on the API and open no page, echo nothing of the token, be in the server's
log (found by the request id it carried, where the harness can read the log), and cost the issuer's
JWKS at most one fetch a minute; the target must fetch nothing a token points at. A session naming an
organisation its user is not in is refused too.
"""

from __future__ import annotations

import time

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.clerk import jwks
from harness.clerk.attacks import CATALOGUE, Forge
from harness.clerk.issuer import ActiveOrg, Issuer, SessionToken
from harness.engine.exchange import Caller, Exchange
from harness.engine.world import ClerkCredentials, World
from harness.target.running import Target

__all__ = [
    "REQUEST_ID_HEADERS",
    "foreign_org_session_refused",
    "forgeries_refused",
    "page",
    "send_forgery",
    "valid_shapes_accepted",
]

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id")
MAX_TOKEN_SHOWN = 2048  # characters of an accepted forgery the evidence quotes
JWKS_REFETCH_PERIOD = 60  # seconds: an unknown kid may cost the issuer one fetch per minute, no more


def page(caller: Caller, target: Target, token: SessionToken | str, iat: int) -> Exchange | None:
    """The dashboard opened with the token as Clerk's session cookie, or None for a target without pages."""
    if target.config.pages is None:
        return None
    value = token.jwt if isinstance(token, SessionToken) else token
    return caller.call(
        "GET", target.config.pages.dashboard, headers={"Cookie": f"__session={value}; __client_uat={iat}"}
    )


def send_forgery(
    target: Target, api: str, forged: str, name: str, iat: int, transport: httpx.BaseTransport | None
) -> tuple[Exchange, Exchange | None]:
    """A forged token sent as a session twice: to the API by header, and to the dashboard by Clerk's cookies."""
    with Caller(target.base_url, {"Authorization": f"Bearer {forged}"}, name=name, transport=transport) as caller:
        seen = caller.call("GET", api)
    with Caller(target.base_url, name=name, transport=transport) as cookie_caller:
        opened = page(cookie_caller, target, forged, iat)
    return seen, opened


def _status(seen: Exchange | None) -> int:
    return seen.status if seen is not None else 0


def valid_shapes_accepted(
    target: Target, issuer: Issuer, victim: ClerkCredentials, api: str, transport: httpx.BaseTransport | None
) -> Judged:
    """v1 and v2 session tokens, with and without the `cat` header, by header and by cookie: all accepted."""
    judged = Judged(("C1",))
    for version in (1, 2):
        for category in (False, True):
            token = issuer.mint(victim.sub, org=victim.org, version=version, category=category)
            shape = f"v{version}{' with cat' if category else ''}"
            with Caller(target.base_url, token.headers, name=f"valid {shape}", transport=transport) as caller:
                seen = caller.call("GET", api)
                opened = page(caller, target, token, token.claims["iat"])
            judged.add(f"valid {shape}: API {seen.status}, page {_status(opened)}")
            if judged.unanswered(seen, f"GET {api}", shape) | judged.unanswered(opened, "GET (page)", shape):
                continue
            if seen.status != 200:
                judged.find(
                    FindingKind.VALID_TOKEN_REFUSED,
                    f"GET {api}",
                    shape,
                    f"valid {shape} token refused: API {seen.status}",
                    seen,
                )
            if opened is not None and opened.status != 200:
                detail = f"valid {shape} token refused: page {opened.status}"
                judged.find(FindingKind.VALID_TOKEN_REFUSED, f"GET {opened.url}", shape, detail, opened)
    return judged


def forgeries_refused(
    target: Target,
    issuer: Issuer,
    victim: ClerkCredentials,
    api: str,
    listener: tuple[str, list[str]],
    transport: httpx.BaseTransport | None,
    impersonated: ClerkCredentials | None = None,
) -> Judged:
    """Every catalogue entry refused with 401 and a Bearer challenge, on the API and the page; nothing echoed,
    every refusal logged, no key fetched from where a token points, the JWKS not hammered. Each entry is forged
    twice where another organisation's principal is given: as the victim, and with `sub` (and the active
    organisation) swapped to that principal's, the forgery an attacker impersonating someone else sends."""
    judged = Judged(("C1",))
    url, hits = listener
    now = int(time.time())
    log_mark = target.log_offset()
    refused: dict[str, str] = {}  # request id -> entry
    fetched_before, started = _jwks_fetches(target), time.monotonic()
    forges = [("", Forge(issuer, victim.sub, victim.org, now, url))]
    if impersonated is not None:
        forges.append((", sub swapped", Forge(issuer, impersonated.sub, impersonated.org, now, url)))
    sent = 0
    for (swap, forge), entry in ((f, e) for f in forges for e in CATALOGUE):
        sent += 1
        forged = entry.build(forge)
        name = f"forgery {entry.name}{swap}"
        seen, opened = send_forgery(target, api, forged, name, now, transport)
        judged.add(f"{entry.name}{swap}: API {seen.status}, page {_status(opened)}")
        operation = f"GET {api}"
        if judged.unanswered(seen, operation, name) | judged.unanswered(opened, "GET (page)", name):
            continue
        if seen.status not in entry.statuses:
            detail = f"accepted forgery ({entry.name}{swap}: {entry.doc}): API answered {seen.status}"
            judged.find(FindingKind.FORGERY_ACCEPTED, operation, name, detail, seen)
            judged.add(f"accepted forgery ({entry.name}{swap}): {forged[:MAX_TOKEN_SHOWN]}")
        elif seen.status == 401 and "bearer" not in seen.headers.get("www-authenticate", "").lower():
            detail = f"{entry.name}{swap}: a 401 without WWW-Authenticate: Bearer (RFC 6750 3)"
            judged.find(FindingKind.CHALLENGE_MISSING, operation, name, detail, seen)
        if opened is not None and opened.ok:
            detail = f"accepted forgery ({entry.name}{swap}): the page answered {opened.status} to the forged cookie"
            judged.find(FindingKind.FORGERY_ACCEPTED, f"GET {opened.url}", name, detail, opened)
        if forged[:40] in seen.text:
            echoed = f"{entry.name}{swap}: the refusal echoes the token"
            judged.find(FindingKind.TOKEN_ECHOED, operation, name, echoed, seen)
        if seen.status == 401 and (request_id := _request_id(seen)):
            refused[request_id] = f"{entry.name}{swap}"
    _jwks_not_hammered(judged, target, fetched_before, time.monotonic() - started)
    if hits:
        detail = f"the target fetched keys a token pointed at: {hits}"
        judged.find(FindingKind.KEY_URL_FETCHED, f"GET {api}", "forgery jku/x5u", detail)
    _refusals_logged(judged, target, log_mark, refused, api)
    if judged.ok:
        swapped = f" ({len(CATALOGUE)} of them with sub swapped to another organisation's)" if len(forges) > 1 else ""
        judged.add(f"all {sent} forgeries refused{swapped}; no key fetched from where a token points")
    return judged


def foreign_org_session_refused(
    target: Target,
    world: World,
    issuer: Issuer,
    victim: ClerkCredentials,
    api: str,
    transport: httpx.BaseTransport | None,
) -> Judged:
    """The victim's own valid session, naming the other organisation (which it is not in): refused."""
    judged = Judged(("C1",))
    other = world.org("org2").owner.credentials if "org2" in world.orgs else None
    if not isinstance(other, ClerkCredentials) or other.org is None:
        return judged.cannot_apply("no second organisation whose owner presents a Clerk session")
    token = issuer.mint(victim.sub, org=ActiveOrg(other.org.id, other.org.slug, "admin"))
    with Caller(target.base_url, token.headers, name="org1 admin naming org2", transport=transport) as caller:
        seen = caller.call("GET", api)
    judged.add(f"org claim naming an organisation the user is not in: API {seen.status}")
    if not judged.unanswered(seen, f"GET {api}", caller.name) and seen.status not in (401, 403, 404):
        detail = f"a token naming an organisation its user is not in answered {seen.status}"
        judged.find(FindingKind.FOREIGN_ORG_SESSION, f"GET {api}", caller.name, detail, seen)
    return judged


def _request_id(seen: Exchange) -> str | None:
    return next((seen.headers[name] for name in REQUEST_ID_HEADERS if seen.headers.get(name)), None)


def _jwks_fetches(target: Target) -> int | None:
    return jwks.fetches(target.jwks_url) if target.jwks_url else None


def _jwks_not_hammered(judged: Judged, target: Target, before: int | None, elapsed: float) -> None:
    """Forged kids cost the issuer at most one JWKS fetch per minute (plus one cache expiry)."""
    after = _jwks_fetches(target)
    if before is None or after is None:
        judged.add("JWKS fetches: not counted (the target was not told the harness's JWKS URL)")
        return
    fetched = after - before
    allowed = 2 + int(elapsed // JWKS_REFETCH_PERIOD)
    judged.add(f"JWKS fetches during the catalogue: {fetched} in {elapsed:.1f} s (at most {allowed} allowed)")
    if fetched > allowed:
        detail = f"forged kids made the target fetch its JWKS {fetched} times in {elapsed:.1f} s (allowed {allowed})"
        judged.find(FindingKind.JWKS_HAMMERED, "GET (JWKS)", "forgery unknown kids", detail)


def _refusals_logged(judged: Judged, target: Target, mark: int, refused: dict[str, str], api: str) -> None:
    """Every refusal shows in the server's log, found by the request id the response carried."""
    log = target.server_log(mark)
    if log is None:
        judged.add("refusal logging: not checked (the target's log is not the harness's to read)")
        return
    if not refused:
        judged.add("refusal logging: not checked (the refusals carried no request id header)")
        return
    missing = sorted({entry for request_id, entry in refused.items() if request_id not in log})
    judged.add(f"refusals logged: {len(refused) - len(missing)} of {len(refused)}, found by request id")
    if missing:
        detail = f"refusals not in the server log: {', '.join(missing)}"
        judged.find(FindingKind.REFUSAL_NOT_LOGGED, f"GET {api}", "forgeries", detail)
