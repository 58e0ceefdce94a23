"""Layer 1, the shape of a token: claims of the wrong JSON type and oversized tokens are refused before use."""

from __future__ import annotations

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
