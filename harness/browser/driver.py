"""A real browser (Playwright + Chromium) that opens a page as a signed-in user and records every navigation.

It catches redirect loops whoever makes them: server redirects and client-side navigation alike are
main-frame document requests, each recorded with its time. A URL cycle seen twice in a row is a loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Error, Page, Playwright, Request, Route, sync_playwright

__all__ = ["Loop", "Navigation", "Visit", "browser", "chromium_executable", "find_loop", "visit"]

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
SETTLE_MS = 1000  # longer than any client-side redirect delay worth calling a page "loaded"
TIMEOUT_MS = 8000
MAX_NAVIGATIONS = 40


@dataclass(frozen=True)
class Navigation:
    """A main-frame document request: its path and when it started (ms since the visit began)."""

    path: str
    at_ms: float


@dataclass(frozen=True)
class Loop:
    """A cycle of paths the browser went round at least twice."""

    cycle: tuple[str, ...]
    period_ms: float

    def __str__(self) -> str:
        return f"{' -> '.join((*self.cycle, self.cycle[0]))}, period {self.period_ms:.0f} ms"


@dataclass(frozen=True)
class Visit:
    """What happened when the browser opened a page."""

    navigations: tuple[Navigation, ...]
    loop: Loop | None
    landmarks: tuple[str, ...]  # the names of the landmarks visible at the end
    final_path: str
    error: str | None

    def trail(self) -> str:
        """The navigation history as `path (+ms) -> ...`."""
        return " -> ".join(f"{n.path} (+{n.at_ms:.0f} ms)" for n in self.navigations[:12])


def find_loop(navigations: Sequence[Navigation]) -> Loop | None:
    """The first cycle of length k >= 1 whose 2k+1 consecutive navigations repeat with period k."""
    paths = [n.path for n in navigations]
    for end in range(len(paths)):
        for k in range(1, end // 2 + 1):
            start = end - 2 * k
            if all(paths[start + j] == paths[start + j + k] for j in range(k + 1)):
                period = (navigations[end].at_ms - navigations[start].at_ms) / 2
                return Loop(cycle=tuple(paths[start : start + k]), period_ms=period)
    return None


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
def browser() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block."""
    with sync_playwright() as playwright:
        executable = chromium_executable(playwright)
        instance = playwright.chromium.launch(headless=True, executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def visit(
    chromium: Browser,
    url: str,
    *,
    cookies: dict[str, str],
    landmarks: dict[str, str],
    trace_path: Path | None = None,
    forbids: Callable[[str, str], bool] | None = None,
) -> Visit:
    """Open `url` holding `cookies`; wait until the page settles, loops, or time runs out. A request `forbids`
    answers True for (`method`, `path`) is aborted unsent: what the config says never to call, a page never calls."""
    context = chromium.new_context()
    if forbids is not None:
        refuse = forbids

        def guard(route: Route) -> None:
            request = route.request
            if refuse(request.method, urlsplit(request.url).path):
                route.abort("blockedbyclient")
            else:
                route.continue_()

        context.route("**/*", guard)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    context.add_cookies([{"name": k, "value": v, "url": origin} for k, v in cookies.items()])
    if trace_path is not None:
        context.tracing.start(screenshots=True, snapshots=True)
    page = context.new_page()
    started = time.monotonic()
    navigations: list[Navigation] = []

    def record(request: Request) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            navigations.append(Navigation(urlsplit(request.url).path, (time.monotonic() - started) * 1000))

    loaded: list[float] = []  # when the main frame last finished loading, ms since the visit started

    def record_load(_: Page) -> None:
        loaded.append((time.monotonic() - started) * 1000)

    page.on("request", record)
    page.on("load", record_load)
    error: str | None = None
    try:
        page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
    except Error as exc:
        error = str(exc).splitlines()[0]
    loop = None
    seen: tuple[str, ...] = ()
    deadline = started + TIMEOUT_MS / 1000
    while time.monotonic() < deadline and len(navigations) < MAX_NAVIGATIONS:
        page.wait_for_timeout(100)
        loop = find_loop(navigations)
        if loop is not None:
            break
        # Quiet counts from the last page load, not from its request: on a busy machine a page can take longer to
        # arrive than the quiet period, and a page that has not loaded yet has not had its chance to navigate on.
        last_nav = navigations[-1].at_ms if navigations else 0.0
        last_load = loaded[-1] if loaded else None
        quiet_ms = (time.monotonic() - started) * 1000 - max(last_nav, last_load or 0.0)
        if quiet_ms >= SETTLE_MS and ((last_load is not None and last_load >= last_nav) or error is not None):
            seen = _visible(page, landmarks)
            break
    else:
        loop = find_loop(navigations)
    final_path = urlsplit(page.url).path
    if trace_path is not None:
        trace_path.parent.mkdir(parents=True, exist_ok=True)
        context.tracing.stop(path=str(trace_path))
    context.close()
    return Visit(tuple(navigations), loop, seen, final_path, error)


def _visible(page: Page, landmarks: dict[str, str]) -> tuple[str, ...]:
    found = []
    for name, selector in landmarks.items():
        try:
            if page.locator(selector).first.is_visible():
                found.append(name)
        except Error:
            continue
    return tuple(found)
