"""Serving a practice target's ASGI app with uvicorn on a free loopback port, in a thread of the test process
(so that a test can read the app's own counters while the harness runs against it in a subprocess)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

START_TIMEOUT = 10.0


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until_healthy(base: str, health: str) -> None:
    """Until `health` answers 200, for START_TIMEOUT seconds at most."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + health, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)


@contextmanager
def serving(app: Any, health: str) -> Iterator[str]:
    """Serve `app` until the block ends; yield its base URL once `health` answers 200."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(base, health)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
