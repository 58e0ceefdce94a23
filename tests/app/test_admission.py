"""Admission: no more requests served at once than there are database connections, a bounded queue, then 503.

In-process on a small ASGI app (milliseconds), and on the app itself with a pool of two connections and fifty
requests at once: without admission, that many requests wedge the pool (threads waiting for connections held by
requests waiting for threads) until the pool gives up on them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from app.admission import RETRY_AFTER_SECONDS, Admission
from app.config import Settings, SettingsError, load_settings
from app.main import create_app
from app.migrations import upgrade
from tests.app.support import ActiveOrg, Minter, clerk_id

AT_ONCE = 128  # three times the worker threads: enough to fill them all with requests waiting for a connection
EACH = 4  # requests each client sends, one after another


class Held:
    """An ASGI app whose requests are answered when `release` is set; `/health` at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/health":
            self.entered += 1
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never came to pass")


def _client(app: Admission) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test")


def test_past_the_slots_a_request_waits_its_turn_and_past_the_queue_it_is_shed() -> None:
    asyncio.run(_waits_then_shed())


async def _waits_then_shed() -> None:
    held = Held()
    gate = Admission(held, slots=2, queue_limit=1, queue_seconds=5)
    async with _client(gate) as client:
        served = [asyncio.create_task(client.get("/work")) for _ in range(2)]
        await _until(lambda: held.entered == 2)
        queued = asyncio.create_task(client.get("/work"))
        await _until(lambda: gate.waiting == 1)
        shed = await client.get("/work")  # a second waiter: the queue is full
        assert shed.status_code == 503 and shed.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        assert shed.json() == {"error": "overloaded", "retry_after": RETRY_AFTER_SECONDS}
        assert (await client.get("/health")).status_code == 200  # never queued
        assert held.entered == 2 and not queued.done()
        held.release.set()
        assert [r.status_code for r in await asyncio.gather(*served, queued)] == [200, 200, 200]
    assert gate.serving == 0 and gate.waiting == 0 and gate.shed == 1


def test_a_request_that_waits_too_long_is_shed_and_holds_nothing() -> None:
    asyncio.run(_waits_too_long())


async def _waits_too_long() -> None:
    held = Held()
    gate = Admission(held, slots=1, queue_limit=10, queue_seconds=0.05)
    async with _client(gate) as client:
        first = asyncio.create_task(client.get("/work"))
        await _until(lambda: held.entered == 1)
        late = await client.get("/work")
        assert late.status_code == 503 and held.entered == 1 and gate.waiting == 0
        held.release.set()
        assert (await first).status_code == 200
        assert (await client.get("/work")).status_code == 200  # the slot came back
    assert gate.serving == 0


@contextmanager
def _served(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn over loopback TCP in a thread of this process (as `python -m app serve` serves
    it: one event loop, anyio's worker threads), stopped on leaving; its base URL."""
    upgrade(settings.database_url, app_role=settings.database_app_role, faults=settings.app_faults)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_more_requests_than_connections_are_all_served(make_settings: Callable[..., Settings], minter: Minter) -> None:
    """128 clients at once on two pooled connections, each sending four requests one after another, over TCP:
    every one answered (a wedged pool answers each with a 500 once its timeout passes), and `/health` at once after."""
    with _served(make_settings(database_pool_size=1)) as base_url, httpx.Client(base_url=base_url) as http:
        org, admin = ActiveOrg(), clerk_id("user")
        assert http.get("/api/me", headers=minter.headers(admin, org=org)).status_code == 200
        sub = clerk_id("user")
        added = http.post(
            "/api/members", headers=minter.headers(admin, org=org), json={"external_id": sub, "roles": ["Member"]}
        )
        assert added.status_code == 201, added.text
        headers = minter.headers(sub, org=org)
        start = threading.Barrier(AT_ONCE)

        def one(_: int) -> list[int]:
            with httpx.Client(base_url=base_url, timeout=30) as own:
                start.wait(timeout=30)
                return [
                    own.post("/api/contacts", headers=headers, json={"name": "n"}).status_code
                    if n % 2
                    else own.get("/api/contacts", headers=headers).status_code
                    for n in range(EACH)
                ]

        with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
            statuses = Counter(status for each in pool.map(one, range(AT_ONCE)) for status in each)
        assert statuses == {200: AT_ONCE * EACH // 2, 201: AT_ONCE * EACH // 2}
        health = http.get("/health", timeout=2)
        assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_pool_size_that_is_no_positive_number_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_POOL_SIZE"):
        load_settings(
            database_url="postgresql://app@localhost/app",
            clerk_jwks_url="https://example.clerk.accounts.dev/.well-known/jwks.json",
            clerk_issuer="https://example.clerk.accounts.dev",
            database_pool_size=value,
        )
