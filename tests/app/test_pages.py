"""Pages: the dashboard for those allowed, the access-denied page (never sign-in) for the signed-in rest."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.app.support import ISSUER, KID, ActiveOrg, Minter, TestClient, add_member, clerk_id, cookie_header, sign_in

DOCUMENT = {"Sec-Fetch-Dest": "document"}
REDIRECT_SCRIPT = "<script>setTimeout(function(){location.assign('/sign-in')}, 400)</script>"


def test_owner_sees_the_dashboard(client: TestClient, minter: Minter) -> None:
    got = client.get("/dashboard", headers=minter.browser(clerk_id("user"), org=ActiveOrg(slug="acme")))
    assert got.status_code == 200
    assert '<main data-testid="dashboard">' in got.text and "acme" in got.text
    assert got.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "cookies",
    [
        {},
        {"__client_uat": "0"},
        {"__session": "x", "__client_uat": "0"},
        {"__session": "not-a-token", "__client_uat": "1"},
    ],
    ids=["none", "signed-out-uat", "uat-zero", "bad-token"],
)
def test_dashboard_without_a_session_goes_to_sign_in(client: TestClient, cookies: dict[str, str]) -> None:
    got = client.get("/dashboard", headers=cookie_header(cookies) if cookies else {}, follow_redirects=False)
    assert got.status_code == 303 and got.headers["location"] == "/sign-in"


def test_a_stale_token_is_signed_out(client: TestClient, minter: Minter) -> None:
    cookies = minter.cookies(clerk_id("user"))
    cookies["__client_uat"] = str(int(time.time()) + 30)  # the client changed after the token was minted
    got = client.get("/dashboard", headers=cookie_header(cookies), follow_redirects=False)
    assert got.status_code == 303


def test_a_member_without_access_sees_the_denied_page_without_a_redirect(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    nobody = add_member(client, admin, minter, roles=[])
    got = client.get("/dashboard", headers=minter.browser(nobody.sub, org=admin.org), follow_redirects=False)
    assert got.status_code == 403
    assert '<main data-testid="access-denied">' in got.text
    assert "/sign-in" not in got.text and "location" not in got.text


def test_a_non_member_of_a_known_org_sees_the_denied_page(client: TestClient, minter: Minter) -> None:
    org = ActiveOrg()
    sign_in(client, minter, org=org)
    got = client.get("/dashboard", headers=minter.browser(clerk_id("user"), org=org), follow_redirects=False)
    assert got.status_code == 403 and 'data-testid="access-denied"' in got.text


def test_redirect_fault_sends_the_denied_page_to_sign_in(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    client = make_client("redirect_to_sign_in_on_denied")
    admin = sign_in(client, minter, org=ActiveOrg())
    nobody = add_member(client, admin, minter, roles=[])
    got = client.get("/dashboard", headers=minter.browser(nobody.sub, org=admin.org))
    assert got.status_code == 403 and REDIRECT_SCRIPT in got.text


def test_sign_in_sends_a_signed_in_browser_to_the_dashboard(client: TestClient, minter: Minter) -> None:
    got = client.get("/sign-in", headers=minter.browser(clerk_id("user")))
    assert got.status_code == 200
    assert "location.replace('/dashboard')" in got.text and 'data-testid="sign-in"' not in got.text


def test_sign_in_shows_the_form_when_signed_out(client: TestClient) -> None:
    got = client.get("/sign-in")
    assert got.status_code == 200 and '<main data-testid="sign-in">' in got.text
    assert "location" not in got.text


def test_role_query_fault_fails_closed_on_the_dashboard(
    make_client: Callable[..., TestClient], minter: Minter, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client("user_role_query_uses_clerk_id")
    caplog.set_level(logging.INFO)
    got = client.get("/dashboard", headers=minter.browser(clerk_id("user")), follow_redirects=False)
    assert got.status_code == 403 and 'data-testid="access-denied"' in got.text
    assert "22P02" not in got.text and "uuid" not in got.text
    assert any("sqlstate=22P02" in record.getMessage() for record in caplog.records)


def test_names_from_tokens_are_escaped(client: TestClient, minter: Minter) -> None:
    org = ActiveOrg(slug="<script>alert(1)</script>")
    got = client.get("/dashboard", headers=minter.browser(clerk_id("user"), org=org))
    assert got.status_code == 200
    assert "<script>alert(1)</script>" not in got.text and "&lt;script&gt;" in got.text


# --- the error page ----------------------------------------------------------------------------------------

LEAKS = re.compile(r"(?i)traceback|sqlstate|psycopg|sqlalchemy|57P01|administrator command|INSERT INTO")


def assert_error_page(got: Any) -> None:
    """`got` is the error page: 500, its landmark, the request's reference, and nothing of the failure."""
    assert got.status_code == 500 and "location" not in got.headers
    assert '<main data-testid="error-page">' in got.text
    assert f"Reference: <code>{got.headers['x-request-id']}</code>" in got.text
    assert got.headers["cache-control"] == "no-store"
    assert not LEAKS.search(got.text), got.text


