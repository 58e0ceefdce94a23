"""Failures reach clients as small JSON bodies: no stack trace, no SQL, no database message, ever."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable

import psycopg
import pytest

from app.api.deps import MAX_BODY_BYTES
from tests.app.support import ActiveOrg, Minter, TestClient, clerk_id, create_contact, sign_in

LEAKS = re.compile(
    r"(?i)traceback|sqlstate|psycopg|sqlalchemy|22P02|invalid input syntax|SELECT\s.+\sFROM|governance_|uuid\)",
)


def test_role_query_fault_is_a_generic_500_logged_with_its_sqlstate(
    make_client: Callable[..., TestClient], minter: Minter, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client("user_role_query_uses_clerk_id")
    caplog.set_level(logging.INFO)
    got = client.get("/api/me", headers=minter.headers(clerk_id("user")))
    assert got.status_code == 500
    assert got.json() == {"error": "internal_error", "request_id": got.headers["x-request-id"]}
    assert not LEAKS.search(got.text)
    logged = [r.getMessage() for r in caplog.records if r.name == "app.errors" and r.levelno == logging.ERROR]
    assert len(logged) == 1 and "sqlstate=22P02" in logged[0]
    assert f"request_id={got.headers['x-request-id']}" in logged[0] and "\n" not in logged[0]


def test_role_query_fault_still_provisions(
    make_client: Callable[..., TestClient], minter: Minter, shared_database_url: str
) -> None:
    client = make_client("user_role_query_uses_clerk_id")
    sub = clerk_id("user")
    for path in ("/api/me", "/api/roles", "/api/contacts"):
        got = client.get(path, headers=minter.headers(sub))
        assert got.status_code == 500 and not LEAKS.search(got.text), path
    with psycopg.connect(shared_database_url) as conn:
        rows = conn.execute(
            "SELECT r.name FROM sys_external_identity i "
            "JOIN governance_user_roles ur ON ur.user_id = i.user_id "
            "JOIN governance_roles r ON r.id = ur.role_id WHERE i.external_id = %s",
            (sub,),
        ).fetchall()
    assert rows == [("Admin",)]


def test_validation_errors_do_not_echo_the_input(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter)
    payload = "x' UNION SELECT secret FROM governance_roles --" * 10
    got = client.post("/api/contacts", headers=admin.headers, json={"name": payload})
    assert got.status_code == 422
    assert "UNION" not in got.text and not LEAKS.search(got.text)
    assert got.json()["detail"][0]["loc"] == ["body", "name"]


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    wrong = client.put("/health")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "method_not_allowed"})


def test_health_is_public(client: TestClient) -> None:
    got = client.get("/health")
    assert (got.status_code, got.json()) == (200, {"status": "ok"})
    assert re.fullmatch(r"[0-9a-f]{32}", got.headers["x-request-id"])


def test_a_method_a_path_does_not_take_is_405_with_every_method_it_does(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    contact = create_contact(client, admin)
    for method, path, allow in (
        ("OPTIONS", "/api/contacts", "GET, POST"),
        ("PUT", "/api/contacts", "GET, POST"),
        ("OPTIONS", f"/api/contacts/{contact['id']}", "DELETE, GET, PATCH"),
        # the search's own path, not a contact whose id is "search": 405, never a 422 about a malformed id
        ("PATCH", "/api/contacts/search", "GET"),
        ("PATCH", "/api/contacts/export.csv", "GET"),
        ("PATCH", "/api/contacts/bulk-delete", "POST"),
    ):
        got = client.request(method, path, headers=admin.headers)
        assert (got.status_code, got.headers.get("allow"), got.json()) == (
            405,
            allow,
            {"error": "method_not_allowed"},
        ), (method, path)


def test_the_longest_spelling_of_a_body_the_schema_allows_is_accepted(client: TestClient, minter: Minter) -> None:
    """10,000 characters of notes outside the BMP, as json.dumps writes them (`\\ud83d\\ude00`, 12 bytes each)."""
    admin = sign_in(client, minter, org=ActiveOrg())
    contact = create_contact(client, admin)
    body = json.dumps({"name": "\U0001f600" * 200, "notes": "\U0001f600" * 10_000})
    assert len(body) > 120_000
    headers = {**admin.headers, "Content-Type": "application/json"}
    got = client.patch(f"/api/contacts/{contact['id']}", headers=headers, content=body)
    assert got.status_code == 200 and got.json()["notes"] == "\U0001f600" * 10_000
    too_big = client.patch(f"/api/contacts/{contact['id']}", headers=headers, content=b" " * (MAX_BODY_BYTES + 1))
    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
    operation = client.get("/openapi.json").json()["paths"]["/api/contacts/{contact_id}"]["patch"]
    assert "413" in operation["responses"]


@pytest.mark.parametrize(
    ("path", "field", "schema"),
    [
        ("/api/contacts/{contact_id}", "notes", "ContactPatch"),
        ("/api/contacts/{contact_id}", "name", "ContactPatch"),
        ("/api/deals/{deal_id}", "amount", "DealPatch"),
        ("/api/deals/{deal_id}", "title", "DealPatch"),
    ],
)
def test_a_patch_field_the_app_refuses_as_null_is_not_nullable_in_the_schema(
    client: TestClient, minter: Minter, path: str, field: str, schema: str
) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    record = (
        create_contact(client, admin)
        if "contacts" in path
        else client.post("/api/deals", headers=admin.headers, json={"title": "t"}).json()
    )
    url = path.replace("{contact_id}", record["id"]).replace("{deal_id}", record["id"])
    got = client.patch(url, headers=admin.headers, json={field: None})
    assert got.status_code == 422
    body = client.get("/openapi.json").json()["paths"][path]["patch"]["requestBody"]["content"]["application/json"]
    declared = body["schema"]["properties"][field]
    assert "null" not in json.dumps(declared) and "default" not in declared, declared


def test_a_client_gone_mid_body_is_logged_as_such_not_as_an_error(
    client: TestClient, minter: Minter, caplog: pytest.LogCaptureFixture
) -> None:
    """The ASGI app driven directly: the body's first half arrives, then the client disconnects."""
    admin = sign_in(client, minter, org=ActiveOrg())
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": b'{"name": "half', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/contacts",
        "raw_path": b"/api/contacts",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", admin.headers["Authorization"].encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    with caplog.at_level(logging.INFO, logger="app"):
        asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert any(r.getMessage().startswith("client disconnected method=POST path=/api/contacts") for r in caplog.records)
    assert not any(m.get("type") == "http.response.start" and m.get("status") == 500 for m in sent)
