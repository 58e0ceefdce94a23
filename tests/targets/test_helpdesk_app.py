"""The helpdesk practice target on its own, in-process: its schema, its cookie sessions, every refusal of the
secure build, its pages, and each planted flaw on and off.

`httpx.ASGITransport` is async-only, so `_Client` drives an `httpx.AsyncClient` from one `asyncio.Runner`. The
client's cookie jar is emptied after every request: each request presents the session it is given, and no other.
`_Client.browse` is the exception, within one request: it follows redirects as a browser does, the jar (and each
cookie's Path) deciding what every hop presents.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from harness.config.model import load_config
from harness.config.operations import unmatched
from tests.targets.helpdesk_app import (
    FLAWS,
    PAGE_FLAWS,
    PRACTICE,
    SESSION_COOKIE,
    create_helpdesk_app,
    request_counts,
)

BASE = "http://helpdesk.test"
NOT_FOUND = {"detail": "not found"}
FORBIDDEN = {"detail": "forbidden"}
OTHER_TEAM = {"detail": "X-Team must be the caller's own team"}
TEAMS = ("north", "south")
ROLES = ("admin", "agent", "viewer")
SECRET_TOKEN = "tok-integration-0123456789"
OPERATIONS = {
    "GET /health", "POST /register", "POST /session", "DELETE /session", "GET /tickets", "POST /tickets",
    "GET /tickets/{ref}", "PATCH /tickets/{ref}", "DELETE /tickets/{ref}", "GET /macros", "POST /macros",
    "GET /macros/{macro_id}", "PATCH /macros/{macro_id}", "DELETE /macros/{macro_id}", "GET /members",
    "PUT /members/{member_id}/role", "GET /integrations", "POST /integrations", "GET /integrations/{integration_id}",
}  # fmt: skip


class _Client:
    """A synchronous face on an async in-process client; `session=` presents that session cookie."""

    def __init__(self, runner: asyncio.Runner, http: httpx.AsyncClient) -> None:
        self._runner = runner
        self._http = http

    def request(self, method: str, url: str, *, session: str | None = None, **options: Any) -> httpx.Response:
        headers = dict(options.pop("headers", {}))
        if session is not None:
            headers["Cookie"] = f"{SESSION_COOKIE}={session}"
        try:
            return self._runner.run(self._http.request(method, url, headers=headers, **options))
        finally:
            self._http.cookies.clear()

    def browse(self, method: str, url: str, *, session: str | None = None, **options: Any) -> httpx.Response:
        """As a browser: redirects followed (at most 20), every hop presenting what the cookie jar holds for its
        path; `session` is put in the jar first, as a cookie of Path=/."""
        if session is not None:
            self._http.cookies.set(SESSION_COOKIE, session, path="/")
        return self.request(method, url, follow_redirects=True, **options)

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Any) -> httpx.Response:
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Any) -> httpx.Response:
        return self.request("PATCH", url, **options)

    def delete(self, url: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", url, **options)


@contextmanager
def _client(app: FastAPI) -> Iterator[_Client]:
    with asyncio.Runner() as runner:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        try:
            yield _Client(runner, http)
        finally:
            runner.run(http.aclose())


def _register(client: _Client, team: str, role: str, email: str | None = None, invite: str | None = None) -> str:
    """The new member's id; the team's invite when it created the team (then kept in `_INVITES`)."""
    email = email or f"{team}-{role}@example.test"
    body = {"team": team, "email": email, "password": f"pw-{email}", "role": role}
    answer = client.post("/register", json=body if invite is None else {**body, "invite": invite})
    assert answer.status_code == 201, answer.text
    found = answer.json()
    assert set(found) == {"member_id", "invite"} and isinstance(found["member_id"], str)
    assert (found["invite"] is None) == (invite is not None)  # only a team's creator is given its invite
    if found["invite"] is not None:
        _INVITES[team] = found["invite"]
    member_id: str = found["member_id"]
    return member_id


_INVITES: dict[str, str] = {}  # team -> the invite its creator was given, in the test at hand


def _sign_in(client: _Client, email: str) -> str:
    answer = client.post("/session", json={"email": email, "password": f"pw-{email}"})
    assert answer.status_code == 200, answer.text
    cookie = answer.cookies.get(SESSION_COOKIE)
    assert isinstance(cookie, str) and cookie
    return cookie


@dataclass
class World:
    """Two teams, an admin, an agent and a viewer in each; each admin's ticket, macro and integration."""

    app: FastAPI
    client: _Client
    sessions: dict[str, str]  # "north admin" -> its session cookie
    members: dict[str, str]  # "north admin" -> its member_id
    macros: dict[str, str]  # team -> its macro's id
    integrations: dict[str, str]  # team -> its integration's id

    def session(self, name: str) -> str:
        return self.sessions[name]


def _ticket(team: str) -> dict[str, str]:
    return {"ref": f"{team}-1", "subject": f"{team} printer jam", "body": f"{team} private note", "priority": "high"}


def _answered(ticket: dict[str, str], team: str) -> dict[str, str]:
    return {**ticket, "team": team}


