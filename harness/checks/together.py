"""What the checks that run their own flows share: requests released at one moment, and the rows a target's
database shows for some ids (`harness.database.traces.rows_naming`, bound to the database's URL)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psycopg

from harness.checks.judged import Judged

__all__ = ["RELEASE_SECONDS", "Footprint", "at_once", "read_rows", "rows_text"]

T = TypeVar("T")
Footprint = Callable[[Collection[str]], Mapping[str, int]]
"""Per table, how many rows hold one of the given ids."""

RELEASE_SECONDS = 30.0  # how long calls wait for each other before they are released anyway


def at_once(calls: Sequence[Callable[[], T]], *, name: str) -> list[T]:
    """Each call in a thread of its own, all released together by a barrier; their results, in order. A call whose
    fellows never start is released by the timeout and runs anyway: the race is only less tight."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=RELEASE_SECONDS)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix=name) as pool:
        return list(pool.map(run, calls))


def read_rows(footprint: Footprint, values: Collection[str], judged: Judged) -> Mapping[str, int] | None:
    """The rows holding `values`; None, with a `NotExercised` finding saying why, when the database cannot be read."""
    try:
        return footprint(values)
    except psycopg.Error as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        judged.not_exercised("read the database", "harness", f"the target's database cannot be read: {reason}")
        return None


def rows_text(rows: Mapping[str, int]) -> str:
    """`table count, ...` (or `no row`), tables in order."""
    return ", ".join(f"{table} {count}" for table, count in sorted(rows.items())) or "no row"
