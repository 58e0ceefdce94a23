"""A real browser (Playwright + Chromium) that opens a page as a signed-in user and records every navigation.

It catches redirect loops whoever makes them. Every main-frame document request is recorded through the
DevTools protocol with its URL, time, HTTP status and initiator, so server redirects (Chromium stops them after
20), the page's own script navigations (which nothing stops) and Clerk's handshake (through the frontend API's
host) are told apart. A URL cycle gone round twice, or more than `max_navigations` without settling, is a loop;
a page settles when nothing navigates for a quiet period after it loaded and the expected landmark shows (or,
without it, when the quiet period has lasted `SETTLE_MS`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Error, Page, Playwright, Route, sync_playwright

from harness.browser.model import Fill, Initiator, Loop, LoopKind, Navigation, Phase, Reopen, Step, Verdict, Visit
from harness.stopping import shielded

__all__ = [
    "LAUNCH_ARGS",
    "Landmarks",
    "browser",
    "chromium_executable",
    "classify",
    "find_loop",
    "visit",
]

CHROMIUM_ENV = "IAM_HARNESS_CHROMIUM"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUIET_MS = 600  # no navigation for this long after the page loaded, with the expected landmark shown: settled
SETTLE_MS = 1500  # without the expected landmark, a page that stays this quiet has settled on something else
TIMEOUT_MS = 10_000
MAX_NAVIGATIONS = 40
TICK_MS = 50
MAX_RECORDED = 50  # console errors and failed requests kept per visit
STEP_TIMEOUT_MS = 2000  # typing into a field or pressing a button
MAX_TEXT = 100_000  # characters of a page's text kept per phase
MAX_HTML = 1_000_000  # characters of its whole document kept, to look for what it must not hold


@dataclass(frozen=True)
class Landmarks:
    """The selectors that tell what a page is: the one the visit expects, and those of the target's error
    pages (access denied, the error page with a reference)."""

    expected: tuple[str, str] | None  # (name, selector)
    errors: Mapping[str, str] = field(default_factory=dict)
    sign_in: str | None = None  # the sign-in page's path: settling there is "signed out"

    def named(self) -> dict[str, str]:
        found = dict(self.errors)
        if self.expected is not None:
            found[self.expected[0]] = self.expected[1]
        return found


def find_loop(navigations: Sequence[Navigation]) -> Loop | None:
    """The first cycle of k >= 1 places whose 2k+1 consecutive navigations repeat with period k."""
    places = [n.place for n in navigations]
    for end in range(len(places)):
        for k in range(1, end // 2 + 1):
            start = end - 2 * k
            if all(places[start + j] == places[start + j + k] for j in range(k + 1)):
                return _loop(navigations[start : end + 1], k, navigations[end].at_ms)
    return None


def _loop(span: Sequence[Navigation], k: int, detected_ms: float) -> Loop:
    """A loop from the navigations of its rounds: the first k places, their hosts, what drove the rounds."""
    cycle = tuple(n.place for n in span[:k])
    hosts = tuple(dict.fromkeys(n.host for n in span[:k]))
    driven = {n.initiator is Initiator.SERVER for n in span[1:]}
    kind = LoopKind.MIXED if len(driven) == 2 else LoopKind.SERVER if True in driven else LoopKind.CLIENT
    period = (span[-1].at_ms - span[0].at_ms) / max(1, (len(span) - 1) // k)
    return Loop(cycle, hosts, period, kind, detected_ms)


def _runaway(navigations: Sequence[Navigation]) -> Loop:
    """More navigations than any sign-in needs, without a clean cycle: the places of the second half, in the order
    first seen, and the mean time round them."""
    tail = navigations[len(navigations) // 2 :]
    places = tuple(dict.fromkeys(n.place for n in tail))
    hosts = tuple(dict.fromkeys(n.host for n in tail))
    driven = {n.initiator is Initiator.SERVER for n in tail[1:]}
    kind = LoopKind.MIXED if len(driven) == 2 else LoopKind.SERVER if True in driven else LoopKind.CLIENT
    period = (tail[-1].at_ms - tail[0].at_ms) / max(1, len(tail) - 1) * len(places)
    return Loop(places, hosts, period, kind, navigations[-1].at_ms)


def classify(
    loop: Loop | None,
    *,
    identity_hosts: Sequence[str],
    status: int | None,
    visible: Sequence[str],
    landmarks: Landmarks,
    final_path: str,
    settled: bool,
) -> Verdict:
    """The verdict of a visit from what it saw, worst first."""
    if loop is not None:
        return Verdict.HANDSHAKE_LOOP if set(loop.hosts) & set(identity_hosts) else Verdict.LOOP
    if not settled:
        return Verdict.STUCK
    if status is not None and status >= 500:
        return Verdict.SERVER_ERROR
    if landmarks.expected is not None and landmarks.expected[0] in visible:
        return Verdict.LOADED
    if any(name in visible for name in landmarks.errors):
        return Verdict.ERROR_PAGE
    if landmarks.sign_in is not None and final_path == landmarks.sign_in:
        return Verdict.SIGNED_OUT
    return Verdict.LANDMARK_MISSING


def chromium_executable(playwright: Playwright) -> str | None:
    """Which Chromium to launch: `$IAM_HARNESS_CHROMIUM`, else Playwright's own, else Debian's."""
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        return chosen
    try:
        own = playwright.chromium.executable_path
    except Error:
        own = ""
    if own and Path(own).exists():
        return None  # let Playwright launch its own build
    return DEBIAN_CHROMIUM


@contextmanager
def browser(extra_args: Sequence[str] = ()) -> Iterator[Browser]:
    """A headless Chromium for the duration of the block; `extra_args` point it at the frontend API stand-in.

    Playwright's driver and Chromium keep their temporary files (traces, profiles) in a directory of the block's
    own, removed with it: a run stopped mid-page (Ctrl-C, SIGTERM) cuts their own clean-up short."""
    scratch = tempfile.mkdtemp(prefix="iam-harness-browser-")
    try:
        with ExitStack() as stack:
            with _temporary_dir(scratch):  # read by the driver as it starts, and the browser as it launches
                playwright = stack.enter_context(sync_playwright())
                instance = playwright.chromium.launch(
                    headless=True, executable_path=chromium_executable(playwright), args=[*LAUNCH_ARGS, *extra_args]
                )
            try:
                yield instance
            finally:
                with shielded():
                    instance.close()
    finally:
        with shielded():
            shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _temporary_dir(path: str) -> Iterator[None]:
    """TMPDIR for the processes started in the block (Playwright's driver, and the browser it launches)."""
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before


class _Recorder:
    """Main-frame document requests, console errors and failed requests of one page, as CDP reports them."""

    def __init__(self, page: Page, started: float) -> None:
        self.started = started
        self.navigations: list[Navigation] = []
        self.loads: list[float] = []
        self.console: list[str] = []
        self.failed: list[str] = []
        self._by_request: dict[str, int] = {}
        self._urls: dict[str, str] = {}  # every request's URL, to name the failed ones
        self.harness_next = False  # the next navigation is the harness's own (a step reopening a page)
        self._cdp = page.context.new_cdp_session(page)
        self._main = str(self._cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"])
        self._cdp.on("Network.requestWillBeSent", self._sent)
        self._cdp.on("Network.responseReceived", self._answered)
        self._cdp.on("Network.loadingFailed", self._failed)
        self._cdp.send("Network.enable")
        page.on("load", lambda _: self.loads.append(self.now()))
        page.on("console", lambda m: self._note(self.console, m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self._note(self.console, f"uncaught: {e}"))

    def now(self) -> float:
        """Milliseconds since the visit began."""
        return (time.monotonic() - self.started) * 1000

    def _note(self, into: list[str], line: str) -> None:
        if len(into) < MAX_RECORDED:
            into.append(line[:300])

    def _sent(self, event: dict[str, Any]) -> None:
        if len(self._urls) < 5000:
            self._urls[event["requestId"]] = event["request"]["url"]
        if event.get("type") != "Document" or event.get("frameId") != self._main:
            return
        previous = self._by_request.get(event["requestId"])
        redirect = event.get("redirectResponse")
        if redirect is not None and previous is not None:
            self._set_status(previous, int(redirect["status"]))
        if redirect is not None:
            initiator = Initiator.SERVER
        elif not self.navigations or self.harness_next:
            initiator = Initiator.HARNESS
            self.harness_next = False
        else:
            initiator = Initiator.SCRIPT if event.get("initiator", {}).get("type") == "script" else Initiator.PAGE
        self._by_request[event["requestId"]] = len(self.navigations)
        self.navigations.append(Navigation(event["request"]["url"], self.now(), None, initiator))

    def _answered(self, event: dict[str, Any]) -> None:
        index = self._by_request.get(event["requestId"])
        if index is not None and event.get("type") == "Document":
            self._set_status(index, int(event["response"]["status"]))

    def _set_status(self, index: int, status: int) -> None:
        n = self.navigations[index]
        self.navigations[index] = Navigation(n.url, n.at_ms, status, n.initiator)

    def _failed(self, event: dict[str, Any]) -> None:
        if event.get("canceled"):
            return  # a navigation that replaced this one, not a failure
        url = self._urls.get(event["requestId"], event["requestId"])
        self._note(self.failed, f"{event.get('type', 'request')} {url}: {event.get('errorText')}")


def visit(
    chromium: Browser,
    url: str,
    *,
    cookies: Mapping[str, str],
    landmarks: Landmarks,
    identity_cookies: Mapping[str, Mapping[str, str]] | None = None,
    identity_hosts: Sequence[str] = (),
    evidence: Path | None = None,
    forbids: Callable[[str, str], bool] | None = None,
    timeout_ms: int = TIMEOUT_MS,
    max_navigations: int = MAX_NAVIGATIONS,
    steps: Sequence[Step] = (),
) -> Visit:
    """Open `url` in a fresh context holding `cookies` (and `identity_cookies`, per origin, for the identity
    provider's host); wait until the page settles, loops, or time runs out, and name what it came to. Then take
    each of `steps` in the same browser (type into a sign-in form, reopen with other cookies), each settling in
    turn, as long as the one before settled without a loop; the last stretch's verdict is the visit's. A stretch
    that a `Fill` follows expects the form (its first field) instead of `landmarks.expected`.

    With `evidence` (a path without suffix), a screenshot of the last page goes to `<evidence>.png` and a
    Playwright trace to `<evidence>.zip`; the caller deletes the trace of a visit that came out well. A request
    `forbids` answers True for (`method`, `path`) on the target's origin is aborted unsent."""
    context = chromium.new_context()
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    if forbids is not None:
        refuse = forbids

        def guard(route: Route) -> None:
            request = route.request
            parts = urlsplit(request.url)
            if f"{parts.scheme}://{parts.netloc}" == origin and refuse(request.method, parts.path):
                route.abort("blockedbyclient")
            else:
                route.continue_()

        context.route("**/*", guard)
    jar = [{"name": k, "value": v, "url": origin} for k, v in cookies.items()]
    for where, named in (identity_cookies or {}).items():
        jar += [{"name": k, "value": v, "url": where} for k, v in named.items()]
    context.add_cookies(jar)  # type: ignore[arg-type]
    if evidence is not None:
        context.tracing.start(screenshots=True, snapshots=True)
    page = context.new_page()
    recorder = _Recorder(page, time.monotonic())
    phases: list[Phase] = []
    stretch = _Stretch("opens " + (urlsplit(url).path or "/"), 0, recorder.now())
    stretch.error = _go(page, url, timeout_ms)
    for step in (*steps, None):
        expects = _expecting(landmarks, step)
        stretch.settle(page, recorder, expects, timeout_ms, max_navigations)
        phases.append(stretch.phase(page, recorder, identity_hosts, expects))
        # A form is filled only once it shows; anything else is taken once the page before it came to rest.
        ready = phases[-1].verdict is Verdict.LOADED if isinstance(step, Fill) else stretch.loop is None
        if step is None or not ready or not stretch.settled:
            break
        stretch = _Stretch(step.label, len(recorder.navigations), recorder.now())
        stretch.error = _take(page, context, step, recorder, timeout_ms)
        if stretch.error is not None and isinstance(step, Fill):
            phases.append(stretch.phase(page, recorder, identity_hosts, expects, failed=True))
            break
    last = phases[-1]
    elapsed = recorder.now()
    navigations = list(recorder.navigations)
    screenshot = trace = None
    if evidence is not None:
        evidence.parent.mkdir(parents=True, exist_ok=True)
        with suppress(Error):
            page.screenshot(path=str(evidence.with_suffix(".png")), timeout=3000)
            screenshot = evidence.with_suffix(".png")
        trace = evidence.with_suffix(".zip")
        context.tracing.stop(path=str(trace))
    context.close()
    return Visit(
        start_url=url,
        navigations=tuple(navigations),
        verdict=last.verdict,
        loop=stretch.loop,
        landmarks=last.landmarks,
        final_url=last.final_url,
        elapsed_ms=elapsed,
        console_errors=tuple(recorder.console),
        failed_requests=tuple(recorder.failed),
        error=stretch.error,
        screenshot=screenshot,
        trace=trace,
        phases=tuple(phases),
    )


FORM = "sign-in form"  # the landmark a stretch followed by a Fill waits for: the form's first field


def _expecting(landmarks: Landmarks, step: Step | None) -> Landmarks:
    if isinstance(step, Fill) and step.fields:
        return Landmarks((FORM, step.fields[0][0]), landmarks.errors, landmarks.sign_in)
    return landmarks


def _go(page: Page, url: str, timeout_ms: int) -> str | None:
    try:
        page.goto(url, wait_until="commit", timeout=timeout_ms)
    except Error as exc:
        return str(exc).splitlines()[0]
    return None


def _take(page: Page, context: BrowserContext, step: Step, recorder: _Recorder, timeout_ms: int) -> str | None:
    """Take one step; why it could not be taken, if it could not."""
    if isinstance(step, Reopen):
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(step.url))
        jar = [{"name": k, "value": v, "url": origin} for k, v in step.cookies]
        jar += [{"name": k, "value": v, "url": where} for where, k, v in step.identity]
        context.add_cookies(jar)  # type: ignore[arg-type]
        recorder.harness_next = True
        return _go(page, step.url, timeout_ms)
    for selector, text in step.fields:
        try:
            page.fill(selector, text, timeout=STEP_TIMEOUT_MS)
        except Error as exc:
            return f"could not type into {selector}: {str(exc).splitlines()[0]}"
    try:
        page.click(step.submit, timeout=STEP_TIMEOUT_MS, no_wait_after=True)
    except Error as exc:
        return f"could not press {step.submit}: {str(exc).splitlines()[0]}"
    return None


@dataclass
class _Stretch:
    """The navigations from `since` on: the first page, or what one step led to, until it settles or loops."""

    label: str
    since: int
    started_ms: float
    error: str | None = None
    loop: Loop | None = None
    settled: bool = False
    visible: tuple[str, ...] = ()

    def settle(
        self, page: Page, recorder: _Recorder, landmarks: Landmarks, timeout_ms: int, max_navigations: int
    ) -> None:
        named = landmarks.named()
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            page.wait_for_timeout(TICK_MS)
            navigations = recorder.navigations[self.since :]
            self.loop = find_loop(navigations)
            if self.loop is None and len(navigations) > max_navigations:
                self.loop = _runaway(navigations)
            if self.loop is not None:
                return
            now = recorder.now()
            last_nav = navigations[-1].at_ms if navigations else self.started_ms
            last_load = recorder.loads[-1] if recorder.loads else None
            # A step that navigated nowhere (a form answered by script, in place) leaves the page as it was loaded.
            stayed = not navigations and last_load is not None
            loaded = (last_load is not None and last_load >= last_nav) or stayed or self.error is not None
            quiet = now - max(last_nav, last_load or 0.0)
            if loaded and quiet >= QUIET_MS:
                self.visible = _visible(page, named)
                expected_shown = landmarks.expected is not None and landmarks.expected[0] in self.visible
                if expected_shown or quiet >= SETTLE_MS:
                    self.settled = True
                    return

    def phase(
        self,
        page: Page,
        recorder: _Recorder,
        identity_hosts: Sequence[str],
        landmarks: Landmarks,
        *,
        failed: bool = False,
    ) -> Phase:
        """What the stretch came to; `failed`: its step could not be taken (the page lacked what it needed)."""
        mine = recorder.navigations[self.since :]
        status = next((n.status for n in reversed(mine) if n.status is not None), None)
        final_path = urlsplit(page.url).path or "/"
        verdict = (
            Verdict.LANDMARK_MISSING
            if failed
            else classify(
                self.loop,
                identity_hosts=identity_hosts,
                status=status,
                visible=self.visible,
                landmarks=landmarks,
                final_path=final_path,
                settled=self.settled,
            )
        )
        return Phase(self.label, self.started_ms, verdict, page.url, self.visible, _text(page), _html(page))


def _text(page: Page) -> str:
    """The page's visible text, as far as `MAX_TEXT` characters ("" when there is no page to read)."""
    try:
        return page.inner_text("body", timeout=STEP_TIMEOUT_MS)[:MAX_TEXT]
    except Error:
        return ""


def _html(page: Page) -> str:
    """The page's whole document as it stands (scripts' data and hidden elements too), as far as `MAX_HTML`."""
    try:
        return page.content()[:MAX_HTML]
    except Error:
        return ""


def _visible(page: Page, landmarks: Mapping[str, str]) -> tuple[str, ...]:
    found = []
    for name, selector in landmarks.items():
        try:
            if page.locator(selector).first.is_visible():
                found.append(name)
        except Error:
            continue
    return tuple(found)