@contextmanager
def _world(*flaws: str, **options: Any) -> Iterator[World]:
    app = create_helpdesk_app(flaws=frozenset(flaws), **options)
    with _client(app) as client:
        sessions: dict[str, str] = {}
        members: dict[str, str] = {}
        macros: dict[str, str] = {}
        integrations: dict[str, str] = {}
        for team in TEAMS:
            for role in ROLES:
                invite = _INVITES[team] if role != "admin" else None
                members[f"{team} {role}"] = _register(client, team, role, invite=invite)
                sessions[f"{team} {role}"] = _sign_in(client, f"{team}-{role}@example.test")
            admin = sessions[f"{team} admin"]
            opened = client.post("/tickets", session=admin, json=_ticket(team))
            assert (opened.status_code, opened.json()) == (201, {"ok": True})
            macro = client.post("/macros", session=admin, json={"title": f"{team} greeting", "body": f"{team} hi"})
            assert macro.status_code == 201, macro.text
            macros[team] = macro.json()["id"]
            integration = client.post(
                "/integrations", session=admin, json={"name": f"{team} chat", "api_token": SECRET_TOKEN}
            )
            assert integration.status_code == 201, integration.text
            integrations[team] = integration.json()["id"]
        yield World(app, client, sessions, members, macros, integrations)


@pytest.fixture
def world() -> Iterator[World]:
    with _world() as built:
        yield built


# --- the schema and the config ------------------------------------------------------------------------------------


def test_the_generated_schema_describes_every_operation_its_security_and_its_parameters(world: World) -> None:
    served = world.client.get("/openapi.json")
    assert served.status_code == 200
    schema = served.json()
    assert schema["openapi"].startswith("3.1")
    assert schema["components"]["securitySchemes"] == {
        "DeskSession": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE}
    }
    paths = schema["paths"]
    operations = {f"{m.upper()} {p}" for p, item in paths.items() for m in item}
    assert operations == OPERATIONS
    for path, item in paths.items():
        for method, op in item.items():
            public = f"{method.upper()} {path}" in {"GET /health", "POST /register", "POST /session"}
            assert op["security"] == ([] if public else [{"DeskSession": []}]), (method, path)
    for path in ("/macros/{macro_id}", "/integrations/{integration_id}", "/members/{member_id}/role"):
        for op in paths[path].values():
            (param,) = op["parameters"]
            assert param["in"] == "path" and param["schema"]["format"] == "uuid"
    (ref,) = paths["/tickets/{ref}"]["get"]["parameters"]
    assert ref["schema"]["type"] == "string" and "pattern" in ref["schema"]
    for path in ("/tickets", "/macros", "/members", "/integrations"):
        headers = [p for p in paths[path]["get"]["parameters"] if p["in"] == "header"]
        assert [(p["name"], p["required"], p["schema"]["type"]) for p in headers] == [("X-Team", False, "string")]
    (q,) = [p for p in paths["/tickets"]["get"]["parameters"] if p["in"] == "query"]
    assert (q["name"], q["schema"]["type"]) == ("q", "string")
    bodies = schema["components"]["schemas"]
    expected = {
        "Registration": {"team", "email", "password", "role", "invite"},
        "Credentials": {"email", "password"},
        "TicketIn": {"ref", "subject", "body", "priority"},
        "TicketPatch": {"subject", "body", "priority", "team"},
        "MacroIn": {"title", "body"},
        "MacroPatch": {"title", "body"},
        "IntegrationIn": {"name", "api_token"},
        "RoleChange": {"role"},
    }
    for name, fields in expected.items():
        assert set(bodies[name]["properties"]) == fields, name
    assert bodies["Registration"]["properties"]["role"]["enum"] == list(ROLES)


def test_its_config_loads_and_names_only_operations_of_the_schema(world: World) -> None:
    config = load_config(PRACTICE.config)
    served = [(op.split(" ", 1)[0], op.split(" ", 1)[1]) for op in OPERATIONS]
    assert unmatched([ref for _, ref in config.named_operations()], served) == []
    assert [str(p) for p in config.fuzz.never] == list(PRACTICE.never) == ["DELETE /session"]
    assert {(p.org, p.role) for p in config.principals} == {(t, r) for t in TEAMS for r in ROLES}
    assert {c.param for c in config.canaries} == {"ref", "macro_id", "integration_id"}
    assert {f.name for f in PRACTICE.flaws} == FLAWS - PAGE_FLAWS  # the API run opens no page
    assert all(f"{f.operation.split(' ', 1)[0]} {f.operation.split(' ', 1)[1]}" in OPERATIONS for f in PRACTICE.flaws)


# --- registering and signing in -----------------------------------------------------------------------------------


