"""Operations as a config file names them: `METHOD /path` exactly, or as a pattern (`* /admin/*`).

A path parameter's name is the config's own (`/deals/{deals}/notes/{id}`) and need not be the schema's
(`/deals/{deal_id}/notes/{note_id}`): operations are compared with every parameter reduced to `{}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "METHODS",
    "OperationPattern",
    "OperationRef",
    "parse_operation",
    "parse_pattern",
    "template_key",
    "unmatched",
]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"\{[^{}/]*\}")


def template_key(path: str) -> str:
    """The path with every `{parameter}` reduced to `{}`, so templates compare whatever their names."""
    return _PARAM.sub("{}", path)


@dataclass(frozen=True)
class OperationRef:
    """An operation named as `METHOD /path`."""

    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def names(self, method: str, path_template: str) -> bool:
        """Whether this names the schema's operation `method path_template`."""
        return self.method == method.upper() and template_key(self.path) == template_key(path_template)


@dataclass(frozen=True)
class OperationPattern:
    """`METHOD /path` where the method may be `*` and the path a template or a glob (`*`: any characters,
    `/` included, so that `/admin/*` covers everything under /admin)."""

    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def matches(self, method: str, path_template: str) -> bool:
        """Whether the operation `method path_template` (a schema's path template) is one this pattern names."""
        if self.method not in ("*", method.upper()):
            return False
        literal = template_key(self.path).split("*")
        return re.fullmatch(".*".join(map(re.escape, literal)), template_key(path_template)) is not None


def _split(value: Any, *, glob: bool) -> tuple[str, str]:
    methods = ("*", *METHODS) if glob else METHODS
    shape = "'METHOD /path'" + (" (the method may be '*', the path may use '*')" if glob else "")
    if not isinstance(value, str):
        raise ValueError(f"expected {shape}, got {value!r}")
    method, _, path = value.strip().partition(" ")
    path = path.strip()
    if method.upper() not in methods:
        raise ValueError(f"expected {shape} with METHOD one of {', '.join(methods)}, got {value!r}")
    if not path.startswith("/") and not (glob and path == "*"):
        raise ValueError(f"expected {shape} whose path starts with '/', got {value!r}")
    if " " in path:
        raise ValueError(f"expected {shape} with no space in the path, got {value!r}")
    return method.upper(), path


def parse_operation(value: Any) -> OperationRef:
    """`"post /api/x"` -> OperationRef("POST", "/api/x"); ValueError saying what was expected otherwise."""
    if isinstance(value, OperationRef):
        return value
    return OperationRef(*_split(value, glob=False))


def parse_pattern(value: Any) -> OperationPattern:
    """`"* /admin/*"` -> OperationPattern("*", "/admin/*"); ValueError saying what was expected otherwise."""
    if isinstance(value, OperationPattern):
        return value
    return OperationPattern(*_split(value, glob=True))


def unmatched(
    patterns: Iterable[OperationPattern | OperationRef], operations: Iterable[tuple[str, str]]
) -> list[OperationPattern | OperationRef]:
    """The patterns (or exact references) that name none of `operations` (`(METHOD, path template)` pairs)."""
    known = list(operations)
    out: list[OperationPattern | OperationRef] = []
    for pattern in patterns:
        test = pattern.matches if isinstance(pattern, OperationPattern) else pattern.names
        if not any(test(method, path) for method, path in known):
            out.append(pattern)
    return out
