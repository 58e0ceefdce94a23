"""A third practice target, shaped unlike the ledger: a Starlette app (no FastAPI) for lending libraries.

Shape
-----
* Tenants are *branches*. Anyone may `POST /register` a user into a branch with a role: `librarian` (the branch's
  administrator) or `reader` (read-only); the first user named for a branch creates it. Registration is open by
  design of this target (the harness builds its world through it), so it is not counted as a flaw.
* Sign-in is the OAuth2 password flow at `POST /token`, **form-encoded** (a JSON body is refused 415). Tokens are
  opaque random strings that expire after `token_lifetime` seconds; requests carry `Authorization: Bearer <token>`,
  and a missing, unknown or expired token answers 401 with `WWW-Authenticate: Bearer`.
* Books are keyed by their **title**, a string the client chose; `POST /books` answers `{"status": "created"}`
  without it. Titles are unique within a branch and may not contain `/`.
* Loans have **integer**, sequential (so guessable) ids; `POST /loans` answers `{"status": "created"}` and gives the
  id only in the `Location: /loans/<id>` header. A non-integer loan id matches no route: 404, always.
* `POST /admin/reset` is public and **destructive**: it wipes every user, token, book and loan. The harness config
  lists it under `never`; `app.state.requests` (a `Counter` keyed `"METHOD /path/{template}"`, counted before the
  request is handled) lets a test prove the harness never called it.
* The app serves its own OpenAPI 3.1 document at `/openapi.json`, byte for byte the file `library.openapi.json`
  next to this module (`python -m tests.targets.library_app` rewrites that file).

Authorization of the secure build (`flaws` empty)
-------------------------------------------------
Another branch's book or loan answers 404 with the very body an id nobody has gets; a reader is refused 403 on
every mutating operation, borrowing (`POST /loans`) included; the role is checked before the body is read, so a
reader learns nothing from a write; anonymous callers get 401 everywhere but `/health`, `/register`, `/token`,
`/openapi.json` and `/admin/reset`.

Planted flaws, each switched on by its name in `flaws`
------------------------------------------------------
* `book_bola`: `GET /books/{title}` falls back to another branch's book of that title.
* `loan_idor`: `GET /loans/{loan_id}` and `DELETE /loans/{loan_id}` act on any branch's loan.
* `reader_can_write`: readers may `PUT /books/{title}` (still only on their own branch's books).
* `search_leak`: `GET /books?q=` searches every branch's books (without `q` the list stays the branch's own).
* `existence_oracle`: another branch's loan id answers 403 on `GET`/`DELETE /loans/{loan_id}`, a missing one 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "FLAWS",
    "OPENAPI_PATH",
    "ROLES",
    "Book",
    "Loan",
    "User",
    "create_library_app",
    "library_openapi",
    "openapi_text",
    "request_counts",
]

FLAWS: Final = frozenset({"book_bola", "loan_idor", "reader_can_write", "search_leak", "existence_oracle"})
ROLES: Final = ("librarian", "reader")
OPENAPI_PATH: Final = Path(__file__).with_name("library.openapi.json")
MAX_BODY_BYTES: Final = 64 * 1024
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")  # "/loans/{loan_id:int}" -> "/loans/{loan_id}"


@dataclass(frozen=True)
class User:
    """A registered user: one branch, one role, a salted password hash."""

    username: str
    branch: str
    role: str
    salt: bytes
    password_hash: bytes


@dataclass
class Book:
    """A book of one branch, keyed within it by its title."""

    branch: str
    title: str
    author: str
    note: str

    def public(self) -> dict[str, str]:
        """What the API answers for it."""
        return {"title": self.title, "author": self.author, "note": self.note, "branch": self.branch}


@dataclass(frozen=True)
class Loan:
    """A loan of one of its branch's books to a member, under a sequential integer id."""

    id: int
    branch: str
    book_title: str
    note: str
    borrower: str

    def public(self) -> dict[str, str | int]:
        """What the API answers for it."""
        return {
            "id": self.id,
            "book_title": self.book_title,
            "note": self.note,
            "borrower": self.borrower,
            "branch": self.branch,
        }