def test_joining_a_team_takes_its_invite_and_register_refuses_taken_emails_and_bad_bodies() -> None:
    with _client(create_helpdesk_app()) as client:
        body = {"team": "east", "email": "a@x.test", "password": "p", "role": "agent"}
        first = client.post("/register", json=body)
        assert (first.status_code, first.json()) == (422, {"detail": "the first member of a team must be its admin"})
        _register(client, "east", "admin", "a@x.test")
        _register(client, "west", "admin", "w@x.test")
        for invite in (None, "guessed", _INVITES["west"]):
            joining = {"team": "east", "email": "v@x.test", "password": "p", "role": "admin"}
            refused = client.post("/register", json=joining if invite is None else {**joining, "invite": invite})
            assert (refused.status_code, refused.json()) == (403, {"detail": "joining a team takes its invite"})
        _register(client, "east", "viewer", "v@x.test", invite=_INVITES["east"])
        as_admin = {**body, "email": "a2@x.test", "role": "admin", "invite": _INVITES["east"]}
        refused = client.post("/register", json=as_admin)
        assert (refused.status_code, refused.json()) == (403, {"detail": "a team's admins are made by its admins"})
        taken = client.post("/register", json={**body, "team": "north", "role": "admin"})
        assert (taken.status_code, taken.json()) == (409, {"detail": "email already registered"})
        good = {"team": "south", "email": "s@x.test", "password": "p", "role": "admin"}
        bad_bodies: list[object] = [
            {k: v for k, v in good.items() if k != "role"},
            {**good, "role": "owner"},
            {**good, "team": "South Team"},
            {**good, "email": "nobody"},
            {**good, "password": ""},
            {**good, "invite": 7},
            ["south"],
        ]
        for bad in bad_bodies:
            answer = client.post("/register", json=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert set(answer.json()) == {"detail"} and isinstance(answer.json()["detail"], str)
        forged = {**good, "is_admin": True, "member_id": "mine", "invite": None}  # fields no model lists: dropped
        ignored = client.post("/register", json=forged)
        assert ignored.status_code == 201 and ignored.json()["member_id"] != "mine"
        as_json = {"Content-Type": "application/json"}
        assert client.post("/register", content=b"{not json", headers=as_json).status_code == 422
        assert client.post("/register", content=b"[" * 100_000, headers=as_json).status_code == 413
        deep = b"[" * 30_000 + b"]" * 30_000  # too deep for the parser: refused, not a 500
        assert client.post("/register", content=deep, headers=as_json).status_code in (400, 422)
        # A lone surrogate is not text: refused, where storing it would make every answer showing it a 500.
        lone = b'{"team": "west", "email": "w@x.test", "password": "\\ud800", "role": "admin"}'
        assert client.post("/register", content=lone, headers=as_json).status_code == 422
        named = b'{"team": "north", "email": "n@x.test", "password": "p", "role": "admin", "\\ud800": 1}'
        assert client.post("/register", content=named, headers=as_json).status_code == 201  # an unknown name: dropped


def test_a_session_is_an_http_only_cookie_that_expires_and_ends_at_sign_out() -> None:
    now = [1000.0]
    app = create_helpdesk_app(session_lifetime=60, clock=lambda: now[0])
    with _client(app) as client:
        member_id = _register(client, "east", "admin", "a@x.test")
        answer = client.post("/session", json={"email": "a@x.test", "password": "pw-a@x.test"})
        assert answer.status_code == 200
        assert answer.json() == {"member_id": member_id, "team": "east", "role": "admin", "expires_in": 60}
        set_cookie = answer.headers["set-cookie"].lower()
        assert set_cookie.startswith(f"{SESSION_COOKIE}=") and "httponly" in set_cookie and "samesite=lax" in set_cookie
        cookie = answer.cookies[SESSION_COOKIE]
        assert len(cookie) >= 32 and "pw-" not in answer.text
        assert client.get("/members", session=cookie).status_code == 200
        for wrong in ({"email": "a@x.test", "password": "nope"}, {"email": "z@x.test", "password": "pw-a@x.test"}):
            refused = client.post("/session", json=wrong)
            assert (refused.status_code, refused.json()) == (401, {"detail": "wrong email or password"})
        assert client.get("/members", session="forged").status_code == 401
        now[0] += 61
        assert client.get("/members", session=cookie).status_code == 401  # expired
        fresh = _sign_in(client, "a@x.test")
        other = _sign_in(client, "a@x.test")
        out = client.delete("/session", session=fresh)
        assert out.status_code == 204 and SESSION_COOKIE in out.headers["set-cookie"]
        assert client.get("/members", session=fresh).status_code == 401
        assert client.get("/members", session=other).status_code == 200  # only that session ended


def test_every_operation_but_the_public_ones_refuses_anonymous_callers(world: World) -> None:
    ticket, macro, integration = "north-1", world.macros["north"], world.integrations["north"]
    member = world.members["north agent"]
    bodies = {"POST": {"ref": "x", "subject": "x"}, "PATCH": {}, "PUT": {"role": "admin"}}
    for operation in OPERATIONS - {"GET /health", "POST /register", "POST /session"}:
        method, template = operation.split(" ", 1)
        path = template.format(ref=ticket, macro_id=macro, integration_id=integration, member_id=member)
        answer = world.client.request(method, path, json=bodies.get(method))
        assert (answer.status_code, answer.json()) == (401, {"detail": "not signed in"}), operation
    assert world.client.get("/health").json() == {"status": "ok"}


# --- the secure build's roles -------------------------------------------------------------------------------------


def test_a_viewer_reads_everything_and_is_refused_every_write(world: World) -> None:
    c, viewer = world.client, world.session("north viewer")
    macro, integration = world.macros["north"], world.integrations["north"]
    for path in ("/tickets", "/tickets/north-1", "/macros", f"/macros/{macro}", "/members", "/integrations"):
        assert c.get(path, session=viewer).status_code == 200, path
    assert c.get(f"/integrations/{integration}", session=viewer).status_code == 200
    writes = [
        ("POST", "/tickets", {"ref": "v-1", "subject": "x"}),
        ("PATCH", "/tickets/north-1", {"subject": "x"}),
        ("DELETE", "/tickets/north-1", None),
        ("POST", "/macros", {"title": "x", "body": "x"}),
        ("PATCH", f"/macros/{macro}", {"title": "x"}),
        ("DELETE", f"/macros/{macro}", None),
        ("PUT", f"/members/{world.members['north viewer']}/role", {"role": "admin"}),
        ("POST", "/integrations", {"name": "x", "api_token": "12345678"}),
        ("PATCH", f"/macros/{uuid.uuid4()}", {"title": "x"}),  # refused before it is looked up
        ("PATCH", "/tickets/north-1", {"nonsense": 1}),  # refused before the body is judged
    ]
    for method, path, body in writes:
        answer = c.request(method, path, session=viewer, json=body)
        assert (answer.status_code, answer.json()) == (403, FORBIDDEN), (method, path)
    assert c.get("/tickets/north-1", session=viewer).json() == _answered(_ticket("north"), "north")


def test_an_agent_works_tickets_and_reads_the_rest_but_writes_nothing_else(world: World) -> None:
    c, agent = world.client, world.session("north agent")
    opened = c.post("/tickets", session=agent, json={"ref": "agent-1", "subject": "agent's"})
    assert (opened.status_code, opened.json()) == (201, {"ok": True})
    patched = c.patch("/tickets/north-1", session=agent, json={"priority": "urgent", "body": None})
    assert patched.json() == {**_answered(_ticket("north"), "north"), "priority": "urgent"}  # null: unchanged
    macro = world.macros["north"]
    assert c.get(f"/macros/{macro}", session=agent).json() == {
        "id": macro,
        "title": "north greeting",
        "body": "north hi",
    }
    refused = [
        ("DELETE", "/tickets/agent-1", None),
        ("POST", "/macros", {"title": "x", "body": "x"}),
        ("PATCH", f"/macros/{macro}", {"title": "x"}),
        ("DELETE", f"/macros/{macro}", None),
        ("PUT", f"/members/{world.members['north agent']}/role", {"role": "admin"}),
        ("POST", "/integrations", {"name": "x", "api_token": "12345678"}),
    ]
    for method, path, body in refused:
        answer = c.request(method, path, session=agent, json=body)
        assert (answer.status_code, answer.json()) == (403, FORBIDDEN), (method, path)


def test_an_admin_does_everything_in_its_team_and_keeps_one_admin(world: World) -> None:
    c, admin = world.client, world.session("north admin")
    assert c.post("/tickets", session=admin, json=_ticket("north")).status_code == 409  # refs are unique per team
    assert c.post("/tickets", session=world.session("south admin"), json={"ref": "north-1", "subject": "x"}).json() == {
        "ok": True
    }  # ...and only per team
    macro = world.macros["north"]
    assert c.patch(f"/macros/{macro}", session=admin, json={"body": "hello"}).json()["body"] == "hello"
    assert c.delete(f"/macros/{macro}", session=admin).status_code == 204
    assert c.get(f"/macros/{macro}", session=admin).status_code == 404
    assert c.delete("/tickets/north-1", session=admin).status_code == 204
    assert c.get("/tickets", session=admin).json() == []
    viewer = world.members["north viewer"]
    promoted = c.put(f"/members/{viewer}/role", session=admin, json={"role": "agent"})
    assert promoted.json() == {"member_id": viewer, "email": "north-viewer@example.test", "role": "agent"}
    assert (
        c.post("/tickets", session=world.session("north viewer"), json={"ref": "v", "subject": "v"}).status_code == 201
    )
    itself = c.put(f"/members/{world.members['north admin']}/role", session=admin, json={"role": "viewer"})
    assert (itself.status_code, itself.json()) == (409, {"detail": "a team keeps at least one admin"})
    assert c.put(f"/members/{viewer}/role", session=admin, json={"role": "owner"}).status_code == 422
    listed = c.get("/members", session=admin).json()
    assert [(m["email"], m["role"]) for m in listed] == [
        ("north-admin@example.test", "admin"),
        ("north-agent@example.test", "agent"),
        ("north-viewer@example.test", "agent"),
    ]


def test_integration_tokens_are_only_ever_shown_masked(world: World) -> None:
    c, admin = world.client, world.session("north admin")
    integration = world.integrations["north"]
    masked = {"id": integration, "name": "north chat", "api_token": "****" + SECRET_TOKEN[-4:]}
    assert c.get("/integrations", session=admin).json() == [masked]
    assert c.get(f"/integrations/{integration}", session=world.session("north viewer")).json() == masked
    created = c.post("/integrations", session=admin, json={"name": "mail", "api_token": "another-secret-token"})
    assert created.json()["api_token"] == "****oken"
    assert c.post("/integrations", session=admin, json={"name": "short", "api_token": "1234567"}).status_code == 422


# --- the secure build's isolation ---------------------------------------------------------------------------------


def test_another_teams_ids_answer_exactly_as_ids_nobody_has(world: World) -> None:
    c, south = world.client, world.session("south admin")
    pairs = [
        ("GET", "/tickets/north-1", "/tickets/nobody-1", None),
        ("PATCH", "/tickets/north-1", "/tickets/nobody-1", {"subject": "mine"}),
        ("DELETE", "/tickets/north-1", "/tickets/nobody-1", None),
        ("GET", f"/macros/{world.macros['north']}", f"/macros/{uuid.uuid4()}", None),
        ("PATCH", f"/macros/{world.macros['north']}", f"/macros/{uuid.uuid4()}", {"title": "mine"}),
        ("DELETE", f"/macros/{world.macros['north']}", f"/macros/{uuid.uuid4()}", None),
        ("GET", f"/integrations/{world.integrations['north']}", f"/integrations/{uuid.uuid4()}", None),
        ("PUT", f"/members/{world.members['north admin']}/role", f"/members/{uuid.uuid4()}/role", {"role": "viewer"}),
    ]
    for method, foreign, missing, body in pairs:
        seen = c.request(method, foreign, session=south, json=body)
        nobody = c.request(method, missing, session=south, json=body)
        assert (
            (seen.status_code, seen.content) == (nobody.status_code, nobody.content) == (404, b'{"detail":"not found"}')
        )
    for path in ("/macros/not-an-id'", "/integrations/12", "/tickets/not-an-id'"):
        answer = c.get(path, session=south)
        assert answer.status_code == 422 and set(answer.json()) == {"detail"}, path
    north = world.session("north admin")
    assert c.get("/tickets/north-1", session=north).json() == _answered(_ticket("north"), "north")  # untouched
    assert c.get(f"/macros/{world.macros['north']}", session=north).status_code == 200
    assert c.get("/members", session=north).json()[0]["role"] == "admin"


def test_x_team_must_name_the_callers_own_team(world: World) -> None:
    c, south = world.client, world.session("south viewer")
    for path in ("/tickets", "/macros", "/members", "/integrations"):
        for other in ("north", "nowhere"):
            answer = c.get(path, session=south, headers={"X-Team": other})
            assert (answer.status_code, answer.json()) == (403, OTHER_TEAM), (path, other)
        assert c.get(path, session=south, headers={"X-Team": "south"}).json() == c.get(path, session=south).json()
    assert c.get("/tickets", session=south).json() == [_answered(_ticket("south"), "south")]


def test_search_stays_within_the_team_and_tickets_stay_in_theirs(world: World) -> None:
    c, south = world.client, world.session("south agent")
    assert c.get("/tickets", session=south, params={"q": "north"}).json() == []
    assert c.get("/tickets", session=south, params={"q": ""}).json() == [_answered(_ticket("south"), "south")]
    assert c.get("/tickets", session=south, params={"q": "PRIVATE"}).json() == [_answered(_ticket("south"), "south")]
    moved = c.patch("/tickets/south-1", session=south, json={"team": "north", "subject": "moved"})
    assert (moved.status_code, moved.json()) == (422, {"detail": "body.team: a ticket stays in its team"})
    same = c.patch("/tickets/south-1", session=south, json={"team": "south", "subject": "renamed"})
    assert same.json() == {**_answered(_ticket("south"), "south"), "subject": "renamed"}
    assert c.get("/tickets", session=world.session("north admin")).json() == [_answered(_ticket("north"), "north")]


# --- the pages ----------------------------------------------------------------------------------------------------

PAGES = ("/login", "/desk", "/settings")
HTML = "text/html; charset=utf-8"
WRONG = '<p class="problem">Wrong email or password.</p>'
FORBIDDEN_PAGE = re.compile(
    r'<div class="forbidden">You do not have access to this page\. Reference: <code>([0-9a-f]{16})</code></div>'
)
OOPS_PAGE = re.compile(r'<div class="oops">Something went wrong\. Reference: <code>([0-9a-f]{16})</code></div>')


def _login(client: _Client, email: str, password: str | None = None, next_page: str | None = None) -> httpx.Response:
    """POST /login as the form does; the password the one `_register` gave unless another is named."""
    form = {"email": email, "password": f"pw-{email}" if password is None else password}
    return client.post("/login", data=form if next_page is None else {**form, "next": next_page})


def _cookie_attributes(answer: httpx.Response) -> set[str]:
    """The attributes of the one Set-Cookie of `answer` (its value left out), lower-cased."""
    (header,) = answer.headers.get_list("set-cookie")
    name, _, rest = header.partition("=")
    assert name == SESSION_COOKIE
    return {part.strip().lower() for part in rest.split(";")[1:]}


def _assert_page(answer: httpx.Response, status: int) -> str:
    """The page's HTML, once its status, type and Cache-Control are as every page's must be."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == HTML
    assert answer.headers["cache-control"] == "no-store"
    return answer.text


def _assert_sent(answer: httpx.Response, location: str) -> None:
    """A 303 to `location`, not cached."""
    assert (answer.status_code, answer.headers.get("location")) == (303, location), answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_the_pages_leave_the_schema_as_it_was(world: World) -> None:
    paths = set(world.client.get("/openapi.json").json()["paths"])
    assert paths == {op.split(" ", 1)[1] for op in OPERATIONS}
    assert paths.isdisjoint(PAGES)


def test_the_login_page_is_the_form_carrying_next_escaped() -> None:
    with _client(create_helpdesk_app()) as client:
        page = _assert_page(client.get("/login", params={"next": "/settings"}), 200)
        assert '<form method="post" action="/login">' in page
        assert '<input id="email" name="email" type="email">' in page
        assert '<input id="password" name="password" type="password">' in page
        assert '<input type="hidden" name="next" value="/settings">' in page
        assert '<button type="submit">Sign in</button>' in page
        assert WRONG not in page
        hostile = _assert_page(client.get("/login", params={"next": '/"><script>alert(1)</script>'}), 200)
        assert "<script>" not in hostile
        assert '<input type="hidden" name="next" value="/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">' in hostile
        bare = _assert_page(client.get("/login"), 200)
        assert '<input type="hidden" name="next" value="">' in bare


def test_signing_in_on_the_form_opens_a_session_as_post_session_does() -> None:
    app = create_helpdesk_app(session_lifetime=60.5)
    with _client(app) as client:
        _register(client, "east", "admin", "a@x.test")
        api = client.post("/session", json={"email": "a@x.test", "password": "pw-a@x.test"})
        form = _login(client, "a@x.test", next_page="/settings")
        _assert_sent(form, "/settings")
        attributes = {"httponly", "max-age=61", "path=/", "samesite=lax"}  # 60.5 seconds: Max-Age rounds up
        assert _cookie_attributes(form) == _cookie_attributes(api) == attributes
        cookie = form.cookies[SESSION_COOKIE]
        assert len(cookie) >= 32 and cookie != api.cookies[SESSION_COOKIE]
        assert client.get("/members", session=cookie).status_code == 200  # the API's own session
        _assert_sent(_login(client, "a@x.test"), "/desk")  # no next: the desk
        assert request_counts(app)["POST /login"] == 2


def test_a_wrong_or_missing_credential_shows_the_form_again_saying_no_more_and_sets_no_cookie() -> None:
    with _client(create_helpdesk_app()) as client:
        _register(client, "east", "admin", "a@x.test")
        pages = [
            _login(client, "a@x.test", password="nope", next_page="/settings"),
            _login(client, "nobody@x.test", password="pw-a@x.test", next_page="/settings"),
            client.post("/login", data={"email": "a@x.test", "next": "/settings"}),
            client.post("/login", data={"password": "pw-a@x.test", "next": "/settings"}),
            client.post("/login", data={"email": "", "password": "", "next": "/settings"}),
        ]
        for answer in pages:
            page = _assert_page(answer, 200)
            assert "set-cookie" not in answer.headers
            assert WRONG in page and '<form method="post" action="/login">' in page
            assert '<input type="hidden" name="next" value="/settings">' in page
        assert len({answer.text for answer in pages}) == 1  # nothing tells which was wrong
        empty = client.post("/login", content=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert WRONG in _assert_page(empty, 200) and "set-cookie" not in empty.headers


@pytest.mark.parametrize(
    ("asked", "sent_to"),
    [
        ("/settings", "/settings"),
        ("/desk?tab=open", "/desk?tab=open"),
        ("//evil.test/x", "/desk"),
        ("http://evil.test/", "/desk"),
        ("https://evil.test", "/desk"),
        ("/\\evil.test", "/desk"),
        ("javascript:alert(1)", "/desk"),
        ("settings", "/desk"),
        ("", "/desk"),
    ],
)
def test_next_is_followed_only_to_a_local_path(asked: str, sent_to: str) -> None:
    with _client(create_helpdesk_app()) as client:
        _register(client, "east", "admin", "a@x.test")
        signed_in = _login(client, "a@x.test", next_page=asked)
        _assert_sent(signed_in, sent_to)
        cookie = signed_in.cookies[SESSION_COOKIE]
        _assert_sent(client.get("/login", params={"next": asked}, session=cookie), sent_to)  # already signed in


def test_signed_out_visitors_are_sent_to_sign_in_and_come_back() -> None:
    now = [1000.0]
    with _client(create_helpdesk_app(session_lifetime=60, clock=lambda: now[0])) as client:
        _register(client, "east", "admin", "a@x.test")
        cookie = _sign_in(client, "a@x.test")
        for page in ("/desk", "/settings"):
            for session in (None, "forged", ""):
                _assert_sent(client.get(page, session=session), f"/login?next={page}")
            assert client.get(page, session=cookie).status_code == 200
        now[0] += 61
        for page in ("/desk", "/settings"):
            _assert_sent(client.get(page, session=cookie), f"/login?next={page}")  # expired
        assert _assert_page(client.get("/login", session=cookie), 200).count("<form") == 1  # no longer signed in
        again = client.browse("GET", "/desk")
        assert (str(again.url), [r.status_code for r in again.history]) == (f"{BASE}/login?next=/desk", [303])
        landed = client.browse("POST", "/login", data={"email": "a@x.test", "password": "pw-a@x.test", "next": "/desk"})
        assert (landed.url.path, [r.status_code for r in landed.history]) == ("/desk", [303])
        assert '<section id="desk">' in _assert_page(landed, 200)


def test_the_desk_shows_the_member_and_its_own_teams_ticket_subjects_escaped(world: World) -> None:
    c, admin = world.client, world.session("north admin")
    hostile = "<script>alert('x')</script> & more"
    assert c.post("/tickets", session=admin, json={"ref": "north-2", "subject": hostile}).status_code == 201
    assert c.post("/register", json={
        "team": "west", "email": "<b>w</b>@x.test", "password": "pw-<b>w</b>@x.test", "role": "admin",
    }).status_code == 201  # fmt: skip
    for name in ("north admin", "north agent", "north viewer"):
        page = _assert_page(c.get("/desk", session=world.session(name)), 200)
        team, role = name.split(" ")
        assert '<section id="desk">' in page
        assert team in page and f"{team}-{role}@example.test" in page and role in page
        assert "north printer jam" in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page and "<script>" not in page
        assert "south" not in page  # another team's tickets (and slug) are not shown
    south = _assert_page(c.get("/desk", session=world.session("south viewer")), 200)
    assert "south printer jam" in south and "north" not in south and "alert" not in south
    west = _assert_page(c.get("/desk", session=_sign_in(c, "<b>w</b>@x.test")), 200)
    assert "&lt;b&gt;w&lt;/b&gt;@x.test" in west and "<b>" not in west and "printer jam" not in west


def test_settings_admit_admins_only_and_refuse_the_others_with_a_reference(world: World) -> None:
    c = world.client
    page = _assert_page(c.get("/settings", session=world.session("north admin")), 200)
    assert '<section id="settings">' in page and "north" in page and "south" not in page
    references = set()
    for name in ("north agent", "north viewer", "south agent", "south viewer"):
        refused = _assert_page(c.get("/settings", session=world.session(name)), 403)
        found = FORBIDDEN_PAGE.search(refused)
        assert found is not None, refused
        assert '<section id="settings">' not in refused
        references.add(found.group(1))
    assert len(references) == 4  # a fresh reference every time
    assert c.get("/settings", session=world.session("south admin")).status_code == 200


# --- the planted page flaws ---------------------------------------------------------------------------------------


def test_login_cookie_path_scopes_the_cookie_to_the_login_page_so_the_desk_loops() -> None:
    for flaws, path in ((frozenset(), "/"), (frozenset({"login_cookie_path"}), "/login")):
        with _client(create_helpdesk_app(flaws=flaws)) as client:
            _register(client, "east", "admin", "a@x.test")
            signed_in = _login(client, "a@x.test", next_page="/desk")
            _assert_sent(signed_in, "/desk")
            assert f"path={path}" in _cookie_attributes(signed_in)
            api = client.post("/session", json={"email": "a@x.test", "password": "pw-a@x.test"})
            assert "path=/" in _cookie_attributes(api)  # POST /session keeps its Path either way
            form = {"email": "a@x.test", "password": "pw-a@x.test", "next": "/desk"}
            if not flaws:
                assert client.browse("POST", "/login", data=form).url.path == "/desk"
                continue
            with pytest.raises(httpx.TooManyRedirects):  # /desk -> /login?next=/desk -> /desk -> ...
                client.browse("POST", "/login", data=form)


def test_forbidden_to_login_sends_a_non_admin_to_sign_in_again_and_round() -> None:
    with _world("forbidden_to_login") as world:
        c, agent = world.client, world.session("north agent")
        _assert_sent(c.get("/settings", session=agent), "/login?next=/settings")
        _assert_sent(c.get("/login", params={"next": "/settings"}, session=agent), "/settings")
        with pytest.raises(httpx.TooManyRedirects):
            c.browse("GET", "/settings", session=agent)
        assert c.get("/settings", session=world.session("north admin")).status_code == 200  # admins unchanged
    with _world() as world:
        refused = world.client.browse("GET", "/settings", session=world.session("north agent"))
        assert (refused.status_code, refused.history) == (403, [])


def test_desk_crash_makes_the_desk_the_oops_page_for_signed_in_visitors_only() -> None:
    with _world("desk_crash") as world:
        c, viewer = world.client, world.session("north viewer")
        references = set()
        for _ in range(2):
            page = _assert_page(c.get("/desk", session=viewer), 500)
            found = OOPS_PAGE.search(page)
            assert found is not None, page
            assert "Traceback" not in page and "desk_crash" not in page and "{" not in page
            references.add(found.group(1))
        assert len(references) == 2
        _assert_sent(c.get("/desk"), "/login?next=/desk")  # signed out: sent to sign in, as ever
        assert c.get("/settings", session=world.session("north admin")).status_code == 200
        assert c.get("/tickets", session=viewer).status_code == 200
        admin = "north-admin@example.test"
        landed = c.browse("POST", "/login", data={"email": admin, "password": f"pw-{admin}"})
        assert (landed.status_code, landed.url.path) == (500, "/desk")


# --- the planted flaws --------------------------------------------------------------------------------------------


def _observe(world: World) -> dict[str, tuple[int, Any]]:
    """What south's principals get at every point a flaw could change; the escalation and the move last."""
    c = world.client
    admin, agent = world.session("south admin"), world.session("south agent")
    macro = world.macros["south"]

    def seen(answer: httpx.Response) -> tuple[int, Any]:
        body = answer.json() if answer.content else None
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "id"}  # a new record's uuid differs every run
        return answer.status_code, body

    north_team = {"X-Team": "north"}
    seen_now = {
        "agent patches macro": seen(c.patch(f"/macros/{macro}", session=agent, json={"title": "agent's"})),
        "agent deletes macro": seen(c.delete(f"/macros/{macro}", session=agent)),
        "macro afterwards": seen(c.get(f"/macros/{macro}", session=admin)),
        "tickets as north": seen(c.get("/tickets", session=admin, headers=north_team)),
        "members as north": seen(c.get("/members", session=agent, headers=north_team)),
        "tickets as south": seen(c.get("/tickets", session=admin, headers={"X-Team": "south"})),
        "list integrations": seen(c.get("/integrations", session=world.session("south viewer"))),
        "read integration": seen(c.get(f"/integrations/{world.integrations['south']}", session=admin)),
        "search north": seen(c.get("/tickets", session=agent, params={"q": "north"})),
        "list tickets": seen(c.get("/tickets", session=agent)),
        "agent makes itself admin": seen(
            c.put(f"/members/{world.members['south agent']}/role", session=agent, json={"role": "admin"})
        ),
        "agent writes a macro": seen(c.post("/macros", session=agent, json={"title": "t", "body": "b"})),
        "move ticket to north": seen(c.patch("/tickets/south-1", session=agent, json={"team": "north"})),
    }
    seen_now["north's tickets afterwards"] = seen(c.get("/tickets", session=world.session("north viewer")))
    return seen_now


