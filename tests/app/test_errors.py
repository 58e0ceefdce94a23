"""Failures reach clients as small JSON bodies: no stack trace, no SQL, no database message, ever."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import psycopg
import pytest

from tests.app.support import Minter, TestClient, clerk_id, sign_in

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
