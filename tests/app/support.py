"""Helpers for the app's tests: Clerk-shaped ids and session tokens minted with a test key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from svix.webhooks import Webhook

with warnings.catch_warnings():
    # Starlette announces a future change of its test client's HTTP library; nothing to act on here.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = [
    "ADMIN_EMAIL",
    "APP_VARS",
    "ISSUER",
    "KID",
    "ORIGIN",
    "RANDOM_ID",
    "ROLE_METHODS",
    "WEBHOOK_SECRET",
    "Account",
    "ActiveOrg",
    "Minter",
    "Operation",
    "TestClient",
    "add_member",
    "app_environment",
    "assert_hidden_like_missing",
    "assert_role_gets_exactly",
    "clerk_id",
    "cookie_header",
    "create_contact",
    "create_deal",
    "create_note",
    "every_operation",
    "hs256_token",
    "public_pem",
    "run_app",
    "sign_in",
    "signed_delivery",
    "unsigned_token",
]

ISSUER = "https://tests.clerk.accounts.dev"
ORIGIN = "http://localhost:3000"
KID = "ins_2testkey000000000000000000"
ADMIN_EMAIL = "ops@tests.example"
"""The platform admin's email (ADMIN_EMAILS of the test apps, and of every production environment the tests build)."""
RANDOM_ID = "00000000-0000-4000-8000-00000000beef"
"""A well-formed id no record has."""
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"iam-harness test webhook key!!!!").decode()
"""The signing secret of the test apps' Clerk webhook endpoint."""
APP_VARS = (
    "DATABASE_URL",
    "DATABASE_APP_ROLE",
    "CLERK_JWT_KEY",
    "CLERK_JWKS_URL",
    "CLERK_ISSUER",
    "CLERK_AUTHORIZED_PARTIES",
    "CLERK_WEBHOOK_SECRET",
    "CLERK_FRONTEND_API",
    "ADMIN_EMAILS",
    "APP_MODE",
    "APP_FAULTS",
    "APP_PROVISIONING_FAILS_FOR",
    "SMTP_HOST",
    "SMTP_PORT",
    "MAIL_FROM",
    "APP_BASE_URL",
    "INVITE_TTL_SECONDS",
    "DATABASE_POOL_SIZE",
    "APP_QUEUE_LIMIT",
    "APP_QUEUE_SECONDS",
)
"""The environment variables the app reads its settings from."""


def clerk_id(prefix: str) -> str:
    """A fresh id shaped like Clerk's (`user_2...`, `org_2...`)."""
    return f"{prefix}_2{secrets.token_hex(13)}"


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The PEM of a private key's public half."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass(frozen=True)
class ActiveOrg:
    """An organisation a session has active."""

    id: str = field(default_factory=lambda: clerk_id("org"))
    slug: str = "acme"


class Minter:
    """Mints Clerk v2 (or v1) session tokens with a test key."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key

    def claims(
        self,
        sub: str,
        /,
        *,
        org: ActiveOrg | None = None,
        v1: bool = False,
        now: int | None = None,
        ttl: int = 60,
        drop: tuple[str, ...] = (),
        **overrides: Any,
    ) -> dict[str, Any]:
        """The claims Clerk would put in a session token for `sub`, changed by `overrides` and `drop`."""
        iat = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "azp": ORIGIN,
            "exp": iat + ttl,
            "fva": [0, -1],
            "iat": iat,
            "iss": ISSUER,
            "nbf": iat - 10,
            "sid": clerk_id("sess"),
            "sub": sub,
        }
        if v1:
            if org is not None:
                claims.update(org_id=org.id, org_slug=org.slug, org_role="org:admin", org_permissions=[])
        else:
            claims.update(v=2, sts="active")
            if org is not None:
                claims["o"] = {"id": org.id, "slg": org.slug, "rol": "admin", "per": ""}
        claims.update(overrides)
        for name in drop:
            claims.pop(name, None)
        return claims

    def token(self, sub: str, /, *, headers: dict[str, Any] | None = None, **kwargs: Any) -> str:
        """A signed session token (RS256, the test key)."""
        return jwt.encode(
            self.claims(sub, **kwargs),
            self.key,
            algorithm="RS256",
            headers={"kid": KID, "typ": "JWT", **(headers or {})},
        )

    def headers(self, sub: str, /, **kwargs: Any) -> dict[str, str]:
        """`Authorization: Bearer` headers for `sub`."""
        return {"Authorization": f"Bearer {self.token(sub, **kwargs)}"}

    def cookies(self, sub: str, /, **kwargs: Any) -> dict[str, str]:
        """A signed-in browser's cookies for `sub`."""
        token = self.token(sub, **kwargs)
        iat = jwt.decode(token, options={"verify_signature": False})["iat"]
        return {"__session": token, "__client_uat": str(iat)}

    def browser(self, sub: str, /, **kwargs: Any) -> dict[str, str]:
        """A `Cookie` header carrying a signed-in browser's cookies for `sub`."""
        return cookie_header(self.cookies(sub, **kwargs))


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    """Cookies sent as a request header (the test client's cookie jar stays empty)."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def hs256_token(claims: dict[str, Any], secret: bytes) -> str:
    """A token signed with HMAC: what an attacker who holds only the public key would forge."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def unsigned_token(claims: dict[str, Any]) -> str:
    """A token with `alg: none`."""
    return jwt.encode(claims, key="", algorithm="none")


