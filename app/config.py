"""Settings, read from the environment, that refuse every unsafe combination before the app starts.

Each refusal is one line naming the variable at fault, so that an operator (or the harness starting the
app) can fix it without reading a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.auth.keys import MIN_KEY_BITS
from app.faults import Fault, parse_faults

__all__ = ["DEFAULT_APP_ROLE", "AppMode", "Settings", "SettingsError", "describe", "load_settings"]

DEFAULT_APP_ROLE = "iam_app"
# A plain lower-case SQL identifier: the name is spliced into SET ROLE and GRANT statements.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Svix (which signs Clerk's webhooks) generates 24-byte secrets and accepts no shorter custom one.
MIN_WEBHOOK_SECRET_BYTES = 24
_KEY_SOURCES = "the PEM of Clerk's public key, or the URL of its JWKS"


class AppMode(StrEnum):
    """How the app runs: `production` refuses every fault switch; `test` accepts them."""

    PRODUCTION = "production"
    TEST = "test"


class SettingsError(Exception):
    """A refused configuration; the message is one line and names the variable."""


class Settings(BaseSettings):
    """Everything the app needs from its environment (`DATABASE_URL`, `CLERK_*`, `APP_*`, `SMTP_*`, ...)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_file=None)

    database_url: str = Field(repr=False)
    """PostgreSQL URL; `postgresql://` is accepted and normalised to SQLAlchemy's `postgresql+psycopg://`."""

    database_app_role: str = DEFAULT_APP_ROLE
    """The role the app serves as (`SET ROLE` on every connection): no superuser, no BYPASSRLS, DML only."""

    clerk_jwt_key: str | None = Field(default=None, repr=False)
    """PEM of the RSA public key that signs session tokens (networkless); exactly one of this and `clerk_jwks_url`."""

    clerk_jwks_url: str | None = Field(default=None, repr=False)
    """http(s) URL of the instance's JWKS, fetched and cached; exactly one of this and `clerk_jwt_key`."""

    clerk_issuer: str
    """The exact `iss` every session token must carry."""

    clerk_authorized_parties: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins accepted as `azp`; empty means `azp` is not checked (as in Clerk's SDKs)."""

    clerk_webhook_secret: str | None = Field(default=None, repr=False)
    """Signing secret of the Clerk webhook endpoint (`whsec_<base64>`); unset, `POST /webhooks/clerk` answers 404."""

    clerk_frontend_api: str | None = None
    """URL (or bare host) of the instance's frontend API, where pages send a browser for Clerk's handshake;
    unset, the host of `clerk_issuer` (Clerk's `iss` is its frontend API URL)."""

    admin_emails: Annotated[frozenset[str], NoDecode] = frozenset()
    """Emails (lower case) of the platform admins, matched against the session token's `email` claim; required in
    production, where a platform nobody may administer is a misconfiguration, not a safe default."""

    app_mode: AppMode = AppMode.PRODUCTION
    """`production` (the default) or `test`."""

    app_faults: Annotated[frozenset[Fault], NoDecode] = frozenset()
    """Fault switches; only accepted with `app_mode=test`."""

    app_provisioning_fails_for: Annotated[frozenset[str], NoDecode] = frozenset()
    """Clerk user ids whose provisioning fails server-side, as if the database broke (only with `app_mode=test`):
    how the error page and the API's 500 are reproduced for one user."""

    smtp_host: str = "127.0.0.1"
    """Host of the SMTP server invite mail is handed to (plain SMTP, no authentication: a local relay)."""

    smtp_port: int = Field(default=25, ge=1, le=65535)
    """Port of that SMTP server."""

    mail_from: str = "invites@iam-harness.example"
    """The `From` address of invite mail."""

    app_base_url: str = "http://127.0.0.1:8000"
    """The origin invite links point at (`{app_base_url}/invites/accept?token=...`); https unless test mode or loopback,
    since whoever reads a link in transit can accept the invite."""

    invite_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    """How long an invite may be accepted, counted from its creation (7 days by default)."""

    database_pool_size: int = Field(default=10, ge=1, le=200)
    """Pooled database connections kept open; as many again may be opened under load. A request holds one from its
    caller's identity to its answer, so at most twice this many requests are served at once (see `app.admission`)."""

    app_queue_limit: int = Field(default=256, ge=0, le=100_000)
    """Requests that may wait for a free connection beyond those being served; more are shed at once (503)."""

    app_queue_seconds: float = Field(default=5.0, gt=0, le=60)
    """How long a request may wait for a free connection before it is shed (503 with `Retry-After`)."""

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme, sep, rest = value.strip().partition("://")
        if not sep or scheme not in {"postgresql", "postgres", "postgresql+psycopg"} or not rest:
            raise ValueError("must be a postgresql:// or postgresql+psycopg:// URL")
        return f"postgresql+psycopg://{rest}"

    @field_validator("database_app_role")
    @classmethod
    def _database_app_role(cls, value: str) -> str:
        role = value.strip()
        if not _ROLE_NAME.match(role):
            raise ValueError(f"must be a lower-case SQL identifier (letters, digits, _), got {role!r}")
        return role

    @field_validator("clerk_jwt_key")
    @classmethod
    def _clerk_jwt_key(cls, value: str | None) -> str | None:
        # Environment files often carry a PEM on one line with literal "\n"; accept that spelling too.
        pem = (value or "").strip().replace("\\n", "\n")
        if not pem:
            return None  # blank is unset: the key may come from CLERK_JWKS_URL instead
        try:
            key = serialization.load_pem_public_key(pem.encode())
        except ValueError:
            raise ValueError("is not a PEM public key") from None
        if not isinstance(key, RSAPublicKey):
            raise ValueError("must be an RSA public key (Clerk signs with RS256)")
        if key.key_size < MIN_KEY_BITS:
            raise ValueError(f"is a {key.key_size}-bit RSA key; Clerk keys have {MIN_KEY_BITS} bits or more")
        return pem

    @field_validator("clerk_jwks_url")
    @classmethod
    def _clerk_jwks_url(cls, value: str | None) -> str | None:
        url = (value or "").strip()
        if not url:
            return None  # blank is unset: the key may come from CLERK_JWT_KEY instead
        # The URL may carry credentials: it is named by its scheme and shape only, never echoed.
        if not _is_http_url(url):
            raise ValueError("must be an http(s) URL, e.g. https://example.clerk.accounts.dev/.well-known/jwks.json")
        return url

    @field_validator("clerk_issuer")
    @classmethod
    def _clerk_issuer(cls, value: str) -> str:
        issuer = value.strip()
        if not issuer:
            raise ValueError("is required (the `iss` of your Clerk instance, e.g. https://example.clerk.accounts.dev)")
        if not issuer.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, got {issuer!r}")
        return issuer

    @field_validator("clerk_authorized_parties", mode="before")
    @classmethod
    def _authorized_parties(cls, value: Any) -> tuple[str, ...]:
        parties = _listed(value)
        for party in parties:
            if not party.startswith(("https://", "http://")):
                raise ValueError(f"{party!r} is not an origin (scheme://host[:port])")
        return parties

    @field_validator("clerk_webhook_secret")
    @classmethod
    def _clerk_webhook_secret(cls, value: str | None) -> str | None:
        secret = (value or "").strip()
        if not secret:
            return None  # blank is unset: webhooks are not accepted
        # The secret is never echoed: the message names its expected shape only.
        prefix, _, encoded = secret.partition("_")
        if prefix != "whsec" or not encoded:
            raise ValueError("must look like whsec_<base64> (the endpoint's signing secret in Clerk's dashboard)")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise ValueError("must look like whsec_<base64>: the part after whsec_ is not base64") from None
        if len(key) < MIN_WEBHOOK_SECRET_BYTES:
            raise ValueError(f"is too short: Clerk's signing secrets carry {MIN_WEBHOOK_SECRET_BYTES} bytes or more")
        return secret

    @field_validator("clerk_frontend_api")
    @classmethod
    def _clerk_frontend_api(cls, value: str | None) -> str | None:
        url = (value or "").strip()
        if not url:
            return None  # blank is unset: the issuer's host is the frontend API
        if "://" not in url:
            url = f"https://{url}"  # Clerk names its frontend API by host alone (`clerk.example.com`)
        if not _is_http_url(url):
            raise ValueError("must be the URL of the frontend API, e.g. https://clerk.example.com")
        return url

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _admin_emails(cls, value: Any) -> frozenset[str]:
        emails = _listed(value)
        for email in emails:
            local, at, domain = email.partition("@")
            if not at or not local or not domain:
                raise ValueError(f"{email!r} is not an email address")
        return frozenset(email.lower() for email in emails)

    @field_validator("app_provisioning_fails_for", mode="before")
    @classmethod
    def _provisioning_fails_for(cls, value: Any) -> frozenset[str]:
        return frozenset(_listed(value))

    @field_validator("smtp_host")
    @classmethod
    def _smtp_host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(c.isspace() for c in host) or "/" in host:
            raise ValueError("must be a host name or IP address, e.g. 127.0.0.1")
        return host

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        address = value.strip()
        local, at, domain = address.partition("@")
        # A line break here would let the setting add headers to every invite mail.
        if not at or not local or not domain or any(c.isspace() for c in address):
            raise ValueError(f"{address!r} is not an email address")
        return address

    @field_validator("app_base_url")
    @classmethod
    def _app_base_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if not _is_http_url(url) or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError("must be an origin (scheme://host[:port]), e.g. https://app.example.com")
        return url

    @field_validator("app_mode", mode="before")
    @classmethod
    def _app_mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in {mode.value for mode in AppMode}:
                raise ValueError(f"must be production or test, got {value!r}")
        return value

    @field_validator("app_faults", mode="before")
    @classmethod
    def _app_faults(cls, value: Any) -> frozenset[Fault]:
        return parse_faults(value if isinstance(value, str) else list(value or ()))

    @model_validator(mode="after")
    def _one_key_source(self) -> Settings:
        # Two sources would leave it unclear which keys are trusted; none leaves no token verifiable.
        if self.clerk_jwt_key is None and self.clerk_jwks_url is None:
            raise ValueError(f"CLERK_JWT_KEY or CLERK_JWKS_URL is required ({_KEY_SOURCES})")
        if self.clerk_jwt_key is not None and self.clerk_jwks_url is not None:
            raise ValueError(f"CLERK_JWT_KEY and CLERK_JWKS_URL are both set; give exactly one ({_KEY_SOURCES})")
        return self

    @model_validator(mode="after")
    def _keys_over_https(self) -> Settings:
        # Keys fetched in clear text can be swapped by anyone on the path, and then any session verifies:
        # plain http is for a loopback stand-in of the issuer, or test mode, only.
        url = urlsplit(self.clerk_jwks_url or "")
        if url.scheme == "http" and self.app_mode is not AppMode.TEST and not _is_loopback(url.hostname):
            raise ValueError("CLERK_JWKS_URL must be https unless APP_MODE=test or its host is loopback")
        return self

    @model_validator(mode="after")
    def _invite_links_over_https(self) -> Settings:
        # An invite link carries the token that accepts it: in clear text, anyone on the path may join instead.
        url = urlsplit(self.app_base_url)
        if url.scheme == "http" and self.app_mode is not AppMode.TEST and not _is_loopback(url.hostname):
            raise ValueError("APP_BASE_URL must be https unless APP_MODE=test or its host is loopback")
        return self

    @model_validator(mode="after")
    def _faults_only_in_test_mode(self) -> Settings:
        # A fault switch re-opens a security hole on purpose; it must never reach a production deploy,
        # so the app refuses to start rather than run with one.
        if self.app_faults and self.app_mode is not AppMode.TEST:
            raise ValueError("APP_FAULTS is refused unless APP_MODE=test")
        if self.app_provisioning_fails_for and self.app_mode is not AppMode.TEST:
            raise ValueError("APP_PROVISIONING_FAILS_FOR is refused unless APP_MODE=test")
        return self

    @model_validator(mode="after")
    def _platform_admins_in_production(self) -> Settings:
        # Without it the platform admin page is closed to all, or (the historical bug) opened to all:
        # production refuses to start rather than guess. Checked last, so that other refusals come first.
        if not self.admin_emails and self.app_mode is AppMode.PRODUCTION:
            raise ValueError(
                "ADMIN_EMAILS is required when APP_MODE=production (comma-separated emails of the platform admins)"
            )
        return self

    def has(self, fault: Fault) -> bool:
        """Whether `fault` is switched on."""
        return fault in self.app_faults

    @property
    def frontend_api_host(self) -> str:
        """The host (and port, if any) of Clerk's frontend API: `CLERK_FRONTEND_API`'s, else the issuer's."""
        return urlsplit(self.clerk_frontend_api or self.clerk_issuer).netloc.rpartition("@")[2]


def _listed(value: Any) -> tuple[str, ...]:
    """A comma-separated setting (or an iterable) as its non-blank items, trimmed."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(str(item).strip() for item in items if str(item).strip())


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port out of range raises here rather than at the first fetch
    except ValueError:
        return False
    return parts.scheme in {"https", "http"} and bool(parts.hostname)


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (keyword overrides win); raise SettingsError with a one-line message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """A pydantic validation error as one line naming each variable at fault."""
    parts = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = error.get("loc") or ()
        if not loc:
            parts.append(message)
            continue
        variable = str(loc[0]).upper()
        if error["type"] == "missing":
            parts.append(f"{variable} is required")
        else:
            parts.append(f"{variable}: {message}")
    return "; ".join(parts).replace("\n", " ")
