"""The library practice target on its own, in-process: every route, every refusal, each planted flaw on and off.

`httpx.ASGITransport` is async-only, so `_Client` drives an `httpx.AsyncClient` from one `asyncio.Runner`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from harness.config.model import load_config
from harness.config.operations import unmatched
from tests.targets.library_app import FLAWS, OPENAPI_PATH, create_library_app, openapi_text, request_counts

BASE = "http://library.test"
NOT_FOUND = {"detail": "not found"}


class _Client:
    """A synchronous face on an async in-process client; `token=` adds the bearer header."""

    def __init__(self, runner: asyncio.Runner, http: httpx.AsyncClient) -> None:
        self._runner = runner
        self._http = http

    def request(self, method: str, url: str, *, token: str | None = None, **options: Any) -> httpx.Response:
        headers = dict(options.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self._runner.run(self._http.request(method, url, headers=headers, **options))

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Any) -> httpx.Response:
        return self.request("PUT", url, **options)

    def delete(self, url: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", url, **options)


@contextmanager
def _client(app: Starlette) -> Iterator[_Client]:
    with asyncio.Runner() as runner:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        try:
            yield _Client(runner, http)
        finally:
            runner.run(http.aclose())


def _register(client: _Client, username: str, branch: str, role: str) -> None:
    answer = client.post(
        "/register", json={"username": username, "password": f"pw-{username}", "branch": branch, "role": role}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"status": "registered"}


def _login(client: _Client, username: str) -> str:
    answer = client.post("/token", data={"username": username, "password": f"pw-{username}"})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


@dataclass
class World:
    """Two branches, a librarian and a reader in each, a book and a loan of it in each."""

    app: Starlette
    client: _Client
    north_librarian: str
    north_reader: str
    south_librarian: str
    south_reader: str
    north_loan: int
    south_loan: int


def _create_loan(client: _Client, token: str, book_title: str, note: str = "") -> int:
    answer = client.post("/loans", token=token, json={"book_title": book_title, "note": note})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"status": "created"}
    location = answer.headers["location"]
    assert location.startswith("/loans/")
    return int(location.removeprefix("/loans/"))


@contextmanager
def _world(*flaws: str, **options: Any) -> Iterator[World]:
    app = create_library_app(flaws=frozenset(flaws), **options)
    with _client(app) as client:
        tokens: dict[str, str] = {}
        for branch in ("north", "south"):
            for role in ("librarian", "reader"):
                _register(client, f"{branch}-{role}", branch, role)
                tokens[f"{branch}_{role}"] = _login(client, f"{branch}-{role}")
            book = {"title": f"{branch}-book", "author": f"{branch} author", "note": f"{branch} secret"}
            created = client.post("/books", token=tokens[f"{branch}_librarian"], json=book)
            assert created.status_code == 201, created.text
        north_loan = _create_loan(client, tokens["north_librarian"], "north-book", "north loan")
        south_loan = _create_loan(client, tokens["south_librarian"], "south-book", "south loan")
        yield World(
            app,
            client,
            north_librarian=tokens["north_librarian"],
            north_reader=tokens["north_reader"],
            south_librarian=tokens["south_librarian"],
            south_reader=tokens["south_reader"],
            north_loan=north_loan,
            south_loan=south_loan,
        )


@pytest.fixture
def world() -> Iterator[World]:
    with _world() as built:
        yield built


# --- public routes and the schema ---------------------------------------------------------------------------------


def test_health_and_the_schema_are_public_and_the_schema_file_is_what_is_served(world: World) -> None:
    health = world.client.get("/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    served = world.client.get("/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/json")
    assert served.text == OPENAPI_PATH.read_text() == openapi_text()
    schema = json.loads(OPENAPI_PATH.read_text())
    assert schema["openapi"] == "3.1.0"
    assert schema["security"] == [{"OAuth2": []}]
    oauth = schema["components"]["securitySchemes"]["OAuth2"]
    assert oauth == {"type": "oauth2", "flows": {"password": {"tokenUrl": "/token", "scopes": {}}}}
    paths = schema["paths"]
    public = [("/health", "get"), ("/register", "post"), ("/token", "post"), ("/admin/reset", "post")]
    for path, method in [*public, ("/openapi.json", "get")]:
        assert paths[path][method]["security"] == [], path
    assert "security" not in paths["/books"]["post"]
    assert paths["/loans/{loan_id}"]["parameters"][0]["schema"] == {"type": "integer"}
    assert paths["/books/{title}"]["parameters"][0]["schema"]["type"] == "string"
    assert list(paths["/token"]["post"]["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]
    book_in = schema["components"]["schemas"]["BookIn"]
    assert book_in["required"] == ["title", "author"] and book_in["additionalProperties"] is False
    operations = {f"{m.upper()} {p}" for p, item in paths.items() for m in item if m != "parameters"}
    assert operations == set(_ALL_ROUTES)


def test_its_config_loads_and_names_only_operations_of_the_schema() -> None:
    """The harness's own loader reads library.toml, and every operation it names is one the app serves."""
    config = load_config(OPENAPI_PATH.parent / "library.toml")
    assert config.schema_file == OPENAPI_PATH
    served = [(route.split(" ", 1)[0], route.split(" ", 1)[1]) for route in _ALL_ROUTES]
    assert unmatched([ref for _, ref in config.named_operations()], served) == []
    assert [str(p) for p in config.fuzz.never] == ["POST /admin/reset"]
    assert {(p.org, p.role) for p in config.principals} == {
        (org, role) for org in ("north", "south") for role in ("librarian", "reader")
    }


