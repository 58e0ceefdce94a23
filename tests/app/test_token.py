"""Layer 1: every valid Clerk token shape is accepted; every refused one is a 401 that says why."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth.token import InvalidToken, TokenVerifier
from tests.app.support import (
    ISSUER,
    ORIGIN,
    ActiveOrg,
    Minter,
    TestClient,
    clerk_id,
    cookie_header,
    hs256_token,
    public_pem,
    unsigned_token,
)


@pytest.fixture(scope="module")
def verifier(signing_key: rsa.RSAPrivateKey) -> TokenVerifier:
    return TokenVerifier(public_key_pem=public_pem(signing_key), issuer=ISSUER, authorized_parties=(ORIGIN,))


def test_v2_token_with_org_is_read(verifier: TokenVerifier, minter: Minter) -> None:
    org = ActiveOrg(slug="acme")
    claims = verifier.verify(minter.token("user_2abc", org=org))
    assert claims.subject == "user_2abc"
    assert claims.org is not None and (claims.org.external_id, claims.org.slug) == (org.id, "acme")


def test_v1_org_claims_are_read(verifier: TokenVerifier, minter: Minter) -> None:
    org = ActiveOrg(slug="legacy")
    claims = verifier.verify(minter.token("user_2abc", org=org, v1=True))
    assert claims.org is not None and claims.org.external_id == org.id and claims.org.slug == "legacy"


def test_token_without_org_has_none(verifier: TokenVerifier, minter: Minter) -> None:
    assert verifier.verify(minter.token("user_2abc")).org is None


def test_clock_skew_within_leeway_is_tolerated(verifier: TokenVerifier, minter: Minter) -> None:
    now = int(time.time())
    assert verifier.verify(minter.token("user_2abc", now=now - 62, ttl=60)).subject == "user_2abc"


def test_azp_is_not_checked_without_authorized_parties(signing_key: rsa.RSAPrivateKey, minter: Minter) -> None:
    lenient = TokenVerifier(public_key_pem=public_pem(signing_key), issuer=ISSUER)
    assert lenient.verify(minter.token("user_2abc", azp="https://elsewhere.example")).subject == "user_2abc"


def _refusals(minter: Minter, signing_key: rsa.RSAPrivateKey) -> dict[str, tuple[str, str]]:
    """Each attack -> (token, the reason the app must give)."""
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    valid = minter.claims("user_2abc")
    return {
        "expired": (minter.token("user_2abc", now=now - 120, ttl=60), "expired"),
        "wrong_issuer": (minter.token("user_2abc", iss="https://evil.clerk.accounts.dev"), "wrong_issuer"),
        "issuer_prefix": (minter.token("user_2abc", iss=ISSUER + ".evil.example"), "wrong_issuer"),
        "missing_issuer": (minter.token("user_2abc", drop=("iss",)), "missing_iss"),
        "wrong_azp": (minter.token("user_2abc", azp="https://evil.example"), "unauthorized_party"),
        "missing_azp": (minter.token("user_2abc", drop=("azp",)), "missing_azp"),
        "hs256_with_public_key": (hs256_token(valid, public_pem(signing_key).encode()), "algorithm_not_allowed"),
        "alg_none": (unsigned_token(valid), "algorithm_not_allowed"),
        "other_key": (Minter(other_key).token("user_2abc"), "bad_signature"),
        "missing_sub": (minter.token("user_2abc", drop=("sub",)), "missing_sub"),
        "empty_sub": (minter.token(""), "invalid_subject"),
        "numeric_sub": (minter.token("user_2abc", sub=42), "malformed"),
        "missing_exp": (minter.token("user_2abc", drop=("exp",)), "missing_exp"),
        "missing_iat": (minter.token("user_2abc", drop=("iat",)), "missing_iat"),
        "future_nbf": (minter.token("user_2abc", nbf=now + 60), "not_yet_valid"),
        "future_iat": (minter.token("user_2abc", iat=now + 60, exp=now + 120), "not_yet_valid"),
        "pending_session": (minter.token("user_2abc", sts="pending"), "session_pending"),
        "machine_token": (minter.token("user_2abc", headers={"cat": "cl_B7d4PD333AAA"}), "not_a_session_token"),
        "wrong_typ": (minter.token("user_2abc", headers={"typ": "at+jwt"}), "wrong_type"),
        "audience_token": (minter.token("user_2abc", aud="https://api.example.com"), "audience_not_allowed"),
        "bad_org_claim": (minter.token("user_2abc", o="org_2abc"), "invalid_org_claim"),
        # JSON's "\ud800", a lone surrogate: a Python string no database, log or page can encode
        "surrogate_sub": (minter.token("user_2\ud800"), "invalid_subject"),
        "surrogate_org": (
            minter.token("user_2abc", o={"id": "org_2\ud800", "rol": "admin", "slg": "x"}),
            "invalid_org_claim",
        ),
        "garbage": ("not.a.jwt", "malformed"),
    }


@pytest.fixture(scope="module")
def refusals(minter: Minter, signing_key: rsa.RSAPrivateKey) -> dict[str, tuple[str, str]]:
    return _refusals(minter, signing_key)


ATTACKS = [
    "expired",
    "wrong_issuer",
    "issuer_prefix",
    "missing_issuer",
    "wrong_azp",
    "missing_azp",
    "hs256_with_public_key",
    "alg_none",
    "other_key",
    "missing_sub",
    "empty_sub",
    "numeric_sub",
    "missing_exp",
    "missing_iat",
    "future_nbf",
    "future_iat",
    "pending_session",
    "surrogate_sub",
    "surrogate_org",
    "machine_token",
    "wrong_typ",
    "audience_token",
    "bad_org_claim",
    "garbage",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_verifier_refuses(verifier: TokenVerifier, refusals: dict[str, tuple[str, str]], attack: str) -> None:
    token, reason = refusals[attack]
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert caught.value.reason == reason


def test_every_refusal_is_a_401_over_http(client: TestClient, refusals: dict[str, tuple[str, str]]) -> None:
    answers: dict[str, Any] = {}
    for attack in ATTACKS:
        token, reason = refusals[attack]
        got = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        answers[attack] = (got.status_code, got.json(), got.headers.get("www-authenticate"))
        assert answers[attack] == (401, {"error": "invalid_token", "reason": reason}, 'Bearer error="invalid_token"')


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "missing_token"), ({"Authorization": "Basic dXNlcjpwdw=="}, "malformed_authorization")],
)
def test_no_bearer_token_is_a_401(client: TestClient, headers: dict[str, str], reason: str) -> None:
    got = client.get("/api/contacts", headers=headers)
    assert got.status_code == 401
    assert got.json() == {"error": "invalid_token", "reason": reason}


def test_token_role_claim_grants_nothing(client: TestClient, minter: Minter) -> None:
    """A token claiming org admin for an org the app knows does not make its bearer a member."""
    org = ActiveOrg()
    owner = minter.headers(clerk_id("user"), org=org)
    assert client.get("/api/me", headers=owner).status_code == 200
    intruder = minter.headers(clerk_id("user"), org=org)  # its `o.rol` says admin
    got = client.get("/api/contacts", headers=intruder)
    assert got.status_code == 403
    assert got.json() == {"error": "forbidden", "reason": "not_a_member"}


def test_a_lone_surrogate_in_a_session_cookie_is_no_server_error(
    client: TestClient, refusals: dict[str, tuple[str, str]]
) -> None:
    for attack in ("surrogate_sub", "surrogate_org"):
        token, _ = refusals[attack]
        iat = jwt.decode(token, options={"verify_signature": False})["iat"]
        got = client.get(
            "/dashboard", headers=cookie_header({"__session": token, "__client_uat": str(iat)}), follow_redirects=False
        )
        assert got.status_code < 500, (attack, got.status_code, got.text[:200])
