"""The verification fault switches: each lets exactly its forged token through, which the healthy verifier refuses."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth.token import InvalidToken, TokenVerifier
from app.faults import Fault
from tests.app.conftest import AppFactory
from tests.app.support import (
    ISSUER,
    ORIGIN,
    ActiveOrg,
    Minter,
    add_member,
    hs256_token,
    public_pem,
    sign_in,
    unsigned_token,
)

Forge = Callable[[Minter, rsa.RSAPrivateKey], str]


def _jwk_signed(minter: Minter, _: rsa.RSAPrivateKey) -> str:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    return jwt.encode(minter.claims("user_2abc"), attacker, algorithm="RS256", headers={"jwk": jwk})


CASES: list[tuple[Fault, Forge]] = [
    (Fault.ACCEPT_ALG_NONE, lambda m, _: unsigned_token(m.claims("user_2abc"))),
    (Fault.HS256_KEY_CONFUSION, lambda m, key: hs256_token(m.claims("user_2abc"), public_pem(key).encode())),
    (Fault.SKIP_AZP_CHECK, lambda m, _: m.token("user_2abc", azp="https://evil.example")),
    (Fault.EXP_NOT_REQUIRED, lambda m, _: m.token("user_2abc", drop=("exp",))),
    (Fault.TRUST_JWK_HEADER, _jwk_signed),
    (Fault.IGNORE_PENDING_STATUS, lambda m, _: m.token("user_2abc", sts="pending")),
]


def _verifier(key: rsa.RSAPrivateKey, faults: frozenset[Fault]) -> TokenVerifier:
    return TokenVerifier(public_key_pem=public_pem(key), issuer=ISSUER, authorized_parties=(ORIGIN,), faults=faults)


@pytest.mark.parametrize(("fault", "forge"), CASES, ids=[f.value for f, _ in CASES])
def test_fault_lets_its_forgery_through(
    signing_key: rsa.RSAPrivateKey, minter: Minter, fault: Fault, forge: Forge
) -> None:
    token = forge(minter, signing_key)
    with pytest.raises(InvalidToken):
        _verifier(signing_key, frozenset()).verify(token)
    assert _verifier(signing_key, frozenset({fault})).verify(token).subject == "user_2abc"


@pytest.mark.parametrize(("fault", "forge"), CASES, ids=[f.value for f, _ in CASES])
def test_fault_lets_only_its_forgery_through(
    signing_key: rsa.RSAPrivateKey, minter: Minter, fault: Fault, forge: Forge
) -> None:
    others = [f for f, _ in CASES if f is not fault]
    with pytest.raises(InvalidToken):
        _verifier(signing_key, frozenset(others)).verify(forge(minter, signing_key))


def _identity_exists(database_url: str, sub: str) -> bool:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT 1 FROM sys_external_identity WHERE external_id = %s", (sub,)).fetchone() is not None


@pytest.mark.parametrize("fault", ["", "provision_before_verify"])
def test_a_refused_token_provisions_nothing_unless_the_fault_is_on(
    make_client: AppFactory, minter: Minter, shared_database_url: str, fault: str
) -> None:
    sub = f"user_2forged{'fault' if fault else 'healthy'}{'x' * 10}"
    forged = unsigned_token(minter.claims(sub))
    got = make_client(fault).get("/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert got.status_code == 401, got.text  # refused either way
    assert _identity_exists(shared_database_url, sub) is bool(fault)


@pytest.mark.parametrize("fault", ["", "refusals_not_logged"])
def test_a_refusal_is_logged_unless_the_fault_is_on(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    with caplog.at_level(logging.INFO, logger="app.errors"):
        got = make_client(fault).get("/api/me", headers={"Authorization": "Bearer not.a.token"})
    assert got.status_code == 401
    request_id = got.headers["x-request-id"]
    logged = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert logged == ([] if fault else [f"token refused reason=malformed path=/api/me request_id={request_id}"])


@pytest.mark.parametrize("v1", [False, True], ids=["v2", "v1"])
@pytest.mark.parametrize("fault", ["", "role_claim_trusted"])
def test_the_tokens_role_claim_grants_nothing_unless_the_fault_is_on(
    make_client: AppFactory, minter: Minter, fault: str, v1: bool
) -> None:
    client = make_client(fault)
    owner = sign_in(client, minter, org=ActiveOrg())
    viewer = add_member(client, owner, minter, roles=["Viewer"])
    claiming_admin = minter.headers(viewer.sub, org=viewer.org, v1=v1)  # the test minter's sessions say admin
    created = client.post("/api/contacts", headers=claiming_admin, json={"name": "Eve", "email": "e@example.org"})
    assert created.status_code == (201 if fault else 403), created.text
    roles = client.get("/api/me", headers=claiming_admin).json()["roles"]
    assert roles == (["Viewer", "Admin"] if fault else ["Viewer"])