@dataclass(frozen=True)
class _Session:
    username: str
    expires_at: float


@dataclass
class _State:
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, _Session] = field(default_factory=dict)
    books: dict[tuple[str, str], Book] = field(default_factory=dict)  # (branch, title) -> book
    loans: dict[int, Loan] = field(default_factory=dict)
    next_loan_id: int = 1


class _Refusal(Exception):
    """An answer other than success, raised from anywhere in a handler."""

    def __init__(self, status: int, body: Mapping[str, str], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})


def _refuse(status: int, detail: str, headers: Mapping[str, str] | None = None) -> _Refusal:
    return _Refusal(status, {"detail": detail}, headers)


NOT_FOUND: Final = "not found"  # the one body for "nobody has it" and "you may not see it"


# --- request bodies: one description gives both the validation and the schema -------------------------------------


@dataclass(frozen=True)
class _Field:
    """One string field of a JSON request body."""

    name: str
    min_length: int = 1
    max_length: int = 200
    required: bool = True
    pattern: str | None = None
    choices: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        """The field's JSON Schema."""
        if self.choices:
            return {"type": "string", "enum": list(self.choices)}
        described: dict[str, Any] = {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}
        if self.pattern is not None:
            described["pattern"] = self.pattern
        return described

    def problem(self, value: object) -> str | None:
        """Why `value` does not fit, or None."""
        if not isinstance(value, str):
            return f"{self.name} must be a string"
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate: JSON can carry it, UTF-8 (and so the answer) cannot
            return f"{self.name} must be valid Unicode"
        if self.choices:
            return None if value in self.choices else f"{self.name} must be one of {', '.join(self.choices)}"
        if not self.min_length <= len(value) <= self.max_length:
            return f"{self.name} must be {self.min_length} to {self.max_length} characters"
        if self.pattern is not None and re.search(self.pattern, value) is None:
            return f"{self.name} must match {self.pattern}"
        return None


TITLE_PATTERN: Final = "^[^/]+$"
_NOTE = _Field("note", min_length=0, max_length=2000, required=False)
REGISTER_FIELDS: Final = (
    _Field("username", max_length=100),
    _Field("password", max_length=200),
    _Field("branch", max_length=100),
    _Field("role", choices=ROLES),
)
BOOK_FIELDS: Final = (_Field("title", pattern=TITLE_PATTERN), _Field("author"), _NOTE)
BOOK_UPDATE_FIELDS: Final = (_Field("author"), _NOTE)
LOAN_FIELDS: Final = (_Field("book_title", pattern=TITLE_PATTERN), _NOTE)


