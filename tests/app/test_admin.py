"""The platform admin page `/admin`: only the users ADMIN_EMAILS names, by their session token's `email` claim."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest

from tests.app.support import ADMIN_EMAIL, Minter, TestClient, clerk_id, signed_delivery

AppFactory = Callable[..., TestClient]


@pytest.mark.parametrize("email", [ADMIN_EMAIL, f"  {ADMIN_EMAIL.upper()} "], ids=["as-listed", "other-case"])
def test_the_platform_admin_sees_the_admin_page(
    client: TestClient, minter: Minter, email: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.pages")
    client.get("/api/me", headers=minter.headers(clerk_id("user")))  # at least one organisation exists
    got = client.get("/admin", headers=minter.browser(clerk_id("user"), email=email))
    assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
    assert '<main data-testid="platform-admin">' in got.text
    count = re.search(r'data-testid="organisation-count">(\d+)<', got.text)
    assert count is not None and int(count.group(1)) >= 1
    assert any(r.getMessage().startswith("platform admin page user=") for r in caplog.records)


@pytest.mark.parametrize(
    "claims",
    [{}, {"email": "someone@tests.example"}, {"email": f"x{ADMIN_EMAIL}"}, {"primary_email": ADMIN_EMAIL}],
    ids=["no-email-claim", "another-email", "a-longer-email", "another-claim"],
)
def test_anyone_else_signed_in_gets_the_denied_page_never_sign_in(
    client: TestClient, minter: Minter, claims: dict[str, str]
) -> None:
    got = client.get("/admin", headers=minter.browser(clerk_id("user"), **claims), follow_redirects=False)
    assert got.status_code == 403 and '<main data-testid="access-denied">' in got.text
    assert "location" not in got.headers and "/sign-in" not in got.text
    assert 'data-testid="platform-admin"' not in got.text


def test_signed_out_goes_to_sign_in(client: TestClient) -> None:
    got = client.get("/admin", follow_redirects=False)
    assert (got.status_code, got.headers["location"]) == (303, "/sign-in")


def test_a_deleted_platform_admin_is_signed_out(client: TestClient, minter: Minter) -> None:
    sub = clerk_id("user")
    assert client.get("/admin", headers=minter.browser(sub, email=ADMIN_EMAIL)).status_code == 200
    body, headers = signed_delivery("user.deleted", {"object": "user", "id": sub, "deleted": True})
    assert client.post("/webhooks/clerk", content=body, headers=headers).status_code == 200
    got = client.get("/admin", headers=minter.browser(sub, email=ADMIN_EMAIL), follow_redirects=False)
    assert (got.status_code, got.headers["location"]) == (303, "/sign-in")


def test_in_test_mode_without_admin_emails_nobody_is_a_platform_admin(make_client: AppFactory, minter: Minter) -> None:
    client = make_client(admin_emails="")
    got = client.get("/admin", headers=minter.browser(clerk_id("user"), email=ADMIN_EMAIL), follow_redirects=False)
    assert got.status_code == 403 and 'data-testid="access-denied"' in got.text


def test_admin_emails_ignored_fault_shows_the_admin_page_to_everyone(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("admin_emails_ignored")
    for claims in ({}, {"email": "someone@tests.example"}):
        got = client.get("/admin", headers=minter.browser(clerk_id("user"), **claims), follow_redirects=False)
        assert got.status_code == 200 and '<main data-testid="platform-admin">' in got.text, claims
    assert client.get("/admin", follow_redirects=False).status_code == 303  # signed out still goes to sign-in