@dataclass(frozen=True)
class Account:
    """A signed-in caller of the test app."""

    sub: str
    org: ActiveOrg | None
    headers: dict[str, str]
    me: dict[str, Any]

    @property
    def user_id(self) -> str:
        """The app's id for this user."""
        return str(self.me["user"]["id"])

    @property
    def org_id(self) -> str:
        """The app's id for the active organisation."""
        return str(self.me["organisation"]["id"])


def sign_in(client: TestClient, minter: Minter, *, org: ActiveOrg | None = None, sub: str | None = None) -> Account:
    """A first (or later) login: GET /api/me, which must succeed."""
    sub = sub or clerk_id("user")
    headers = minter.headers(sub, org=org)
    got = client.get("/api/me", headers=headers)
    assert got.status_code == 200, got.text
    return Account(sub=sub, org=org, headers=headers, me=got.json())


def add_member(client: TestClient, admin: Account, minter: Minter, roles: list[str]) -> Account:
    """The admin adds a new user to their organisation with `roles`; returns that user signed in."""
    sub = clerk_id("user")
    added = client.post("/api/members", headers=admin.headers, json={"external_id": sub, "roles": roles})
    assert added.status_code == 201, added.text
    return sign_in(client, minter, org=admin.org, sub=sub)


def create_contact(client: TestClient, account: Account, name: str = "Ada Lovelace") -> dict[str, Any]:
    """A contact created by `account`, as the API returned it."""
    created = client.post(
        "/api/contacts", headers=account.headers, json={"name": name, "email": "ada@example.org", "notes": "n"}
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def create_deal(client: TestClient, account: Account, title: str = "Renewal", **fields: Any) -> dict[str, Any]:
    """A deal created by `account` (with `fields` such as `amount`, `contact_id`), as the API returned it."""
    created = client.post("/api/deals", headers=account.headers, json={"title": title, **fields})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def create_note(client: TestClient, account: Account, deal_id: str, body: str = "called them") -> dict[str, Any]:
    """A note on a deal, written by `account`, as the API returned it."""
    created = client.post(f"/api/deals/{deal_id}/notes", headers=account.headers, json={"body": body})
    assert created.status_code == 201, created.text
    note: dict[str, Any] = created.json()
    return note


Operation = tuple[str, str, dict[str, Any] | None]
"""A request a test sends: method, path and JSON body (or None)."""

ROLE_METHODS: list[tuple[str | None, set[str]]] = [
    (None, set()),
    ("Viewer", {"GET"}),
    ("Member", {"GET", "POST", "PATCH"}),
    ("Admin", {"GET", "POST", "PATCH", "DELETE"}),
]
"""The methods each built-in role (or none) may use on contacts, deals and notes."""


def every_operation(collection: str, record_id: str, create: dict[str, Any], change: dict[str, Any]) -> list[Operation]:
    """List and create on `collection`, then read, change and delete of `record_id` in it."""
    return [
        ("GET", collection, None),
        ("POST", collection, create),
        ("GET", f"{collection}/{record_id}", None),
        ("PATCH", f"{collection}/{record_id}", change),
        ("DELETE", f"{collection}/{record_id}", None),
    ]


def assert_role_gets_exactly(
    client: TestClient, user: Account, operations: list[Operation], allowed: set[str], resource: str
) -> None:
    """`user` succeeds at the operations whose method is `allowed`, and lacks a `resource` permission for the rest."""
    for method, path, body in operations:
        got = client.request(method, path, headers=user.headers, json=body)
        if method in allowed:
            assert got.status_code in (200, 201, 204), (method, path, got.text)
        else:
            assert got.status_code == 403, (method, path, got.text)
            assert got.json()["permission"].startswith(f"{resource}:")


def assert_hidden_like_missing(
    client: TestClient, caller: Account, operations: list[Operation], hidden_id: str
) -> None:
    """Each operation answers the caller the same 404 as it does with `hidden_id` swapped for an id no record has."""
    for method, path, body in operations:
        seen = client.request(method, path, headers=caller.headers, json=body)
        control = client.request(method, path.replace(hidden_id, RANDOM_ID), headers=caller.headers, json=body)
        assert (seen.status_code, seen.json()) == (404, {"error": "not_found"}), (method, path)
        assert (control.status_code, control.json()) == (404, {"error": "not_found"}), (method, path)


def app_environment(**values: str) -> dict[str, str]:
    """This process's environment without the app's settings, and then `values`."""
    env = {k: v for k, v in os.environ.items() if k not in APP_VARS}
    env.update(values)
    return env


def run_app(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m app COMMAND` run to its end in `env`, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "app", command], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def signed_delivery(
    event_type: str,
    data: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    msg_id: str | None = None,
    at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A Clerk event as svix delivers it: the envelope's bytes and the svix headers signing them (now, or `at`)."""
    msg_id = msg_id or f"msg_{secrets.token_hex(13)}"
    at = at or datetime.now(tz=UTC)
    envelope = {
        "data": data,
        "object": "event",
        "type": event_type,
        "timestamp": int(at.timestamp() * 1000),
        "instance_id": "ins_2testinstance0000000000000",
    }
    body = json.dumps(envelope, separators=(",", ":"))
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
    }
    return body.encode(), headers
