"""A small Clerk-guarded API served through `httpx.MockTransport`: it verifies session tokens as Clerk's SDKs do
(and stricter, as an app should), with switches that bring back the verification bugs C1 must catch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from harness.clerk.issuer import Issuer
from harness.config.model import TargetConfig, load_config
from harness.target.mailbox import Mailbox

SESSION_CATEGORY = "cl_B7d4PD111AAA"
MAX_TOKEN = 8 * 1024


@dataclass
class FakeClerkTarget:
    """Implements the `Target` protocol for the checks: an in-process API and the config that describes it."""

    issuer: Issuer
    config: TargetConfig
    flaws: frozenset[str] = frozenset()
    base_url: str = "http://clerk-app.test"
    database_url: str | None = None
    jwks_url: str | None = None
    webhook_secret: str | None = None
    mailbox: Mailbox | None = None
    requests: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return "an in-process Clerk-guarded API"

    def log_offset(self) -> int:
        return 0

    def server_errors(self, since: int) -> list[str]:
        return []

    def server_log(self, since: int) -> str | None:
        return None

    def transport(self) -> httpx.MockTransport:
        """The API, as a transport."""
        return httpx.MockTransport(self.handle)

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid session token, or None."""
        if len(token) > MAX_TOKEN:
            return None
        try:
            header = jwt.get_unverified_header(token)
            if "alg_none" in self.flaws and str(header.get("alg")).lower() == "none":
                return dict(jwt.decode(token, options={"verify_signature": False}))
            if header.get("typ") != "JWT" or header.get("kid") != self.issuer.kid:
                return None
            if header.get("cat", SESSION_CATEGORY) != SESSION_CATEGORY or set(header) - {"alg", "kid", "typ", "cat"}:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                self.issuer.keys[-1][1].public_key(),
                algorithms=["RS256"],
                issuer=self.issuer.issuer_url,
                leeway=5,
                options={"require": ["exp", "iat", "nbf", "sub", "iss", "sid"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if any(not isinstance(claims[c], int) or isinstance(claims[c], bool) for c in ("exp", "iat", "nbf")):
            return None
        if claims.get("azp") != self.issuer.authorized_party or claims.get("sts") == "pending":
            return None
        if not str(claims["sub"]).startswith("user_"):
            return None
        return claims

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if request.url.path == "/api/me":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            claims = self.verify(token)
            if claims is None:
                return httpx.Response(401, json={"detail": "sign in"}, headers={"WWW-Authenticate": "Bearer"})
            return httpx.Response(200, json={"user": {"id": claims["sub"]}})
        if request.url.path == "/dashboard":
            cookies = dict(
                part.strip().split("=", 1) for part in request.headers.get("Cookie", "").split(";") if "=" in part
            )
            if self.verify(cookies.get("__session", "")) is None:
                return httpx.Response(303, headers={"Location": "/sign-in"})
            return httpx.Response(200, text="<main data-testid=dashboard></main>")
        return httpx.Response(404)


def fake_clerk_target(tmp_path: Path, issuer: Issuer, flaws: frozenset[str] = frozenset()) -> FakeClerkTarget:
    """The fake, described by a config of the reference app's shape."""
    path = tmp_path / "clerk-app.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return FakeClerkTarget(issuer, load_config(path), flaws)


CONFIG = """
[target]
schema = "/openapi.json"
health = "/health"
issuer = "https://iam-harness-12.clerk.accounts.dev"

[pages]
dashboard = "/dashboard"
sign_in = "/sign-in"
dashboard_landmark = "[data-testid=dashboard]"
denied_landmark = "[data-testid=access-denied]"

[identity]
me = "/api/me"
user_id = "user.id"
org_id = "organisation.id"
org_name = "organisation.name"
roles = "roles"
personal_org_name = "Personal Workspace"

[roles]
admin = "Admin"
read_only = ["Viewer"]

[members]
add = "POST /api/members"
body = { external_id = "{sub}", roles = "{roles}" }

[[canaries]]
key = "contacts"
param = "contact_id"
create = "POST /api/contacts"
body = { name = "{marker}" }
id = "id"
read = "GET /api/contacts/{id}"
"""
