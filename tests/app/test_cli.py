"""`python -m app`: migrate, serve over real TCP, and refuse bad settings with exit status 2."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.migrations import HEAD
from tests.app.support import ADMIN_EMAIL, ISSUER, Minter, app_environment, clerk_id, public_pem, run_app

pytestmark = pytest.mark.e2e  # the app's command line in subprocesses, over real TCP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_migrates_and_answers(database_url: str, signing_key: rsa.RSAPrivateKey, minter: Minter) -> None:
    port = free_port()
    env = app_environment(
        DATABASE_URL=database_url, CLERK_JWT_KEY=public_pem(signing_key), CLERK_ISSUER=ISSUER, ADMIN_EMAILS=ADMIN_EMAIL
    )
    command = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer in time"
                time.sleep(0.1)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        me = httpx.get(f"{base}/api/me", headers=minter.headers(clerk_id("user")), timeout=5)
        assert me.status_code == 200 and me.json()["roles"] == ["Admin"]
    finally:
        server.terminate()
        out, err = server.communicate(timeout=15)
    assert out == ""  # every log line goes to standard error
    assert '"GET /health HTTP/1.1" 200' in err and "Traceback" not in err


def test_migrate_only_migrates(database_url: str, signing_key: rsa.RSAPrivateKey) -> None:
    env = app_environment(
        DATABASE_URL=database_url, CLERK_JWT_KEY=public_pem(signing_key), CLERK_ISSUER=ISSUER, ADMIN_EMAILS=ADMIN_EMAIL
    )
    for _ in range(2):  # a second run finds nothing to do
        done = run_app("migrate", env)
        assert done.returncode == 0, done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert conn.execute("SELECT count(*) FROM governance_roles").fetchone() == (4,)


def test_missing_settings_exit_2_naming_the_variable() -> None:
    done = run_app(
        "migrate",
        app_environment(DATABASE_URL="postgresql://app@localhost/app", CLERK_ISSUER=ISSUER, ADMIN_EMAILS=ADMIN_EMAIL),
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: CLERK_JWT_KEY or CLERK_JWKS_URL is required (the PEM of Clerk's public key, or the URL of its JWKS)"
    )


def assert_fails_in_one_line(done: subprocess.CompletedProcess[str], status: int, start: str) -> None:
    """The command exited with `status`, its last line of standard error starting `start`, and no traceback."""
    assert done.returncode == status
    assert done.stderr.splitlines()[-1].startswith(start)
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_one_line_not_a_traceback(signing_key: rsa.RSAPrivateKey) -> None:
    env = app_environment(
        DATABASE_URL=f"postgresql://app@127.0.0.1:{free_port()}/app",
        CLERK_JWT_KEY=public_pem(signing_key),
        CLERK_ISSUER=ISSUER,
        ADMIN_EMAILS=ADMIN_EMAIL,
    )
    assert_fails_in_one_line(run_app("migrate", env), 3, "error: cannot migrate the database at DATABASE_URL:")


def test_an_app_role_that_bypasses_row_security_exits_3(database_url: str, signing_key: rsa.RSAPrivateKey) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row is not None
    if not row[1]:
        pytest.skip("needs a superuser DATABASE_URL to name a role that bypasses row-level security")
    env = app_environment(
        DATABASE_URL=database_url,
        DATABASE_APP_ROLE=str(row[0]),
        CLERK_JWT_KEY=public_pem(signing_key),
        CLERK_ISSUER=ISSUER,
        ADMIN_EMAILS=ADMIN_EMAIL,
    )
    assert_fails_in_one_line(run_app("migrate", env), 3, "error: DATABASE_APP_ROLE: the app role")
