"""C1: authentication is solid, by the attack catalogue, on the API (by header) and on pages (by cookie)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness.attacks import CATALOGUE, Forge
from harness.evidence import Evidence
from harness.issuer import ActiveOrg, Issuer, SessionToken
from harness.target import Target
from harness.world import ClerkCredentials, World


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


def _api_path(target: Target) -> str:
    if target.config.identity is None:
        pytest.skip("the config has no [identity]: no operation to sign in to")
    return target.config.identity.me


def _victim(world: World) -> ClerkCredentials:
    owner = world.org("org1").owner
    if not isinstance(owner.credentials, ClerkCredentials):
        pytest.skip("the world's principals are not Clerk users: the harness cannot forge their tokens")
    return owner.credentials


def _page(client: httpx.Client, target: Target, token: SessionToken | str, iat: int) -> int:
    if target.config.pages is None:
        return 0
    value = token.jwt if isinstance(token, SessionToken) else token
    client.cookies.clear()
    return client.get(target.config.pages.dashboard, cookies={"__session": value, "__client_uat": str(iat)}).status_code


@pytest.mark.decides("C1")
def test_every_forged_token_is_refused(
    target: Target, world: World, issuer: Issuer, evidence: Evidence, listener: tuple[str, list[str]]
) -> None:
    """Every valid Clerk token shape is accepted, and every entry of the attack catalogue is refused: 401 on the
    API, no page; the target never fetches a key a token points at."""
    api = _api_path(target)
    victim = _victim(world)
    url, hits = listener
    now = int(time.time())
    wrong = []
    with httpx.Client(base_url=target.base_url, timeout=10) as client:
        for version in (1, 2):
            for category in (False, True):
                token = issuer.mint(victim.sub, org=victim.org, version=version, category=category)
                seen = client.get(api, headers=token.headers)
                page = _page(client, target, token, token.claims["iat"])
                evidence.add(f"valid v{version}{' with cat' if category else ''}: API {seen.status_code}, page {page}")
                if seen.status_code != 200 or page not in (0, 200):
                    wrong.append(f"valid v{version} token refused: API {seen.status_code}, page {page}")
        forge = Forge(issuer, victim.sub, victim.org, now, url)
        for entry in CATALOGUE:
            forged = entry.build(forge)
            seen = client.get(api, headers={"Authorization": f"Bearer {forged}"})
            page = _page(client, target, forged, now)
            evidence.add(f"{entry.name}: API {seen.status_code}, page {page}")
            if seen.status_code not in entry.statuses:
                wrong.append(f"{entry.name} ({entry.doc}): API answered {seen.status_code}")
            elif seen.status_code == 401 and "bearer" not in seen.headers.get("www-authenticate", "").lower():
                wrong.append(f"{entry.name}: a 401 without WWW-Authenticate: Bearer (RFC 6750 3)")
            if 200 <= page < 300:
                wrong.append(f"{entry.name}: the page answered {page} to the forged cookie")
            if forged[:40] in seen.text:
                wrong.append(f"{entry.name}: the refusal echoes the token")
        stranger = _stranger_in(world, issuer, victim)
        if stranger is not None:
            seen = client.get(api, headers=stranger.headers)
            evidence.add(f"org claim naming an organisation the user is not in: API {seen.status_code}")
            if seen.status_code not in (401, 403, 404):
                wrong.append(f"a token naming an organisation its user is not in answered {seen.status_code}")
    if hits:
        wrong.append(f"the target fetched keys a token pointed at: {hits}")
    assert not wrong, f"{len(wrong)} of {len(CATALOGUE)} attacks not refused: " + "; ".join(wrong[:10])
    evidence.add(f"all {len(CATALOGUE)} attacks refused; valid v1 and v2 tokens accepted; no key fetched")


def _stranger_in(world: World, issuer: Issuer, victim: ClerkCredentials) -> SessionToken | None:
    """The victim's own valid session, naming the other organisation (which it is not a member of)."""
    other = world.org("org2").owner.credentials
    if not isinstance(other, ClerkCredentials) or other.org is None:
        return None
    return issuer.mint(victim.sub, org=ActiveOrg(other.org.id, other.org.slug, "admin"))
