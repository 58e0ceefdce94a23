"""The target's OpenAPI schema, parsed once by schemathesis into operations that each know who may call it.

schemathesis reads the document (references resolved, OpenAPI 3.0 types converted to JSON Schema); every
operation keeps its schemathesis handle, so that the fuzz's cases are drawn from the same parse. An operation
is public when it declares `security: []` (or the config lists it under `[fuzz] public`); a schema that
declares no security leaves every operation guarded. One is about the caller alone when it carries
`x-iam-self: true`. An operation schemathesis cannot read is kept by name, with the reason, and not fuzzed.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from harness.config.model import TargetConfig, load_schema_file
from harness.engine.exchange import Caller
from harness.errors import ConfigError, TargetUnreachable

__all__ = [
    "ApiSchema",
    "Operation",
    "Unreadable",
    "body_fields",
    "example_body",
    "fill_path",
    "invent_id",
    "load_schema",
    "parse_schema",
]

_METHODS = ("get", "put", "post", "delete", "patch")
_PARAM = re.compile(r"{([^}/]+)}")


@dataclass(frozen=True)
class Operation:
    """One method on one path, as the schema declares it."""

    method: str
    path: str
    public: bool
    self_only: bool
    body_schema: dict[str, Any] | None  # the JSON body's schema, self-contained (its references point inside it)
    param_schemas: tuple[tuple[str, dict[str, Any]], ...] = ()  # path parameter -> its JSON Schema
    search_params: tuple[str, ...] = ()  # query parameters that take free text (a search can be sent through them)
    # query, header and cookie parameters: (where, name, JSON Schema), for the probes that fill them by kind
    other_params: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    source: Any = field(default=None, compare=False, repr=False)  # schemathesis's operation, to draw cases from

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> tuple[str, ...]:
        """The names of the path's parameters, in order."""
        return tuple(_PARAM.findall(self.path))

    def param_schema(self, name: str) -> dict[str, Any]:
        """The JSON Schema of one path parameter ({} when the schema does not say)."""
        return next((found for param, found in self.param_schemas if param == name), {})

    @property
    def mutating(self) -> bool:
        """Whether the method changes state."""
        return self.method != "GET"


@dataclass(frozen=True)
class Unreadable:
    """An operation schemathesis could not read (an unresolvable reference, say): named, never fuzzed."""

    method: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class ApiSchema:
    """The document as read, and its operations in path order."""

    document: dict[str, Any] = field(repr=False)
    operations: tuple[Operation, ...]
    unreadable: tuple[Unreadable, ...] = ()

    def names(self) -> list[tuple[str, str]]:
        """`(METHOD, /path)` of every operation the document declares, read or not (what `never` may name)."""
        return sorted([(op.method, op.path) for op in self.operations] + [(u.method, u.path) for u in self.unreadable])


def parse_schema(document: dict[str, Any], where: str = "the schema") -> ApiSchema:
    """Every operation of the document, in path order, from one schemathesis parse."""
    import schemathesis
    from schemathesis.core.errors import LoaderError
    from schemathesis.core.result import Ok

    default_security = document.get("security")
    read: list[Operation] = []
    unreadable: list[Unreadable] = []
    try:
        loaded = schemathesis.openapi.from_dict(document)
    except LoaderError as exc:
        raise ConfigError(f"{where}: schemathesis cannot read it: {_first_line(str(exc))}") from None
    for result in loaded.get_all_operations():
        if not isinstance(result, Ok):
            error = result.err()
            reason = _first_line(str(error)) or type(error).__name__
            unreadable.append(Unreadable(str(error.method or "").upper(), str(error.path or ""), reason))
            continue
        found = result.ok()
        if found.method.lower() not in _METHODS:
            continue
        raw = found.definition.raw
        security = raw.get("security", default_security)
        body = next((b for b in found.body if b.media_type == "application/json"), None)
        read.append(
            Operation(
                method=found.method.upper(),
                path=found.path,
                # Public only where the schema says so (`security: []`, or an empty requirement among the
                # options): a schema that declares no security at all must not make every operation public,
                # or no refusal could ever be demanded. `[fuzz] public` names the rest.
                public=isinstance(security, list) and (security == [] or {} in security),
                self_only=bool(raw.get("x-iam-self", False)),
                body_schema=dict(body.optimized_schema) if body is not None else None,
                param_schemas=tuple(sorted((p.name, dict(p.optimized_schema)) for p in found.path_parameters)),
                search_params=tuple(sorted(p.name for p in found.query if _free_text(p.optimized_schema))),
                other_params=tuple(
                    (where, p.name, dict(p.optimized_schema))
                    for where, params in (("query", found.query), ("header", found.headers), ("cookie", found.cookies))
                    for p in params
                ),
                source=found,
            )
        )
    read.sort(key=lambda op: (op.path, _METHODS.index(op.method.lower())))
    return ApiSchema(document, tuple(read), tuple(unreadable))


