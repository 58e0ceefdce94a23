"""Pages decide as Clerk's `authenticateRequest` does: a page load only Clerk can resolve goes to the handshake,
the handshake's answer is applied, and `__clerk_redirect_count` stops a handshake that never settles."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth.browser import handshake_location, is_document_request, without_clerk_params
from tests.app.support import ISSUER, KID, Minter, TestClient, clerk_id, cookie_header, hs256_token, public_pem
from tests.app.test_jwks import JwksServer

AppFactory = Callable[..., TestClient]
DOCUMENT = {"Sec-Fetch-Dest": "document"}
PAGE = "/dashboard?tab=1"
PAGE_URL = "http://testserver/dashboard?tab=1"
HANDSHAKE_PATH = "/v1/client/handshake"
FIRST_COUNT = "__clerk_redirect_count=1; SameSite=Lax; HttpOnly; Max-Age=2"


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    """A key the app does not trust: an attacker's, or another instance's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def frontend_host(client: TestClient) -> str:
    """The frontend API host the app sends browsers to (the issuer's, unless CLERK_FRONTEND_API says otherwise)."""
    host: str = client.app.state.services.settings.frontend_api_host  # type: ignore[attr-defined]
    return host


def load(
    client: TestClient,
    path: str,
    cookies: dict[str, str],
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """A browser's page load of `path` with exactly `cookies` (the test client's own jar, which keeps what the app
    sets, is emptied first), redirects not followed."""
    client.cookies.clear()
    sent = {**DOCUMENT, **(headers or {}), **(cookie_header(cookies) if cookies else {})}
    return client.get(path, params=params, headers={k: v for k, v in sent.items() if v}, follow_redirects=False)


def assert_handshake(client: TestClient, got: Any, reason: str, *, back_to: str = PAGE_URL, count: int = 1) -> None:
    """`got` is Clerk's handshake redirect, told to come back to `back_to`, for `reason`, counted as the `count`th."""
    assert got.status_code == 307, got.text
    location = urlsplit(got.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", frontend_host(client), HANDSHAKE_PATH)
    assert parse_qs(location.query) == {"redirect_url": [back_to], "__clerk_hs_reason": [reason]}
    assert got.headers["cache-control"] == "no-store"
    assert got.headers.get_list("set-cookie") == [f"__clerk_redirect_count={count}; SameSite=Lax; HttpOnly; Max-Age=2"]


def handshake_token(key: rsa.RSAPrivateKey, directives: Any, *, kid: str = KID, **headers: Any) -> str:
    """A handshake as Clerk's frontend API signs it: `{"handshake": [Set-Cookie directives]}`, RS256, no `exp`."""
    return jwt.encode({"handshake": directives}, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT", **headers})


def fresh_directives(minter: Minter, sub: str) -> list[str]:
    """What the handshake sets for a browser Clerk knows: a fresh session token and its `__client_uat`."""
    cookies = minter.cookies(sub)
    return [f"{name}={value}; Path=/; SameSite=Lax" for name, value in cookies.items()]


def as_cookies(directives: list[str]) -> dict[str, str]:
    """The cookies a browser holds after applying `directives`."""
    return dict(directive.split(";", 1)[0].split("=", 1) for directive in directives)


def _expired(minter: Minter, sub: str, now: int) -> dict[str, str]:
    return minter.cookies(sub, now=now - 120)


def _nbf_ahead(minter: Minter, sub: str, now: int) -> dict[str, str]:
    return minter.cookies(sub, nbf=now + 60)


def _iat_ahead(minter: Minter, sub: str, now: int) -> dict[str, str]:
    return minter.cookies(sub, iat=now + 60, exp=now + 120)


def _no_uat(minter: Minter, sub: str, now: int) -> dict[str, str]:
    return {"__session": minter.token(sub)}


def _uat_zero(minter: Minter, sub: str, now: int) -> dict[str, str]:
    return {"__session": minter.token(sub), "__client_uat": "0"}


def _no_session(minter: Minter, sub: str, now: int) -> dict[str, str]:
    return {"__client_uat": str(now)}


def _stale(minter: Minter, sub: str, now: int) -> dict[str, str]:
    return {**minter.cookies(sub, now=now - 30), "__client_uat": str(now)}


UNRESOLVED = [
    (_expired, "session-token-expired"),
    (_nbf_ahead, "session-token-not-active-yet"),
    (_iat_ahead, "session-token-not-active-yet"),
    (_no_uat, "session-token-but-no-client-uat"),
    (_uat_zero, "session-token-but-no-client-uat"),
    (_no_session, "client-uat-but-no-session-token"),
    (_stale, "session-token-iat-before-client-uat"),
]
UNRESOLVED_IDS = ["expired", "nbf-ahead", "iat-ahead", "no-client-uat", "client-uat-0", "no-session", "iat-before-uat"]


@pytest.mark.parametrize(("cookies", "reason"), UNRESOLVED, ids=UNRESOLVED_IDS)
def test_a_page_load_only_clerk_can_resolve_goes_to_the_handshake(
    client: TestClient, minter: Minter, cookies: Callable[[Minter, str, int], dict[str, str]], reason: str
) -> None:
    got = load(client, PAGE, cookies(minter, clerk_id("user"), int(time.time())))
    assert_handshake(client, got, reason)


@pytest.mark.parametrize("path", ["/dashboard", "/sign-in", "/admin"])
def test_every_page_is_guarded_by_the_handshake(client: TestClient, minter: Minter, path: str) -> None:
    got = load(client, path, _expired(minter, clerk_id("user"), int(time.time())))
    assert_handshake(client, got, "session-token-expired", back_to=f"http://testserver{path}")


@pytest.mark.parametrize(("cookies", "reason"), UNRESOLVED, ids=UNRESOLVED_IDS)
def test_a_request_that_is_no_page_load_is_signed_out_instead(
    client: TestClient, minter: Minter, cookies: Callable[[Minter, str, int], dict[str, str]], reason: str
) -> None:
    jar = cookies(minter, clerk_id("user"), int(time.time()))
    for headers in (
        {"Sec-Fetch-Dest": "empty", "Accept": "text/html"},
        {"Sec-Fetch-Dest": ""},
        {"Sec-Fetch-Dest": "", "Accept": "application/json"},
    ):
        got = load(client, PAGE, jar, headers=headers)
        assert (got.status_code, got.headers["location"]) == (303, "/sign-in"), headers
        assert "set-cookie" not in got.headers


def test_an_old_browser_is_known_by_its_accept_header(client: TestClient, minter: Minter) -> None:
    got = load(
        client,
        PAGE,
        _expired(minter, clerk_id("user"), int(time.time())),
        headers={"Sec-Fetch-Dest": "", "Accept": "text/html,*/*"},
    )
    assert_handshake(client, got, "session-token-expired")
    assert is_document_request({"sec-fetch-dest": "iframe"})
    assert not is_document_request({"sec-fetch-dest": "script", "accept": "text/html"})


def test_a_signed_in_page_load_needs_no_handshake(client: TestClient, minter: Minter) -> None:
    got = load(client, PAGE, minter.cookies(clerk_id("user")))
    assert got.status_code == 200 and 'data-testid="dashboard"' in got.text
    assert "set-cookie" not in got.headers


@pytest.mark.parametrize(
    "cookies", [{}, {"__client_uat": "0"}, {"__client_uat": "not-a-number"}], ids=["none", "uat-0", "uat-junk"]
)
def test_a_signed_out_browser_goes_to_sign_in_without_a_handshake(client: TestClient, cookies: dict[str, str]) -> None:
    got = load(client, "/dashboard", cookies)
    assert (got.status_code, got.headers["location"]) == (303, "/sign-in")
    form = load(client, "/sign-in", cookies)
    assert form.status_code == 200 and 'data-testid="sign-in"' in form.text


def test_tokens_refused_for_other_reasons_are_signed_out(
    client: TestClient, minter: Minter, other_key: rsa.RSAPrivateKey
) -> None:
    sub, now = clerk_id("user"), int(time.time())
    forged_expired = jwt.encode(minter.claims(sub, now=now - 120), other_key, algorithm="RS256", headers={"kid": KID})
    tokens = [
        jwt.encode(minter.claims(sub), other_key, algorithm="RS256", headers={"kid": KID}),
        forged_expired,  # an expired forgery is a forgery: no handshake
        minter.token(sub, iss="https://evil.clerk.accounts.dev"),
        jwt.encode(minter.claims(sub), key="", algorithm="none"),
        "not-a-token",
    ]
    for token in tokens:
        got = load(client, "/dashboard", {"__session": token, "__client_uat": str(now - 200)})
        assert (got.status_code, got.headers["location"]) == (303, "/sign-in"), token
        assert "set-cookie" not in got.headers


def test_the_redirect_count_stops_the_third_handshake_in_a_row(
    client: TestClient, minter: Minter, caplog: pytest.LogCaptureFixture
) -> None:
    jar = _expired(minter, clerk_id("user"), int(time.time()))
    for count in (0, 1, 2):
        assert_handshake(
            client,
            load(client, PAGE, {**jar, "__clerk_redirect_count": str(count)}),
            "session-token-expired",
            count=count + 1,
        )
    caplog.set_level(logging.INFO, logger="app.pages")
    stopped = {**jar, "__clerk_redirect_count": "3"}
    got = load(client, "/dashboard", stopped)
    assert (got.status_code, got.headers["location"]) == (303, "/sign-in")
    form = load(client, "/sign-in", stopped)
    assert form.status_code == 200 and 'data-testid="sign-in"' in form.text
    assert any(r.getMessage().startswith("handshake loop stopped reason=session-token-expired") for r in caplog.records)
    junk = load(client, PAGE, {**jar, "__clerk_redirect_count": "many"})
    assert_handshake(client, junk, "session-token-expired")  # unreadable: counted from 0, as Clerk does


def test_the_frontend_api_can_be_named_apart_from_the_issuer(make_client: AppFactory, minter: Minter) -> None:
    client = make_client(clerk_frontend_api="https://clerk.example.com")
    got = load(client, PAGE, _expired(minter, clerk_id("user"), int(time.time())))
    assert got.headers["location"].startswith(f"https://clerk.example.com{HANDSHAKE_PATH}?redirect_url=")
    assert frontend_host(client) == "clerk.example.com" != urlsplit(ISSUER).netloc


# --- the handshake's return --------------------------------------------------------------------------------


def test_the_handshake_answer_sets_its_cookies_and_reloads_the_page(
    client: TestClient, minter: Minter, signing_key: rsa.RSAPrivateKey
) -> None:
    sub = clerk_id("user")
    directives = fresh_directives(minter, sub)
    token = handshake_token(signing_key, directives)
    expired = _expired(minter, sub, int(time.time()))
    got = load(client, f"{PAGE}&__clerk_handshake={token}&__clerk_db_jwt=dvb_x&__clerk_help=1", expired)
    assert (got.status_code, got.headers["location"]) == (307, PAGE_URL)
    assert got.headers["cache-control"] == "no-store"
    assert got.headers.get_list("set-cookie") == directives
    again = load(client, PAGE, as_cookies(directives))
    assert again.status_code == 200 and 'data-testid="dashboard"' in again.text


def test_a_handshake_in_a_cookie_is_applied_once_and_cleared(
    client: TestClient, minter: Minter, signing_key: rsa.RSAPrivateKey
) -> None:
    directives = fresh_directives(minter, clerk_id("user"))
    got = load(client, PAGE, {"__clerk_handshake": handshake_token(signing_key, directives)})
    assert (got.status_code, got.headers["location"]) == (307, PAGE_URL)
    assert got.headers.get_list("set-cookie") == [*directives, "__clerk_handshake=; Path=/; Max-Age=0"]


def _forgeries(minter: Minter, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey) -> list[str]:
    sub = clerk_id("user")
    good = fresh_directives(minter, sub)
    return [
        handshake_token(other_key, good),
        jwt.encode({"handshake": good}, key="", algorithm="none"),
        hs256_token({"handshake": good}, public_pem(signing_key).encode()),
        handshake_token(signing_key, good, typ="at+jwt"),
        handshake_token(signing_key, "__session=x"),
        handshake_token(signing_key, [*good, 7]),
        handshake_token(signing_key, ["__session=x\r\nLocation: https://evil.example"]),
        handshake_token(signing_key, ["no-equals-sign"]),
        handshake_token(signing_key, [f"__session=x{'a' * 9000}"]),
        handshake_token(signing_key, good * 20),
        "x" * 40_000,
        "not.a.jwt",
    ]


def test_a_handshake_that_does_not_verify_is_ignored(
    client: TestClient, minter: Minter, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    sub = clerk_id("user")
    for forged in _forgeries(minter, signing_key, other_key):
        signed_out = load(client, "/dashboard", {"__clerk_handshake": forged})
        assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/sign-in")
        by_query = load(client, "/dashboard", {}, params={"__clerk_handshake": forged})
        assert (by_query.status_code, by_query.headers["location"]) == (303, "/sign-in")
        assert "set-cookie" not in by_query.headers
        # The cookies decide, as if no handshake had come: a valid session opens the page ...
        kept = load(client, "/dashboard", minter.cookies(sub), params={"__clerk_handshake": forged})
        assert kept.status_code == 200
        # ... and an expired one goes to the handshake again, whose return address drops the forgery.
        expired = _expired(minter, sub, int(time.time()))
        again = load(client, "/dashboard", expired, params={"tab": "1", "__clerk_handshake": forged})
        assert_handshake(client, again, "session-token-expired")


def test_the_return_address_keeps_everything_but_clerks_parameters() -> None:
    url = "https://app.example.com/dashboard?a=1&__clerk_handshake=x&b=&__clerk_db_jwt=y&__clerk_help=1#top"
    assert without_clerk_params(url) == "https://app.example.com/dashboard?a=1&b=#top"
    location = handshake_location("clerk.example.com", url, "session-token-expired")
    assert location == (
        "https://clerk.example.com/v1/client/handshake?redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard"
        "%3Fa%3D1%26b%3D%23top&__clerk_hs_reason=session-token-expired"
    )


# --- keys by URL -------------------------------------------------------------------------------------------


@pytest.fixture
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    """A JWKS server on loopback publishing the test signing key under KID."""
    server = JwksServer()
    server.keys[KID] = signing_key
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_with_a_jwks_the_handshake_is_verified_by_the_key_its_kid_names(
    make_client: AppFactory, jwks: JwksServer, minter: Minter, signing_key: rsa.RSAPrivateKey
) -> None:
    client = make_client(clerk_jwt_key="", clerk_jwks_url=jwks.url)
    directives = fresh_directives(minter, clerk_id("user"))
    signed = load(client, "/dashboard", {}, params={"__clerk_handshake": handshake_token(signing_key, directives)})
    assert signed.status_code == 307 and signed.headers.get_list("set-cookie") == directives
    unknown = handshake_token(signing_key, directives, kid="ins_2unknownkid00000000000000")
    ignored = load(client, "/dashboard", {}, params={"__clerk_handshake": unknown})
    assert (ignored.status_code, ignored.headers["location"]) == (303, "/sign-in")
