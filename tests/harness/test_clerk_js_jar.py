"""Clerk's own `@clerk/backend` (`authenticateRequest`, the decision Clerk's middleware makes) signs in every valid
cookie jar the harness builds, for development and production keys, and sends the broken ones to the handshake;
it and Clerk's Python SDK derive the same permissions from the harness's v2 tokens. All offline, in one node
process (`tests/clerk_js`, installed by scripts/setup)."""

from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from clerk_backend_api.security import authenticate_request
from clerk_backend_api.security.types import AuthenticateRequestOptions, AuthStatus

from harness.clerk.issuer import ActiveOrg, Issuer, SessionToken, cookie_suffix

HERE = Path(__file__).resolve().parents[1] / "clerk_js"
APP = "http://127.0.0.1:3000"
DEVELOPMENT = "https://iam-harness-12.clerk.accounts.dev"
PRODUCTION = "https://clerk.iam-harness.example"
PERMISSIONS = ("org:contacts:read", "org:contacts:manage", "org:deals:read")
ORG = ActiveOrg("org_2jar00000000000000000000000", "acme", "admin", PERMISSIONS)


def _authenticate(cases: list[tuple[Issuer, dict[str, str]]]) -> list[dict[str, Any]]:
    if shutil.which("node") is None or not (HERE / "node_modules" / "@clerk" / "backend").is_dir():
        pytest.fail("Node and @clerk/backend are needed: run scripts/setup (npm ci in tests/clerk_js)")
    given = [
        {
            "url": APP + "/dashboard",
            "cookies": cookies,
            "jwtKey": issuer.public_pem,
            "publishableKey": issuer.publishable_key,
            "authorizedParties": [APP],
        }
        for issuer, cookies in cases
    ]
    done = subprocess.run(
        ["node", str(HERE / "authenticate.mjs")], input=json.dumps(given), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def _issuer(url: str) -> Issuer:
    return Issuer(issuer_url=url, authorized_party=APP, rng=random.Random(url))


def _only(token: SessionToken, suffixed: bool) -> dict[str, str]:
    """The jar with only its suffixed names, or only its plain ones (Clerk reads either)."""
    suffix = cookie_suffix(token.publishable_key or "")
    return {k: v for k, v in token.cookies.items() if k.endswith(f"_{suffix}") == suffixed}


def test_every_valid_jar_the_harness_builds_is_signed_in() -> None:
    cases, shapes = [], []
    for url, version, org, category, names in itertools.product(
        (DEVELOPMENT, PRODUCTION), (1, 2), (ORG, None), (False, True), ("both", "suffixed", "plain")
    ):
        issuer = _issuer(url)
        token = issuer.mint("user_2jar000000000000000000000", org=org, version=version, category=category)
        jar = token.cookies if names == "both" else _only(token, names == "suffixed")
        cases.append((issuer, jar))
        shapes.append((url, version, org is not None, category, names))
    for shape, state in zip(shapes, _authenticate(cases), strict=True):
        assert state["status"] == "signed-in", (shape, state)
        assert state["auth"]["userId"] == "user_2jar000000000000000000000"
        if shape[2]:
            assert state["auth"]["orgId"] == ORG.id and state["auth"]["orgRole"] == "org:admin", (shape, state)
            assert sorted(state["auth"]["orgPermissions"]) == sorted(PERMISSIONS), (shape, state)
    assert len(shapes) == 48


def test_the_jars_behind_clerks_loop_reports_go_to_the_handshake() -> None:
    dev = _issuer(DEVELOPMENT)
    host = DEVELOPMENT.removeprefix("https://")
    fresh = dev.mint("user_2jar000000000000000000000", org=ORG)
    no_dev_browser = {k: v for k, v in fresh.cookies.items() if not k.startswith("__clerk_db_jwt")}
    expired = dev.mint("user_2jar000000000000000000000", now=int(time.time()) - 600).cookies
    newer_uat = {**fresh.cookies, **{k: str(int(time.time()) + 30) for k in fresh.cookies if "client_uat" in k}}
    states = _authenticate([(dev, no_dev_browser), (dev, expired), (dev, newer_uat)])
    for state, reason in zip(
        states, ("dev-browser-missing", "session-token-expired", "session-token-iat-before-client-uat"), strict=True
    ):
        assert state["status"] == "handshake", state
        assert state["reason"].startswith(reason), state
        assert state["location"].startswith(f"https://{host}/v1/client/handshake?redirect_url="), state


@pytest.mark.parametrize("url", [DEVELOPMENT, PRODUCTION])
def test_clerks_python_sdk_derives_the_same_permissions(url: str) -> None:
    issuer = _issuer(url)
    token = issuer.mint("user_2jar000000000000000000000", org=ORG)
    cookie = "; ".join(f"{k}={v}" for k, v in token.cookies.items())
    request = httpx.Request("GET", APP + "/dashboard", headers={"cookie": cookie})
    state = authenticate_request(
        request, AuthenticateRequestOptions(jwt_key=issuer.public_pem, authorized_parties=[APP])
    )
    assert state.status == AuthStatus.SIGNED_IN, state.reason
    assert state.payload is not None and sorted(state.payload["org_permissions"]) == sorted(PERMISSIONS)
    (js,) = _authenticate([(issuer, token.cookies)])
    assert sorted(js["auth"]["orgPermissions"]) == sorted(state.payload["org_permissions"])