_NORTH_TICKET = _answered(_ticket("north"), "north")
_SOUTH_TICKET = _answered(_ticket("south"), "south")
_SECURE: dict[str, tuple[int, Any]] = {
    "agent patches macro": (403, FORBIDDEN),
    "agent deletes macro": (403, FORBIDDEN),
    "macro afterwards": (200, {"title": "south greeting", "body": "south hi"}),
    "tickets as north": (403, OTHER_TEAM),
    "members as north": (403, OTHER_TEAM),
    "tickets as south": (200, [_SOUTH_TICKET]),
    "list integrations": (200, [{"id": "", "name": "south chat", "api_token": "****" + SECRET_TOKEN[-4:]}]),
    "read integration": (200, {"name": "south chat", "api_token": "****" + SECRET_TOKEN[-4:]}),
    "search north": (200, []),
    "list tickets": (200, [_SOUTH_TICKET]),
    "agent makes itself admin": (403, FORBIDDEN),
    "agent writes a macro": (403, FORBIDDEN),
    "move ticket to north": (422, {"detail": "body.team: a ticket stays in its team"}),
    "north's tickets afterwards": (200, [_NORTH_TICKET]),
}
_NORTH_MEMBERS = [
    {"member_id": "", "email": f"north-{role}@example.test", "role": role} for role in ("admin", "agent", "viewer")
]
_FLAWED: dict[str, dict[str, tuple[int, Any]]] = {
    "agent_deletes_macros": {
        "agent patches macro": (200, {"title": "agent's", "body": "south hi"}),
        "agent deletes macro": (204, None),
        "macro afterwards": (404, NOT_FOUND),
    },
    "agent_sets_roles": {
        "agent makes itself admin": (200, {"member_id": "", "email": "south-agent@example.test", "role": "admin"}),
        "agent writes a macro": (201, {"title": "t", "body": "b"}),
    },
    "team_header_switch": {
        "tickets as north": (200, [_NORTH_TICKET]),
        "members as north": (200, _NORTH_MEMBERS),
    },
    "integration_token_exposed": {
        "list integrations": (200, [{"id": "", "name": "south chat", "api_token": SECRET_TOKEN}]),
    },
    "ticket_team_reassign": {
        "move ticket to north": (200, {**_SOUTH_TICKET, "team": "north"}),
        "north's tickets afterwards": (200, [_NORTH_TICKET, {**_SOUTH_TICKET, "team": "north"}]),
    },
    "ticket_search_leak": {
        "search north": (200, [_NORTH_TICKET]),
    },
    # The page flaws change no answer of the API.
    "login_cookie_path": {},
    "forbidden_to_login": {},
    "desk_crash": {},
}


