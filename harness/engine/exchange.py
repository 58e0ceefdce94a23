"""HTTP to the target as one caller, through one httpx transport, each exchange kept as data.

The transport is the seam: real TCP by default, `httpx.MockTransport` (or any other) in tests, so that
every check can be driven in-process. A request whose connection breaks (a reset, a keep-alive the
server closed, a read timeout) is sent once more on a fresh connection, and the exchange says so; one
that fails twice comes back unanswered (`status == 0`, `failure` set), never as an exception: a target
that misbehaves costs the findings of that request, not the run.

Repro lines are rendered by schemathesis's curl generator and never carry a secret: a principal's
credentials become `$IAM_TOKEN_<PRINCIPAL>`, which the report tells how to set.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from schemathesis.core import curl as schemathesis_curl

__all__ = ["Caller", "Exchange", "RefusedByConfig", "leaks_in", "lookup", "token_variable"]

REQUEST_TIMEOUT = 10.0
_BODY_EXCERPT = 200
# Failures of a connection rather than of the server's answer: worth one more try on a fresh connection.
_RETRIED = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout, httpx.ConnectError)
# Header names whose values are secrets wherever they appear in a repro line.
_SECRET_HEADERS = re.compile(r"(?i)^(authorization|cookie|proxy-authorization|x-api-key|.*token.*|.*secret.*)$")

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


class RefusedByConfig(httpx.TransportError):
    """A request the config lists under `never`: the run's transport refused it, and it was not sent."""


def leaks_in(text: str) -> list[str]:
    """The fragments of `text` that reveal SQL, database errors or stack traces."""
    return [m.group(0) for p in _LEAK_PATTERNS if (m := p.search(text))]


def lookup(document: Any, dotted: str) -> Any:
    """`a.b.c` (or `$.a.b.c`, `a.0.c` for a list item) in a decoded JSON document, or None where a step is missing."""
    node = document
    path = dotted[2:] if dotted.startswith("$.") else dotted
    for step in path.split("."):
        if isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return None
    return node


def token_variable(name: str) -> str:
    """The environment variable a repro line reads a principal's credential from: `IAM_TOKEN_ORG1_ADMIN`."""
    return "IAM_TOKEN_" + (re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper() or "ANONYMOUS")


@dataclass(frozen=True)
class Exchange:
    """One request and its response, as evidence (`status` 0: no answer, `failure` says why)."""

    method: str
    url: str
    status: int
    text: str
    curl: str
    headers: dict[str, str] = field(default_factory=dict, compare=False)
    seconds: float = field(default=0.0, compare=False)
    retried: str | None = field(default=None, compare=False)  # why it was sent a second time, if it was
    failure: str | None = field(default=None, compare=False)  # the transport error, when never answered
    refused: bool = field(default=False, compare=False)  # not sent: the config lists it under `never`

    def json(self) -> Any:
        """The decoded body, or None when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def answered(self) -> bool:
        """Whether the target answered at all."""
        return self.status != 0

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    def line(self) -> str:
        """`METHOD path -> status` with a short excerpt of the body."""
        if not self.answered:
            return f"{self.method} {self.url} -> no answer ({self.failure})"
        excerpt = " ".join(self.text.split())[:_BODY_EXCERPT]
        retried = f" (after a retry: {self.retried})" if self.retried else ""
        return f"{self.method} {self.url} -> {self.status} {excerpt}".rstrip() + retried


class Caller:
    """Speaks to the target as one principal (or anonymously, with no headers)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        *,
        name: str = "anonymous",
        transport: httpx.BaseTransport | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.presented_at = time.monotonic()  # when these credentials were handed over
        self._client = httpx.Client(base_url=base_url, headers=self.headers, timeout=timeout, transport=transport)

    def present(self, headers: dict[str, str]) -> None:
        """Present other credentials from now on (e.g. a freshly minted session token)."""
        for key in self.headers:
            self._client.headers.pop(key, None)
        self.headers = dict(headers)
        self.presented_at = time.monotonic()
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
        form: dict[str, Any] | None = None,
    ) -> Exchange:
        """Send one request (a JSON `body`, or a `form`); a broken connection is retried once on a fresh one."""
        started = time.monotonic()
        request = self._build(method, path, body, params, headers, form)
        url = request.url.raw_path.decode("ascii", "replace")
        repro = self._curl(request)
        retried: str | None = None
        for attempt in (1, 2):
            try:
                response = self._client.send(request)
                break
            except _RETRIED as exc:
                reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
                if attempt == 2:
                    seconds = time.monotonic() - started
                    return Exchange(method, url, 0, "", repro, {}, seconds, retried=retried, failure=reason)
                retried = reason
                request = self._build(method, path, body, params, headers, form)  # a stream is read once
            except httpx.TransportError as exc:  # not a connection's fault (e.g. an invalid URL): no retry
                reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
                refused = isinstance(exc, RefusedByConfig)
                seconds = time.monotonic() - started
                return Exchange(method, url, 0, "", repro, {}, seconds, failure=reason, refused=refused)
        return Exchange(
            method=method,
            url=url,
            status=response.status_code,
            text=response.text,
            curl=repro,
            headers=dict(response.headers),
            seconds=time.monotonic() - started,
            retried=retried,
        )

    def _build(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
        form: dict[str, Any] | None,
    ) -> httpx.Request:
        if form is not None:
            return self._client.build_request(method, path, data=form, params=params or None, headers=headers)
        return self._client.build_request(method, path, json=body, params=params or None, headers=headers)

    def _curl(self, request: httpx.Request) -> str:
        """The request as a curl line (schemathesis's rendering), with every secret as an environment variable."""
        variable = token_variable(self.name)
        shown: dict[str, str] = {}
        for key, value in request.headers.items():
            lowered = key.lower()
            if lowered in {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length"}:
                continue
            if any(k.lower() == lowered and v == value for k, v in self.headers.items()):
                value = f"Bearer ${variable}" if value.startswith("Bearer ") else f"${variable}"
            elif _SECRET_HEADERS.match(key):
                value = f"${variable}_{re.sub(r'[^A-Za-z0-9]+', '_', key).upper()}"
            shown[key] = value
        command = schemathesis_curl.generate(
            method=request.method,
            url=str(request.url),
            body=request.content or None,
            verify=True,
            headers=shown,
            known_generated_headers={},
        ).command
        # schemathesis quotes with '...', in which a shell expands nothing: the variables need "...".
        return re.sub(r"'([^'\"]*\$IAM_TOKEN_[A-Z0-9_]+[^'\"]*)'", r'"\1"', command)