def _object_schema(fields: tuple[_Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: f.schema() for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }


def _validated(payload: object, fields: tuple[_Field, ...]) -> dict[str, str]:
    """The body's fields, optional ones defaulting to ""; 422 names the first problem."""
    if not isinstance(payload, dict):
        raise _refuse(422, "the body must be a JSON object")
    known = {f.name for f in fields}
    unknown = sorted(str(key) for key in payload if key not in known)
    if unknown:
        raise _refuse(422, f"unknown field {unknown[0]}")
    values: dict[str, str] = {}
    for spec in fields:
        if spec.name not in payload:
            if spec.required:
                raise _refuse(422, f"{spec.name} is required")
            values[spec.name] = ""
            continue
        problem = spec.problem(payload[spec.name])
        if problem is not None:
            raise _refuse(422, problem)
        values[spec.name] = payload[spec.name]
    return values


async def _body_bytes(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _refuse(413, "body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _refuse(413, "body too large")
    return bytes(body)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _json_body(request: Request, fields: tuple[_Field, ...]) -> dict[str, str]:
    media = _media_type(request)
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise _refuse(415, "expected application/json")
    raw = await _body_bytes(request)
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise _refuse(422, "malformed JSON") from None
    return _validated(payload, fields)


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + password.encode()).digest()


# --- the app ------------------------------------------------------------------------------------------------------


class _Library:
    """The state and the endpoints of one app."""

    def __init__(self, flaws: frozenset[str], token_lifetime: float, clock: Callable[[], float]) -> None:
        self.flaws = flaws
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.lock = threading.Lock()
        self.state = _State()

    # who is calling

    def caller(self, request: Request) -> User:
        """The signed-in user, or 401."""
        header = request.headers.get("authorization")
        if not header:
            raise _refuse(401, "not authenticated", {"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        token = token.strip()
        invalid = _refuse(401, "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if scheme.lower() != "bearer" or not token:
            raise invalid
        with self.lock:
            session = self.state.tokens.get(token)
            if session is not None and self.clock() >= session.expires_at:
                del self.state.tokens[token]
                session = None
            user = self.state.users.get(session.username) if session is not None else None
        if user is None:
            raise invalid
        return user

    def librarian(self, request: Request) -> User:
        """The signed-in user if a librarian; a reader is refused 403."""
        user = self.caller(request)
        if user.role != "librarian":
            raise _refuse(403, "forbidden")
        return user

    # public

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def openapi(self, request: Request) -> Response:
        return Response(openapi_text(), media_type="application/json")

    async def register(self, request: Request) -> Response:
        body = await _json_body(request, REGISTER_FIELDS)
        salt = secrets.token_bytes(16)
        user = User(body["username"], body["branch"], body["role"], salt, _hash(body["password"], salt))
        with self.lock:
            if user.username in self.state.users:
                raise _refuse(409, "username taken")
            self.state.users[user.username] = user
        return JSONResponse({"status": "registered"}, status_code=201)

    async def token(self, request: Request) -> Response:
        if _media_type(request) != "application/x-www-form-urlencoded":
            raise _refuse(415, "expected application/x-www-form-urlencoded")
        raw = await _body_bytes(request)
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw), errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise _Refusal(400, {"error": "invalid_request"}) from None
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:  # RFC 6749 3.2: no parameter more than once
                raise _Refusal(400, {"error": "invalid_request"})
            form[name] = value
        if form.get("grant_type", "password") != "password":
            raise _Refusal(400, {"error": "unsupported_grant_type"})
        if "username" not in form or "password" not in form:
            raise _Refusal(400, {"error": "invalid_request"})
        with self.lock:
            user = self.state.users.get(form["username"])
            if user is None or not hmac.compare_digest(user.password_hash, _hash(form["password"], user.salt)):
                raise _Refusal(400, {"error": "invalid_grant"})
            now = self.clock()
            for stale in [t for t, s in self.state.tokens.items() if now >= s.expires_at]:
                del self.state.tokens[stale]
            token = secrets.token_urlsafe(32)
            self.state.tokens[token] = _Session(user.username, now + self.token_lifetime)
        answer = {"access_token": token, "token_type": "bearer", "expires_in": max(1, math.ceil(self.token_lifetime))}
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def reset(self, request: Request) -> Response:
        with self.lock:
            self.state = _State()
        return JSONResponse({"status": "reset"})

    async def me(self, request: Request) -> Response:
        user = self.caller(request)
        return JSONResponse({"username": user.username, "branch": user.branch, "role": user.role})

    # books

    async def list_books(self, request: Request) -> Response:
        user = self.caller(request)
        query = request.query_params.get("q")
        with self.lock:
            books = [
                book
                for book in self.state.books.values()
                if (book.branch == user.branch or (query is not None and "search_leak" in self.flaws))
                and (query is None or any(query in text for text in (book.title, book.author, book.note)))
            ]
            answer = [book.public() for book in sorted(books, key=lambda b: (b.branch, b.title))]
        return JSONResponse(answer)

    async def create_book(self, request: Request) -> Response:
        user = self.librarian(request)
        body = await _json_body(request, BOOK_FIELDS)
        with self.lock:
            if (user.branch, body["title"]) in self.state.books:
                raise _refuse(409, "title exists")
            self.state.books[user.branch, body["title"]] = Book(
                user.branch, body["title"], body["author"], body["note"]
            )
        return JSONResponse({"status": "created"}, status_code=201)

    async def read_book(self, request: Request) -> Response:
        user = self.caller(request)
        title: str = request.path_params["title"]
        with self.lock:
            book = self.state.books.get((user.branch, title))
            if book is None and "book_bola" in self.flaws:
                book = next((b for b in self.state.books.values() if b.title == title), None)
            if book is None:
                raise _refuse(404, NOT_FOUND)
            answer = book.public()
        return JSONResponse(answer)

    async def update_book(self, request: Request) -> Response:
        user = self.caller(request) if "reader_can_write" in self.flaws else self.librarian(request)
        title: str = request.path_params["title"]
        body = await _json_body(request, BOOK_UPDATE_FIELDS)
        with self.lock:
            book = self.state.books.get((user.branch, title))
            if book is None:
                raise _refuse(404, NOT_FOUND)
            book.author, book.note = body["author"], body["note"]
            answer = book.public()
        return JSONResponse(answer)

    async def delete_book(self, request: Request) -> Response:
        user = self.librarian(request)
        title: str = request.path_params["title"]
        with self.lock:
            if (user.branch, title) not in self.state.books:
                raise _refuse(404, NOT_FOUND)
            if any(loan.branch == user.branch and loan.book_title == title for loan in self.state.loans.values()):
                raise _refuse(409, "the book is on loan")
            del self.state.books[user.branch, title]
        return Response(status_code=204)

    # loans

    async def list_loans(self, request: Request) -> Response:
        user = self.caller(request)
        with self.lock:
            answer = [loan.public() for loan in sorted(self.state.loans.values(), key=lambda x: x.id)]
            answer = [loan for loan in answer if loan["branch"] == user.branch]
        return JSONResponse(answer)

    async def create_loan(self, request: Request) -> Response:
        user = self.librarian(request)
        body = await _json_body(request, LOAN_FIELDS)
        with self.lock:
            if (user.branch, body["book_title"]) not in self.state.books:
                raise _refuse(404, NOT_FOUND)
            loan = Loan(self.state.next_loan_id, user.branch, body["book_title"], body["note"], user.username)
            self.state.loans[loan.id] = loan
            self.state.next_loan_id += 1
        return JSONResponse({"status": "created"}, status_code=201, headers={"Location": f"/loans/{loan.id}"})

    def visible_loan(self, user: User, loan_id: int) -> Loan:
        """The loan if the user may act on it; call with the lock held."""
        loan = self.state.loans.get(loan_id)
        if loan is None:
            raise _refuse(404, NOT_FOUND)
        if loan.branch != user.branch and "loan_idor" not in self.flaws:
            raise _refuse(403, "forbidden") if "existence_oracle" in self.flaws else _refuse(404, NOT_FOUND)
        return loan

    async def read_loan(self, request: Request) -> Response:
        user = self.caller(request)
        with self.lock:
            answer = self.visible_loan(user, request.path_params["loan_id"]).public()
        return JSONResponse(answer)

    async def delete_loan(self, request: Request) -> Response:
        user = self.librarian(request)
        with self.lock:
            loan = self.visible_loan(user, request.path_params["loan_id"])
            del self.state.loans[loan.id]
        return Response(status_code=204)


class _CountRequests:
    """Pure ASGI middleware: counts each HTTP request under `METHOD /template` before handling it."""

    def __init__(self, app: ASGIApp, *, routes: list[BaseRoute], counter: Counter[str], lock: threading.Lock) -> None:
        self.app = app
        self.routes = routes
        self.counter = counter
        self.lock = lock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            template = "(no route)"
            for route in self.routes:
                match, _ = route.matches(scope)
                if match is not Match.NONE and isinstance(route, Route):
                    template = _CONVERTOR.sub(r"{\1}", route.path)
                    if match is Match.FULL:
                        break
            with self.lock:
                self.counter[f"{scope['method']} {template}"] += 1
        await self.app(scope, receive, send)


def _refusal_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refusal)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def _http_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = NOT_FOUND if exc.status_code == 404 else exc.detail.lower()
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


def create_library_app(
    *, flaws: frozenset[str] = frozenset(), token_lifetime: float = 120.0, clock: Callable[[], float] = time.monotonic
) -> Starlette:
    """The app, with the named `flaws` planted (see the module docstring); tokens live `token_lifetime` seconds by
    `clock`. `app.state.requests` counts the requests per `METHOD /path/{template}`."""
    unknown = flaws - FLAWS
    if unknown:
        raise ValueError(f"unknown flaw(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(FLAWS))}")
    if token_lifetime <= 0:
        raise ValueError("token_lifetime must be positive")
    library = _Library(flaws, token_lifetime, clock)
    routes: list[BaseRoute] = [
        Route("/health", library.health, methods=["GET"]),
        Route("/openapi.json", library.openapi, methods=["GET"]),
        Route("/register", library.register, methods=["POST"]),
        Route("/token", library.token, methods=["POST"]),
        Route("/admin/reset", library.reset, methods=["POST"]),
        Route("/me", library.me, methods=["GET"]),
        Route("/books", library.list_books, methods=["GET"]),
        Route("/books", library.create_book, methods=["POST"]),
        Route("/books/{title}", library.read_book, methods=["GET"]),
        Route("/books/{title}", library.update_book, methods=["PUT"]),
        Route("/books/{title}", library.delete_book, methods=["DELETE"]),
        Route("/loans", library.list_loans, methods=["GET"]),
        Route("/loans", library.create_loan, methods=["POST"]),
        Route("/loans/{loan_id:int}", library.read_loan, methods=["GET"]),
        Route("/loans/{loan_id:int}", library.delete_loan, methods=["DELETE"]),
    ]
    counter: Counter[str] = Counter()
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_CountRequests, routes=routes, counter=counter, lock=threading.Lock())],
        exception_handlers={_Refusal: _refusal_response, HTTPException: _http_error_response},
    )
    app.state.requests = counter
    return app


