"""Fixtures of the app's tests: a signing key, a token minter, and the app on a fresh, migrated database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import AppMode, Settings
from app.faults import parse_faults
from app.main import create_app
from app.migrations import upgrade
from tests.app.support import ISSUER, ORIGIN, Minter, TestClient, public_pem

AppFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    """The RSA-2048 key the tests sign session tokens with (the app trusts its public half)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def minter(signing_key: rsa.RSAPrivateKey) -> Minter:
    """Mints Clerk-shaped session tokens."""
    return Minter(signing_key)


@pytest.fixture
def make_settings(signing_key: rsa.RSAPrivateKey, database_url: str) -> Callable[..., Settings]:
    """Settings for the test database; keyword arguments override (e.g. `app_faults="default_allow"`)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "clerk_jwt_key": public_pem(signing_key),
            "clerk_issuer": ISSUER,
            "clerk_authorized_parties": ORIGIN,
            "app_mode": AppMode.TEST,
            "app_faults": "",
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[AppFactory]:
    """Builds the app with `faults` (migrating the database first, with those faults) and a client for it."""
    opened: list[TestClient] = []

    def build(faults: str = "", **overrides: Any) -> TestClient:
        settings = make_settings(app_faults=faults, **overrides)
        upgrade(settings.database_url, faults=parse_faults(faults))
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    """The healthy app."""
    return make_client()
