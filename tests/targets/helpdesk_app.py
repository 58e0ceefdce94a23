"""A practice target shaped unlike the others: a FastAPI support desk whose teams are slugs and whose sign-in is a
cookie.

Shape
-----
* Tenants are *teams*, named by a **string slug** (`north-1a2b`). Anyone may `POST /register` a member with a role,
  `admin`, `agent` or `viewer`, and gets `{"member_id": "<uuid>", "invite": ...}`. The first member naming a team
  creates it, must be its admin, and is the only one given the team's `invite` code; joining a team that exists
  takes that code (refused 403 without it), and as an agent or a viewer: only an admin makes admins.
* Sign-in is a **cookie session**: `POST /session` with `{email, password}` sets the opaque cookie `desk_session`
  (HttpOnly, SameSite=Lax; not Secure, since it is served over plain HTTP on the loopback); every other operation
  reads it, and answers 401 without a live one. Sessions end after `session_lifetime` seconds, and at
  `DELETE /session` (signing out), which the harness config lists under `never`: it would end the harness's own
  sessions. `app.state.requests` (a `Counter` keyed `"METHOD /path/{template}"`, counted before the request is
  handled) lets a test prove it was never called.
* Tickets are keyed by `ref`, a string the **client chooses**, unique within a team; `POST /tickets` answers 201
  `{"ok": true}` and echoes no id. `GET /tickets?q=` searches subjects and bodies.
* Macros (canned replies, staff objects written by admins) and integrations (`{name, api_token}`) have uuid ids
  and answers carrying `id`. An integration's `api_token` is a secret the client sets: answers show `"****"` and
  its last four characters, never the whole of it.
* `GET /members` lists the team's members; `PUT /members/{member_id}/role` changes one's role.
* List operations take an optional `X-Team` header: the team to act as, which must be the caller's own.
* FastAPI generates the OpenAPI 3.1 document at `/openapi.json`: every body a pydantic model listing every field
  (a field the model does not list is ignored, as FastAPI apps commonly do), uuid path parameters with
  `format: uuid`, and the cookie as the security scheme of every operation but the public `GET /health`,
  `POST /register` and `POST /session`.
* **Pages** for a browser, none of them in the OpenAPI document: every one answers `text/html; charset=utf-8` and
  `Cache-Control: no-store`, escapes every string a user gave, and shows an unhandled error as a 500 page
  `<div class="oops">` with a random reference (no JSON, no traceback). `GET /login` is a sign-in form (fields
  `#email` and `#password`, a hidden `next` from the query); `POST /login` takes it url-encoded and opens a session
  as `POST /session` does, the same cookie with the same attributes, then answers 303 to `next`, or `/desk` when
  `next` is not a local path (`/...`, but not `//...` nor `/\\...`, which a browser takes for another host). Wrong
  or missing credentials show the form again with `<p class="problem">`, saying nothing of which was wrong. A
  visitor with a live session opening `/login` is sent on to `next` likewise. `GET /desk` shows the member's team,
  email and role and the subjects of its team's tickets; `GET /settings` is for admins. Signed out, both answer
  303 to `/login?next=<the page>`.
* The routes are built once, at import (FastAPI spends milliseconds on each); every app made from them keeps its
  own state and flaws in `app.state.desk`. (No `from __future__ import annotations`: FastAPI reads the endpoints'
  annotations as objects.)

Authorization of the secure build (`flaws` empty)
-------------------------------------------------
`admin` does everything within its team. `agent` works tickets (creates them, PATCHes any of its team's) and
reads everything else; it may not write macros, integrations or roles, nor delete tickets. `viewer` reads only.
A role is checked before the record is looked up, so a refused caller learns nothing of what exists. Another
team's ref or uuid answers 404 with the very body an id nobody has gets; a malformed uuid or ref answers 422,
always (a ref with a `/` matches no route: 404). An `X-Team` naming any team but the caller's own answers 403. A
ticket stays in its team: a PATCH naming another `team` is refused 422. A team keeps at least one admin: demoting
its last one answers 409. Nobody joins a team without its invite, nor as its admin. The desk page shows only the
member's own team's tickets; the settings page refuses a non-admin with a 403 page `<div class="forbidden">`
carrying a random reference.

Planted flaws, each switched on by its name in `flaws`
------------------------------------------------------
* `agent_deletes_macros`: agents may PATCH and DELETE the macros their team's admins wrote.
* `agent_sets_roles`: agents may `PUT /members/{member_id}/role`, their own included: an agent can make itself
  admin, and then do what only admins may (create macros, say).
* `team_header_switch`: `X-Team: <another team's slug>` makes the list operations answer for that team.
* `integration_token_exposed`: `GET /integrations` answers each `api_token` whole.
* `ticket_team_reassign`: `PATCH /tickets/{ref}` honours a `team` in the body, moving the ticket into that team.
* `ticket_search_leak`: `GET /tickets?q=` searches every team's tickets (without `q` the list stays the team's).

The page flaws (`PAGE_FLAWS`, switches `FLAWS` accepts like the others) change no answer of the API, so they are
not among `PRACTICE`'s flaws, whose API-only run opens no page; a browser sees them (tests/test_helpdesk_pages.py):

* `login_cookie_path`: `POST /login` sets the cookie with `Path=/login`, not `/`: `/desk` never sees it, so a
  signed-in visitor goes round `/desk` -> `/login?next=/desk` -> `/desk` (303s, a redirect loop).
* `forbidden_to_login`: a non-admin opening `/settings` is sent 303 to `/login?next=/settings`, not shown the 403
  page; `/login` sends a signed-in visitor on to `next`: a redirect loop.
* `desk_crash`: `GET /desk` raises for a signed-in visitor: the 500 oops page.
"""

