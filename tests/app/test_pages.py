"""Pages: the dashboard for those allowed, the access-denied page (never sign-in) for the signed-in rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from tests.app.support import ActiveOrg, Minter, TestClient, add_member, clerk_id, cookie_header, sign_in

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
