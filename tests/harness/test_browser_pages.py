"""The driver's verdicts in real Chromium, on loopback pages made to end each way, and Clerk's handshake answered
by the frontend API stand-in (a fresh session for a browser it knows, a signed-out one for any other)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest
from playwright.sync_api import Browser

from harness.browser.driver import Landmarks, browser, visit
from harness.browser.model import Fill, Initiator, LoopKind, Reopen, Verdict
from harness.clerk import frontend
from harness.clerk.frontend import CLIENT_COOKIE, Client, FrontendApi
from harness.clerk.issuer import Issuer

pytestmark = pytest.mark.e2e  # a real browser

ISSUER = "https://iam-harness-12.clerk.accounts.dev"
FORM = (
    '<form method="post" action="/form"><input id="user" name="user"><input id="pass" name="pass" type="password">'
    '<button type="submit">Sign in</button></form>'
)
DENIED = '<main data-testid="denied">Denied</main>'
PAGES = {
    "/ok": (200, '<main data-testid="dashboard">Dashboard</main>'),
    "/denied": (403, DENIED),
    "/denied-loops": (403, DENIED + '<script>setTimeout(() => location.assign("/sign-in"), 400)</script>'),
    "/sign-in": (200, '<script>location.assign("/denied-loops")</script>'),
    "/a": (302, "/b"),
    "/b": (302, "/a"),
    "/crash": (500, "<p>Internal error</p>"),
    "/bare": (200, "<p>no landmark here</p>"),
    "/form": (200, FORM),
    "/form-half": (200, '<form method="post" action="/form"><input id="user" name="user"><button>Go</button></form>'),
    "/form-script": (  # answered in place, by script: no navigation follows the submit
        200,
        '<form id="f"><input id="user"><input id="pass" type="password"><button type="submit">Sign in</button></form>'
        '<p id="said"></p><script>document.getElementById("f").addEventListener("submit", (e) => {'
        'e.preventDefault(); document.getElementById("said").textContent = "Wrong password"; })</script>',
    ),
    "/busy": (
        200,
        '<p>busy</p><script>setInterval(() => history.replaceState(null, "", "?" + Date.now()), 50)</script>',
    ),
}
SIGN_IN = Fill((("#user", "ada"), ("#pass", "right")), "button[type=submit]")
LANDMARKS = Landmarks(("dashboard", "[data-testid=dashboard]"), {"denied": "[data-testid=denied]"}, "/sign-in")


class _Pages(BaseHTTPRequestHandler):
    fapi: str = ""
    issuer: Issuer | None = None
    wrong: Issuer | None = None  # the key a misconfigured page verifies with

    def do_POST(self) -> None:  # the form: ada's right password signs her in, anything else shows the form again
        length = int(self.headers.get("Content-Length", "0"))
        sent = parse_qs(self.rfile.read(length).decode())
        if sent.get("user") == ["ada"] and sent.get("pass") == ["right"]:
            self.send_response(303)
            self.send_header("Location", "/me")
            self.send_header("Set-Cookie", "who=ada; Path=/")
            self.end_headers()
            return
        self._html(200, "<p>Wrong password</p>" + FORM)

    def _html(self, status: int, body: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/me":  # whoever the `who` cookie names
            who = SimpleCookie(self.headers.get("Cookie", "")).get("who")
            if who is None:
                self._html(403, DENIED)
            else:
                self._html(200, f'<main data-testid="dashboard">Hello {who.value}</main>')
            return
        if parts.path in {"/guarded", "/mismatched"}:  # Clerk-guarded pages, deciding as @clerk/backend does
            self._guarded(parts.path, parts.query)
            return
        status, body = PAGES.get(parts.path, (404, "not found"))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", body)
            body = ""
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def _guarded(self, path: str, query: str) -> None:
        assert self.issuer is not None and self.wrong is not None
        trusted = (self.wrong if path == "/mismatched" else self.issuer).public_pem
        handshake = parse_qs(query).get("__clerk_handshake")
        if handshake:  # back from the handshake: apply its cookies, then load the page again without it
            directives = jwt.decode(handshake[0], self.issuer.public_pem, algorithms=["RS256"])["handshake"]
            self.send_response(307)
            self.send_header("Location", path)
            for directive in directives:
                self.send_header("Set-Cookie", directive)
            self.end_headers()
            return
        cookies = SimpleCookie(self.headers.get("Cookie", ""))
        session = cookies.get("__session")
        try:
            fresh = session is not None and bool(jwt.decode(session.value, trusted, algorithms=["RS256"]))
        except jwt.InvalidTokenError:
            fresh = False
        if fresh:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGES["/ok"][1].encode())
            return
        if session is not None and session.value:  # expired or invalid: to the handshake, with no loop guard at all
            here = f"http://{self.headers['Host']}{path}"
            self.send_response(307)
            self.send_header("Location", f"{self.fapi}/v1/client/handshake?redirect_url={quote(here, safe='')}")
            self.end_headers()
            return
        self.send_response(303)
        self.send_header("Location", "/sign-in-form")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(issuer_url=ISSUER, authorized_party="http://127.0.0.1", rng=random.Random(7))


@pytest.fixture(scope="module")
def fapi(issuer: Issuer) -> Iterator[FrontendApi]:
    with frontend.serving(issuer) as server:
        yield server


@pytest.fixture(scope="module")
def site(issuer: Issuer, fapi: FrontendApi) -> Iterator[str]:
    wrong = Issuer(issuer_url=ISSUER, authorized_party="http://127.0.0.1", rng=random.Random(8))
    handler = type("Pages", (_Pages,), {"fapi": fapi.origin, "issuer": issuer, "wrong": wrong})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def chromium(fapi: FrontendApi) -> Iterator[Browser]:
    with browser(fapi.browser_args) as instance:
        yield instance


@pytest.mark.parametrize(
    ("path", "verdict"),
    [
        ("/ok", Verdict.LOADED),
        ("/denied", Verdict.ERROR_PAGE),
        ("/crash", Verdict.SERVER_ERROR),
        ("/bare", Verdict.LANDMARK_MISSING),
        ("/sign-in-form-missing", Verdict.LANDMARK_MISSING),
    ],
)
def test_each_ending_gets_its_verdict(chromium: Browser, site: str, path: str, verdict: Verdict) -> None:
    seen = visit(chromium, site + path, cookies={}, landmarks=LANDMARKS)
    assert seen.verdict is verdict, seen.trail()
    assert seen.loop is None and seen.navigations[0].initiator is Initiator.HARNESS


def test_the_incidents_400_ms_client_side_loop_is_called_within_1_5_s(chromium: Browser, site: str) -> None:
    seen = visit(chromium, site + "/denied-loops", cookies={}, landmarks=LANDMARKS)
    assert seen.verdict is Verdict.LOOP and seen.loop is not None, seen.trail()
    assert seen.loop.kind is LoopKind.CLIENT
    assert {n.initiator for n in seen.navigations[1:]} == {Initiator.SCRIPT}
    assert seen.loop.detected_ms - seen.navigations[0].at_ms < 1500, seen.trail()
    assert 380 < seen.loop.period_ms < 1500


def test_a_redirect_ping_pong_is_a_server_side_loop_with_its_statuses(chromium: Browser, site: str) -> None:
    seen = visit(chromium, site + "/a", cookies={}, landmarks=LANDMARKS)
    assert seen.verdict is Verdict.LOOP and seen.loop is not None and seen.loop.kind is LoopKind.SERVER
    assert [n.status for n in seen.navigations[:4]] == [302, 302, 302, 302]


def test_a_page_that_never_settles_is_stuck(chromium: Browser, site: str) -> None:
    seen = visit(chromium, site + "/busy", cookies={}, landmarks=LANDMARKS, timeout_ms=2500)
    assert seen.verdict in {Verdict.LANDMARK_MISSING, Verdict.STUCK}, seen.trail()
    assert seen.loop is None  # same-document history changes are not navigations


def test_an_expired_token_is_refreshed_through_the_stand_in_once(
    chromium: Browser, site: str, issuer: Issuer, fapi: FrontendApi
) -> None:
    """Clerk knows the browser: one handshake round, a fresh session, the page loads."""
    client = fapi.register(Client("user_2expired000000000000000000", None))
    stale = issuer.mint("user_2expired000000000000000000", now=1_700_000_000)
    seen = visit(
        chromium,
        site + "/guarded",
        cookies=stale.cookies,
        identity_cookies={fapi.origin: {CLIENT_COOKIE: client}},
        identity_hosts=(fapi.host,),
        landmarks=LANDMARKS,
    )
    assert seen.verdict is Verdict.LOADED, seen.trail()
    assert [n.host for n in seen.navigations].count(fapi.host) == 1
    assert any(h.client == client and h.signed_in for h in fapi.handshakes)


def test_a_handshake_that_cannot_succeed_is_a_handshake_loop(
    chromium: Browser, site: str, issuer: Issuer, fapi: FrontendApi
) -> None:
    """The page verifies with another key than the instance's and has no loop guard: every fresh session Clerk
    hands back is refused again, round and round through Clerk's host."""
    client = fapi.register(Client("user_2mismatch00000000000000000", None))
    seen = visit(
        chromium,
        site + "/mismatched",
        cookies=issuer.mint("user_2mismatch00000000000000000").cookies,
        identity_cookies={fapi.origin: {CLIENT_COOKIE: client}},
        identity_hosts=(fapi.host,),
        landmarks=LANDMARKS,
    )
    assert seen.verdict is Verdict.HANDSHAKE_LOOP and seen.loop is not None, seen.trail()
    assert fapi.host in seen.loop.hosts and seen.loop.kind is LoopKind.SERVER