def test_register_refuses_a_taken_username_and_bad_bodies() -> None:
    with _client(create_library_app()) as client:
        _register(client, "ann", "north", "reader")
        body = {"username": "ann", "password": "x", "branch": "south", "role": "librarian"}
        assert client.post("/register", json=body).status_code == 409
        bad_bodies: list[object] = [
            {"username": "bob", "password": "x", "branch": "north"},  # no role
            {"username": "bob", "password": "x", "branch": "north", "role": "owner"},
            {"username": "bob", "password": "x", "branch": "north", "role": "reader", "admin": True},
            {"username": 7, "password": "x", "branch": "north", "role": "reader"},
            {"username": "", "password": "x", "branch": "north", "role": "reader"},
            ["bob"],
        ]
        for bad in bad_bodies:
            answer = client.post("/register", json=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert set(answer.json()) == {"detail"}
        malformed = client.post("/register", content=b"{not json", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 422
        form = {"username": "bob", "password": "x", "branch": "north", "role": "reader"}
        assert client.post("/register", data=form).status_code == 415
        as_json = {"Content-Type": "application/json"}
        assert client.post("/register", content=b"[" * 100_000, headers=as_json).status_code == 413
        deep = b"[" * 30_000 + b"]" * 30_000  # nesting too deep for the parser: refused, not a 500
        assert client.post("/register", content=deep, headers=as_json).status_code == 422


# --- signing in ---------------------------------------------------------------------------------------------------


def test_token_is_a_form_login_with_opaque_tokens() -> None:
    with _client(create_library_app()) as client:
        _register(client, "ann", "north", "librarian")
        form = {"grant_type": "password", "username": "ann", "password": "pw-ann"}
        answer = client.post("/token", data=form)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        issued = answer.json()
        assert set(issued) == {"access_token", "token_type", "expires_in"}
        assert (issued["token_type"], issued["expires_in"]) == ("bearer", 120)
        assert issued["access_token"].count(".") == 0 and len(issued["access_token"]) >= 32  # opaque, not a JWT
        assert _login(client, "ann") != issued["access_token"]
        assert client.get("/me", token=issued["access_token"]).json() == {
            "username": "ann",
            "branch": "north",
            "role": "librarian",
        }
        refused = {
            "wrong password": ({"username": "ann", "password": "nope"}, 400, {"error": "invalid_grant"}),
            "unknown user": ({"username": "zed", "password": "pw-ann"}, 400, {"error": "invalid_grant"}),
            "no password": ({"username": "ann"}, 400, {"error": "invalid_request"}),
            "other grant": (
                {"grant_type": "client_credentials", "username": "ann", "password": "pw-ann"},
                400,
                {"error": "unsupported_grant_type"},
            ),
        }
        for case, (data, status, body) in refused.items():
            answer = client.post("/token", data=data)
            assert (answer.status_code, answer.json()) == (status, body), case
        twice = client.post(
            "/token",
            content=b"username=ann&username=ann&password=pw-ann",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert twice.status_code == 400
        as_json = client.post("/token", json={"username": "ann", "password": "pw-ann"})
        assert as_json.status_code == 415
        assert "access_token" not in as_json.text


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_expire_after_their_lifetime() -> None:
    clock = _Clock()
    with _client(create_library_app(token_lifetime=5, clock=clock)) as client:
        _register(client, "ann", "north", "reader")
        answer = client.post("/token", data={"username": "ann", "password": "pw-ann"})
        assert answer.json()["expires_in"] == 5
        token = answer.json()["access_token"]
        clock.now += 4.9
        assert client.get("/me", token=token).status_code == 200
        clock.now += 0.1
        expired = client.get("/me", token=token)
        assert expired.status_code == 401
        assert expired.headers["www-authenticate"].startswith("Bearer")
        clock.now += 100
        assert client.get("/me", token=_login(client, "ann")).status_code == 200  # a new login works


def test_a_short_real_lifetime_expires_on_the_real_clock() -> None:
    with _client(create_library_app(token_lifetime=0.2)) as client:
        _register(client, "ann", "north", "reader")
        token = _login(client, "ann")
        assert client.get("/me", token=token).status_code == 200
        time.sleep(0.25)
        assert client.get("/me", token=token).status_code == 401


_ALL_ROUTES = {
    "GET /health": 200,
    "GET /openapi.json": 200,
    "POST /register": 422,
    "POST /token": 415,
    "POST /admin/reset": 200,
    "GET /me": 401,
    "GET /books": 401,
    "POST /books": 401,
    "GET /books/{title}": 401,
    "PUT /books/{title}": 401,
    "DELETE /books/{title}": 401,
    "GET /loans": 401,
    "POST /loans": 401,
    "GET /loans/{loan_id}": 401,
    "DELETE /loans/{loan_id}": 401,
}


def _url(route: str) -> tuple[str, str]:
    method, template = route.split(" ", 1)
    return method, template.replace("{title}", "north-book").replace("{loan_id}", "1")


@pytest.mark.parametrize("credentials", [None, "Bearer not-a-token", "Basic bm9ydGg6cHc=", "Bearer "])
def test_anonymous_and_bad_tokens_get_401_everywhere_but_the_public_routes(credentials: str | None) -> None:
    with _world() as world:
        headers = {} if credentials is None else {"Authorization": credentials}
        # last, so that the world is there for the others
        for route, status in sorted(_ALL_ROUTES.items(), key=lambda item: item[0] == "POST /admin/reset"):
            method, url = _url(route)
            answer = world.client.request(method, url, headers=headers, json={})
            assert answer.status_code == status, (route, answer.text)
            if status == 401:
                assert answer.headers["www-authenticate"].startswith("Bearer"), route
                assert "secret" not in answer.text and "loan" not in answer.text


def test_me_names_the_caller(world: World) -> None:
    me = world.client.get("/me", token=world.south_reader)
    assert me.json() == {"username": "south-reader", "branch": "south", "role": "reader"}


# --- books --------------------------------------------------------------------------------------------------------


def test_books_crud_for_a_librarian(world: World) -> None:
    client, token = world.client, world.north_librarian
    created = client.post("/books", token=token, json={"title": "Dune", "author": "Herbert", "note": "sand"})
    assert (created.status_code, created.json()) == (201, {"status": "created"})  # no id in the answer
    assert "Dune" not in created.text and "location" not in created.headers
    assert client.post("/books", token=token, json={"title": "Dune", "author": "X"}).status_code == 409
    again_south = client.post("/books", token=world.south_librarian, json={"title": "Dune", "author": "Other"})
    assert again_south.status_code == 201  # titles are unique per branch only
    listed = client.get("/books", token=world.north_reader).json()
    assert [b["title"] for b in listed] == ["Dune", "north-book"]
    assert {b["branch"] for b in listed} == {"north"}
    assert [b["title"] for b in client.get("/books", token=token, params={"q": "sand"}).json()] == ["Dune"]
    assert [b["title"] for b in client.get("/books", token=token, params={"q": "Herb"}).json()] == ["Dune"]
    assert client.get("/books", token=token, params={"q": "nothing like it"}).json() == []
    read = client.get("/books/Dune", token=world.north_reader)
    assert read.json() == {"title": "Dune", "author": "Herbert", "note": "sand", "branch": "north"}
    updated = client.put("/books/Dune", token=token, json={"author": "F. Herbert"})
    assert updated.status_code == 200
    assert updated.json() == {"title": "Dune", "author": "F. Herbert", "note": "", "branch": "north"}
    assert client.get("/books/Dune", token=world.south_reader).json()["author"] == "Other"
    assert client.delete("/books/Dune", token=token).status_code == 204
    assert (client.get("/books/Dune", token=token).status_code, client.get("/books/Dune", token=token).json()) == (
        404,
        NOT_FOUND,
    )
    assert client.put("/books/Dune", token=token, json={"author": "x"}).status_code == 404
    assert client.delete("/books/Dune", token=token).status_code == 404
    assert client.get("/books/Dune", token=world.south_reader).status_code == 200  # south's Dune is untouched


def test_book_bodies_are_validated(world: World) -> None:
    client, token = world.client, world.north_librarian
    for bad in (
        {"title": "a/b", "author": "x"},
        {"title": "", "author": "x"},
        {"title": "t" * 201, "author": "x"},
        {"title": "ok", "author": "x", "branch": "south"},
        {"author": "x"},
        {"title": "ok", "author": ["x"]},
    ):
        assert client.post("/books", token=token, json=bad).status_code == 422, bad
    assert client.put("/books/north-book", token=token, json={"author": "x", "title": "y"}).status_code == 422
    assert client.put("/books/north-book", token=token, json={"note": "no author"}).status_code == 422
    assert client.post("/books", token=token, data={"title": "ok", "author": "x"}).status_code == 415
    surrogate = b'{"title": "ok", "author": "\\ud800"}'  # valid JSON, not encodable as UTF-8
    assert (
        client.post("/books", token=token, content=surrogate, headers={"Content-Type": "application/json"}).status_code
        == 422
    )
    assert client.get("/books/north-book", token=token).json()["author"] == "north author"


def test_readers_may_not_write_books(world: World) -> None:
    client, reader = world.client, world.north_reader
    refused = [
        client.post("/books", token=reader, json={"title": "New", "author": "x"}),
        client.post("/books", token=reader, json={"bad": "body"}),  # the role is checked before the body
        client.put("/books/north-book", token=reader, json={"author": "reader"}),
        client.put("/books/no-such-book", token=reader, json={"author": "reader"}),
        client.delete("/books/north-book", token=reader),
        client.delete("/books/no-such-book", token=reader),
    ]
    assert [(a.status_code, a.json()) for a in refused] == [(403, {"detail": "forbidden"})] * len(refused)
    assert client.get("/books/north-book", token=reader).json()["author"] == "north author"


def test_another_branchs_book_is_not_found_exactly_like_a_missing_one(world: World) -> None:
    client, south = world.client, world.south_librarian
    for method, body in (("GET", None), ("PUT", {"author": "south"}), ("DELETE", None)):
        foreign = client.request(method, "/books/north-book", token=south, json=body)
        missing = client.request(method, "/books/no-such-book", token=south, json=body)
        assert (foreign.status_code, foreign.content, foreign.headers.get("content-length")) == (
            missing.status_code,
            missing.content,
            missing.headers.get("content-length"),
        )
        assert foreign.status_code == 404 and foreign.json() == NOT_FOUND
    assert client.get("/books/north-book", token=world.north_reader).json()["author"] == "north author"
    assert "north" not in client.get("/books", token=south).text
    assert client.get("/books", token=south, params={"q": "north"}).json() == []
    foreign_loan = client.post("/loans", token=south, json={"book_title": "north-book"})
    assert (foreign_loan.status_code, foreign_loan.json()) == (404, NOT_FOUND)


def test_a_book_on_loan_cannot_be_deleted(world: World) -> None:
    client, token = world.client, world.north_librarian
    assert client.delete("/books/north-book", token=token).status_code == 409
    assert client.delete(f"/loans/{world.north_loan}", token=token).status_code == 204
    assert client.delete("/books/north-book", token=token).status_code == 204


# --- loans --------------------------------------------------------------------------------------------------------


def test_loans_have_sequential_integer_ids_in_the_location_header_only(world: World) -> None:
    client, token = world.client, world.north_librarian
    assert (world.north_loan, world.south_loan) == (1, 2)
    third = _create_loan(client, token, "north-book", "again")
    assert third == 3
    listed = client.get("/loans", token=world.north_reader).json()
    assert [loan["id"] for loan in listed] == [1, 3]
    assert client.get("/loans/3", token=world.north_reader).json() == {
        "id": 3,
        "book_title": "north-book",
        "note": "again",
        "borrower": "north-librarian",
        "branch": "north",
    }
    assert client.post("/loans", token=token, json={"book_title": "no-such-book"}).json() == NOT_FOUND
    assert client.post("/loans", token=token, json={"book_title": "north-book", "x": 1}).status_code == 422
    assert client.post("/loans", token=token, json={"note": "no book"}).status_code == 422
    assert client.delete("/loans/3", token=token).status_code == 204
    assert client.get("/loans/3", token=token).status_code == 404
    assert client.delete("/loans/3", token=token).status_code == 404


@pytest.mark.parametrize("loan_id", ["abc", "1.5", "-1", "0x1", "1%20", "not-an-id'"])
def test_a_non_integer_loan_id_is_always_404(world: World, loan_id: str) -> None:
    for token in (world.north_librarian, world.north_reader, None):
        for method in ("GET", "DELETE"):
            answer = world.client.request(method, f"/loans/{loan_id}", token=token)
            assert (answer.status_code, answer.json()) == (404, NOT_FOUND), (method, token)


def test_readers_may_not_borrow_or_return(world: World) -> None:
    client, reader = world.client, world.north_reader
    borrow = client.post("/loans", token=reader, json={"book_title": "north-book"})
    give_back = client.delete(f"/loans/{world.north_loan}", token=reader)
    assert [(a.status_code, a.json()) for a in (borrow, give_back)] == [(403, {"detail": "forbidden"})] * 2
    assert borrow.headers.get("location") is None
    assert [loan["id"] for loan in client.get("/loans", token=reader).json()] == [world.north_loan]


def test_another_branchs_loan_is_not_found_exactly_like_a_missing_one(world: World) -> None:
    client, north = world.client, world.north_librarian
    for method in ("GET", "DELETE"):
        foreign = client.request(method, f"/loans/{world.south_loan}", token=north)
        missing = client.request(method, "/loans/999", token=north)
        assert (foreign.status_code, foreign.content) == (missing.status_code, missing.content)
        assert (foreign.status_code, foreign.json()) == (404, NOT_FOUND)
    assert client.get(f"/loans/{world.south_loan}", token=world.south_reader).status_code == 200
    assert [loan["id"] for loan in client.get("/loans", token=north).json()] == [world.north_loan]


# --- the planted flaws --------------------------------------------------------------------------------------------


def _observe(world: World) -> dict[str, tuple[int, Any]]:
    """What a south principal gets at every point a flaw could change; deleting last."""
    c, south, reader = world.client, world.south_librarian, world.south_reader

    def seen(answer: httpx.Response) -> tuple[int, Any]:
        return answer.status_code, answer.json() if answer.content else None

    seen_now = {
        "read north book": seen(c.get("/books/north-book", token=south)),
        "search north": seen(c.get("/books", token=south, params={"q": "north"})),
        "list books": seen(c.get("/books", token=south)),
        "read north loan": seen(c.get(f"/loans/{world.north_loan}", token=south)),
        "read missing loan": seen(c.get("/loans/999", token=south)),
        "reader updates own book": seen(c.put("/books/south-book", token=reader, json={"author": "reader"})),
        "reader updates north book": seen(c.put("/books/north-book", token=reader, json={"author": "reader"})),
        "reader creates book": seen(c.post("/books", token=reader, json={"title": "r", "author": "r"})),
        "reader borrows": seen(c.post("/loans", token=reader, json={"book_title": "south-book"})),
        "delete north loan": seen(c.delete(f"/loans/{world.north_loan}", token=south)),
    }
    seen_now["north loan afterwards"] = seen(c.get(f"/loans/{world.north_loan}", token=world.north_reader))
    return seen_now


_SECURE: dict[str, tuple[int, Any]] = {
    "read north book": (404, NOT_FOUND),
    "search north": (200, []),
    "list books": (200, [{"title": "south-book", "author": "south author", "note": "south secret", "branch": "south"}]),
    "read north loan": (404, NOT_FOUND),
    "read missing loan": (404, NOT_FOUND),
    "reader updates own book": (403, {"detail": "forbidden"}),
    "reader updates north book": (403, {"detail": "forbidden"}),
    "reader creates book": (403, {"detail": "forbidden"}),
    "reader borrows": (403, {"detail": "forbidden"}),
    "delete north loan": (404, NOT_FOUND),
    "north loan afterwards": (
        200,
        {"id": 1, "book_title": "north-book", "note": "north loan", "borrower": "north-librarian", "branch": "north"},
    ),
}
_NORTH_BOOK = {"title": "north-book", "author": "north author", "note": "north secret", "branch": "north"}
_FLAWED: dict[str, dict[str, tuple[int, Any]]] = {
    "book_bola": {"read north book": (200, _NORTH_BOOK)},
    "search_leak": {"search north": (200, [_NORTH_BOOK])},
    "loan_idor": {
        "read north loan": _SECURE["north loan afterwards"],
        "delete north loan": (204, None),
        "north loan afterwards": (404, NOT_FOUND),
    },
    "reader_can_write": {
        "reader updates own book": (200, {"title": "south-book", "author": "reader", "note": "", "branch": "south"}),
        "reader updates north book": (404, NOT_FOUND),  # past the role check, stopped by the branch check
    },
    "existence_oracle": {
        "read north loan": (403, {"detail": "forbidden"}),
        "delete north loan": (403, {"detail": "forbidden"}),
    },
}


def test_the_secure_build_refuses_everything_the_flaws_allow() -> None:
    with _world() as world:
        assert _observe(world) == _SECURE


@pytest.mark.parametrize("flaw", sorted(FLAWS))
def test_each_flaw_changes_exactly_its_outcomes(flaw: str) -> None:
    assert set(_FLAWED) == FLAWS
    with _world(flaw) as world:
        observed = _observe(world)
    changed = {key: value for key, value in observed.items() if value != _SECURE[key]}
    assert changed == _FLAWED[flaw]


def test_flaws_combine_and_unknown_flaws_are_refused() -> None:
    with _world(*FLAWS) as world:
        observed = _observe(world)
    assert observed["read north book"] == (200, _NORTH_BOOK)
    assert observed["read north loan"][0] == 200  # loan_idor wins over existence_oracle
    assert observed["reader updates north book"] == (404, NOT_FOUND)  # reader_can_write stays in the branch
    with pytest.raises(ValueError, match="book_bolla"):
        create_library_app(flaws=frozenset({"book_bolla"}))
    with pytest.raises(ValueError, match="token_lifetime"):
        create_library_app(token_lifetime=0)


def test_search_leak_leaves_the_plain_list_alone() -> None:
    with _world("search_leak") as world:
        assert {b["branch"] for b in world.client.get("/books", token=world.south_reader).json()} == {"south"}
        everything = world.client.get("/books", token=world.south_reader, params={"q": ""}).json()
        assert {b["branch"] for b in everything} == {"north", "south"}


# --- the request counter and the destructive reset ----------------------------------------------------------------


def test_requests_are_counted_per_route_template(world: World) -> None:
    before = Counter(request_counts(world.app))
    assert before == {"POST /register": 4, "POST /token": 4, "POST /books": 2, "POST /loans": 2}
    client = world.client
    client.get(f"/loans/{world.north_loan}", token=world.north_reader)
    client.get("/loans/999")
    client.get("/loans/abc", token=world.north_reader)
    client.delete("/books/north-book", token=world.north_reader)
    client.request("PATCH", "/books/north-book", token=world.north_librarian)
    client.get("/nowhere")
    client.get("/health")
    assert request_counts(world.app) - before == {
        "GET /loans/{loan_id}": 2,
        "GET (no route)": 2,
        "DELETE /books/{title}": 1,
        "PATCH /books/{title}": 1,
        "GET /health": 1,
    }
    assert request_counts(world.app)["POST /admin/reset"] == 0


def test_reset_wipes_every_user_token_book_and_loan(world: World) -> None:
    client = world.client
    answer = client.post("/admin/reset")
    assert (answer.status_code, answer.json()) == (200, {"status": "reset"})
    assert request_counts(world.app)["POST /admin/reset"] == 1
    assert client.get("/me", token=world.north_librarian).status_code == 401  # tokens gone
    login = client.post("/token", data={"username": "north-librarian", "password": "pw-north-librarian"})
    assert (login.status_code, login.json()) == (400, {"error": "invalid_grant"})  # users gone
    _register(client, "north-librarian", "north", "librarian")  # the name is free again
    token = _login(client, "north-librarian")
    assert client.get("/books", token=token).json() == []
    assert client.get("/loans", token=token).json() == []
    assert client.get(f"/loans/{world.north_loan}", token=token).status_code == 404
    assert client.post("/books", token=token, json={"title": "north-book", "author": "x"}).status_code == 201
    assert _create_loan(client, token, "north-book") == 1  # loan ids start again


# --- served for real ----------------------------------------------------------------------------------------------


def test_served_by_uvicorn_in_a_thread_concurrent_loans_get_distinct_ids() -> None:
    app = create_library_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        with httpx.Client(base_url=base, timeout=2, verify=False) as client:
            body = {"username": "ann", "password": "pw", "branch": "north", "role": "librarian"}
            assert client.post("/register", json=body).status_code == 201
            token = client.post("/token", data={"username": "ann", "password": "pw"}).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert client.post("/books", headers=auth, json={"title": "Dune", "author": "x"}).status_code == 201
        locations: list[str] = []

        def borrow() -> None:
            with httpx.Client(base_url=base, timeout=2, verify=False, headers=auth) as client:
                for _ in range(5):
                    locations.append(client.post("/loans", json={"book_title": "Dune"}).headers["location"])

        borrowers = [threading.Thread(target=borrow) for _ in range(4)]
        for borrower in borrowers:
            borrower.start()
        for borrower in borrowers:
            borrower.join(timeout=5)
        assert sorted(locations, key=lambda x: int(x.rsplit("/", 1)[1])) == [f"/loans/{n}" for n in range(1, 21)]
        assert request_counts(app)["POST /loans"] == 20
        assert request_counts(app)["POST /admin/reset"] == 0
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