def _free_text(node: Any) -> bool:
    """Whether a parameter's schema takes any text: a string with no enumeration, constant or format."""
    return (
        isinstance(node, dict)
        and node.get("type") == "string"
        and not any(key in node for key in ("enum", "const", "format"))
    )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def body_fields(operation: Operation) -> tuple[str, ...]:
    """The top-level property names of the operation's JSON body, required or not."""
    if operation.body_schema is None:
        return ()
    root = operation.body_schema
    node = _resolve(root, root)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            found = _resolve(root, option).get("properties")
            if isinstance(found, dict):
                return tuple(found)
    props = node.get("properties", {})
    return tuple(props) if isinstance(props, dict) else ()


def invent_id(param_schema: dict[str, Any], rng: random.Random, like: str | None = None) -> str:
    """An id nobody has, of the type the schema gives the parameter: an integer, a uuid, or a string. Given a real
    id `like`, a string id has its shape: the same length and prefix, each other letter or digit replaced by
    one of its kind, so that a target validating ids by pattern answers it as it answers a missing id, not as
    a malformed one."""
    if like is not None and param_schema.get("type") not in ("integer", "number"):
        if like.isdigit():
            return invent_id({"type": "integer"}, rng)
        if _UUID.fullmatch(like):
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        pattern = param_schema.get("pattern")
        for _ in range(20):
            found = _lookalike(like, rng)
            if found != like and (not isinstance(pattern, str) or _matches(pattern, found)):
                return found
    kind = param_schema.get("type")
    if kind == "integer" or any(o.get("type") == "integer" for o in param_schema.get("anyOf", [])):
        low = int(param_schema.get("minimum", 1))
        high = int(param_schema.get("maximum", 2**31 - 1))
        # far from the small ids a fresh database hands out, yet inside the declared range
        return str(rng.randint(max(low, (low + high) // 2), high))
    if param_schema.get("format") == "uuid" or kind is None:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    length = max(int(param_schema.get("minLength", 12)), 12)
    return f"{rng.getrandbits(64):016x}"[: min(length, int(param_schema.get("maxLength", length)))]


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PREFIX = re.compile(r"^(.*[_\-:.])(?=[^_\-:.]{6,}$)")  # "n_", "acct-" before a long enough random part


def _lookalike(value: str, rng: random.Random) -> str:
    prefix = m.group(1) if (m := _PREFIX.match(value)) else ""
    out = []
    for ch in value[len(prefix) :]:
        if ch.isdigit():
            out.append(rng.choice("0123456789"))
        elif ch.islower():
            out.append(rng.choice("abcdefghijklmnopqrstuvwxyz" if ch.isascii() else ch))
        elif ch.isupper():
            out.append(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ" if ch.isascii() else ch))
        else:
            out.append(ch)
    return prefix + "".join(out)


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a pattern Python cannot read says nothing against the id


def fill_path(path: str, value: str) -> str:
    """The path with every parameter replaced by `value`."""
    return _PARAM.sub(value, path)


def example_body(operation: Operation, text: str = "example", *, complete: bool = False) -> Any:
    """A valid JSON body for the operation, or None if it takes none: the required fields only, or `complete`,
    every property the schema declares (some servers refuse a partial body outright)."""
    if operation.body_schema is None:
        return None
    return _example(operation.body_schema, operation.body_schema, text, depth=0, complete=complete)


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node` with its local reference followed (within `root`, where schemathesis bundled what it refers to)."""
    seen = 0
    while "$ref" in node and seen < 20:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        target: Any = root
        for step in ref[2:].split("/"):
            target = target.get(step, {}) if isinstance(target, dict) else {}
        node = target if isinstance(target, dict) else {}
        seen += 1
    return node


def _read_only(node: dict[str, Any]) -> bool:
    return bool(node.get("readOnly")) or node.get("not") == {}


def _example(schema: dict[str, Any], node: dict[str, Any], text: str, depth: int, *, complete: bool = False) -> Any:
    node = _resolve(schema, node)
    if depth > 8:
        return None
    for key in ("anyOf", "oneOf", "allOf"):
        if node.get(key):
            options = [_resolve(schema, o) for o in node[key]]
            usable = [o for o in options if o.get("type") != "null"] or options
            return _example(schema, usable[0], text, depth + 1, complete=complete)
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    kind = node.get("type")
    if kind not in ("object", "array") and isinstance(node.get("examples"), list) and node["examples"]:
        return node["examples"][0]  # the schema's own example of a value it accepts (a role's name, say)
    if kind == "object" or "properties" in node:
        props = node.get("properties", {})
        names = [*node.get("required", []), *(n for n in props if complete and n not in node.get("required", []))]
        # schemathesis rewrites a read-only property as `{"not": {}}`: nothing may be sent there
        read_only = {n for n in names if complete and _read_only(_resolve(schema, props.get(n, {})))}
        return {
            name: _example(schema, props.get(name, {}), text, depth + 1, complete=complete)
            for name in names
            if name not in read_only
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(int(node.get("minimum", 1)), 1)
    if kind == "number":
        return float(node.get("minimum", 1))
    if kind == "boolean":
        return False
    fmt = node.get("format")
    if fmt == "email":
        return f"{text}@example.org"
    if fmt == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    return text


def load_schema(config: TargetConfig, base_url: str | None, *, transport: Any = None) -> ApiSchema:
    """The target's OpenAPI document: the config's local `schema_file`, or read anonymously from the target as any
    client would. Anything that is not an OpenAPI document (an HTML page, a 404, other JSON) is a config error
    naming the field, never a run that goes on to answer NO."""
    if config.schema_file is not None:
        where = f"config {config.source}: [target] schema_file {config.schema_file}"
        return parse_schema(_openapi(load_schema_file(config), where), where)
    if base_url is None or config.schema is None:
        raise ConfigError(f"config {config.source}: [target] schema: a path on the target needs the target's URL")
    with Caller(base_url, transport=transport) as anonymous:
        got = anonymous.call("GET", config.schema)
    where = f"config {config.source}: [target] schema {config.schema}"
    if not got.answered:
        raise TargetUnreachable(f"{base_url}{config.schema} did not answer: {got.failure}")
    if not got.ok:
        raise ConfigError(f"{where} answered {got.status}, not an OpenAPI document")
    return parse_schema(
        _openapi(got.json(), f"{where} answered {got.headers.get('content-type', 'something')}, which"), where
    )


def _openapi(document: Any, where: str) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise ConfigError(f"{where} is not an OpenAPI document (no 'paths' object)")
    if not str(document.get("openapi", "")).startswith("3."):
        raise ConfigError(f"{where} is not an OpenAPI 3 document (no 'openapi: 3.x' field)")
    if (problem := _shape_problem(document)) is not None:
        raise ConfigError(f"{where} is not a well-formed OpenAPI document: {problem}")
    return document


def _shape_problem(document: dict[str, Any]) -> str | None:
    """The first part of the document the harness reads that has the wrong type, named by its JSON path."""
    if not isinstance(document.get("security", []), list):
        return "security must be a list of requirements"
    for path, item in document["paths"].items():
        if not isinstance(item, dict):
            return f"paths.{path} must be an object"
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            if not isinstance(op, dict):
                return f"paths.{path}.{method} must be an object"
            if not isinstance(op.get("security", []), list):
                return f"paths.{path}.{method}.security must be a list of requirements"
            for key, node in (("parameters", op.get("parameters", [])), ("parameters", item.get("parameters", []))):
                if not isinstance(node, list) or not all(isinstance(p, dict) for p in node):
                    return f"paths.{path}.{method}.{key} must be a list of objects"
    return None