def test_a_browser_clerk_does_not_know_is_signed_out_by_the_handshake(
    chromium: Browser, site: str, issuer: Issuer, fapi: FrontendApi
) -> None:
    client = fapi.register(Client("user_2forgotten0000000000000000", None))
    fapi.forget(client)
    seen = visit(
        chromium,
        site + "/guarded",
        cookies=issuer.mint("user_2forgotten0000000000000000", now=1_700_000_000).cookies,
        identity_cookies={fapi.origin: {CLIENT_COOKIE: client}},
        identity_hosts=(fapi.host,),
        landmarks=LANDMARKS,
    )
    assert seen.loop is None and seen.final_path == "/sign-in-form", seen.trail()
    assert any(h.client == client and not h.signed_in for h in fapi.handshakes)


def test_a_sign_in_form_is_filled_and_submitted_and_the_dashboard_loads(chromium: Browser, site: str) -> None:
    seen = visit(chromium, site + "/form", cookies={}, landmarks=LANDMARKS, steps=(SIGN_IN,))
    assert seen.verdict is Verdict.LOADED and seen.final_path == "/me", seen.trail()
    assert [p.verdict for p in seen.phases] == [Verdict.LOADED, Verdict.LOADED]
    assert "Hello ada" in seen.phases[-1].text and "right" not in repr(seen)  # what was typed is never shown
    assert [n.path for n in seen.navigations] == ["/form", "/form", "/me"]
    assert [n.status for n in seen.navigations[1:]] == [303, 200]


