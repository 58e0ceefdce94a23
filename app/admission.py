"""Admission: no more requests served at once than there are database connections; past a bounded queue, a 503.

Why. A request holds one pooled connection from its first query (who the caller is) until its session closes, and
in between it hops between worker threads: FastAPI runs every sync dependency, the sync handler and the session's
teardown as separate calls into anyio's thread pool (40 threads). With more requests in flight than connections
(10 + 10 overflow), the threads fill with requests blocked on the pool, while the requests that hold the
connections wait for a thread to go on with, or to close their session in: nobody moves until the pool's timeout,
and under steady load never again (64 clients were enough). The connections sit `idle in transaction` meanwhile.

So requests are admitted only while a connection is free for each: an admitted request never waits for the pool,
and as there are more threads than admitted requests, never for a thread for long either. The rest wait here, on
the event loop, holding nothing, first come first served; a request that would wait behind `queue_limit` others, or
longer than `queue_seconds`, is answered `503` `{"error": "overloaded"}` with `Retry-After`, at once, and nothing of
it runs. `/health` is never queued (it has a connection of its own, see `app.db.Database.ping`).
"""

from __future__ import annotations

import json
import logging
import time

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RETRY_AFTER_SECONDS", "Admission"]

log = logging.getLogger("app.admission")

RETRY_AFTER_SECONDS = 1
# Worker threads beside the admitted requests' own: /health, and what else runs in the pool.
SPARE_THREADS = 8
LOG_EVERY_SECONDS = 1.0


class Admission:
    """ASGI middleware: at most `slots` requests served at once, `queue_limit` more waiting up to `queue_seconds`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        slots: int,
        queue_limit: int,
        queue_seconds: float,
        exempt: frozenset[str] = frozenset({"/health"}),
    ) -> None:
        self.app = app
        self.slots = slots
        self.queue_limit = queue_limit
        self.queue_seconds = queue_seconds
        self.exempt = exempt
        self.waiting = 0
        self.shed = 0  # requests answered 503, since the start
        self._logged = (0.0, 0)  # when the last shed was logged, and the count then
        self._semaphore: anyio.Semaphore | None = None  # made on the server's event loop, at the first request

    @property
    def serving(self) -> int:
        """Requests admitted and not yet answered."""
        return 0 if self._semaphore is None else self.slots - self._semaphore.value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:
            self._semaphore = anyio.Semaphore(self.slots)  # its waiters are served in order
            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = max(limiter.total_tokens, self.slots + SPARE_THREADS)
        semaphore = self._semaphore
        try:
            semaphore.acquire_nowait()
        except anyio.WouldBlock:
            if not await self._queued(semaphore):
                self._note_shed()
                await _shed(send)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            semaphore.release()

    async def _queued(self, semaphore: anyio.Semaphore) -> bool:
        """Wait for a slot behind the others: False, holding none, when the queue is full or the wait too long."""
        if self.waiting >= self.queue_limit:
            return False
        self.waiting += 1
        try:
            with anyio.move_on_after(self.queue_seconds):
                await semaphore.acquire()
                return True
            return False
        finally:
            self.waiting -= 1

    def _note_shed(self) -> None:
        """Count a shed request; log at most once a second, with how many since the last line."""
        self.shed += 1
        now = time.monotonic()
        if now - self._logged[0] >= LOG_EVERY_SECONDS:
            since = self.shed - self._logged[1]
            log.warning("overloaded: %d requests shed (503) since the last report, %d waiting", since, self.waiting)
            self._logged = (now, self.shed)


async def _shed(send: Send) -> None:
    body = json.dumps({"error": "overloaded", "retry_after": RETRY_AFTER_SECONDS}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