def request_counts(app: Starlette) -> Counter[str]:
    """The app's request counter, typed."""
    counter = app.state.requests
    assert isinstance(counter, Counter)
    return counter


# --- the OpenAPI document -----------------------------------------------------------------------------------------


def _json(schema: Mapping[str, Any] | str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else dict(schema)
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _refusals(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/{code}"} for code in codes}


def library_openapi() -> dict[str, Any]:
    """The app's OpenAPI 3.1 document."""
    public: list[dict[str, list[str]]] = []
    title = {"name": "title", "in": "path", "required": True, "schema": _Field("title", pattern=TITLE_PATTERN).schema()}
    loan_id = {"name": "loan_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    message = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
    status = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
    string = {"type": "string"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "library", "version": "1.0.0", "description": "Branches, books and loans."},
        "security": [{"OAuth2": []}],
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "security": public,
                    "responses": {"200": _json("Status", "The app is up.")},
                }
            },
            "/register": {
                "post": {
                    "operationId": "register",
                    "security": public,
                    "requestBody": _body("Registration"),
                    "responses": {"201": _json("Status", "Registered."), **_refusals("409", "415", "422")},
                }
            },
            "/token": {
                "post": {
                    "operationId": "token",
                    "summary": "OAuth2 password flow",
                    "security": public,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/TokenForm"}}
                        },
                    },
                    "responses": {
                        "200": _json("Token", "A bearer token."),
                        "400": _json("OAuthError", "Bad credentials or a malformed form."),
                        **_refusals("415"),
                    },
                }
            },
            "/admin/reset": {
                "post": {
                    "operationId": "reset",
                    "summary": "Destructive: wipes every user, token, book and loan",
                    "security": public,
                    "responses": {"200": _json("Status", "Everything is gone.")},
                }
            },
            "/me": {
                "get": {
                    "operationId": "me",
                    "responses": {"200": _json("Me", "The caller."), **_refusals("401")},
                }
            },
            "/books": {
                "get": {
                    "operationId": "listBooks",
                    "parameters": [{"name": "q", "in": "query", "required": False, "schema": string}],
                    "responses": {
                        "200": _json({"type": "array", "items": {"$ref": "#/components/schemas/Book"}}, "Books."),
                        **_refusals("401"),
                    },
                },
                "post": {
                    "operationId": "createBook",
                    "requestBody": _body("BookIn"),
                    "responses": {"201": _json("Status", "Created."), **_refusals("401", "403", "409", "415", "422")},
                },
            },
            "/books/{title}": {
                "parameters": [title],
                "get": {
                    "operationId": "readBook",
                    "responses": {"200": _json("Book", "The book."), **_refusals("401", "404")},
                },
                "put": {
                    "operationId": "updateBook",
                    "requestBody": _body("BookUpdate"),
                    "responses": {"200": _json("Book", "Updated."), **_refusals("401", "403", "404", "415", "422")},
                },
                "delete": {
                    "operationId": "deleteBook",
                    "responses": {"204": {"description": "Deleted."}, **_refusals("401", "403", "404", "409")},
                },
            },
            "/loans": {
                "get": {
                    "operationId": "listLoans",
                    "responses": {
                        "200": _json({"type": "array", "items": {"$ref": "#/components/schemas/Loan"}}, "Loans."),
                        **_refusals("401"),
                    },
                },
                "post": {
                    "operationId": "createLoan",
                    "requestBody": _body("LoanIn"),
                    "responses": {
                        "201": {
                            **_json("Status", "Created; the id is only in the Location header."),
                            "headers": {"Location": {"schema": string, "description": "/loans/{loan_id}"}},
                        },
                        **_refusals("401", "403", "404", "415", "422"),
                    },
                },
            },
            "/loans/{loan_id}": {
                "parameters": [loan_id],
                "get": {
                    "operationId": "readLoan",
                    "responses": {"200": _json("Loan", "The loan."), **_refusals("401", "404")},
                },
                "delete": {
                    "operationId": "deleteLoan",
                    "responses": {"204": {"description": "Returned."}, **_refusals("401", "403", "404")},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": public,
                    "responses": {"200": _json({"type": "object"}, "This document.")},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "OAuth2": {"type": "oauth2", "flows": {"password": {"tokenUrl": "/token", "scopes": {}}}},
            },
            "schemas": {
                "Registration": _object_schema(REGISTER_FIELDS),
                "BookIn": _object_schema(BOOK_FIELDS),
                "BookUpdate": _object_schema(BOOK_UPDATE_FIELDS),
                "LoanIn": _object_schema(LOAN_FIELDS),
                "TokenForm": {
                    "type": "object",
                    "properties": {"grant_type": {"const": "password"}, "username": string, "password": string},
                    "required": ["username", "password"],
                    "additionalProperties": False,
                },
                "Token": {
                    "type": "object",
                    "properties": {
                        "access_token": string,
                        "token_type": {"const": "bearer"},
                        "expires_in": {"type": "integer"},
                    },
                    "required": ["access_token", "token_type", "expires_in"],
                },
                "OAuthError": {
                    "type": "object",
                    "properties": {
                        "error": {"enum": ["invalid_request", "invalid_grant", "unsupported_grant_type"]},
                    },
                    "required": ["error"],
                },
                "Status": status,
                "Message": message,
                "Me": {
                    "type": "object",
                    "properties": {"username": string, "branch": string, "role": {"enum": list(ROLES)}},
                    "required": ["username", "branch", "role"],
                },
                "Book": {
                    "type": "object",
                    "properties": {"title": string, "author": string, "note": string, "branch": string},
                    "required": ["title", "author", "note", "branch"],
                },
                "Loan": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "book_title": string,
                        "note": string,
                        "borrower": string,
                        "branch": string,
                    },
                    "required": ["id", "book_title", "note", "borrower", "branch"],
                },
            },
            "responses": {
                "401": _json("Message", "No valid bearer token."),
                "403": _json("Message", "The caller's role may not do this."),
                "404": _json("Message", "Nothing the caller may see has this id."),
                "409": _json("Message", "Already exists, or still in use."),
                "415": _json("Message", "The body is not of the documented media type."),
                "422": _json("Message", "The body does not fit its schema."),
            },
        },
    }


def openapi_text() -> str:
    """The document as served and as stored in `library.openapi.json`."""
    return json.dumps(library_openapi(), indent=2) + "\n"


if __name__ == "__main__":
    OPENAPI_PATH.write_text(openapi_text())
    print(f"wrote {OPENAPI_PATH}")