import hashlib
import hmac
import html
import logging
import math
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.targets.catalog import Flaw, PracticeTarget

__all__ = [
    "FLAWS",
    "PAGE_FLAWS",
    "PRACTICE",
    "ROLES",
    "SESSION_COOKIE",
    "create_helpdesk_app",
    "request_counts",
]

PAGE_FLAWS: Final = frozenset({"login_cookie_path", "forbidden_to_login", "desk_crash"})
FLAWS: Final = (
    frozenset(
        {
            "agent_deletes_macros",
            "agent_sets_roles",
            "team_header_switch",
            "integration_token_exposed",
            "ticket_team_reassign",
            "ticket_search_leak",
        }
    )
    | PAGE_FLAWS
)
ROLES: Final = ("admin", "agent", "viewer")
SESSION_COOKIE: Final = "desk_session"
MAX_BODY_BYTES: Final = 64 * 1024
SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
REF_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
EMAIL_PATTERN: Final = r"^[^@\s]{1,64}@[^@\s]{1,190}$"
NOT_FOUND: Final = "not found"  # the one body for "nobody has it" and "you may not see it"
FORBIDDEN: Final = "forbidden"
DESK_PAGE: Final = "/desk"  # where signing in leads when `next` names no local page

_LOG = logging.getLogger(__name__)

Role = Literal["admin", "agent", "viewer"]
Priority = Literal["low", "normal", "high", "urgent"]


# --- request and answer bodies ------------------------------------------------------------------------------------


class _Body(BaseModel):
    """A request body: a field it does not list is dropped, never stored (pydantic's default, made explicit)."""

    model_config = ConfigDict(extra="ignore")


class Registration(_Body):
    """A new member of a team; the first member naming a team creates it and must be its admin."""

    team: str = Field(pattern=SLUG_PATTERN, description="the team's slug")
    email: str = Field(pattern=EMAIL_PATTERN, max_length=255, json_schema_extra={"format": "email"})
    password: str = Field(min_length=1, max_length=200)
    role: Role
    invite: str | None = Field(default=None, max_length=100, description="the team's invite code, to join it")


class Credentials(_Body):
    """What signing in takes."""

    email: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=200)


class TicketIn(_Body):
    """A ticket as it is opened; `ref` is the client's own name for it, unique within the team."""

    ref: str = Field(pattern=REF_PATTERN)
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=5000)
    priority: Priority = "normal"


class TicketPatch(_Body):
    """The fields of a ticket that may change; `team`, if given, must be the ticket's own (tickets do not move)."""

    subject: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=5000)
    priority: Priority | None = None
    team: str | None = Field(default=None, max_length=100, description="the ticket's team; tickets do not move")


class MacroIn(_Body):
    """A canned reply."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=5000)


class MacroPatch(_Body):
    """The fields of a macro that may change."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=5000)


class IntegrationIn(_Body):
    """A connection to another service; `api_token` is that service's secret, shown masked from then on."""

    name: str = Field(min_length=1, max_length=200)
    api_token: str = Field(min_length=8, max_length=500)


class RoleChange(_Body):
    """A member's new role."""

    role: Role


class Registered(BaseModel):
    """The new member's id; the team's invite code for the member who created it, null for one who joined."""

    member_id: str
    invite: str | None


class SignedIn(BaseModel):
    """Who signed in; the session itself is the cookie."""

    member_id: str
    team: str
    role: Role
    expires_in: int


