"""The issuer's JWKS on loopback, for targets that fetch keys by URL, counting every fetch.

A target that caches keys fetches once per cache period; one that refetches for every unknown `kid`
lets forged tokens make it hammer its issuer. The count, readable over HTTP by any process of the run
(`fetches(url)`), is how check C1 tells the two apart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from harness.clerk.issuer import Issuer

__all__ = ["JWKS_MAX_AGE", "JWKS_PATH", "JwksServer", "fetches", "in_thread", "serving"]

S = TypeVar("S", bound=ThreadingHTTPServer)

JWKS_PATH = "/.well-known/jwks.json"
JWKS_MAX_AGE = 300  # seconds a target may cache the keys (Cache-Control max-age)
_COUNT_PATH = "/iam-harness/fetches"


class JwksServer(ThreadingHTTPServer):
    """Serves the issuer's current JWKS (rotations show at once) and counts the fetches."""

    daemon_threads = True

    def __init__(self, issuer: Issuer, port: int = 0, max_age: int = JWKS_MAX_AGE) -> None:
        self.issuer = issuer
        self.max_age = max_age
        self.count = 0
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        """The JWKS URL a target is told to trust."""
        return f"http://127.0.0.1:{self.server_address[1]}{JWKS_PATH}"

    def fetched(self) -> None:
        """Count one fetch."""
        with self._lock:
            self.count += 1


class _Handler(BaseHTTPRequestHandler):
    server: JwksServer

    def do_GET(self) -> None:
        if self.path == JWKS_PATH:
            self.server.fetched()
            self._json(json.dumps(self.server.issuer.jwks).encode(), f"public, max-age={self.server.max_age}")
        elif self.path == _COUNT_PATH:
            self._json(json.dumps({"fetches": self.server.count}).encode(), "no-store")
        else:
            self.send_error(404)

    def _json(self, body: bytes, cache: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", cache)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def in_thread(server: S, name: str) -> Iterator[S]:
    """Serve `server` on a daemon thread for as long as the block runs; shut it down and close it after."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serving(issuer: Issuer, port: int = 0) -> Iterator[JwksServer]:
    """A JWKS server on a loopback thread for as long as the block runs."""
    with in_thread(JwksServer(issuer, port), "jwks") as server:
        yield server


def fetches(jwks_url: str) -> int:
    """How many times the JWKS at `jwks_url` (a harness `JwksServer`) has been fetched so far."""
    parts = urlsplit(jwks_url)
    answer = httpx.get(f"{parts.scheme}://{parts.netloc}{_COUNT_PATH}", timeout=5)
    answer.raise_for_status()
    count: int = answer.json()["fetches"]
    return count
