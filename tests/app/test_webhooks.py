"""`POST /webhooks/clerk`: only a svix-signed Clerk event, within its tolerance, changes anything; junk is a 4xx."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from svix.webhooks import Webhook

from tests.app.conftest import AppFactory
from tests.app.support import (
    WEBHOOK_SECRET,
    Account,
    ActiveOrg,
    Minter,
    TestClient,
    clerk_id,
    sign_in,
    signed_delivery,
)

HOOK = "/webhooks/clerk"
OTHER_SECRET = "whsec_" + "b3RoZXItc2VjcmV0LW9mLTI0LWJ5dGVzIQ=="  # a well-formed secret, not the app's


def refused(got: Any, reason: str) -> bool:
    """Whether the answer is the 400 refusal with `reason`."""
    return bool(got.status_code == 400 and got.json() == {"error": "invalid_webhook", "reason": reason})


def tombstone(database_url: str, sub: str) -> list[tuple[Any, ...]]:
    """The identity rows of a Clerk user id: (user_id, deleted_at)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT user_id, deleted_at FROM sys_external_identity WHERE external_id = %s", (sub,)
        ).fetchall()


def still_signed_in(client: TestClient, minter: Minter, account: Account) -> bool:
    """Whether the account's next request (a fresh token) is served as before."""
    got = client.get("/api/me", headers=minter.headers(account.sub, org=account.org))
    return bool(got.status_code == 200 and got.json()["roles"] == ["Admin"])


@pytest.fixture
def victim(client: TestClient, minter: Minter) -> Account:
    """A signed-in admin of a new organisation, whom the deliveries below name."""
    return sign_in(client, minter, org=ActiveOrg(slug="webhook-victim"))


