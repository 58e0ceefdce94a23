"""Clerk's official Python SDK accepts the harness's tokens, offline: v1 and v2, by header and by cookie."""

from __future__ import annotations

import random

import httpx
import pytest
from clerk_backend_api.security import authenticate_request
from clerk_backend_api.security.types import AuthenticateRequestOptions, AuthStatus

from harness.clerk.issuer import ActiveOrg, Issuer

APP = "http://127.0.0.1:3000"
PERMISSIONS = ("org:contacts:read", "org:contacts:manage", "org:deals:read")


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(issuer_url="https://iam-harness-12.clerk.accounts.dev", authorized_party=APP, rng=random.Random(3))


def _request(issuer: Issuer, version: int, delivery: str) -> httpx.Request:
    org = ActiveOrg("org_2abc", "acme", "admin", PERMISSIONS)
    token = issuer.mint("user_2abc", org=org, version=version, category=True)
    if delivery == "header":
        return httpx.Request("GET", APP + "/api/me", headers=token.headers)
    cookie = "; ".join(f"{name}={value}" for name, value in token.cookies.items())
    return httpx.Request("GET", APP + "/dashboard", headers={"cookie": cookie})


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("delivery", ["header", "cookie"])
def test_official_sdk_accepts_harness_tokens(issuer: Issuer, version: int, delivery: str) -> None:
    options = AuthenticateRequestOptions(jwt_key=issuer.public_pem, authorized_parties=[APP])
    state = authenticate_request(_request(issuer, version, delivery), options)
    assert state.status == AuthStatus.SIGNED_IN, state.reason
    assert state.payload is not None
    assert state.payload["sub"] == "user_2abc"
    assert state.payload["org_id"] == "org_2abc"
    assert state.payload["org_role"] in {"admin", "org:admin"}
    assert sorted(state.payload["org_permissions"]) == sorted(PERMISSIONS)  # v2: rebuilt from per, fea and fpm


def test_official_sdk_refuses_a_foreign_party(issuer: Issuer) -> None:
    options = AuthenticateRequestOptions(jwt_key=issuer.public_pem, authorized_parties=["https://elsewhere.example"])
    assert authenticate_request(_request(issuer, 2, "header"), options).status == AuthStatus.SIGNED_OUT


def test_official_sdk_refuses_another_key(issuer: Issuer) -> None:
    other = Issuer(issuer_url=issuer.issuer_url, authorized_party=APP, rng=random.Random(4))
    options = AuthenticateRequestOptions(jwt_key=other.public_pem, authorized_parties=[APP])
    assert authenticate_request(_request(issuer, 2, "header"), options).status == AuthStatus.SIGNED_OUT