class Ack(BaseModel):
    """Done; nothing more to say."""

    ok: bool


class Ticket(BaseModel):
    """A ticket as answered."""

    ref: str
    subject: str
    body: str
    priority: Priority
    team: str


class Macro(BaseModel):
    """A macro as answered."""

    id: str
    title: str
    body: str


class Integration(BaseModel):
    """An integration as answered: the token masked."""

    id: str
    name: str
    api_token: str


class MemberOut(BaseModel):
    """A member as answered."""

    member_id: str
    email: str
    role: Role


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


# --- state --------------------------------------------------------------------------------------------------------


@dataclass
class Member:
    """A member of one team, with a role that an admin may change and a salted password hash."""

    member_id: str
    team: str
    email: str
    role: Role
    salt: bytes
    password_hash: bytes

    def public(self) -> dict[str, str]:
        """What the API answers for it."""
        return {"member_id": self.member_id, "email": self.email, "role": self.role}


@dataclass
class _Ticket:
    team: str
    ref: str
    subject: str
    body: str
    priority: str

    def public(self) -> dict[str, str]:
        return {
            "ref": self.ref,
            "subject": self.subject,
            "body": self.body,
            "priority": self.priority,
            "team": self.team,
        }


@dataclass
class _Macro:
    id: str
    team: str
    title: str
    body: str

    def public(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "body": self.body}


@dataclass(frozen=True)
class _Integration:
    id: str
    team: str
    name: str
    api_token: str

    def public(self, *, whole: bool = False) -> dict[str, str]:
        shown = self.api_token if whole else "****" + self.api_token[-4:]
        return {"id": self.id, "name": self.name, "api_token": shown}


@dataclass(frozen=True)
class _Session:
    member_id: str
    expires_at: float


@dataclass
class _State:
    members: dict[str, Member] = field(default_factory=dict)  # member_id -> member
    by_email: dict[str, str] = field(default_factory=dict)  # email -> member_id
    sessions: dict[str, _Session] = field(default_factory=dict)  # cookie value -> session
    tickets: dict[tuple[str, str], _Ticket] = field(default_factory=dict)  # (team, ref) -> ticket
    macros: dict[str, _Macro] = field(default_factory=dict)
    integrations: dict[str, _Integration] = field(default_factory=dict)
    invites: dict[str, str] = field(default_factory=dict)  # every team -> the code that joins it


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + password.encode()).digest()


# --- HTTP plumbing ------------------------------------------------------------------------------------------------


