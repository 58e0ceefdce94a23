"""A practice target on Clerk's own code: a Node server whose pages `@clerk/backend`'s `authenticateRequest` guards
(tests/clerk_js/server.mjs), driven in Chromium through the frontend API stand-in. The secure build loads for the
owner, shows the denied page to a member without the permission and refreshes through the handshake; its two
switches give the harness's named loop verdicts: `denied_loops` (the denied page sends to sign-in after 400 ms,
which sends a signed-in browser back) and `handshake_loop` (a server clock two minutes ahead, so every token,
the handshake's fresh ones too, is expired on arrival, and a proxy that strips Clerk's redirect-count cookie)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from harness.browser.driver import Landmarks, browser, visit
from harness.browser.model import LoopKind, Verdict, Visit
from harness.clerk import frontend
from harness.clerk.frontend import CLIENT_COOKIE, Client, FrontendApi
from harness.clerk.issuer import ActiveOrg, Issuer, SessionToken
from tests.targets.serve import free_port, wait_until_healthy

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).resolve().parents[1] / "clerk_js" / "server.mjs"
ISSUER = "https://clerk-node-12.clerk.accounts.dev"
OWNER = ActiveOrg("org_2node0000000000000000000000", "node", "admin", ("org:dashboard:view",))
MEMBER = ActiveOrg("org_2node0000000000000000000000", "node", "member", ())
LANDMARKS = Landmarks(
    ("dashboard", "[data-testid=dashboard]"), {"access-denied": "[data-testid=access-denied]"}, "/sign-in"
)


@contextmanager
def clerk_node(issuer: Issuer, flaws: str = "") -> Iterator[str]:
    """The Node target on a free loopback port, trusting `issuer`, with `flaws` on; its base URL."""
    if shutil.which("node") is None or not (SERVER.parent / "node_modules").is_dir():
        pytest.fail("Node and @clerk/backend are needed: run scripts/setup (npm ci in tests/clerk_js)")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "CLERK_JWT_KEY": issuer.public_pem,
        "CLERK_PUBLISHABLE_KEY": issuer.publishable_key,
        "CLERK_NODE_FLAWS": flaws,
    }
    process = subprocess.Popen(["node", str(SERVER)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", "/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(issuer_url=ISSUER, authorized_party="http://127.0.0.1", rng=random.Random(12))


@pytest.fixture(scope="module")
def fapi(issuer: Issuer) -> Iterator[FrontendApi]:
    with frontend.serving(issuer) as server:
        yield server


@pytest.fixture(scope="module")
def chromium(fapi: FrontendApi) -> Iterator[Browser]:
    with browser(fapi.browser_args) as instance:
        yield instance


def _open(chromium: Browser, fapi: FrontendApi, base: str, org: ActiveOrg, token: SessionToken | None = None) -> Visit:
    issuer = fapi.issuer
    sub = f"user_2node{org.role:0<21}"
    client = fapi.register(Client(sub, org))
    held = token or issuer.mint(sub, org=org)
    return visit(
        chromium,
        base + "/dashboard",
        cookies=held.cookies,
        identity_cookies={fapi.origin: {CLIENT_COOKIE: client}},
        identity_hosts=(fapi.host,),
        landmarks=LANDMARKS,
    )


def test_secure_build_loads_denies_and_refreshes_without_a_loop(
    chromium: Browser, fapi: FrontendApi, issuer: Issuer
) -> None:
    with clerk_node(issuer) as base:
        owner = _open(chromium, fapi, base, OWNER)
        assert owner.verdict is Verdict.LOADED, owner.trail()
        assert all(n.host != fapi.host for n in owner.navigations), owner.trail()  # a whole jar: no handshake
        member = _open(chromium, fapi, base, MEMBER)
        assert member.verdict is Verdict.ERROR_PAGE and member.loop is None, member.trail()
        assert all(n.path != "/sign-in" for n in member.navigations), member.trail()
        stale = issuer.mint("user_2nodeadmin000000000000000", org=OWNER, now=int(time.time()) - 600)
        refreshed = _open(chromium, fapi, base, OWNER, stale)
        assert refreshed.verdict is Verdict.LOADED, refreshed.trail()
        assert [n.host for n in refreshed.navigations].count(fapi.host) == 1, refreshed.trail()


def test_a_development_browser_without_its_cookie_gets_it_through_the_handshake(
    chromium: Browser, fapi: FrontendApi, issuer: Issuer
) -> None:
    token = issuer.mint("user_2nodeadmin000000000000000", org=OWNER)
    bare = SessionToken(token.jwt, token.claims, token.publishable_key, dev_browser=None)
    with clerk_node(issuer) as base:
        seen = _open(chromium, fapi, base, OWNER, bare)
    assert seen.verdict is Verdict.LOADED, seen.trail()
    assert [n.host for n in seen.navigations].count(fapi.host) == 1, seen.trail()


def test_denied_loops_switch_is_a_client_side_loop(chromium: Browser, fapi: FrontendApi, issuer: Issuer) -> None:
    with clerk_node(issuer, "denied_loops") as base:
        seen = _open(chromium, fapi, base, MEMBER)
    assert seen.verdict is Verdict.LOOP and seen.loop is not None, seen.trail()
    assert seen.loop.kind is LoopKind.CLIENT and any(p.endswith("/sign-in") for p in seen.loop.cycle)


def test_handshake_loop_switch_is_a_handshake_loop(chromium: Browser, fapi: FrontendApi, issuer: Issuer) -> None:
    with clerk_node(issuer, "handshake_loop") as base:
        seen = _open(chromium, fapi, base, OWNER)
    assert seen.verdict is Verdict.HANDSHAKE_LOOP and seen.loop is not None, seen.trail()
    assert fapi.host in seen.loop.hosts


def test_an_unknown_switch_is_refused_at_start(issuer: Issuer) -> None:
    env = {**os.environ, "PORT": "1", "CLERK_JWT_KEY": issuer.public_pem, "CLERK_PUBLISHABLE_KEY": "pk_test_x"}
    done = subprocess.run(
        ["node", str(SERVER)], env={**env, "CLERK_NODE_FLAWS": "nope"}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and 'unknown flaw "nope"' in done.stderr and "at " not in done.stderr