def test_a_wrong_password_stays_signed_out_on_the_form(chromium: Browser, site: str) -> None:
    wrong = Fill((("#user", "ada"), ("#pass", "wrong")), "button[type=submit]")
    seen = visit(
        chromium, site + "/form", cookies={}, landmarks=Landmarks(LANDMARKS.expected, {}, "/form"), steps=(wrong,)
    )
    assert seen.verdict is Verdict.SIGNED_OUT and "Wrong password" in seen.phases[-1].text, seen.trail()


def test_a_form_without_the_field_to_type_into_is_named(chromium: Browser, site: str) -> None:
    seen = visit(chromium, site + "/form-half", cookies={}, landmarks=LANDMARKS, steps=(SIGN_IN,), timeout_ms=3000)
    assert seen.verdict is Verdict.LANDMARK_MISSING and seen.error is not None and "#pass" in seen.error, seen
    assert len(seen.phases) == 2 and seen.navigations[-1].path == "/form-half"  # nothing was submitted


def test_no_form_at_all_stops_before_typing(chromium: Browser, site: str) -> None:
    seen = visit(chromium, site + "/bare", cookies={}, landmarks=LANDMARKS, steps=(SIGN_IN,), timeout_ms=3000)
    assert len(seen.phases) == 1 and seen.verdict is Verdict.LANDMARK_MISSING, seen.phases


def test_reopening_with_other_cookies_keeps_the_browser_and_shows_what_they_see(chromium: Browser, site: str) -> None:
    switch = Reopen((("who", "bob"),), site + "/me", label="switches to bob")
    seen = visit(chromium, site + "/me", cookies={"who": "ada"}, landmarks=LANDMARKS, steps=(switch,))
    assert [p.label for p in seen.phases] == ["opens /me", "switches to bob"]
    assert "Hello ada" in seen.phases[0].text and "Hello bob" in seen.phases[1].text
    assert [n.initiator for n in seen.navigations] == [Initiator.HARNESS, Initiator.HARNESS]
    assert seen.loop is None and seen.verdict is Verdict.LOADED  # the same page twice is no loop


def test_reopening_sets_the_identity_providers_cookies_on_its_own_origin(chromium: Browser, site: str) -> None:
    other = site.replace("127.0.0.1", "localhost")  # another origin: cookies of one are not the other's
    switch = Reopen((), other + "/me", label="opens the other origin", identity=((other, "who", "eve"),))
    seen = visit(chromium, site + "/me", cookies={"who": "ada"}, landmarks=LANDMARKS, steps=(switch,))
    assert "Hello ada" in seen.phases[0].text and "Hello eve" in seen.phases[1].text, seen.phases
    assert "eve" not in repr(switch)  # cookie values are never shown


def test_a_form_answered_in_place_by_script_settles_on_what_it_shows(chromium: Browser, site: str) -> None:
    landmarks = Landmarks(LANDMARKS.expected, {}, "/form-script")
    seen = visit(chromium, site + "/form-script", cookies={}, landmarks=landmarks, steps=(SIGN_IN,), timeout_ms=5000)
    assert [p.verdict for p in seen.phases] == [Verdict.LOADED, Verdict.SIGNED_OUT], seen.phases  # form shown, then
    assert "Wrong password" in seen.phases[-1].text and len(seen.navigations) == 1  # settled, not stuck


def test_a_phase_holds_what_its_document_hides(chromium: Browser, site: str) -> None:
    seen = visit(chromium, site + "/form-script", cookies={}, landmarks=LANDMARKS, timeout_ms=3000)
    phase = seen.phases[0]
    assert "preventDefault" not in phase.text and phase.holds("preventDefault")  # script source, never shown
