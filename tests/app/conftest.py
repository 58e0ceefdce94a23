"""Fixtures of the app's tests: a signing key, a token minter, and the app on a migrated database.

Most tests isolate themselves by signing in fresh users and organisations, so they share one migrated
database and one app per set of faults. A test that needs a deploy of its own (a fault that
changes the migration, whole-table counts) asks `make_client(..., fresh=True)` or uses `database_url` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import AppMode, Settings
from app.db import Database
from app.faults import Fault, parse_faults
from app.main import create_app
from app.migrations import upgrade
from harness.target.postgres import fresh_database
from tests.app.support import (
    ADMIN_EMAIL,
    ISSUER,
    ORIGIN,
    WEBHOOK_SECRET,
    Account,
    ActiveOrg,
    Minter,
    TestClient,
    public_pem,
    sign_in,
)

AppFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    """The RSA-2048 key the tests sign session tokens with (the app trusts its public half)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def minter(signing_key: rsa.RSAPrivateKey) -> Minter:
    """Mints Clerk-shaped session tokens."""
    return Minter(signing_key)


def settings_for(database_url: str, key: rsa.RSAPrivateKey, **overrides: Any) -> Settings:
    """Test-mode settings for a database, trusting `key` and accepting webhooks; keyword arguments override."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "clerk_jwt_key": public_pem(key),
        "clerk_issuer": ISSUER,
        "clerk_authorized_parties": ORIGIN,
        "clerk_webhook_secret": WEBHOOK_SECRET,
        "admin_emails": ADMIN_EMAIL,
        "app_mode": AppMode.TEST,
        "app_faults": "",
    }
    values.update(overrides)
    return Settings(**values)


# Faults that change the migration itself: an app with one of them needs a deploy of its own.
MIGRATION_FAULTS = frozenset({Fault.SKIP_ROLE_SEED, Fault.NO_RLS, Fault.PROVISION_RACE, Fault.WEBHOOK_NOT_IDEMPOTENT})


def _open(settings: Settings) -> TestClient:
    upgrade(settings.database_url, app_role=settings.database_app_role, faults=settings.app_faults)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.__enter__()
    return client


@pytest.fixture(scope="session")
def shared_database_url(postgres_server: str) -> Iterator[str]:
    """One database for the tests that isolate themselves by organisation (migrated by the first app)."""
    with fresh_database(postgres_server, prefix="iam_test_shared") as url:
        yield url


@pytest.fixture(scope="session")
def _shared_clients(shared_database_url: str, signing_key: rsa.RSAPrivateKey) -> Iterator[dict[str, TestClient]]:
    clients: dict[str, TestClient] = {}
    yield clients
    for client in clients.values():
        client.__exit__(None, None, None)


@pytest.fixture
def make_settings(signing_key: rsa.RSAPrivateKey, database_url: str) -> Callable[..., Settings]:
    """Settings for this test's own fresh database."""
    return lambda **overrides: settings_for(database_url, signing_key, **overrides)


@pytest.fixture
def make_client(
    request: pytest.FixtureRequest,
    _shared_clients: dict[str, TestClient],
    shared_database_url: str,
    signing_key: rsa.RSAPrivateKey,
) -> Iterator[AppFactory]:
    """The app with `faults`: on the shared database, or on a fresh one of its own with `fresh=True`."""
    opened: list[TestClient] = []

    def build(faults: str = "", *, fresh: bool = False, **overrides: Any) -> TestClient:
        key = ",".join(sorted(parse_faults(faults)))
        if fresh or overrides or MIGRATION_FAULTS & parse_faults(faults):
            database_url = request.getfixturevalue("database_url")
            client = _open(settings_for(database_url, signing_key, app_faults=faults, **overrides))
            opened.append(client)
            return client
        if key not in _shared_clients:
            _shared_clients[key] = _open(settings_for(shared_database_url, signing_key, app_faults=faults))
        shared = _shared_clients[key]
        shared.cookies.clear()  # what pages set (a handshake's cookies) stays with the test that made them
        return shared

    yield build
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    """The healthy app on the shared database."""
    return make_client()


@pytest.fixture
def org1(client: TestClient, minter: Minter) -> Account:
    """The first admin of a new organisation, signed in: the caller of most tests."""
    return sign_in(client, minter, org=ActiveOrg(slug="org-one"))


@pytest.fixture
def org2(client: TestClient, minter: Minter) -> Account:
    """The first admin of another new organisation, signed in: the one whose records org1 must never reach."""
    return sign_in(client, minter, org=ActiveOrg(slug="org-two"))


@pytest.fixture
def database(make_settings: Callable[..., Settings]) -> Iterator[Database]:
    """The app's database layer on this test's own fresh, migrated database (room for racing requests)."""
    settings = make_settings()
    upgrade(settings.database_url)
    db = Database(settings.database_url, app_role=settings.database_app_role, pool_size=8)
    yield db
    db.dispose()
