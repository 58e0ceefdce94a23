"""The run's one transport to the target, which refuses what the config says never to call.

Every phase (world building, the role matrix, cross-org probes, state re-reads, C1) reaches the target
through callers built on this transport, so that `[fuzz] never` holds by construction: a request that
matches a `never` entry is refused here, before a byte is sent, and comes back to its caller as an
unanswered exchange. A pattern is `METHOD /path` where the path may be a template (`/admin/{id}`) or a
glob (`/admin/*`), and the method may be `*`.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable

import httpx

from harness.engine.exchange import RefusedByConfig

__all__ = ["GuardedTransport", "RefusedByConfig", "pattern_regex"]


def pattern_regex(path: str) -> re.Pattern[str]:
    """A concrete path matches the template or glob `path`: `{name}` is one segment, `*` anything."""
    out = []
    for part in re.split(r"(\{[^}/]+\}|\*)", path):
        if part == "*":
            out.append(".*")
        elif part.startswith("{") and part.endswith("}"):
            out.append("[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "/?$")


class GuardedTransport(httpx.BaseTransport):
    """Wraps the real transport; shared by every caller of a run, so closing a caller leaves it open."""

    def __init__(
        self,
        never: Iterable[tuple[str, str]] = (),
        *,
        inner: httpx.BaseTransport | None = None,
        base_path: str = "",
    ) -> None:
        self._inner = inner or httpx.HTTPTransport()
        self._never = [(method.upper(), pattern_regex(path)) for method, path in never]
        self._base_path = base_path.rstrip("/")
        self._lock = threading.Lock()
        self.refused: Counter[str] = Counter()  # `METHOD /path` -> how many requests were refused
        self.sent = 0

    @property
    def guards(self) -> bool:
        """Whether the config lists anything under `never` at all."""
        return bool(self._never)

    def forbids(self, method: str, path: str) -> bool:
        """Whether `method path` (a concrete path, below the target's base path) matches a `never` entry."""
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :] or "/"
        return any(m in ("*", method.upper()) and regex.match(path) for m, regex in self._never)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.forbids(request.method, path):
            with self._lock:
                self.refused[f"{request.method} {path}"] += 1
            raise RefusedByConfig(f"{request.method} {path} is listed under [fuzz] never: not sent", request=request)
        with self._lock:
            self.sent += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Callers close their clients; the run's transport outlives them (`shutdown` ends it)."""

    def shutdown(self) -> None:
        """Close the real transport's connections."""
        self._inner.close()
