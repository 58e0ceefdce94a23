"""HTTP to the target as one caller, each exchange kept with a curl line that reproduces it."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Caller", "Exchange", "leaks_in", "lookup"]

REQUEST_TIMEOUT = 10.0
_BODY_EXCERPT = 200

# What a server must never show a caller: database errors, SQL, stack traces.
_LEAK_PATTERNS = [
    re.compile(p)
    for p in (
        r"(?i)traceback \(most recent call last\)",
        r'(?i)file "[^"]+\.py", line \d+',
        r"(?i)\bsqlstate\b",
        r"(?i)\bpsycopg\d?\b",
        r"(?i)\bsqlalchemy\b",
        r"(?i)invalid input syntax for type",
        r"(?i)syntax error at or near",
        r"(?i)violates (foreign key|unique|not-null|check) constraint",
        r"(?i)relation \"[^\"]+\" does not exist",
        r"\b(ProgrammingError|DataError|IntegrityError|OperationalError|InvalidTextRepresentation)\b",
        r"\bSELECT\s.+\sFROM\s",  # upper case only: prose says "select ... from" too
        r"\b22P02\b",
    )
]


def leaks_in(text: str) -> list[str]:
    """The fragments of `text` that reveal SQL, database errors or stack traces."""
    return [m.group(0) for p in _LEAK_PATTERNS if (m := p.search(text))]


def lookup(document: Any, dotted: str) -> Any:
    """`a.b.c` in a decoded JSON document, or None where a step is missing."""
    node = document
    for step in dotted.split("."):
        if not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


@dataclass(frozen=True)
class Exchange:
    """One request and its response, as evidence."""

    method: str
    url: str
    status: int
    text: str
    curl: str
    headers: dict[str, str] = field(default_factory=dict, compare=False)

    def json(self) -> Any:
        """The decoded body, or None when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    def line(self) -> str:
        """`METHOD path -> status` with a short excerpt of the body."""
        excerpt = " ".join(self.text.split())[:_BODY_EXCERPT]
        return f"{self.method} {self.url} -> {self.status} {excerpt}".rstrip()


class Caller:
    """Speaks to the target as one principal (or anonymously, with no headers)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, *, name: str = "anonymous") -> None:
        self.name = name
        self.base_url = base_url
        self.headers = dict(headers or {})
        self._client = httpx.Client(base_url=base_url, headers=self.headers, timeout=REQUEST_TIMEOUT)

    def present(self, headers: dict[str, str]) -> None:
        """Present other credentials from now on (e.g. a freshly minted session token)."""
        for key in self.headers:
            self._client.headers.pop(key, None)
        self.headers = dict(headers)
        self._client.headers.update(headers)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        """Send one request; transport errors propagate (the target is unreachable)."""
        request = self._client.build_request(method, path, json=body, params=params or None, headers=headers)
        response = self._client.send(request)
        url = request.url.raw_path.decode("ascii", "replace")
        return Exchange(
            method=method,
            url=url,
            status=response.status_code,
            text=response.text,
            curl=self._curl(method, url, body, headers or {}),
            headers=dict(response.headers),
        )

    def _curl(self, method: str, path: str, body: Any, extra: dict[str, str]) -> str:
        parts = ["curl", "-sS", "-X", method, self.base_url + path]
        for key, value in {**self.headers, **extra}.items():
            parts += ["-H", f"{key}: {value}"]
        if body is not None:
            parts += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
        return shlex.join(parts)