def deletion(sub: str, **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    """A signed `user.deleted` for `sub`."""
    return signed_delivery("user.deleted", {"object": "user", "id": sub, "deleted": True}, **kwargs)


def test_a_signed_user_deleted_is_processed(
    client: TestClient, minter: Minter, victim: Account, shared_database_url: str
) -> None:
    body, headers = deletion(victim.sub)
    got = client.post(HOOK, content=body, headers=headers)
    assert (got.status_code, got.json()) == (200, {"status": "processed"})
    [(user_id, deleted_at)] = tombstone(shared_database_url, victim.sub)
    assert str(user_id) == victim.user_id and deleted_at is not None
    again = client.get("/api/me", headers=minter.headers(victim.sub, org=victim.org))
    assert (again.status_code, again.json()) == (401, {"error": "invalid_token", "reason": "user_deleted"})


@pytest.mark.parametrize("dropped", ["svix-id", "svix-timestamp", "svix-signature"])
def test_a_missing_signature_header_is_400_and_changes_nothing(
    client: TestClient, minter: Minter, victim: Account, shared_database_url: str, dropped: str
) -> None:
    body, headers = deletion(victim.sub)
    for value in (None, "", "  "):
        sent = {k: v for k, v in headers.items() if k != dropped}
        if value is not None:
            sent[dropped] = value
        assert refused(client.post(HOOK, content=body, headers=sent), "missing_signature_headers")
    assert still_signed_in(client, minter, victim)
    assert tombstone(shared_database_url, victim.sub)[0][1] is None


def _tampered(sub: str, victim: str) -> tuple[bytes, dict[str, str]]:
    """A delivery signed for `sub`, whose body was then changed to name `victim`."""
    body, headers = deletion(sub)
    return body.replace(sub.encode(), victim.encode()), headers


def _with_signature(signature: str) -> Callable[[str, str], tuple[bytes, dict[str, str]]]:
    def build(sub: str, victim: str) -> tuple[bytes, dict[str, str]]:
        body, headers = deletion(victim)
        return body, {**headers, "svix-signature": signature}

    return build


BAD_SIGNATURES: dict[str, Callable[[str, str], tuple[bytes, dict[str, str]]]] = {
    "another-secret": lambda sub, victim: deletion(victim, secret=OTHER_SECRET),
    "tampered-body": _tampered,
    "no-comma": _with_signature("garbage"),
    "two-commas": _with_signature("v1,a,b"),
    "not-base64": _with_signature("v1,!!!not base64!!!"),
    "other-version": _with_signature("v2,c2lnbmF0dXJl"),
    "empty-v1": _with_signature("v1,"),
}


@pytest.mark.parametrize("case", sorted(BAD_SIGNATURES))
def test_a_bad_signature_is_400_and_changes_nothing(
    client: TestClient, minter: Minter, victim: Account, shared_database_url: str, case: str
) -> None:
    body, headers = BAD_SIGNATURES[case](clerk_id("user"), victim.sub)
    assert refused(client.post(HOOK, content=body, headers=headers), "bad_signature")
    assert still_signed_in(client, minter, victim)
    assert tombstone(shared_database_url, victim.sub)[0][1] is None


def test_one_matching_signature_among_several_is_enough(client: TestClient, minter: Minter, victim: Account) -> None:
    body, headers = deletion(victim.sub)
    rotated = f"v1,c2lnbmF0dXJlIG9mIGFuIG9sZCBzZWNyZXQ= {headers['svix-signature']}"
    got = client.post(HOOK, content=body, headers={**headers, "svix-signature": rotated})
    assert got.status_code == 200
    assert client.get("/api/me", headers=minter.headers(victim.sub, org=victim.org)).status_code == 401


@pytest.mark.parametrize("minutes", [-6, 6, -60 * 24], ids=["stale", "future", "a-day-old"])
def test_a_timestamp_out_of_tolerance_is_400_even_when_signed(
    client: TestClient, minter: Minter, victim: Account, minutes: int
) -> None:
    at = datetime.now(tz=UTC) + timedelta(minutes=minutes)
    body, headers = deletion(victim.sub, at=at)
    assert refused(client.post(HOOK, content=body, headers=headers), "timestamp_out_of_tolerance")
    assert still_signed_in(client, minter, victim)


@pytest.mark.parametrize("timestamp", ["soon", "1e9", "nan", "9" * 5000], ids=["word", "float", "nan", "huge"])
def test_a_timestamp_that_is_not_unix_seconds_is_400(client: TestClient, victim: Account, timestamp: str) -> None:
    body, headers = deletion(victim.sub)
    got = client.post(HOOK, content=body, headers={**headers, "svix-timestamp": timestamp})
    assert refused(got, "timestamp_out_of_tolerance")


def test_a_delivery_signed_four_minutes_ago_is_accepted(client: TestClient, victim: Account) -> None:
    body, headers = deletion(victim.sub, at=datetime.now(tz=UTC) - timedelta(minutes=4))
    assert client.post(HOOK, content=body, headers=headers).status_code == 200


def _signed_raw(text: str) -> tuple[bytes, dict[str, str]]:
    """Any text, signed as svix would sign it."""
    at = datetime.now(tz=UTC)
    msg_id = f"msg_{clerk_id('x')}"
    signature = Webhook(WEBHOOK_SECRET).sign(msg_id, at, text)
    return text.encode(), {"svix-id": msg_id, "svix-timestamp": str(int(at.timestamp())), "svix-signature": signature}


MALFORMED = {
    "not-json": "this is not json",
    "array": "[]",
    "no-data": '{"type": "user.deleted", "object": "event"}',
    "no-type": '{"data": {"id": "user_2x"}, "object": "event"}',
    "type-not-a-string": '{"type": 7, "data": {}}',
    "data-not-an-object": '{"type": "user.deleted", "data": "user_2x"}',
    "deleted-without-id": '{"type": "user.deleted", "data": {"object": "user", "deleted": true}}',
    "deleted-with-blank-id": '{"type": "user.deleted", "data": {"id": "  "}}',
    "deleted-with-numeric-id": '{"type": "user.deleted", "data": {"id": 42}}',
    "deleted-with-nul-in-id": '{"type": "user.deleted", "data": {"id": "user_\\u0000x"}}',
    "deleted-with-huge-id": json.dumps({"type": "user.deleted", "data": {"id": "user_" + "x" * 300}}),
    "deep-nesting": '{"type": "user.updated", "data": ' + "[" * 5000 + "]" * 5000 + "}",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_signed_but_malformed_envelope_is_400(
    client: TestClient, minter: Minter, victim: Account, shared_database_url: str, case: str
) -> None:
    body, headers = _signed_raw(MALFORMED[case])
    assert refused(client.post(HOOK, content=body, headers=headers), "malformed_payload")
    assert still_signed_in(client, minter, victim)


def test_a_body_that_is_not_utf8_is_a_bad_signature_never_read(client: TestClient, victim: Account) -> None:
    _, headers = deletion(victim.sub)
    assert refused(client.post(HOOK, content=b"\xff\xfe\x00junk", headers=headers), "bad_signature")


@pytest.mark.parametrize("fault", ["", "webhook_signature_unchecked"])
def test_a_delivery_signed_with_another_secret_deletes_nobody_unless_the_fault_is_on(
    make_client: AppFactory, minter: Minter, fault: str
) -> None:
    client = make_client(fault)
    user = sign_in(client, minter, org=ActiveOrg(slug="forged-deletion"))
    body, headers = deletion(user.sub, secret=OTHER_SECRET)
    got = client.post(HOOK, content=body, headers=headers)
    if fault:
        assert got.status_code == 200, got.text
        assert client.get("/api/me", headers=minter.headers(user.sub, org=user.org)).status_code == 401
    else:
        assert refused(got, "bad_signature")
        assert still_signed_in(client, minter, user)


@pytest.mark.parametrize(
    "event_type",
    ["session.ended", "organizationInvitation.created", "email.created", "role.created"],
)
def test_an_event_type_the_app_does_not_handle_is_acknowledged_and_ignored(
    client: TestClient, minter: Minter, victim: Account, shared_database_url: str, event_type: str
) -> None:
    # Clerk retries anything but 2xx: an event the app has no use for must not be retried for days.
    body, headers = signed_delivery(event_type, {"object": "user", "id": victim.sub, "deleted": True})
    got = client.post(HOOK, content=body, headers=headers)
    assert (got.status_code, got.json()) == (200, {"status": "ignored"})
    assert still_signed_in(client, minter, victim)
    assert tombstone(shared_database_url, victim.sub)[0][1] is None


def test_envelope_fields_clerk_may_add_are_accepted(client: TestClient, victim: Account) -> None:
    data = {"object": "user", "id": victim.sub, "deleted": True}
    envelope = {"data": data, "type": "user.deleted", "event_attributes": {"http_request": {"client_ip": "::1"}}}
    body, headers = _signed_raw(json.dumps(envelope))
    assert client.post(HOOK, content=body, headers=headers).status_code == 200


def test_a_redelivery_is_idempotent(client: TestClient, victim: Account, shared_database_url: str) -> None:
    body, headers = deletion(victim.sub)
    first = client.post(HOOK, content=body, headers=headers)
    [(user_id, deleted_at)] = tombstone(shared_database_url, victim.sub)
    again = client.post(HOOK, content=body, headers=headers)  # svix's retry: same id, same body, same signature
    other_body, other_headers = deletion(victim.sub)  # a second deletion of the same user, another message
    another = client.post(HOOK, content=other_body, headers=other_headers)
    assert [r.status_code for r in (first, again, another)] == [200, 200, 200]
    assert tombstone(shared_database_url, victim.sub) == [(user_id, deleted_at)]  # the first deletion's time kept


def test_an_oversized_payload_is_413(client: TestClient, victim: Account) -> None:
    data = {"object": "user", "id": victim.sub, "deleted": True, "padding": "x" * 300_000}
    body, headers = signed_delivery("user.deleted", data)
    got = client.post(HOOK, content=body, headers=headers)
    assert got.status_code == 413 and got.json()["error"] == "payload_too_large"


def test_refusals_are_logged_by_reason(client: TestClient, victim: Account, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.webhooks")
    body, headers = deletion(victim.sub, secret=OTHER_SECRET)
    client.post(HOOK, content=body, headers=headers)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.webhooks"]
    assert any(line.startswith("webhook refused reason=bad_signature svix_id=") for line in lines), lines
    assert not any(WEBHOOK_SECRET in line or OTHER_SECRET in line for line in lines)


def test_junk_is_never_a_server_error(client: TestClient) -> None:
    junk: list[tuple[bytes, dict[str, str | bytes]]] = [
        (b"", {}),
        (b"{}", {"content-type": "application/json"}),
        (b'{"type": "user.deleted", "data": {"id": "user_x"}}', {"svix-id": "x", "svix-timestamp": "0"}),
        (b"null", {"svix-id": "x", "svix-timestamp": "1", "svix-signature": "v1,AAAA"}),
        (b"x", {"svix-id": b"\xe9", "svix-timestamp": "nan", "svix-signature": b"v1,\xe9"}),
        (b"x", {"svix-id": b"\xe9", "svix-timestamp": str(int(time.time())), "svix-signature": b"v1,\xe9"}),
    ]
    for body, headers in junk:
        got = client.post(HOOK, content=body, headers=headers)
        assert 400 <= got.status_code < 500 and got.json()["error"] == "invalid_webhook", (body, got.text)
    assert client.get(HOOK).status_code == 405


def test_without_a_secret_the_endpoint_answers_404_and_changes_nothing(
    make_client: Callable[..., TestClient], minter: Minter, database_url: str
) -> None:
    client = make_client(clerk_webhook_secret="")
    assert client.app.state.services.settings.clerk_webhook_secret is None  # type: ignore[attr-defined]
    account = sign_in(client, minter)
    for body, headers in (deletion(account.sub), (b"junk", {})):
        got = client.post(HOOK, content=body, headers=headers)
        assert (got.status_code, got.json()) == (404, {"error": "not_found", "reason": "webhooks_not_configured"})
    assert client.get("/api/me", headers=minter.headers(account.sub)).status_code == 200
    assert tombstone(database_url, account.sub)[0][1] is None