def _blank_ids(observed: dict[str, tuple[int, Any]]) -> dict[str, tuple[int, Any]]:
    """Ids in lists blanked: they are fresh uuids every run."""

    def blank(body: Any) -> Any:
        if isinstance(body, list):
            return [{k: "" if k in ("id", "member_id") else v for k, v in item.items()} for item in body]
        if isinstance(body, dict) and "member_id" in body:
            return {**body, "member_id": ""}
        return body

    return {key: (status, blank(body)) for key, (status, body) in observed.items()}


def test_the_secure_build_refuses_everything_the_flaws_allow() -> None:
    with _world() as world:
        assert _blank_ids(_observe(world)) == _SECURE


@pytest.mark.parametrize("flaw", sorted(FLAWS))
def test_each_flaw_changes_exactly_its_outcomes(flaw: str) -> None:
    assert set(_FLAWED) == FLAWS
    with _world(flaw) as world:
        observed = _blank_ids(_observe(world))
    changed = {key: value for key, value in observed.items() if value != _SECURE[key]}
    assert changed == _FLAWED[flaw]


def test_the_flaws_keep_to_their_own_operations() -> None:
    with _world("team_header_switch", "ticket_search_leak", "ticket_team_reassign") as world:
        c, south = world.client, world.session("south admin")
        assert c.get("/tickets", session=south, headers={"X-Team": "nowhere"}).status_code == 403
        assert [t["team"] for t in c.get("/tickets", session=south).json()] == ["south"]  # no q: the team's own
        everything = c.get("/tickets", session=south, params={"q": ""}).json()
        assert [t["team"] for t in everything] == ["north", "south"]
        nowhere = c.patch("/tickets/south-1", session=south, json={"team": "nowhere"})
        assert nowhere.status_code == 422  # only into a team that exists
        assert c.get("/tickets/north-1", session=south).status_code == 404  # reads by ref stay scoped
    with _world("integration_token_exposed") as world:
        integration = world.integrations["north"]
        one = world.client.get(f"/integrations/{integration}", session=world.session("north admin")).json()
        assert one["api_token"] == "****" + SECRET_TOKEN[-4:]  # only the list shows it whole
    with _world("agent_deletes_macros", "agent_sets_roles") as world:
        c = world.client
        assert c.get(f"/macros/{world.macros['north']}", session=world.session("south agent")).status_code == 404
        north_admin = world.members["north admin"]
        assert (
            c.put(f"/members/{north_admin}/role", session=world.session("south agent"), json={"role": "viewer"}).json()
            == NOT_FOUND
        )
        assert (
            c.put(
                f"/members/{world.members['south viewer']}/role",
                session=world.session("south viewer"),
                json={"role": "admin"},
            ).status_code
            == 403
        )
    with pytest.raises(ValueError, match=r"agent_deletes_macro\b"):
        create_helpdesk_app(flaws=frozenset({"agent_deletes_macro"}))
    with pytest.raises(ValueError, match="session_lifetime"):
        create_helpdesk_app(session_lifetime=0)


# --- the request counter ------------------------------------------------------------------------------------------


def test_requests_are_counted_per_route_template_and_sign_out_is_among_them(world: World) -> None:
    before = Counter(request_counts(world.app))
    assert before == {
        "POST /register": 6, "POST /session": 6, "POST /tickets": 2, "POST /macros": 2, "POST /integrations": 2,
    }  # fmt: skip
    c, viewer = world.client, world.session("north viewer")
    c.get("/tickets/north-1", session=viewer)
    c.get("/tickets/nobody")
    c.get(f"/macros/{world.macros['north']}", session=viewer)
    c.put("/tickets/north-1", session=viewer, json={})  # no such method: counted under the path's template
    c.get("/nowhere")
    c.get("/health")
    assert request_counts(world.app) - before == {
        "GET /tickets/{ref}": 2,
        "GET /macros/{macro_id}": 1,
        "PUT /tickets/{ref}": 1,
        "GET (no route)": 1,
        "GET /health": 1,
    }
    assert request_counts(world.app)["DELETE /session"] == 0
    c.delete("/session", session=viewer)
    assert request_counts(world.app)["DELETE /session"] == 1
    assert PRACTICE.counts is not None and PRACTICE.counts(world.app)["DELETE /session"] == 1
