"""Keys by URL (`CLERK_JWKS_URL`): fetched from a real loopback JWKS server, cached for its max-age, refetched
for an unknown kid at most once a minute, and never a 5xx when the issuer is down.

Time is a test clock the key cache reads, so a minute passes without sleeping.
"""

from __future__ import annotations

import json
import logging
import random
import string
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.auth.keys import JwksKeys, usable_keys
from app.auth.token import InvalidToken, TokenVerifier
from tests.app.support import ISSUER, KID, ORIGIN, Minter, TestClient, public_pem

AppFactory = Callable[..., TestClient]
SEED = 20261126
NEW_KID = "ins_2testkey000000000000000001"


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds


def jwk(kid: str | None, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The public JWK of `key`, as Clerk publishes it."""
    found: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    found |= {"use": "sig", "alg": "RS256"}
    if kid is not None:
        found["kid"] = kid
    return found


class JwksServer(ThreadingHTTPServer):
    """A loopback JWKS: serves `keys` (or `document`) with `cache_control`, or fails with `status`; counts GETs."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.document: dict[str, Any] | None = None
        self.cache_control: str | None = "public, max-age=300"
        self.status = 200
        self.delay = 0.0
        self.hits = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The JWKS URL."""
        return f"http://127.0.0.1:{self.server_address[1]}/.well-known/jwks.json"

    def hit(self) -> None:
        """Count one GET."""
        with self._lock:
            self.hits += 1

    def body(self) -> dict[str, Any]:
        """The JWKS document served now."""
        return self.document or {"keys": [jwk(kid, key) for kid, key in self.keys.items()]}


class _Handler(BaseHTTPRequestHandler):
    server: JwksServer

    def do_GET(self) -> None:
        self.server.hit()
        time.sleep(self.server.delay)
        if self.server.status != 200:
            self.send_error(self.server.status)
            return
        body = json.dumps(self.server.body()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.server.cache_control is not None:
            self.send_header("Cache-Control", self.server.cache_control)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    """A JWKS server on loopback publishing the test signing key under KID."""
    server = JwksServer()
    server.keys[KID] = signing_key
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def down_url() -> str:
    """The URL of a JWKS server that has stopped: its port refuses connections."""
    server = JwksServer()
    url = server.url
    server.server_close()
    return url


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    """A second key: the issuer's next one, or an attacker's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def verifier(url: str, clock: Clock, *, fault: bool = False) -> TokenVerifier:
    """A verifier trusting the JWKS at `url`, on the test clock; `fault` switches on the refetch bug."""
    keys = JwksKeys(url, clock=clock, refetch_every_unknown_kid=fault)
    return TokenVerifier(keys=keys, issuer=ISSUER, authorized_parties=(ORIGIN,))


def outcome(verifier: TokenVerifier, token: str) -> str:
    """`ok`, or the reason the token was refused."""
    try:
        verifier.verify(token)
    except InvalidToken as refused:
        return refused.reason
    return "ok"


def forged(minter: Minter, key: rsa.RSAPrivateKey, count: int) -> list[str]:
    """`count` tokens signed by `key` under kids nobody issued (seeded)."""
    rng = random.Random(SEED)
    alphabet = string.ascii_letters + string.digits
    kids = ["ins_" + "".join(rng.choice(alphabet) for _ in range(27)) for _ in range(count)]
    claims = minter.claims("user_2abc")
    return [jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"}) for kid in kids]


def test_a_valid_token_is_accepted_and_the_keys_are_cached(jwks: JwksServer, clock: Clock, minter: Minter) -> None:
    checker = verifier(jwks.url, clock)
    assert checker.verify(minter.token("user_2abc")).subject == "user_2abc"
    for _ in range(20):
        assert outcome(checker, minter.token("user_2abc")) == "ok"
    assert jwks.hits == 1


def test_a_token_without_kid_needs_a_jwks_of_one_key(
    jwks: JwksServer, clock: Clock, minter: Minter, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    no_kid = jwt.encode(minter.claims("user_2abc"), signing_key, algorithm="RS256", headers={"typ": "JWT"})
    assert outcome(verifier(jwks.url, clock), no_kid) == "ok"
    jwks.keys[NEW_KID] = other_key
    assert outcome(verifier(jwks.url, clock), no_kid) == "missing_kid"


def test_a_rotated_key_is_picked_up_with_exactly_one_refetch(
    jwks: JwksServer, clock: Clock, minter: Minter, other_key: rsa.RSAPrivateKey
) -> None:
    checker = verifier(jwks.url, clock)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    jwks.keys[NEW_KID] = other_key
    rotated = Minter(other_key).token("user_2abc", headers={"kid": NEW_KID})
    # Within a minute of the last fetch, an unknown kid is presumed forged: nothing is fetched.
    clock.advance(30)
    assert outcome(checker, rotated) == "unknown_kid"
    assert jwks.hits == 1
    clock.advance(31)
    assert outcome(checker, rotated) == "ok"
    assert jwks.hits == 2
    assert outcome(checker, rotated) == "ok"
    assert outcome(checker, minter.token("user_2abc")) == "ok"  # the old key stays while published
    assert jwks.hits == 2


def test_a_flood_of_unknown_kids_costs_one_fetch_a_minute(
    jwks: JwksServer, clock: Clock, minter: Minter, other_key: rsa.RSAPrivateKey
) -> None:
    checker = verifier(jwks.url, clock)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    clock.advance(61)
    jwks.delay = 0.05  # a slow issuer: the flood's threads pile up on the one fetch
    with ThreadPoolExecutor(max_workers=8) as pool:
        reasons = list(pool.map(lambda token: outcome(checker, token), forged(minter, other_key, 50)))
    assert reasons == ["unknown_kid"] * 50
    assert jwks.hits == 2
    clock.advance(59)
    assert outcome(checker, forged(minter, other_key, 1)[0]) == "unknown_kid"
    assert jwks.hits == 2
    clock.advance(2)
    assert outcome(checker, forged(minter, other_key, 1)[0]) == "unknown_kid"
    assert jwks.hits == 3


def test_concurrent_requests_on_a_cold_cache_share_one_fetch(jwks: JwksServer, clock: Clock, minter: Minter) -> None:
    checker = verifier(jwks.url, clock)
    jwks.delay = 0.2
    tokens = [minter.token("user_2abc") for _ in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(lambda token: outcome(checker, token), tokens)) == ["ok"] * 16
    assert jwks.hits == 1


def test_with_the_fault_every_unknown_kid_fetches(
    jwks: JwksServer, clock: Clock, minter: Minter, other_key: rsa.RSAPrivateKey
) -> None:
    checker = verifier(jwks.url, clock, fault=True)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    assert [outcome(checker, token) for token in forged(minter, other_key, 20)] == ["unknown_kid"] * 20
    assert jwks.hits == 21


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        ("public, max-age=120", 120),
        (None, 300),
        ("max-age=0", 60),
        ("no-store", 60),
        ("public, max-age=86400", 3600),
        ("max-age=soon", 300),
    ],
)
def test_the_keys_are_kept_for_the_bounded_max_age(
    jwks: JwksServer, clock: Clock, minter: Minter, cache_control: str | None, seconds: int
) -> None:
    jwks.cache_control = cache_control
    checker = verifier(jwks.url, clock)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    clock.advance(seconds - 1)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    assert jwks.hits == 1
    clock.advance(2)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    assert jwks.hits == 2


@pytest.mark.parametrize("failure", ["closed_port", "status_500", "status_404"])
def test_an_unreachable_issuer_refuses_with_keys_unavailable(
    jwks: JwksServer,
    down_url: str,
    clock: Clock,
    minter: Minter,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    url = down_url if failure == "closed_port" else jwks.url
    jwks.status = 500 if failure == "status_500" else 404
    with caplog.at_level(logging.WARNING, logger="app.keys"):
        assert outcome(verifier(url, clock), minter.token("user_2abc")) == "keys_unavailable"
    assert any(url in record.getMessage() for record in caplog.records)  # the server log says where and why


def test_after_a_failed_fetch_the_next_waits_then_recovers(jwks: JwksServer, clock: Clock, minter: Minter) -> None:
    checker = verifier(jwks.url, clock)
    jwks.status = 503
    assert outcome(checker, minter.token("user_2abc")) == "keys_unavailable"
    jwks.status = 200
    clock.advance(5)
    assert outcome(checker, minter.token("user_2abc")) == "keys_unavailable"
    assert jwks.hits == 1
    clock.advance(6)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    assert jwks.hits == 2


def test_expired_keys_are_not_used_when_the_refetch_fails(jwks: JwksServer, clock: Clock, minter: Minter) -> None:
    checker = verifier(jwks.url, clock)
    assert outcome(checker, minter.token("user_2abc")) == "ok"
    jwks.status = 500
    clock.advance(301)
    assert outcome(checker, minter.token("user_2abc")) == "keys_unavailable"


def test_a_token_that_does_not_parse_fetches_nothing(jwks: JwksServer, clock: Clock, minter: Minter) -> None:
    checker = verifier(jwks.url, clock)
    token = minter.token("user_2abc")
    head, payload, signature = token.split(".")
    assert outcome(checker, "not.a.jwt") == "malformed"
    assert outcome(checker, f"{head}.{payload}!.{signature}") == "malformed"
    assert outcome(checker, jwt.encode(minter.claims("user_2abc"), key="", algorithm="none")) == "algorithm_not_allowed"
    assert jwks.hits == 0


def test_may_fetch_says_when_verifying_would_reach_the_network(
    jwks: JwksServer, clock: Clock, minter: Minter, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    """The app verifies on its event loop unless this says a fetch could happen; then on a worker thread."""
    checker = verifier(jwks.url, clock)
    token = minter.token("user_2abc")
    assert checker.may_fetch(token)  # a cold cache
    assert outcome(checker, token) == "ok"
    assert not checker.may_fetch(token)  # its kid's key is at hand now
    assert checker.may_fetch(Minter(other_key).token("user_2abc", headers={"kid": NEW_KID}))
    assert not checker.may_fetch("not.a.jwt")  # nothing is fetched for it either
    clock.advance(3600)
    assert checker.may_fetch(token)  # the cached keys expired
    pem_only = TokenVerifier(public_key_pem=public_pem(signing_key), issuer=ISSUER, authorized_parties=(ORIGIN,))
    assert not pem_only.may_fetch(token)
    assert jwks.hits == 1


def _unusable_entries(signing_key: rsa.RSAPrivateKey) -> list[Any]:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    curve = ec.generate_private_key(ec.SECP256R1())
    return [
        jwk("small", small),
        {**jwk("enc", signing_key), "use": "enc"},
        {**jwk("rs512", signing_key), "alg": "RS512"},
        {**jwt.algorithms.RSAAlgorithm.to_jwk(signing_key, as_dict=True), "kid": "private"},
        {**jwt.algorithms.ECAlgorithm.to_jwk(curve.public_key(), as_dict=True), "kid": "ec"},
        {"kty": "RSA", "kid": "broken", "n": "AQAB", "e": "!!"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        "not a key",
    ]


def test_only_rsa_signature_keys_for_rs256_of_2048_bits_are_taken(signing_key: rsa.RSAPrivateKey) -> None:
    bare = {name: value for name, value in jwk(KID, signing_key).items() if name not in {"use", "alg"}}
    document = {"keys": [*_unusable_entries(signing_key), bare]}
    assert [kid for kid, _ in usable_keys(document)] == [KID]
    with pytest.raises(ValueError, match="no RSA key"):
        usable_keys({"keys": _unusable_entries(signing_key)})


def test_a_jwks_without_a_usable_key_is_keys_unavailable(
    jwks: JwksServer, clock: Clock, minter: Minter, signing_key: rsa.RSAPrivateKey
) -> None:
    jwks.document = {"keys": _unusable_entries(signing_key)}
    assert outcome(verifier(jwks.url, clock), minter.token("user_2abc")) == "keys_unavailable"


# --- through the app --------------------------------------------------------------------------------------


def _jwks_app(make_client: AppFactory, url: str, faults: str = "") -> TestClient:
    return make_client(faults, clerk_jwt_key="", clerk_jwks_url=url)


def test_the_app_verifies_by_jwks_url(
    make_client: AppFactory, jwks: JwksServer, minter: Minter, other_key: rsa.RSAPrivateKey
) -> None:
    client = _jwks_app(make_client, jwks.url)
    assert client.get("/api/me", headers=minter.headers("user_2jwks")).status_code == 200
    for token in forged(minter, other_key, 5):
        got = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 401
        assert got.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert got.json() == {"error": "invalid_token", "reason": "unknown_kid"}
    assert jwks.hits == 1


def test_the_app_with_the_fault_fetches_for_every_forged_kid(
    make_client: AppFactory, jwks: JwksServer, minter: Minter, other_key: rsa.RSAPrivateKey
) -> None:
    client = _jwks_app(make_client, jwks.url, "jwks_refetch_every_unknown_kid")
    assert client.get("/api/me", headers=minter.headers("user_2jwks")).status_code == 200
    for token in forged(minter, other_key, 5):
        assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert jwks.hits == 6


def test_the_app_answers_401_not_5xx_when_the_issuer_is_down(
    make_client: AppFactory, down_url: str, minter: Minter
) -> None:
    client = _jwks_app(make_client, down_url)
    got = client.get("/api/me", headers=minter.headers("user_2jwks"))
    assert got.status_code == 401
    assert got.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert got.json() == {"error": "invalid_token", "reason": "keys_unavailable"}
    assert client.get("/dashboard", headers=minter.browser("user_2jwks"), follow_redirects=False).status_code == 303
