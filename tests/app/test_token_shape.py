"""Layer 1, the shape of a token: claims of the wrong JSON type and oversized tokens are refused before use."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth.token import MAX_TOKEN_LENGTH, InvalidToken, TokenVerifier
from tests.app.support import ISSUER, ORIGIN, Minter, public_pem


@pytest.fixture(scope="module")
def verifier(signing_key: rsa.RSAPrivateKey) -> TokenVerifier:
    return TokenVerifier(public_key_pem=public_pem(signing_key), issuer=ISSUER, authorized_parties=(ORIGIN,))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_numeric_date_as_string_is_refused(verifier: TokenVerifier, minter: Minter, claim: str) -> None:
    now = int(time.time())
    value = {"exp": now + 60, "nbf": now - 10, "iat": now}[claim]
    overrides: dict[str, Any] = {claim: str(value)}
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(minter.token("user_2abc", **overrides))
    assert refused.value.reason in {f"invalid_{claim}", "malformed"}


def test_numeric_date_as_boolean_is_refused(verifier: TokenVerifier, minter: Minter) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(minter.token("user_2abc", nbf=True))


def test_oversized_token_is_refused_before_parsing(verifier: TokenVerifier, minter: Minter) -> None:
    token = minter.token("user_2abc", pad="A" * MAX_TOKEN_LENGTH)
    assert len(token) > MAX_TOKEN_LENGTH
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(token)
    assert refused.value.reason == "too_large"


def test_ordinary_token_fits(verifier: TokenVerifier, minter: Minter) -> None:
    assert verifier.verify(minter.token("user_2abc")).subject == "user_2abc"


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("header", "damage"),
    [
        ({"alg": "HS256", "typ": "JWT"}, "payload"),
        ({"alg": "RS256", "typ": "at+jwt"}, "signature"),
        ({"alg": "RS256", "cat": "cl_B7d4PD333AAA"}, "payload"),
        ({"alg": "RS256", "kid": 7}, "none"),
    ],
    ids=["bad_alg", "bad_typ", "machine_cat", "numeric_kid"],
)
def test_a_token_that_does_not_parse_is_malformed_whatever_its_header(
    verifier: TokenVerifier, minter: Minter, header: dict[str, Any], damage: str
) -> None:
    """The header is read ahead of the rest, but a token that does not parse as a whole is refused as such."""
    _, payload, signature = minter.token("user_2abc").split(".")
    payload += "!" if damage == "payload" else ""
    signature += "!" if damage == "signature" else ""
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(f"{_segment(header)}.{payload}.{signature}")
    assert refused.value.reason == "malformed"
