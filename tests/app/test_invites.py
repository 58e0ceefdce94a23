"""Invites by email: a member manager invites an address, the mail carries the link, and only the invited address
accepts it, once, in time, unless it was revoked. A real SMTP server on loopback receives the mail."""

from __future__ import annotations

import email
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.config import AppMode, SettingsError, load_settings
from app.invites import token_digest
from app.services import Services
from tests.app.support import (
    APP_VARS,
    ISSUER,
    RANDOM_ID,
    Account,
    ActiveOrg,
    Minter,
    TestClient,
    add_member,
    clerk_id,
    sign_in,
)

AppFactory = Callable[..., TestClient]
BASE_URL = "http://127.0.0.1:8000"
LINK_PREFIX = f"{BASE_URL}/invites/accept?token="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Mailbox:
    """An SMTP handler keeping every message it is handed."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook for a message's content."""
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages sent to `address`, oldest first."""
        return [m for m in self.messages if m["To"] == address]


def token_in(message: EmailMessage) -> str:
    """The token of the invite link, which stands on a line of its own in the plain-text body."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    links = [line for line in body.get_content().splitlines() if line.startswith(LINK_PREFIX)]
    assert len(links) == 1, body.get_content()
    [token] = parse_qs(urlsplit(links[0]).query)["token"]
    return str(token)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """An SMTP server on loopback, collecting what it receives."""
    box = Mailbox(port=_free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def app(make_client: AppFactory, mailbox: Mailbox) -> Callable[..., TestClient]:
    """The app with `faults`, on a database of its own, sending its mail to `mailbox`."""
    return lambda faults="", **overrides: make_client(
        faults, smtp_host="127.0.0.1", smtp_port=mailbox.port, **overrides
    )


@dataclass(frozen=True)
class Sent:
    """An invite as created, and the token its mail carried."""

    invite: dict[str, Any]
    token: str


def invite(
    client: TestClient, mailbox: Mailbox, inviter: Account, address: str, role: str = "Member", **body: Any
) -> Sent:
    got = client.post("/api/invites", headers=inviter.headers, json={"email": address, "role": role, **body})
    assert got.status_code == 201, got.text
    token = token_in(mailbox.to(address.lower())[-1])
    assert token not in got.text
    return Sent(invite=got.json(), token=token)


def invitee(minter: Minter, address: str, sub: str | None = None) -> dict[str, str]:
    """The headers of a user whose session token's `email` claim is `address`, with no organisation active."""
    return minter.headers(sub or clerk_id("user"), email=address)


def accept(client: TestClient, headers: dict[str, str], token: str) -> tuple[int, dict[str, Any]]:
    got = client.post("/api/invites/accept", headers=headers, json={"token": token})
    return got.status_code, got.json()


def member_count(client: TestClient, admin: Account) -> int:
    got = client.get("/api/members", headers=admin.headers)
    assert got.status_code == 200
    return len(got.json())


def statuses(client: TestClient, admin: Account) -> dict[str, str]:
    got = client.get("/api/invites", headers=admin.headers)
    assert got.status_code == 200
    return {row["id"]: row["status"] for row in got.json()}


def refused(status: int, error: str, reason: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "reason": reason}


def expire(database_url: str, sent: Sent, org_id: str) -> None:
    """Move an invite's expiry into the past (acting for its organisation, as row-level security wants)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT set_config('app.current_org', %s, true)", (org_id,))
        moved = conn.execute(
            "UPDATE org_invites SET expires_at = now() - interval '1 second' WHERE id = %s", (sent.invite["id"],)
        )
        assert moved.rowcount == 1


# --- the healthy path -----------------------------------------------------------------------------------------


def test_an_invite_is_mailed_and_the_invited_address_joins_with_its_role(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    org = ActiveOrg(slug="acme-invites")
    admin = sign_in(client, minter, org=org)
    sent = invite(client, mailbox, admin, "Ada@Example.org", role="Member")
    assert sent.invite["email"] == "ada@example.org" and sent.invite["role"] == "Member"
    assert sent.invite["status"] == "pending" and set(sent.invite) == {"id", "email", "role", "expires_at", "status"}
    [mail] = mailbox.to("ada@example.org")
    assert mail["From"] == "invites@iam-harness.example"
    assert mail["Subject"] == "You are invited to join acme-invites"
    text = mail.get_content()
    assert "acme-invites as Member" in text and len(sent.token) >= 43

    sub = clerk_id("user")
    status, body = accept(client, invitee(minter, "ADA@example.org", sub), sent.token)
    assert status == 200, body
    assert body == {"organisation": {"id": admin.org_id, "name": "acme-invites"}, "role": "Member"}
    me = client.get("/api/me", headers=minter.headers(sub, org=org))
    assert me.status_code == 200 and me.json()["roles"] == ["Member"]
    assert me.json()["organisation"]["id"] == admin.org_id
    listed = client.get("/api/invites", headers=admin.headers)
    assert [row["status"] for row in listed.json()] == ["accepted"] and sent.token not in listed.text
    assert member_count(client, admin) == 2


def test_only_the_digest_of_a_token_is_stored(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter, database_url: str
) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "digest@example.org")
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT set_config('app.current_org', %s, true)", (admin.org_id,))
        rows = conn.execute("SELECT token_digest, org_invites::text FROM org_invites").fetchall()
    assert rows and rows[0][0] == token_digest(sent.token) and sent.token not in rows[0][1]


# --- refusals, each changing nothing -------------------------------------------------------------------------


def test_an_unknown_or_garbled_token_is_not_found(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "someone@example.org")
    headers = invitee(minter, "someone@example.org")
    for token in ("not-a-token", sent.token[:-1], sent.token + "x", "A" * 43):
        assert accept(client, headers, token) == refused(404, "not_found", "invite_not_found")
    assert client.post("/api/invites/accept", headers=headers, json={"token": ""}).status_code == 422
    assert client.post("/api/invites/accept", json={"token": sent.token}).status_code == 401
    assert statuses(client, admin) == {sent.invite["id"]: "pending"} and member_count(client, admin) == 1


def test_an_invite_for_another_address_is_refused_and_stays_usable(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "right@example.org")
    wrong = refused(403, "forbidden", "invite_for_another_address")
    assert accept(client, invitee(minter, "wrong@example.org"), sent.token) == wrong
    assert accept(client, minter.headers(clerk_id("user")), sent.token) == wrong  # no email claim at all
    assert member_count(client, admin) == 1 and statuses(client, admin) == {sent.invite["id"]: "pending"}
    assert accept(client, invitee(minter, "right@example.org"), sent.token)[0] == 200


def test_an_invite_is_used_once(app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "once@example.org")
    first = invitee(minter, "once@example.org")
    assert accept(client, first, sent.token)[0] == 200
    used = refused(409, "conflict", "invite_already_used")
    assert accept(client, first, sent.token) == used
    assert accept(client, invitee(minter, "once@example.org"), sent.token) == used  # another account, same address
    assert member_count(client, admin) == 2


def test_an_expired_invite_is_gone(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter, database_url: str
) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "late@example.org")
    expire(database_url, sent, admin.org_id)
    assert statuses(client, admin) == {sent.invite["id"]: "expired"}
    assert accept(client, invitee(minter, "late@example.org"), sent.token) == refused(410, "gone", "invite_expired")
    assert member_count(client, admin) == 1


def test_the_ttl_setting_sets_the_expiry(app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter) -> None:
    client = app(invite_ttl_seconds=60)
    admin = sign_in(client, minter, org=ActiveOrg())
    before = datetime.now(UTC) + timedelta(seconds=60)
    sent = invite(client, mailbox, admin, "ttl@example.org")
    expires = datetime.fromisoformat(sent.invite["expires_at"])
    assert before - timedelta(seconds=5) <= expires <= datetime.now(UTC) + timedelta(seconds=65)
    assert f"until {expires:%Y-%m-%d %H:%M} UTC" in mailbox.to("ttl@example.org")[0].get_content()


def test_a_revoked_invite_is_gone_and_revocation_stays_in_the_org(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    other = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "revoked@example.org")
    theirs = invite(client, mailbox, other, "theirs@example.org")
    for invite_id in (theirs.invite["id"], RANDOM_ID):
        got = client.delete(f"/api/invites/{invite_id}", headers=admin.headers)
        assert (got.status_code, got.json()) == (404, {"error": "not_found"})
    assert statuses(client, other) == {theirs.invite["id"]: "pending"}
    assert client.delete(f"/api/invites/{sent.invite['id']}", headers=admin.headers).status_code == 204
    assert client.delete(f"/api/invites/{sent.invite['id']}", headers=admin.headers).status_code == 204
    assert statuses(client, admin) == {sent.invite["id"]: "revoked"}
    assert accept(client, invitee(minter, "revoked@example.org"), sent.token) == refused(410, "gone", "invite_revoked")
    assert member_count(client, admin) == 1
    assert theirs.invite["id"] not in client.get("/api/invites", headers=admin.headers).text
    assert client.delete("/api/invites/not-a-uuid", headers=admin.headers).status_code == 422


def test_an_accepted_invite_cannot_be_revoked(app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "kept@example.org")
    assert accept(client, invitee(minter, "kept@example.org"), sent.token)[0] == 200
    got = client.delete(f"/api/invites/{sent.invite['id']}", headers=admin.headers)
    assert (got.status_code, got.json()) == refused(409, "conflict", "invite_already_used")
    assert statuses(client, admin) == {sent.invite["id"]: "accepted"}


def test_a_member_already_is_refused_and_the_invite_stays_usable(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    org = ActiveOrg()
    admin = sign_in(client, minter, org=org)
    viewer = add_member(client, admin, minter, roles=["Viewer"])
    sent = invite(client, mailbox, admin, "member@example.org", role="Member")
    as_member = invitee(minter, "member@example.org", viewer.sub)
    assert accept(client, as_member, sent.token) == refused(409, "conflict", "already_a_member")
    assert sign_in(client, minter, org=org, sub=viewer.sub).me["roles"] == ["Viewer"]  # no role added either
    assert statuses(client, admin) == {sent.invite["id"]: "pending"} and member_count(client, admin) == 2
    assert accept(client, invitee(minter, "member@example.org"), sent.token)[0] == 200


def test_sixteen_racing_accepts_make_one_member(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "racer@example.org")
    sub = clerk_id("user")
    headers = invitee(minter, "racer@example.org", sub)
    assert client.get("/api/me", headers=headers).status_code == 200  # signed in once: the race is the accept's
    n = 16
    barrier = threading.Barrier(n)

    def one() -> tuple[int, dict[str, Any]]:
        barrier.wait(timeout=30)
        return accept(client, headers, sent.token)

    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(lambda _: one(), range(n)))
    assert sorted(status for status, _ in answers) == [200] + [409] * (n - 1), answers
    assert all(body["reason"] == "invite_already_used" for status, body in answers if status == 409)
    assert member_count(client, admin) == 2


# --- creating invites ---------------------------------------------------------------------------------------


def test_only_member_managers_invite(app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    for role in ("Member", "Viewer"):
        user = add_member(client, admin, minter, roles=[role])
        got = client.post("/api/invites", headers=user.headers, json={"email": "x@example.org", "role": "Viewer"})
        assert got.status_code == 403 and got.json()["permission"] == "members:manage"
        assert client.get("/api/invites", headers=user.headers).status_code == 403
    assert client.post("/api/invites", json={"email": "x@example.org", "role": "Viewer"}).status_code == 401
    assert mailbox.messages == [] and statuses(client, admin) == {}


def test_a_malformed_invite_or_an_unknown_role_is_refused(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    admin = sign_in(client, minter, org=ActiveOrg())
    got = client.post("/api/invites", headers=admin.headers, json={"email": "x@example.org", "role": "Root"})
    assert got.status_code == 422
    assert got.json() == {"error": "invalid_request", "reason": "unknown_role", "roles": ["Root"]}
    for body in ({"email": "not-an-address", "role": "Viewer"}, {"email": "x@example.org"}, {"role": "Viewer"}):
        assert client.post("/api/invites", headers=admin.headers, json=body).status_code == 422
    extra = {"email": "x@example.org", "role": "Viewer", "token": "mine"}
    assert client.post("/api/invites", headers=admin.headers, json=extra).status_code == 422
    assert mailbox.messages == [] and statuses(client, admin) == {}


def test_an_invite_into_another_organisation_is_not_found(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app()
    org1 = sign_in(client, minter, org=ActiveOrg())
    org2 = sign_in(client, minter, org=ActiveOrg())
    for org_id in (org2.org_id, RANDOM_ID):
        got = client.post(
            "/api/invites", headers=org1.headers, json={"email": "x@example.org", "role": "Viewer", "org_id": org_id}
        )
        assert (got.status_code, got.json()) == (404, {"error": "not_found"})
    assert mailbox.messages == [] and statuses(client, org2) == {} and statuses(client, org1) == {}
    own = invite(client, mailbox, org1, "own@example.org", role="Viewer", org_id=org1.org_id)
    assert statuses(client, org1) == {own.invite["id"]: "pending"}


def _recruiter(client: TestClient, minter: Minter, database_url: str) -> tuple[Account, Account]:
    """An organisation's admin and a `Recruiter`: a role (added to this deploy's catalogue) granting
    `members:manage` and what Viewer grants, and no more."""
    with psycopg.connect(database_url) as conn:
        role_id = conn.execute(
            "INSERT INTO governance_roles (name, description) VALUES ('Recruiter', 'invites people') RETURNING id"
        ).fetchone()
        assert role_id is not None
        conn.execute(
            "INSERT INTO governance_role_permissions (role_id, permission_id) "
            "SELECT %s, p.id FROM governance_permissions p WHERE p.name = 'members:manage' OR p.id IN ("
            " SELECT rp.permission_id FROM governance_role_permissions rp JOIN governance_roles r ON r.id = rp.role_id"
            " WHERE r.name = 'Viewer')",
            (role_id[0],),
        )
    admin = sign_in(client, minter, org=ActiveOrg())
    return admin, add_member(client, admin, minter, roles=["Recruiter"])


def test_a_role_above_the_inviter_is_refused(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter, database_url: str
) -> None:
    client = app()
    admin, recruiter = _recruiter(client, minter, database_url)
    for role in ("Admin", "Member"):
        got = client.post("/api/invites", headers=recruiter.headers, json={"email": "x@example.org", "role": role})
        assert (got.status_code, got.json()) == refused(403, "forbidden", "role_above_inviter"), role
    assert mailbox.messages == [] and statuses(client, admin) == {}
    invite(client, mailbox, recruiter, "viewer@example.org", role="Viewer")  # within what they hold
    invite(client, mailbox, admin, "admin@example.org", role="Admin")  # an Admin holds every permission


def test_mail_that_cannot_be_sent_is_a_502_and_the_invite_is_kept(
    make_client: AppFactory, minter: Minter, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()  # nothing listens there
    client = make_client(smtp_host="127.0.0.1", smtp_port=port)
    admin = sign_in(client, minter, org=ActiveOrg())
    with caplog.at_level(logging.WARNING, logger="app.errors"):
        got = client.post("/api/invites", headers=admin.headers, json={"email": "x@example.org", "role": "Viewer"})
    assert got.status_code == 502
    body = got.json()
    assert (body["error"], body["reason"]) == ("mail_not_sent", "mail_server_unavailable")
    assert str(port) not in got.text and "Errno" not in got.text and "127.0.0.1" not in got.text
    assert statuses(client, admin) == {body["invite_id"]: "pending"}
    assert any("invite mail not sent" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert client.delete(f"/api/invites/{body['invite_id']}", headers=admin.headers).status_code == 204


# --- the fault switches, each turning its refusal into a success ------------------------------------------------


def test_invite_reusable_lets_a_used_invite_join_again(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app("invite_reusable")
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "twice@example.org")
    first_sub = clerk_id("user")
    assert accept(client, invitee(minter, "twice@example.org", first_sub), sent.token)[0] == 200
    assert accept(client, invitee(minter, "twice@example.org"), sent.token)[0] == 200  # healthy: 409
    assert member_count(client, admin) == 3
    removed = client.get("/api/members", headers=admin.headers).json()
    first_id = next(m["user_id"] for m in removed if m["external_id"] == first_sub)
    assert client.delete(f"/api/members/{first_id}", headers=admin.headers).status_code == 204
    assert accept(client, invitee(minter, "twice@example.org", first_sub), sent.token)[0] == 200  # back in


def test_invite_not_bound_to_email_lets_anyone_with_the_link_join(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app("invite_not_bound_to_email")
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "intended@example.org", role="Member")
    status, body = accept(client, invitee(minter, "intruder@example.org"), sent.token)  # healthy: 403
    assert status == 200 and body["role"] == "Member"
    other = invite(client, mailbox, admin, "intended2@example.org")
    assert accept(client, minter.headers(clerk_id("user")), other.token)[0] == 200  # no email claim at all
    assert member_count(client, admin) == 3


def test_invite_never_expires_lets_an_old_link_join(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter, database_url: str
) -> None:
    client = app("invite_never_expires")
    admin = sign_in(client, minter, org=ActiveOrg())
    sent = invite(client, mailbox, admin, "old@example.org")
    expire(database_url, sent, admin.org_id)
    assert accept(client, invitee(minter, "old@example.org"), sent.token)[0] == 200  # healthy: 410
    assert member_count(client, admin) == 2


def test_invite_role_escalation_lets_a_recruiter_invite_an_admin(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter, database_url: str
) -> None:
    client = app("invite_role_escalation")
    admin, recruiter = _recruiter(client, minter, database_url)
    sent = invite(client, mailbox, recruiter, "accomplice@example.org", role="Admin")  # healthy: 403
    sub = clerk_id("user")
    assert accept(client, invitee(minter, "accomplice@example.org", sub), sent.token)[0] == 200
    me = client.get("/api/me", headers=minter.headers(sub, org=admin.org))
    assert me.json()["roles"] == ["Admin"] and "contacts:delete" in me.json()["permissions"]


def test_invite_cross_org_lets_an_admin_invite_into_another_organisation(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    client = app("invite_cross_org")
    org1 = sign_in(client, minter, org=ActiveOrg(slug="org-one"))
    org2 = sign_in(client, minter, org=ActiveOrg(slug="org-two"))
    sent = invite(client, mailbox, org1, "mole@example.org", role="Member", org_id=org2.org_id)  # healthy: 404
    assert "org-two" in mailbox.to("mole@example.org")[-1]["Subject"]
    assert statuses(client, org2) == {sent.invite["id"]: "pending"}
    sub = clerk_id("user")
    status, body = accept(client, invitee(minter, "mole@example.org", sub), sent.token)
    assert status == 200 and body["organisation"]["id"] == org2.org_id
    me = client.get("/api/me", headers=minter.headers(sub, org=org2.org))
    assert me.status_code == 200 and me.json()["roles"] == ["Member"]


# --- the schema and the settings -----------------------------------------------------------------------------


def test_the_schema_lists_the_invite_operations(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/invites"]) == {"get", "post"}
    assert set(paths["/api/invites/{invite_id}"]) == {"delete"}
    accept_op = paths["/api/invites/accept"]["post"]
    assert {"200", "401", "403", "404", "409", "410", "422"} <= set(accept_op["responses"])
    assert "502" in paths["/api/invites"]["post"]["responses"]
    created = paths["/api/invites"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/InviteOut"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in APP_VARS:
        monkeypatch.delenv(name, raising=False)
    return {
        "database_url": "postgresql://app@localhost/app",
        "clerk_jwks_url": "https://example.clerk.accounts.dev/.well-known/jwks.json",
        "clerk_issuer": ISSUER,
        "admin_emails": "ops@example.org",
    }


def test_mail_settings_have_defaults(env: dict[str, str]) -> None:
    settings = load_settings(**env)
    assert (settings.smtp_host, settings.smtp_port, settings.mail_from) == (
        "127.0.0.1",
        25,
        "invites@iam-harness.example",
    )
    assert (settings.app_base_url, settings.invite_ttl_seconds) == (BASE_URL, 604800)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMTP_PORT", "0"),
        ("SMTP_PORT", "smtp"),
        ("SMTP_HOST", " "),
        ("MAIL_FROM", "invites"),
        ("MAIL_FROM", "a@b\r\nBcc: x@y"),
        ("APP_BASE_URL", "ftp://example.org"),
        ("APP_BASE_URL", "https://app.example.org/path"),
        ("APP_BASE_URL", "http://app.example.org"),
        ("INVITE_TTL_SECONDS", "0"),
        ("INVITE_TTL_SECONDS", "a week"),
    ],
)
def test_bad_mail_settings_are_refused_by_name(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(**env)
    message = str(caught.value)
    assert variable in message and "\n" not in message


def test_an_http_base_url_is_accepted_in_test_mode_or_on_loopback(env: dict[str, str]) -> None:
    assert load_settings(**env, app_base_url="http://localhost:8000/").app_base_url == "http://localhost:8000"
    testing = load_settings(**env, app_base_url="http://app.example.org", app_mode="test")
    assert testing.app_base_url == "http://app.example.org"


def test_the_ttl_hook_makes_an_invite_expire_in_test_mode_only(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    services = make_client().app.state.services  # type: ignore[attr-defined]
    assert isinstance(services, Services) and services.settings.app_mode is AppMode.TEST
    full = services.settings.invite_ttl_seconds
    assert [services.invite_ttl(v) for v in (None, "1", "0", "x", str(full * 2))] == [full, 1, 1, full, full]
    production = make_client(app_mode="production").app.state.services  # type: ignore[attr-defined]
    assert isinstance(production, Services) and production.invite_ttl("1") == full


def test_a_manager_invites_a_member_and_never_an_admin(
    app: Callable[..., TestClient], mailbox: Mailbox, minter: Minter
) -> None:
    """The seeded Manager (members:manage, no deletions) invites below its own role only; with the
    `invite_role_escalation` fault its Admin invite goes out and is accepted as one."""
    for fault, status in (("", 403), ("invite_role_escalation", 201)):
        client = app(fault) if fault else app()
        admin = sign_in(client, minter, org=ActiveOrg())
        manager = add_member(client, admin, minter, roles=["Manager"])
        invite(client, mailbox, manager, f"member{fault}@example.org", role="Member")
        got = client.post("/api/invites", headers=manager.headers, json={"email": "boss@example.org", "role": "Admin"})
        assert got.status_code == status, (fault, got.text)
