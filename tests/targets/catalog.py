"""The practice targets, each with its planted flaws and what the harness must say of each: one list for the
fault-matrix tests and for `python -m bench.recall`.

A practice target module exports `PRACTICE`, a `PracticeTarget`: how to build its app with some flaws planted,
the config that describes it to the harness, and per flaw the check that must turn NO and the evidence the
finding must carry. `serving_practice` serves any of them (ASGI with uvicorn, WSGI with werkzeug) on a free
loopback port, in a thread of the test process, so that a test can read the app's own counters afterwards.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.targets.serve import free_port, serving, wait_until_healthy

__all__ = ["MODULES", "Flaw", "PracticeTarget", "practice_targets", "serving_practice"]

HERE = Path(__file__).parent

# Every practice target with planted authorization flaws, by module (each exports PRACTICE).
MODULES = ("tests.targets.tasks_app", "tests.targets.accounts_app", "tests.targets.helpdesk_app")


@dataclass(frozen=True)
class Flaw:
    """One planted flaw and what a run with it on must show."""

    name: str
    check: str  # the check id that must turn NO ("M4")
    kind: str  # the FindingKind value of the finding that shows it ("CrossOrgRead")
    operation: str  # the operation the finding names, "METHOD /path/{template}"
    evidence: str = ""  # a piece of text the finding's detail must carry (what the victim's state showed)
    note: str = ""  # what the flaw is, in words, for bench.recall's table


@dataclass(frozen=True)
class PracticeTarget:
    """A small app of another shape, with switches that plant flaws; its secure build must give no finding."""

    name: str
    config: Path  # the harness config describing it
    health: str  # a path answering 200 once the app is up
    flaws: tuple[Flaw, ...]
    make_app: Callable[[frozenset[str]], Any]  # the app with these flaws planted (empty: the secure build)
    wsgi: bool = False  # a WSGI app (served by werkzeug), else ASGI (served by uvicorn)
    never: tuple[str, ...] = ()  # operations the config lists under never: a test proves none was called
    counts: Callable[[Any], dict[str, int]] | None = None  # the app's own request counts, "METHOD /template" -> n

    def flaw(self, name: str) -> Flaw:
        """One planted flaw by name."""
        return next(f for f in self.flaws if f.name == name)


def practice_targets() -> list[PracticeTarget]:
    """Every practice target of MODULES."""
    return [importlib.import_module(name).PRACTICE for name in MODULES]


@contextmanager
def serving_practice(target: PracticeTarget, app: Any) -> Iterator[str]:
    """Serve one build of `target` until the block ends; yield its base URL once its health path answers 200."""
    if not target.wsgi:
        with serving(app, target.health) as base:
            yield base
        return
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Not a line per request: a run sends thousands."""

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(base, target.health)
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
