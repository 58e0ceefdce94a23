"""Settings, read from the environment, that refuse every unsafe combination before the app starts.

Each refusal is one line naming the variable at fault, so that an operator (or the harness starting the
app) can fix it without reading a stack trace.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.faults import Fault, parse_faults

__all__ = ["DEFAULT_APP_ROLE", "AppMode", "Settings", "SettingsError", "describe", "load_settings"]

DEFAULT_APP_ROLE = "iam_app"
# A plain lower-case SQL identifier: the name is spliced into SET ROLE and GRANT statements.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Clerk signs session tokens with RSA-2048 keys; a smaller key is a misconfiguration, never a real instance.
MIN_KEY_BITS = 2048


class AppMode(StrEnum):
    """How the app runs: `production` refuses every fault switch; `test` accepts them."""

    PRODUCTION = "production"
    TEST = "test"


class SettingsError(Exception):
    """A refused configuration; the message is one line and names the variable."""


class Settings(BaseSettings):
    """Everything the app needs from its environment (`DATABASE_URL`, `CLERK_*`, `APP_*`)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_file=None)

    database_url: str = Field(repr=False)
    """PostgreSQL URL; `postgresql://` is accepted and normalised to SQLAlchemy's `postgresql+psycopg://`."""

    database_app_role: str = DEFAULT_APP_ROLE
    """The role the app serves as (`SET ROLE` on every connection): no superuser, no BYPASSRLS, DML only."""

    clerk_jwt_key: str = Field(repr=False)
    """PEM of the RSA public key that signs session tokens."""

    clerk_issuer: str
    """The exact `iss` every session token must carry."""

    clerk_authorized_parties: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins accepted as `azp`; empty means `azp` is not checked (as in Clerk's SDKs)."""

    app_mode: AppMode = AppMode.PRODUCTION
    """`production` (the default) or `test`."""

    app_faults: Annotated[frozenset[Fault], NoDecode] = frozenset()
    """Fault switches; only accepted with `app_mode=test`."""

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
    def _clerk_jwt_key(cls, value: str) -> str:
        # Environment files often carry a PEM on one line with literal "\n"; accept that spelling too.
        pem = value.strip().replace("\\n", "\n")
        if not pem:
            raise ValueError("is required (the PEM of Clerk's RSA public key)")
        try:
            key = serialization.load_pem_public_key(pem.encode())
        except ValueError:
            raise ValueError("is not a PEM public key") from None
        if not isinstance(key, RSAPublicKey):
            raise ValueError("must be an RSA public key (Clerk signs with RS256)")
        if key.key_size < MIN_KEY_BITS:
            raise ValueError(f"is a {key.key_size}-bit RSA key; Clerk keys have {MIN_KEY_BITS} bits or more")
        return pem

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
        items = value.split(",") if isinstance(value, str) else list(value or ())
        parties = tuple(str(item).strip() for item in items if str(item).strip())
        for party in parties:
            if not party.startswith(("https://", "http://")):
                raise ValueError(f"{party!r} is not an origin (scheme://host[:port])")
        return parties

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
    def _faults_only_in_test_mode(self) -> Settings:
        # A fault switch re-opens a security hole on purpose; it must never reach a production deploy,
        # so the app refuses to start rather than run with one.
        if self.app_faults and self.app_mode is not AppMode.TEST:
            raise ValueError("APP_FAULTS is refused unless APP_MODE=test")
        return self

    def has(self, fault: Fault) -> bool:
        """Whether `fault` is switched on."""
        return fault in self.app_faults


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
