"""The tools check C1 is built from: the counting JWKS server, signed webhooks, the database trace search,
and the forgeries made from a target's own login tokens."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from svix.webhooks import Webhook, WebhookVerificationError

from harness.clerk import jwks
from harness.clerk.attacks import WEAK_SECRETS, crack, login_forgeries, parse_jwt
from harness.clerk.issuer import Issuer
from harness.clerk.webhooks import ClerkWebhooks, new_secret
from harness.config.model import WebhooksConfig, load_config
from harness.config.reference import default_config_path
from harness.database import traces
from harness.target.running import RemoteTarget

ISS = "https://iam-harness-12.clerk.accounts.dev"


def _issuer() -> Issuer:
    return Issuer(issuer_url=ISS, authorized_party="http://127.0.0.1", rng=random.Random(3))


def test_jwks_server_counts_fetches_and_shows_rotations() -> None:
    issuer = _issuer()
    with jwks.serving(issuer) as server:
        first = httpx.get(server.url)
        assert first.headers["cache-control"] == f"public, max-age={jwks.JWKS_MAX_AGE}"
        assert [key["kid"] for key in first.json()["keys"]] == [issuer.kid]
        old = issuer.kid
        issuer.rotate()
        assert [key["kid"] for key in httpx.get(server.url).json()["keys"]] == [old, issuer.kid]
        assert httpx.get(server.url.replace(jwks.JWKS_PATH, "/other")).status_code == 404
        assert jwks.fetches(server.url) == 2  # reading the count is not a fetch; a 404 is not either


@pytest.mark.e2e  # the CLI in subprocesses
def test_issuer_serve_command_serves_the_stored_keys(tmp_path: Path) -> None:
    env = {"IAM_HARNESS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "issuer", "serve"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split()[1]
        keys = httpx.get(url, timeout=5).json()["keys"]
        pem = subprocess.run(
            [sys.executable, "-m", "harness", "issuer", "jwks"], env=env, capture_output=True, text=True, check=True
        )
        assert keys == json.loads(pem.stdout)["keys"]
    finally:
        process.terminate()
        process.wait(10)


def test_webhooks_are_signed_as_svix_verifies_them() -> None:
    secret = new_secret()
    seen: list[tuple[bytes, dict[str, str]]] = []

    class Receive(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers.items())))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        sender = ClerkWebhooks(base, "/webhooks/clerk", secret, "ins_test")
        answer = sender.user_deleted("user_1")
        sender.user_deleted("user_1", at=datetime.now(tz=UTC) - timedelta(minutes=10))
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 204
    body, headers = seen[0]
    Webhook(secret).verify(body, headers)  # raises unless signed with the endpoint's secret
    event = json.loads(body)
    assert event["type"] == "user.deleted" and event["object"] == "event" and event["instance_id"] == "ins_test"
    assert event["data"] == {"object": "user", "id": "user_1", "deleted": True}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(*seen[1])  # signed as sent 10 minutes ago: beyond svix's 5-minute tolerance


def test_traces_finds_a_value_in_any_text_column(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int, external text, meta jsonb, tags text[])")
        conn.execute("INSERT INTO accounts VALUES (1, 'clerk:user_abc', '{\"org\": \"org_xyz\"}', ARRAY['t_1', 't_%'])")
    assert traces.mentions(database_url, ["user_abc"]) == ["accounts.external"]
    assert traces.mentions(database_url, ["org_xyz"]) == ["accounts.meta"]
    assert traces.mentions(database_url, ["t_1"]) == ["accounts.tags"]
    assert traces.mentions(database_url, ["user_abd", "org_xy_"]) == []  # _ and % match themselves only
    assert traces.mentions(database_url, []) == []


def _token(secret: str) -> str:
    return jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, secret.ljust(32, "!"), algorithm="HS256")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # weak secrets on purpose
def test_crack_finds_a_dictionary_secret_offline() -> None:
    weak = jwt.encode({"sub": "alice"}, "your-256-bit-secret", algorithm="HS256")
    assert crack(weak) == "your-256-bit-secret"
    # Words of zxcvbn's lists, as they are and with the usual affixes: none of them among the tutorial defaults.
    for secret in ("dragon", "between", "shadow123", "jwt_monkey", "mastersecret", "Sunshine"):
        assert secret not in WEAK_SECRETS
        assert crack(jwt.encode({"sub": "alice"}, secret, algorithm="HS384")) == secret, secret
    assert crack(_token("a long and random secret nobody guesses")) is None
    assert crack("not a token") is None


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_login_forgeries_resign_the_given_claims_every_way() -> None:
    header, claims = parse_jwt(_token("x")) or ({}, {})
    forged = login_forgeries(header, {**claims, "sub": "bob"})
    names = [probe.attack for probe in forged]
    assert names[:2] == ["alg_none", "empty_secret"] and names[-1] == "foreign_key"
    assert len(names) == 3 + len(WEAK_SECRETS)
    for probe in forged:
        _, body = parse_jwt(probe.token) or ({}, {})
        assert body["sub"] == "bob", probe.attack
    assert jwt.decode(forged[2].token, WEAK_SECRETS[0], algorithms=["HS256"])["sub"] == "bob"
    assert parse_jwt(forged[0].token) is not None and forged[0].token.endswith(".")


@pytest.mark.parametrize("value", ["", "a.b", "a.b.c.d", "!!.!!.x", "eyJ4IjoxfQ.eyJ4IjoxfQ.x"])
def test_parse_jwt_refuses_what_is_not_a_jws(value: str) -> None:
    assert parse_jwt(value) is None  # the last one is JSON, but its header names no alg


def test_a_remote_targets_webhook_secret_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = WebhooksConfig(clerk="/hooks", secret_env="SHOP_HOOK_SECRET")
    config = load_config(default_config_path()).model_copy(update={"webhooks": hooks})
    monkeypatch.setenv("SHOP_HOOK_SECRET", "whsec_c2VjcmV0")
    assert RemoteTarget("http://127.0.0.1:9", config).webhook_secret == "whsec_c2VjcmV0"
    monkeypatch.delenv("SHOP_HOOK_SECRET")
    assert RemoteTarget("http://127.0.0.1:9", config).webhook_secret is None
    assert RemoteTarget("http://127.0.0.1:9", config.model_copy(update={"webhooks": None})).webhook_secret is None
