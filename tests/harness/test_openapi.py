"""Reading operations from an OpenAPI schema, and minimal valid bodies for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.config.model import load_config
from harness.engine.exchange import leaks_in, lookup
from harness.engine.schema import body_fields, example_body, fill_path, load_schema, parse_schema
from harness.errors import ConfigError

SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "paths": {
        "/health": {"get": {"security": []}},
        "/api/me": {"get": {"security": [{"S": []}], "x-iam-self": True}},
        "/api/things/{thing_id}": {
            "get": {"security": [{"S": []}]},
            "patch": {
                "security": [{"S": []}],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}},
            },
        },
    },
    "components": {
        "schemas": {
            "T": {
                "type": "object",
                "required": ["name", "email", "kind", "tags", "size"],
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "kind": {"enum": ["a", "b"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "size": {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "null"}]},
                    "optional": {"type": "string"},
                },
            }
        }
    },
}


def test_operations_know_public_and_self() -> None:
    ops = {str(op): op for op in parse_schema(SCHEMA).operations}
    assert set(ops) == {"GET /health", "GET /api/me", "GET /api/things/{thing_id}", "PATCH /api/things/{thing_id}"}
    assert ops["GET /health"].public and not ops["GET /api/me"].public
    assert ops["GET /api/me"].self_only and not ops["GET /api/things/{thing_id}"].self_only
    assert ops["PATCH /api/things/{thing_id}"].path_params == ("thing_id",)
    assert ops["PATCH /api/things/{thing_id}"].mutating and not ops["GET /health"].mutating


def test_schema_wide_security_applies_unless_overridden() -> None:
    schema = {
        "openapi": "3.1.0",
        "security": [{"S": []}],
        "paths": {"/a": {"get": {}}, "/b": {"get": {"security": []}}},
    }
    assert [op.public for op in parse_schema(schema).operations] == [False, True]


def test_example_body_has_required_fields_only() -> None:
    patch = next(op for op in parse_schema(SCHEMA).operations if op.method == "PATCH")
    assert example_body(patch, text="x") == {
        "name": "x",
        "email": "x@example.org",
        "kind": "a",
        "tags": [],
        "size": 3,
    }
    assert example_body(next(op for op in parse_schema(SCHEMA).operations if op.method == "GET")) is None


def test_example_body_takes_a_strings_schema_example() -> None:
    """A string whose valid values the schema cannot bound (a role's name) says one by `examples`; others get the
    probe text, and an object's or array's `examples` are not taken whole."""
    schema = {
        "openapi": "3.1.0",
        "paths": {
            "/invites": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["email", "role", "note", "tags"],
                                    "properties": {
                                        "email": {"type": "string", "format": "email"},
                                        "role": {"type": "string", "examples": ["Member", "Viewer"]},
                                        "note": {"type": "string", "examples": []},
                                        "tags": {"type": "array", "examples": [["x"]]},
                                    },
                                }
                            }
                        }
                    }
                }
            }
        },
    }
    (post,) = parse_schema(schema).operations
    assert example_body(post, text="probe") == {
        "email": "probe@example.org",
        "role": "Member",
        "note": "probe",
        "tags": [],
    }


def test_fill_path() -> None:
    assert fill_path("/api/a/{a_id}/b/{b_id}", "X") == "/api/a/X/b/X"


def test_leak_patterns() -> None:
    assert leaks_in('psycopg.errors.InvalidTextRepresentation: invalid input syntax for type uuid: "user_2x"')
    assert leaks_in('Traceback (most recent call last):\n  File "/srv/app.py", line 3')
    assert leaks_in("SELECT id FROM governance_user_roles WHERE user_id = $1")
    assert not leaks_in('{"error": "internal_error", "request_id": "abc"}')
    assert not leaks_in("Please select a workspace from the list")


def test_lookup() -> None:
    assert lookup({"a": {"b": [1]}}, "a.b") == [1]
    assert lookup({"a": 1}, "a.b") is None


def test_a_schema_that_declares_no_security_leaves_every_operation_guarded() -> None:
    """Otherwise every operation would be public, and no refusal could ever be demanded (M3 could not fail)."""
    ops = parse_schema({"openapi": "3.1.0", "paths": {"/a": {"get": {}}, "/b": {"get": {"security": []}}}}).operations
    assert [(str(op), op.public) for op in ops] == [("GET /a", False), ("GET /b", True)]


@pytest.mark.parametrize(
    ("paths", "named"),
    [
        ({"/x": []}, "paths./x must be an object"),
        ({"/x": {"get": {"security": "none"}}}, "paths./x.get.security must be a list"),
        ({"/x": {"get": {"parameters": {"a": 1}}}}, "paths./x.get.parameters must be a list"),
    ],
)
def test_a_malformed_schema_is_one_line_naming_where(tmp_path: Path, paths: dict[str, object], named: str) -> None:
    schema = tmp_path / "api.json"
    schema.write_text(json.dumps({"openapi": "3.1.0", "paths": paths}))
    config = tmp_path / "t.toml"
    config.write_text(
        f'[target]\nschema_file = "{schema}"\nhealth = "/h"\n[roles]\nadmin = "a"\n'
        '[[principals]]\nname = "p"\norg = "o"\nrole = "a"\nheaders = { "K" = "v" }\n'
        '[[canaries]]\nkey = "x"\nparam = "x_id"\ncreate = "POST /x"\nbody = {}\nid = "id"\nread = "GET /x/{id}"\n'
    )
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("/", "/")):
        load_schema(load_config(config), None)


OPENAPI_30: dict[str, Any] = {
    "openapi": "3.0.3",
    "paths": {
        "/a/{x}": {
            "parameters": [
                {"name": "x", "in": "path", "required": True, "schema": {"$ref": "#/components/schemas/Id"}}
            ],
            "get": {"security": [{"S": []}]},
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/B"}}}},
            },
        },
        "/broken/{y}": {
            "get": {
                "parameters": [
                    {"name": "y", "in": "path", "required": True, "schema": {"$ref": "#/components/schemas/Gone"}}
                ]
            }
        },
    },
    "components": {
        "schemas": {
            "Id": {"type": "integer", "minimum": 5},
            "B": {
                "type": "object",
                "properties": {"n": {"$ref": "#/components/schemas/Id"}, "s": {"type": "string", "nullable": True}},
                "required": ["n", "s"],
            },
        }
    },
}


def test_references_and_openapi_30_types_come_resolved_from_the_one_parse() -> None:
    """Path-level parameters, `$ref`s and OpenAPI 3.0's `nullable` as schemathesis reads them."""
    parsed = parse_schema(OPENAPI_30)
    post = next(op for op in parsed.operations if op.method == "POST")
    assert post.param_schema("x") == {"type": "integer", "minimum": 5}
    assert body_fields(post) == ("n", "s")
    assert example_body(post, text="t") == {"n": 5, "s": "t"}
    assert all(op.source is not None for op in parsed.operations)  # the cases are drawn from the same parse


def test_an_operation_schemathesis_cannot_read_is_named_and_never_fuzzed() -> None:
    parsed = parse_schema(OPENAPI_30)
    assert [str(op) for op in parsed.operations] == ["GET /a/{x}", "POST /a/{x}"]
    assert [(str(u), "Unresolvable reference" in u.reason) for u in parsed.unreadable] == [("GET /broken/{y}", True)]
    assert ("GET", "/broken/{y}") in parsed.names()  # `never` may still name it


def test_a_document_schemathesis_cannot_load_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^api\.json: schemathesis cannot read it: .*Open API 9.0.0"):
        parse_schema({"openapi": "9.0.0", "paths": {}}, "api.json")


def test_search_parameters_are_the_free_text_query_parameters() -> None:
    query = [
        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 50}},
        {"name": "sort", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"]}},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
    ]
    (op,) = parse_schema({"openapi": "3.1.0", "paths": {"/s": {"get": {"parameters": query}}}}).operations
    assert op.search_params == ("q",)
