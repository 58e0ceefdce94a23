"""Stopping a run on SIGTERM or SIGINT without leaving anything behind.

The first of either signal raises `Stopped` (a KeyboardInterrupt, so pytest and every context manager unwind as on
Ctrl-C); later ones are ignored, since cutting the unwinding short is what leaves a target serving. A signal that
arrives inside `shielded()` (code stopping a process or deleting a database) waits for the block to finish, then
raises: half a clean-up is the orphan this module exists to prevent. A signal the process was started ignoring
(`nohup`) stays ignored.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["Stopped", "shielded", "stop_on_signals"]


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived; `signum` is which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    received: list[int] = []  # noqa: RUF012 - one process, one list: the signals in the order they came
    depth = 0  # how many `shielded()` blocks are open
    pending: int | None = None  # a signal that came inside one, raised as it closes
    stderr: int | None = None  # a copy of the stderr the process started with


def _handler(signum: int, _frame: object) -> None:
    if _State.received:
        return
    _State.received.append(signum)
    _say(f"iam-harness: {signal.Signals(signum).name}: stopping, cleaning up\n")
    if _State.depth:
        _State.pending = signum
        return
    raise Stopped(signum)


def _say(line: str) -> None:
    """Write to the terminal the process started with: pytest's capture holds sys.stderr, and fd 2, by then."""
    with suppress(OSError, ValueError):
        os.write(_State.stderr if _State.stderr is not None else sys.stderr.fileno(), line.encode(errors="replace"))


@contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """Within the block, SIGTERM and SIGINT stop the run as the module says; the list it yields fills with the
    signal that did. The handlers before are put back after."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield _install()
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def _install() -> list[int]:
    _State.received = []
    if _State.stderr is None:
        try:
            _State.stderr = os.dup(sys.stderr.fileno())
        except (OSError, ValueError):  # no stderr to speak of (a daemon): the exit code says it
            _State.stderr = None
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handler)
    return _State.received


@contextmanager
def shielded() -> Iterator[None]:
    """Run a clean-up to its end, whatever signal arrives meanwhile; raise `Stopped` after it if one did."""
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if _State.depth == 0 and _State.pending is not None:
            signum, _State.pending = _State.pending, None
            raise Stopped(signum)
