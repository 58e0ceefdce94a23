"""The schema tells a client (and the harness) exactly who may call each operation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.faults import Fault
from tests.app.support import TestClient

METHODS = ("get", "put", "post", "patch", "delete")
PUBLIC = {"GET /health", "POST /webhooks/clerk"}
WEBHOOK = "POST /webhooks/clerk"


@pytest.fixture
def schema(client: TestClient) -> dict[str, Any]:
    got = client.get("/openapi.json")
    assert got.status_code == 200
    document: dict[str, Any] = got.json()
    return document


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def test_one_bearer_security_scheme(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"] == {
        "ClerkSession": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Clerk session token: `Authorization: Bearer <jwt>`.",
        }
    }


def test_every_operation_declares_its_security(schema: dict[str, Any]) -> None:
    ops = operations(schema)
    assert set(ops) == {
        "GET /health",
        "GET /api/me",
        "GET /api/roles",
        "GET /api/members",
        "POST /api/members",
        "GET /api/members/{user_id}",
        "PUT /api/members/{user_id}/roles",
        "DELETE /api/members/{user_id}",
        "GET /api/invites",
        "POST /api/invites",
        "DELETE /api/invites/{invite_id}",
        "POST /api/invites/accept",
        "GET /api/contacts",
        "POST /api/contacts",
        "GET /api/contacts/search",
        "GET /api/contacts/export.csv",
        "POST /api/contacts/bulk-delete",
        "GET /api/contacts/{contact_id}",
        "PATCH /api/contacts/{contact_id}",
        "DELETE /api/contacts/{contact_id}",
        "GET /api/deals",
        "POST /api/deals",
        "GET /api/deals/{deal_id}",
        "PATCH /api/deals/{deal_id}",
        "DELETE /api/deals/{deal_id}",
        "GET /api/deals/{deal_id}/notes",
        "POST /api/deals/{deal_id}/notes",
        "GET /api/deals/{deal_id}/notes/{note_id}",
        "PATCH /api/deals/{deal_id}/notes/{note_id}",
        "DELETE /api/deals/{deal_id}/notes/{note_id}",
        "POST /webhooks/clerk",
    }
    for name, op in ops.items():
        expected: list[dict[str, list[str]]] = [] if name in PUBLIC else [{"ClerkSession": []}]
        assert op["security"] == expected, name


def test_only_me_and_accepting_an_invite_are_about_the_caller_alone(schema: dict[str, Any]) -> None:
    # Any signed-in user may accept an invite addressed to them: no role of an organisation is asked for.
    about_the_caller = [name for name, op in operations(schema).items() if op.get("x-iam-self")]
    assert sorted(about_the_caller) == ["GET /api/me", "POST /api/invites/accept"]


def test_pages_are_not_in_the_schema(schema: dict[str, Any]) -> None:
    assert not {"/dashboard", "/sign-in"} & set(schema["paths"])


def test_path_ids_are_uuids_and_bodies_are_declared(schema: dict[str, Any]) -> None:
    for name, op in operations(schema).items():
        for parameter in op.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"]["format"] == "uuid", name
        if name.split()[0] in ("POST", "PUT", "PATCH"):
            body = op["requestBody"]["content"]["application/json"]["schema"]
            # Clerk's envelope is Clerk's to extend: the webhook takes fields it does not know.
            assert body["type"] == "object" and body["additionalProperties"] is (name == WEBHOOK), name


def test_the_webhook_declares_its_signature_headers_and_answers(schema: dict[str, Any]) -> None:
    op = operations(schema)[WEBHOOK]
    headers = {p["name"] for p in op["parameters"] if p["in"] == "header" and p["required"]}
    assert headers == {"svix-id", "svix-timestamp", "svix-signature"}
    assert set(op["requestBody"]["content"]["application/json"]["schema"]["required"]) == {"type", "data"}
    assert set(op["responses"]) == {"200", "400", "404", "413"}


def test_every_success_and_refusal_has_a_documented_shape(schema: dict[str, Any]) -> None:
    for name, op in operations(schema).items():
        responses = op["responses"]
        success = [status for status in responses if status.startswith("2")]
        assert len(success) == 1, name
        if success[0] != "204":
            content = responses[success[0]]["content"]
            assert content and all("schema" in media for media in content.values()), name
        if name not in PUBLIC:
            assert {"401", "403"} <= set(responses), name
        if "{" in name:
            assert "404" in responses, name


def test_paged_lists_document_their_parameters_and_total(schema: dict[str, Any]) -> None:
    ops = operations(schema)
    for name in ("GET /api/contacts", "GET /api/contacts/search", "GET /api/deals"):
        parameters = {p["name"]: p for p in ops[name]["parameters"]}
        limit = parameters["limit"]["schema"]
        assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == ("integer", 1, 100, 50), name
        assert parameters["offset"]["schema"]["minimum"] == 0, name
        assert "X-Total-Count" in ops[name]["responses"]["200"]["headers"], name
    search = {p["name"]: p for p in ops["GET /api/contacts/search"]["parameters"]}
    assert search["q"]["required"] is True and search["q"]["schema"]["maxLength"] == 200
    assert "text/csv" in ops["GET /api/contacts/export.csv"]["responses"]["200"]["content"]


README = Path(__file__).resolve().parents[2] / "app" / "README.md"


def test_the_readme_lists_every_operation(schema: dict[str, Any]) -> None:
    rows = re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`?]+)(?:\?[^`]*)?` \|", README.read_text(), re.M)
    assert {f"{method} {path}" for method, path in rows} == set(operations(schema))


def test_the_readme_lists_every_fault() -> None:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| ", README.read_text(), re.M)
    assert {row for row in rows if row in {f.value for f in Fault}} == {f.value for f in Fault}