def _refuse(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """422 naming the first problem, without echoing the input (it may be long, or not even text)."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(step) for step in first.get("loc", ()))
    return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}".lstrip(": ")}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = NOT_FOUND if exc.status_code == 404 else str(exc.detail)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


class _Gate:
    """Pure ASGI middleware: counts each HTTP request under `METHOD /template` before handling it, and refuses a
    body over MAX_BODY_BYTES with 413 before the app reads any of it."""

    def __init__(self, app: ASGIApp, *, owner: FastAPI, counter: Counter[str], lock: threading.Lock) -> None:
        self.app = app
        self.owner = owner
        self.counter = counter
        self.lock = lock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        template = "(no route)"
        for route in self.owner.router.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE and isinstance(route, Route):
                template = route.path
                if match is Match.FULL:
                    break
        with self.lock:
            self.counter[f"{scope['method']} {template}"] += 1
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await JSONResponse({"detail": "body too large"}, status_code=413)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:  # read the whole (bounded) body first, then hand it on as one message
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await JSONResponse({"detail": "body too large"}, status_code=413)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --- the app ------------------------------------------------------------------------------------------------------

_COOKIE = APIKeyCookie(name=SESSION_COOKIE, scheme_name="DeskSession", auto_error=False)
_PUBLIC: Final[dict[str, Any]] = {"security": []}
_GUARDED: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": Problem, "description": "No live session cookie."},
    403: {"model": Problem, "description": "The caller's role (or X-Team) may not do this."},
}
_ADDRESSED: Final[dict[int | str, dict[str, Any]]] = {
    **_GUARDED,
    404: {"model": Problem, "description": "Nothing the caller may see has this id."},
}
_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {"model": Problem, "description": "Conflicts with the state."}
}
_TEAM_HEADER_DOC = "the team to act as; must be the caller's own (absent or empty: the caller's own)"
TeamHeader = Annotated[str, Header(alias="X-Team", max_length=100, description=_TEAM_HEADER_DOC)]
Search = Annotated[str, Query(max_length=200, description="text to find in the tickets' subjects and bodies")]
Ref = Annotated[str, PathParam(pattern=REF_PATTERN, description="the ticket's ref, as its creator chose it")]
SessionCookie = Annotated[str | None, Security(_COOKIE)]


class _Desk:
    """The state of one app, its planted flaws, and the rules every endpoint shares."""

    def __init__(self, flaws: frozenset[str], session_lifetime: float, clock: Callable[[], float]) -> None:
        self.flaws = flaws
        self.session_lifetime = session_lifetime
        self.clock = clock
        self.lock = threading.Lock()
        self.state = _State()

    @property
    def cookie_lifetime(self) -> int:
        """The session cookie's Max-Age: the sessions' lifetime in whole seconds, at least one."""
        return max(1, math.ceil(self.session_lifetime))

    def signed_in(self, cookie: str | None) -> Member | None:
        """The member whose live session `cookie` is, or None (an expired session is dropped)."""
        if not cookie:
            return None
        with self.lock:
            session = self.state.sessions.get(cookie)
            if session is not None and self.clock() >= session.expires_at:
                del self.state.sessions[cookie]
                session = None
            return self.state.members.get(session.member_id) if session is not None else None

    def member(self, cookie: str | None) -> Member:
        """The signed-in member, or 401."""
        member = self.signed_in(cookie)
        if member is None:
            raise _refuse(401, "not signed in")
        return member

    def open_session(self, email: str, password: str) -> tuple[Member, str] | None:
        """A new session for the member these credentials are right for, and its cookie value; None when they are
        wrong, whichever of them is. Sweeps the expired sessions first."""
        state = self.state
        with self.lock:
            member = state.members.get(state.by_email.get(email, ""))
            given = _hash(password, member.salt) if member is not None else b""
            if member is None or not hmac.compare_digest(member.password_hash, given):
                return None
            now = self.clock()
            for stale in [c for c, s in state.sessions.items() if now >= s.expires_at]:
                del state.sessions[stale]
            cookie = secrets.token_urlsafe(32)
            state.sessions[cookie] = _Session(member.member_id, now + self.session_lifetime)
        return member, cookie

    def acting_team(self, member: Member, header: str) -> str:
        """The team a list answers for: the caller's own; another team named in X-Team is refused 403."""
        if not header or header == member.team:
            return member.team
        if "team_header_switch" in self.flaws:
            with self.lock:
                if header in self.state.invites:
                    return header
        raise _refuse(403, "X-Team must be the caller's own team")

    def macro(self, member: Member, macro_id: uuid.UUID) -> _Macro:
        """The macro if it is of the member's team; call with the lock held."""
        macro = self.state.macros.get(str(macro_id))
        if macro is None or macro.team != member.team:
            raise _refuse(404, NOT_FOUND)
        return macro


# Every app shares these routes; each endpoint reaches its own app's desk through its request. Endpoints and
# dependencies are coroutines that never await while holding the lock: FastAPI would run a plain function in a
# worker thread, a thread hop per dependency per request.


async def _desk_of(request: Request) -> _Desk:
    desk = request.app.state.desk
    assert isinstance(desk, _Desk)
    return desk


Desk = Annotated[_Desk, Depends(_desk_of)]


async def _signed_in(desk: Desk, cookie: SessionCookie) -> Member:
    return desk.member(cookie)


Anyone = Annotated[Member, Depends(_signed_in)]


def _role_in(*roles: str, widened_by: str = "") -> Callable[[_Desk, Member], Awaitable[Member]]:
    """A dependency refusing 403 any member whose role is not one of `roles`, checked before the record is looked
    up; the flaw `widened_by` lets agents through as well."""

    async def allowed(desk: Desk, member: Anyone) -> Member:
        permitted = (*roles, "agent") if widened_by in desk.flaws else roles
        if member.role not in permitted:
            raise _refuse(403, FORBIDDEN)
        return member

    return allowed


Admin = Annotated[Member, Depends(_role_in("admin"))]
TicketWorker = Annotated[Member, Depends(_role_in("admin", "agent"))]
MacroEditor = Annotated[Member, Depends(_role_in("admin", widened_by="agent_deletes_macros"))]
RoleSetter = Annotated[Member, Depends(_role_in("admin", widened_by="agent_sets_roles"))]

_ROUTER = APIRouter()


# public


@_ROUTER.get("/health", openapi_extra=_PUBLIC)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@_ROUTER.post(
    "/register",
    status_code=201,
    openapi_extra=_PUBLIC,
    responses={403: {"model": Problem, "description": "No (or a wrong) invite, or an admin joining."}, **_CONFLICT},
)
async def register(body: Registration, desk: Desk) -> Registered:
    salt = secrets.token_bytes(16)
    member = Member(str(uuid.uuid4()), body.team, body.email, body.role, salt, _hash(body.password, salt))
    state = desk.state
    with desk.lock:
        if body.email in state.by_email:
            raise _refuse(409, "email already registered")
        invite = state.invites.get(body.team)
        if invite is None and body.role != "admin":
            raise _refuse(422, "the first member of a team must be its admin")
        if invite is not None and not hmac.compare_digest(invite.encode(), (body.invite or "").encode()):
            raise _refuse(403, "joining a team takes its invite")
        if invite is not None and body.role == "admin":  # or any invitee could make itself an admin
            raise _refuse(403, "a team's admins are made by its admins")
        created = None
        if invite is None:
            created = state.invites[body.team] = secrets.token_urlsafe(16)
        state.members[member.member_id] = member
        state.by_email[member.email] = member.member_id
    return Registered(member_id=member.member_id, invite=created)


def _hand_session(response: Response, desk: _Desk, cookie: str, *, path: str = "/") -> None:
    """Set the session cookie on `response` (HttpOnly, SameSite=Lax, Max-Age the session's lifetime), and keep the
    answer out of every cache."""
    lifetime = desk.cookie_lifetime
    response.set_cookie(SESSION_COOKIE, cookie, max_age=lifetime, path=path, httponly=True, samesite="lax")
    response.headers["Cache-Control"] = "no-store"


@_ROUTER.post("/session", openapi_extra=_PUBLIC, responses={401: {"model": Problem}})
async def sign_in(body: Credentials, response: Response, desk: Desk) -> SignedIn:
    opened = desk.open_session(body.email, body.password)
    if opened is None:
        raise _refuse(401, "wrong email or password")
    member, cookie = opened
    _hand_session(response, desk, cookie)
    return SignedIn(member_id=member.member_id, team=member.team, role=member.role, expires_in=desk.cookie_lifetime)


@_ROUTER.delete("/session", status_code=204, responses=_GUARDED)
async def sign_out(member: Anyone, desk: Desk, cookie: SessionCookie) -> Response:
    with desk.lock:
        desk.state.sessions.pop(cookie or "", None)
    answer = Response(status_code=204)
    answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return answer


# tickets


@_ROUTER.get("/tickets", responses=_GUARDED)
async def list_tickets(
    request: Request, desk: Desk, member: Anyone, q: Search = "", x_team: TeamHeader = ""
) -> list[Ticket]:
    team = desk.acting_team(member, x_team)
    searching = "q" in request.query_params
    every_team = searching and "ticket_search_leak" in desk.flaws
    with desk.lock:
        found = [t for t in desk.state.tickets.values() if every_team or t.team == team]
        if searching:
            needle = q.casefold()
            found = [t for t in found if needle in t.subject.casefold() or needle in t.body.casefold()]
        answer = [t.public() for t in sorted(found, key=lambda t: (t.team, t.ref))]
    return [Ticket.model_validate(t) for t in answer]


@_ROUTER.post("/tickets", status_code=201, responses={**_GUARDED, **_CONFLICT})
async def open_ticket(body: TicketIn, desk: Desk, member: TicketWorker) -> Ack:
    with desk.lock:
        if (member.team, body.ref) in desk.state.tickets:
            raise _refuse(409, "a ticket of this team has this ref")
        desk.state.tickets[member.team, body.ref] = _Ticket(
            member.team, body.ref, body.subject, body.body, body.priority
        )
    return Ack(ok=True)


@_ROUTER.get("/tickets/{ref}", responses=_ADDRESSED)
async def read_ticket(ref: Ref, desk: Desk, member: Anyone) -> Ticket:
    with desk.lock:
        ticket = desk.state.tickets.get((member.team, ref))
        if ticket is None:
            raise _refuse(404, NOT_FOUND)
        return Ticket.model_validate(ticket.public())


@_ROUTER.patch("/tickets/{ref}", responses={**_ADDRESSED, **_CONFLICT})
async def update_ticket(ref: Ref, body: TicketPatch, desk: Desk, member: TicketWorker) -> Ticket:
    tickets = desk.state.tickets
    with desk.lock:
        ticket = tickets.get((member.team, ref))
        if ticket is None:
            raise _refuse(404, NOT_FOUND)
        moving_to = body.team if body.team is not None and body.team != ticket.team else None
        if moving_to is not None:
            if "ticket_team_reassign" not in desk.flaws or moving_to not in desk.state.invites:
                raise _refuse(422, "body.team: a ticket stays in its team")
            if (moving_to, ref) in tickets:
                raise _refuse(409, "a ticket of that team has this ref")
        if body.subject is not None:
            ticket.subject = body.subject
        if body.body is not None:
            ticket.body = body.body
        if body.priority is not None:
            ticket.priority = body.priority
        if moving_to is not None:
            del tickets[ticket.team, ref]
            ticket.team = moving_to
            tickets[moving_to, ref] = ticket
        return Ticket.model_validate(ticket.public())


@_ROUTER.delete("/tickets/{ref}", status_code=204, responses=_ADDRESSED)
async def close_ticket(ref: Ref, desk: Desk, member: Admin) -> Response:
    with desk.lock:
        if desk.state.tickets.pop((member.team, ref), None) is None:
            raise _refuse(404, NOT_FOUND)
    return Response(status_code=204)


# macros


@_ROUTER.get("/macros", responses=_GUARDED)
async def list_macros(desk: Desk, member: Anyone, x_team: TeamHeader = "") -> list[Macro]:
    team = desk.acting_team(member, x_team)
    with desk.lock:
        return [Macro.model_validate(m.public()) for m in desk.state.macros.values() if m.team == team]


@_ROUTER.post("/macros", status_code=201, responses=_GUARDED)
async def write_macro(body: MacroIn, desk: Desk, member: Admin) -> Macro:
    macro = _Macro(str(uuid.uuid4()), member.team, body.title, body.body)
    with desk.lock:
        desk.state.macros[macro.id] = macro
    return Macro.model_validate(macro.public())


@_ROUTER.get("/macros/{macro_id}", responses=_ADDRESSED)
async def read_macro(macro_id: uuid.UUID, desk: Desk, member: Anyone) -> Macro:
    with desk.lock:
        return Macro.model_validate(desk.macro(member, macro_id).public())


@_ROUTER.patch("/macros/{macro_id}", responses=_ADDRESSED)
async def update_macro(macro_id: uuid.UUID, body: MacroPatch, desk: Desk, member: MacroEditor) -> Macro:
    with desk.lock:
        macro = desk.macro(member, macro_id)
        if body.title is not None:
            macro.title = body.title
        if body.body is not None:
            macro.body = body.body
        return Macro.model_validate(macro.public())


@_ROUTER.delete("/macros/{macro_id}", status_code=204, responses=_ADDRESSED)
async def delete_macro(macro_id: uuid.UUID, desk: Desk, member: MacroEditor) -> Response:
    with desk.lock:
        del desk.state.macros[desk.macro(member, macro_id).id]
    return Response(status_code=204)


# members


@_ROUTER.get("/members", responses=_GUARDED)
async def list_members(desk: Desk, member: Anyone, x_team: TeamHeader = "") -> list[MemberOut]:
    team = desk.acting_team(member, x_team)
    with desk.lock:
        found = sorted((m for m in desk.state.members.values() if m.team == team), key=lambda m: m.email)
        return [MemberOut.model_validate(m.public()) for m in found]


@_ROUTER.put("/members/{member_id}/role", responses={**_ADDRESSED, **_CONFLICT})
async def set_role(member_id: uuid.UUID, body: RoleChange, desk: Desk, member: RoleSetter) -> MemberOut:
    members = desk.state.members
    with desk.lock:
        target = members.get(str(member_id))
        if target is None or target.team != member.team:
            raise _refuse(404, NOT_FOUND)
        admins = [m for m in members.values() if m.team == target.team and m.role == "admin"]
        if admins == [target] and body.role != "admin":
            raise _refuse(409, "a team keeps at least one admin")
        target.role = body.role
        return MemberOut.model_validate(target.public())


# integrations


@_ROUTER.get("/integrations", responses=_GUARDED)
async def list_integrations(desk: Desk, member: Anyone, x_team: TeamHeader = "") -> list[Integration]:
    team = desk.acting_team(member, x_team)
    whole = "integration_token_exposed" in desk.flaws
    with desk.lock:
        found = [i.public(whole=whole) for i in desk.state.integrations.values() if i.team == team]
    return [Integration.model_validate(i) for i in found]


@_ROUTER.post("/integrations", status_code=201, responses=_GUARDED)
async def connect(body: IntegrationIn, desk: Desk, member: Admin) -> Integration:
    integration = _Integration(str(uuid.uuid4()), member.team, body.name, body.api_token)
    with desk.lock:
        desk.state.integrations[integration.id] = integration
    return Integration.model_validate(integration.public())


@_ROUTER.get("/integrations/{integration_id}", responses=_ADDRESSED)
async def read_integration(integration_id: uuid.UUID, desk: Desk, member: Anyone) -> Integration:
    with desk.lock:
        integration = desk.state.integrations.get(str(integration_id))
        if integration is None or integration.team != member.team:
            raise _refuse(404, NOT_FOUND)
        return Integration.model_validate(integration.public())


# --- pages --------------------------------------------------------------------------------------------------------
# HTML for a browser, in no OpenAPI document. Every string a user gave is escaped as it is written into a page.


class _PageRoute(APIRoute):
    """A page's route: every answer `Cache-Control: no-store`, and an unhandled error the oops page, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                answer = await handle(request)
            except (HTTPException, RequestValidationError):
                raise  # handled errors: the app's handlers answer them
            except Exception:
                reference = secrets.token_hex(8)
                _LOG.exception("%s %s failed; reference %s", request.method, request.url.path, reference)
                answer = _oops_page(reference)
            answer.headers["Cache-Control"] = "no-store"
            return answer

        return page


_PAGES = APIRouter(route_class=_PageRoute, include_in_schema=False)
NextPage = Annotated[str, Query(alias="next", description="where to go once signed in")]


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    """A whole document around `body`, HTML already escaped; `title` is the app's own text."""
    return HTMLResponse(
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{title} - helpdesk</title></head>\n<body>\n{body}\n</body>\n</html>\n",
        status_code=status,
    )


def _oops_page(reference: str) -> HTMLResponse:
    return _page(
        "Error",
        f'<div class="oops">Something went wrong. Reference: <code>{reference}</code></div>',
        status=500,
    )


def _forbidden_page() -> HTMLResponse:
    reference = secrets.token_hex(8)
    return _page(
        "Forbidden",
        f'<div class="forbidden">You do not have access to this page. Reference: <code>{reference}</code></div>',
        status=403,
    )


def _login_form(next_page: str, *, wrong: bool = False) -> HTMLResponse:
    """The sign-in form, carrying `next` as it was given; `wrong` says the last credentials were wrong."""
    problem = '<p class="problem">Wrong email or password.</p>\n' if wrong else ""
    return _page(
        "Sign in",
        f"<h1>Sign in</h1>\n{problem}"
        '<form method="post" action="/login">\n'
        '<label for="email">Email</label> <input id="email" name="email" type="email">\n'
        '<label for="password">Password</label> <input id="password" name="password" type="password">\n'
        f'<input type="hidden" name="next" value="{html.escape(next_page)}">\n'
        '<button type="submit">Sign in</button>\n'
        "</form>",
    )


def _see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _local(next_page: str) -> str:
    """`next_page` if it is a path of this site, else the desk: `//host` and `/\\host` are other hosts to a
    browser, so never a redirect off the site."""
    if next_page.startswith("/") and not next_page.startswith(("//", "/\\")):
        return next_page
    return DESK_PAGE


def _form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body, the first value of each field (no dependency needed)."""
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _sign_in_first(page: str) -> RedirectResponse:
    return _see_other(f"/login?next={page}")


@_PAGES.get("/login", include_in_schema=False)
async def login_page(desk: Desk, cookie: SessionCookie, next_page: NextPage = "") -> Response:
    if desk.signed_in(cookie) is not None:
        return _see_other(_local(next_page))
    return _login_form(next_page)


@_PAGES.post("/login", include_in_schema=False)
async def log_in(request: Request, desk: Desk) -> Response:
    form = _form(await request.body())
    next_page = form.get("next", "")
    opened = desk.open_session(form.get("email", ""), form.get("password", ""))
    if opened is None:
        return _login_form(next_page, wrong=True)
    _, cookie = opened
    answer = _see_other(_local(next_page))
    _hand_session(answer, desk, cookie, path="/login" if "login_cookie_path" in desk.flaws else "/")
    return answer


@_PAGES.get("/desk", include_in_schema=False)
async def desk_page(desk: Desk, cookie: SessionCookie) -> Response:
    member = desk.signed_in(cookie)
    if member is None:
        return _sign_in_first("/desk")
    if "desk_crash" in desk.flaws:
        raise RuntimeError("the desk page fell over (desk_crash)")
    with desk.lock:
        mine = sorted((t for t in desk.state.tickets.values() if t.team == member.team), key=lambda t: t.ref)
        subjects = [t.subject for t in mine]
    listed = "".join(f"<li>{html.escape(subject)}</li>\n" for subject in subjects)
    return _page(
        "Desk",
        '<section id="desk">\n'
        f'<h1>Team <span class="team">{html.escape(member.team)}</span></h1>\n'
        f'<p>Signed in as <span class="email">{html.escape(member.email)}</span>, '
        f'<span class="role">{html.escape(member.role)}</span>.</p>\n'
        f'<ul class="tickets">\n{listed}</ul>\n'
        "</section>",
    )


@_PAGES.get("/settings", include_in_schema=False)
async def settings_page(desk: Desk, cookie: SessionCookie) -> Response:
    member = desk.signed_in(cookie)
    if member is None:
        return _sign_in_first("/settings")
    if member.role != "admin":
        return _sign_in_first("/settings") if "forbidden_to_login" in desk.flaws else _forbidden_page()
    with desk.lock:
        members = sorted((m for m in desk.state.members.values() if m.team == member.team), key=lambda m: m.email)
        rows = [(html.escape(m.email), html.escape(m.role)) for m in members]
    listed = "".join(f'<li><span class="email">{e}</span> <span class="role">{r}</span></li>\n' for e, r in rows)
    return _page(
        "Settings",
        '<section id="settings">\n'
        f'<h1>Settings of team <span class="team">{html.escape(member.team)}</span></h1>\n'
        f'<ul class="members">\n{listed}</ul>\n'
        "</section>",
    )


def create_helpdesk_app(
    *, flaws: frozenset[str] = frozenset(), session_lifetime: float = 900.0, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The app, with the named `flaws` planted (see the module docstring); sessions live `session_lifetime` seconds
    by `clock`. `app.state.requests` counts the requests per `METHOD /path/{template}`."""
    unknown = flaws - FLAWS
    if unknown:
        raise ValueError(f"unknown flaw(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(FLAWS))}")
    if session_lifetime <= 0:
        raise ValueError("session_lifetime must be positive")
    app = FastAPI(
        title="helpdesk",
        version="1.0.0",
        description="Teams, tickets, macros, members and integrations of a support desk.",
        docs_url=None,
        redoc_url=None,
        routes=[*_ROUTER.routes, *_PAGES.routes],
        exception_handlers={RequestValidationError: _invalid_request, HTTPException: _http_error},
    )
    app.state.desk = _Desk(flaws, session_lifetime, clock)
    counter: Counter[str] = Counter()
    app.add_middleware(_Gate, owner=app, counter=counter, lock=threading.Lock())
    app.state.requests = counter
    return app


def request_counts(app: FastAPI) -> Counter[str]:
    """The app's request counter, typed."""
    counter = app.state.requests
    assert isinstance(counter, Counter)
    return counter


def _make(flaws: frozenset[str]) -> FastAPI:
    return create_helpdesk_app(flaws=flaws)


PRACTICE = PracticeTarget(
    name="helpdesk",
    config=Path(__file__).with_name("helpdesk.toml"),
    health="/health",
    flaws=(
        Flaw(
            "agent_deletes_macros",
            "M3",
            "NotRefused",
            "DELETE /macros/{macro_id}",
            evidence="answered 204, expected 403 or 404",
            note="an agent may DELETE (and PATCH) the macros its team's admin wrote: staff objects",
        ),
        Flaw(
            "agent_sets_roles",
            "M3",
            "PrivilegeEscalation",
            "PUT /members/{member_id}/role",
            evidence="no longer refused",
            note="an agent may set roles, its own included: it makes itself admin, then creates macros",
        ),
        Flaw(
            "team_header_switch",
            "M4",
            "ForeignMarker",
            "GET /tickets",
            evidence="X-Team",
            note="X-Team naming another team's slug makes the list operations answer for that team",
        ),
        Flaw(
            "integration_token_exposed",
            "M4",
            "SecretExposed",
            "GET /integrations",
            evidence="shows a secret the run registered",
            note="GET /integrations answers each integration's api_token whole, not masked",
        ),
        Flaw(
            "ticket_team_reassign",
            "M4",
            "MassAssignment",
            "PATCH /tickets/{ref}",
            evidence="team=",
            note="PATCH /tickets/{ref} honours a team in the body and moves the ticket into that team",
        ),
        Flaw(
            "ticket_search_leak",
            "M4",
            "ForeignMarker",
            "GET /tickets",
            evidence="searching q for",
            note="GET /tickets?q= searches every team's tickets; without q the list stays the team's",
        ),
    ),
    make_app=_make,
    never=("DELETE /session",),
    counts=request_counts,
)
