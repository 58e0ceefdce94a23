"""What a browser visit records and what it comes to: navigations, loops and the verdict, as typed data.

A navigation is a main-frame document request. Its initiator says who started it: the harness (the visit's
first `goto`), the server (an HTTP redirect of the request before it), or the page (a script or a meta
refresh). A loop is a cycle of URLs (host and path, the query left out) gone round at least twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "Fill",
    "Initiator",
    "Loop",
    "LoopKind",
    "Navigation",
    "Phase",
    "Reopen",
    "Step",
    "Verdict",
    "Visit",
    "place",
]


class Initiator(StrEnum):
    """Who started a navigation."""

    HARNESS = "harness"  # the visit's own goto
    SERVER = "server"  # an HTTP redirect answering the navigation before it
    SCRIPT = "script"  # the page's script (location.assign, a form submitted by script, ...)
    PAGE = "page"  # the page without script: a meta refresh, a link


class LoopKind(StrEnum):
    """What drove a loop round: HTTP redirects only, the page's own navigations only, or both."""

    SERVER = "server-side"
    CLIENT = "client-side"
    MIXED = "mixed"


class Verdict(StrEnum):
    """How a visit ended, worst first among those that can occur together."""

    LOOP = "loop"  # a cycle of navigations through the target's own pages
    HANDSHAKE_LOOP = "handshake loop"  # a cycle through the identity provider's host (Clerk's handshake)
    SERVER_ERROR = "server error"  # the page settled on a 5xx answer
    ERROR_PAGE = "error page"  # the page settled on the target's error (access-denied) page
    LANDMARK_MISSING = "landmark missing"  # the page settled on the expected URL without the expected landmark
    STUCK = "stuck"  # no settling: navigations or loading went on, or nothing came, until time ran out
    LOADED = "loaded"  # settled with the expected landmark visible
    SIGNED_OUT = "signed out"  # settled on the sign-in page


def place(url: str) -> str:
    """A URL as loops compare it: host and path, without scheme, query or fragment."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path or '/'}"


@dataclass(frozen=True)
class Navigation:
    """A main-frame document request: its URL, when it started (ms since the visit began), the HTTP status
    of its answer (None when none came) and who started it."""

    url: str
    at_ms: float
    status: int | None
    initiator: Initiator

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def place(self) -> str:
        return place(self.url)


@dataclass(frozen=True)
class Loop:
    """A cycle of places the browser went round at least twice: its places, the hosts it crosses, how long
    one round takes, what drove it and when it was first seen complete (ms since the visit began)."""

    cycle: tuple[str, ...]
    hosts: tuple[str, ...]
    period_ms: float
    kind: LoopKind
    detected_ms: float

    def __str__(self) -> str:
        shown = self.cycle
        if len(self.hosts) == 1:  # one host: the paths say it all
            shown = tuple(p.removeprefix(self.hosts[0]) or "/" for p in self.cycle)
        return (
            f"{self.kind} loop {' -> '.join((*shown, shown[0]))}, period {self.period_ms:.0f} ms, "
            f"through {', '.join(self.hosts)}"
        )


@dataclass(frozen=True)
class Fill:
    """A step of a visit: type into the settled page's fields (selector -> text) and press `submit`, as a person
    signing in on the target's own form does. Its repr never shows what is typed (passwords)."""

    fields: tuple[tuple[str, str], ...] = field(repr=False)
    submit: str
    label: str = "signs in on the form"


@dataclass(frozen=True)
class Reopen:
    """A step of a visit: set cookies in the same browser (as Clerk's script does when the user switches the
    active organisation) and open `url` again; the browser keeps every other cookie it holds."""

    cookies: tuple[tuple[str, str], ...] = field(repr=False)
    url: str
    label: str = "opens the page again"
    identity: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)  # (origin, name, value): the IdP's


Step = Fill | Reopen


@dataclass(frozen=True)
class Phase:
    """One stretch of a visit: the first page, or what a step led to. Its verdict, where it settled, the
    landmarks visible then and the page's text (to look for what it must or must not show)."""

    label: str
    at_ms: float
    verdict: Verdict
    final_url: str
    landmarks: tuple[str, ...]
    text: str = field(repr=False)  # what a person reads
    html: str = field(default="", repr=False)  # the whole document: script data and hidden elements too

    def holds(self, fragment: str) -> bool:
        """Whether the page held `fragment`, shown or not."""
        return fragment in self.text or fragment in self.html


@dataclass(frozen=True)
class Visit:
    """What happened when the browser opened a page, and the files kept as its evidence."""

    start_url: str
    navigations: tuple[Navigation, ...]
    verdict: Verdict
    loop: Loop | None
    landmarks: tuple[str, ...]  # the names of the landmarks visible at the end
    final_url: str
    elapsed_ms: float
    console_errors: tuple[str, ...] = ()
    failed_requests: tuple[str, ...] = ()  # "<METHOD> <url>: <why>"
    error: str | None = None  # why the browser itself gave up (a navigation timeout, too many redirects)
    screenshot: Path | None = None
    trace: Path | None = None
    phases: tuple[Phase, ...] = ()  # the first page, then one per step the visit took (all, when it got that far)

    @property
    def final_path(self) -> str:
        return urlsplit(self.final_url).path or "/"

    def trail(self, limit: int = 12) -> str:
        """The navigation history as `path [status, initiator] (+ms) -> ...`, hosts shown where they change."""
        parts = []
        host = urlsplit(self.start_url).netloc
        for n in self.navigations[:limit]:
            where = n.path if n.host == host else f"{n.host}{n.path}"
            status = n.status if n.status is not None else "-"
            parts.append(f"{where} [{status}, {n.initiator}] (+{n.at_ms:.0f} ms)")
        more = len(self.navigations) - limit
        return " -> ".join(parts) + (f" -> ... ({more} more)" if more > 0 else "")