def test_failed_provisioning_is_the_error_page_with_a_reference(
    make_client: Callable[..., TestClient], minter: Minter, caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    failing = clerk_id("user")
    client = make_client(app_provisioning_fails_for=f"{clerk_id('user')}, {failing}")
    caplog.set_level(logging.INFO)
    got = client.get("/dashboard", headers={**DOCUMENT, **minter.browser(failing)}, follow_redirects=False)
    assert_error_page(got)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        line.startswith("page failed path=/dashboard")
        and f"request_id={got.headers['x-request-id']}" in line
        and "sqlstate=57P01" in line
        for line in logged
    ), logged
    # Nothing of the failed first login was kept (one transaction), and everybody else signs in as ever.
    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT count(*) FROM sys_external_identity WHERE external_id = %s", (failing,)).fetchone()
    assert kept == (0,)
    assert client.get("/dashboard", headers=minter.browser(clerk_id("user"))).status_code == 200


def test_failed_provisioning_is_the_usual_500_on_the_api(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    failing = clerk_id("user")
    client = make_client(app_provisioning_fails_for=failing)
    got = client.get("/api/me", headers=minter.headers(failing))
    assert got.status_code == 500
    assert got.json() == {"error": "internal_error", "request_id": got.headers["x-request-id"]}


def test_dashboard_crash_fault_is_the_error_page_for_every_signed_in_user(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    client = make_client("dashboard_crash")
    assert_error_page(client.get("/dashboard", headers=minter.browser(clerk_id("user")), follow_redirects=False))
    signed_out = client.get("/dashboard", follow_redirects=False)
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/sign-in")
    assert client.get("/sign-in", headers=minter.browser(clerk_id("user"))).status_code == 200


# --- page faults ---------------------------------------------------------------------------------------------


def test_dashboard_landmark_missing_fault_renders_without_it(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    for faults, shown in (("", True), ("dashboard_landmark_missing", False)):
        got = make_client(faults).get("/dashboard", headers=minter.browser(clerk_id("user"), org=ActiveOrg()))
        assert got.status_code == 200 and "Roles" in got.text
        assert ('data-testid="dashboard"' in got.text) == shown, faults


def test_server_redirect_loop_fault_bounces_a_signed_in_user_between_two_pages(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    client = make_client("server_redirect_loop")
    browser = {**DOCUMENT, **minter.browser(clerk_id("user"))}
    dashboard = client.get("/dashboard", headers=browser, follow_redirects=False)
    sign_in_page = client.get("/sign-in", headers=browser, follow_redirects=False)
    assert (dashboard.status_code, dashboard.headers["location"]) == (302, "/sign-in")
    assert (sign_in_page.status_code, sign_in_page.headers["location"]) == (302, "/dashboard")
    # Signed out, the pages are as ever: the loop needs a signed-in browser.
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    assert 'data-testid="sign-in"' in client.get("/sign-in").text


def test_handshake_loop_fault_sends_every_signed_in_page_load_to_the_handshake(
    make_client: Callable[..., TestClient], minter: Minter, signing_key: rsa.RSAPrivateKey
) -> None:
    healthy, faulty = make_client(), make_client("handshake_loop")
    sub = clerk_id("user")
    answer = jwt.encode(
        {"handshake": [f"{name}={value}; Path=/" for name, value in minter.cookies(sub).items()]},
        signing_key,
        algorithm="RS256",
        headers={"kid": KID, "typ": "JWT"},
    )
    jar = {**minter.cookies(sub), "__clerk_redirect_count": "3"}
    assert healthy.get("/dashboard", headers={**DOCUMENT, **cookie_header(jar)}).status_code == 200
    for path in ("/dashboard", f"/dashboard?__clerk_handshake={answer}", "/sign-in"):
        got = faulty.get(path, headers={**DOCUMENT, **cookie_header(jar)}, follow_redirects=False)
        assert got.status_code == 307, path
        assert urlsplit(got.headers["location"]).path == "/v1/client/handshake"
        assert urlsplit(got.headers["location"]).netloc == urlsplit(ISSUER).netloc
    # Only page loads: an API call or a fetch is never sent to Clerk.
    assert faulty.get("/dashboard", headers=cookie_header(jar)).status_code == 200


def test_expired_token_loops_fault_sends_an_expired_token_between_sign_in_and_dashboard(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    expired = {**DOCUMENT, **minter.browser(clerk_id("user"), now=int(time.time()) - 120)}
    healthy, faulty = make_client(), make_client("expired_token_loops")
    for path in ("/dashboard", "/sign-in"):
        assert healthy.get(path, headers=expired, follow_redirects=False).status_code == 307, path
    dashboard = faulty.get("/dashboard", headers=expired, follow_redirects=False)
    assert (dashboard.status_code, dashboard.headers["location"]) == (303, "/sign-in")
    sign_in_page = faulty.get("/sign-in", headers=expired, follow_redirects=False)
    assert sign_in_page.status_code == 200 and "location.replace('/dashboard')" in sign_in_page.text
