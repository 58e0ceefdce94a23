"""A practice target where every user is a tenant of its own: a personal-accounts service in bare Werkzeug (WSGI).

Shape
-----
* No organisations: each user is the unit of tenancy. Anyone may `POST /signup` (JSON `{username, password,
  display_name, email}`, answering 201 `{"username": ...}`); the schema also declares an optional boolean
  `is_admin`, which the secure build ignores. Unknown body fields are ignored everywhere, as many real APIs do.
* `POST /login` (JSON `{username, password}`) answers `{"token": "<HS256 JWT>", "expires_in": 300}`; the JWT names
  the user in `sub` and carries `iat` and `exp`. Requests carry `Authorization: Bearer <jwt>`; a missing, forged
  or expired token answers 401 with `WWW-Authenticate: Bearer`. The secure build signs with 32 random bytes.
* `GET /me` and `PATCH /me` (`{display_name, email}`; the schema declares `username` too, read-only) are about
  the caller alone. `GET /users/{username}` is a public profile (username and display name);
  `PUT /users/{username}/profile` (`{display_name, email}`) and `PUT /users/{username}/password` (`{password}`)
  answer **204 whether or not** the caller is that user, or anyone is: the answer tells nothing, the state does.
* `GET /directory` is public by design: every user's username, nothing else.
* Notes: `GET/POST /notes`, `GET/PUT/DELETE /notes/{note_id}`, JSON `{title, body}`; note ids are short random
  strings (`n_` and 10 base32 characters) and every answer carries the note's `id`.
* `GET /admin/users` is for staff (users with `is_admin`): every user with their email. Nobody can become staff
  through the API of the secure build, so it answers 403 to everyone.
* `GET /health` and `GET /openapi.json` (a hand-written OpenAPI 3.0 document) are public. `app.requests` (a
  `Counter` keyed `"METHOD /path/{template}"`, `(no route)` for other paths) counts each request before it is
  handled.

Authorization of the secure build (`flaws` empty)
-------------------------------------------------
Only a user reaches their own notes: another user's note id answers 404 with the body of an id nobody has. The
per-user writes change nothing unless the path names the caller. Anonymous callers get 401 on everything but
`/health`, `/openapi.json`, `/signup`, `/login`, `/directory` and `/users/{username}`. Bad input is a 4xx with a
JSON `{"detail": ...}` (bodies over 16 KiB 413, not JSON 415, not fitting the schema 422), never a 5xx.

Planted flaws, each switched on by its name in `flaws`
------------------------------------------------------
* `profile_write_any`: `PUT /users/{username}/profile` changes another user's profile (still 204).
* `me_body_username`: `PATCH /me` with a `username` in the body updates that user instead of the caller.
* `password_set_any`: `PUT /users/{username}/password` sets another user's password: their next login fails.
* `signup_is_admin`: `is_admin: true` at sign-up is honoured, and such a user may `GET /admin/users`, every
  user's email included: privilege escalation through registration.
* `profile_exposes_password`: the app keeps each password as given beside its hash, and the public
  `GET /users/{username}` answers it.
* `note_idor`: `GET /notes/{note_id}` answers any user's note.
* `weak_jwt_secret`: tokens are signed with `WEAK_JWT_SECRET`, an English word of zxcvbn's frequency lists (not
  one of the tutorial secrets a forger tries first, so only an offline search of the token finds it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.targets.catalog import Flaw, PracticeTarget

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "FLAWS",
    "PRACTICE",
    "TOKEN_LIFETIME",
    "WEAK_JWT_SECRET",
    "AccountsApp",
    "Note",
    "User",
    "accounts_openapi",
    "create_accounts_app",
    "request_counts",
]

FLAWS: Final = frozenset(
    {
        "profile_write_any",
        "me_body_username",
        "password_set_any",
        "signup_is_admin",
        "profile_exposes_password",
        "note_idor",
        "weak_jwt_secret",
    }
)
# In zxcvbn's English list (so an offline search finds it), not among harness.clerk.attacks.WEAK_SECRETS (so no
# forged token signed with a tutorial secret gets in by luck, and only the offline search can tell).
WEAK_JWT_SECRET: Final = b"treasury"
TOKEN_LIFETIME: Final = 300
MAX_BODY_BYTES: Final = 16 * 1024
USERNAME_PATTERN: Final = "^[A-Za-z0-9_.-]{3,64}$"
NOTE_ID_PATTERN: Final = "^n_[a-z2-7]{10}$"
_NOTE_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
NOT_FOUND: Final = "not found"  # the one body for "nobody has it" and "it is not yours"


@dataclass
class User:
    """A signed-up user: their own tenant."""

    username: str
    display_name: str
    email: str
    salt: bytes
    password_hash: bytes
    is_admin: bool = False
    kept_password: str | None = None  # only `profile_exposes_password` keeps it

    def me(self) -> dict[str, Any]:
        """What the user sees of themselves (and staff of everyone)."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "is_admin": self.is_admin,
        }


@dataclass
class Note:
    """A note, reachable by its owner alone."""

    id: str
    owner: str
    title: str
    body: str

    def public(self) -> dict[str, str]:
        """What the API answers for it."""
        return {"id": self.id, "title": self.title, "body": self.body}


@dataclass
class _State:
    users: dict[str, User] = field(default_factory=dict)
    notes: dict[str, Note] = field(default_factory=dict)


class _Refusal(Exception):
    """An answer other than success, raised from anywhere in a handler."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def _json(document: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(document), status=status, headers=dict(headers or {}), mimetype="application/json")


# --- request bodies: one description gives both the validation and the schema -------------------------------------


@dataclass(frozen=True)
class _Field:
    """One field of a JSON request body: a string (bounded, maybe patterned or an email) or a boolean."""

    name: str
    kind: str = "string"  # "string", "email" or "boolean"
    min_length: int = 1
    max_length: int = 200
    pattern: str | None = None
    required: bool = True
    read_only: bool = False

    def schema(self) -> dict[str, Any]:
        """The field's JSON Schema (OpenAPI 3.0)."""
        if self.kind == "boolean":
            return {"type": "boolean"}
        described: dict[str, Any] = {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}
        if self.kind == "email":
            described["format"] = "email"
        if self.pattern is not None:
            described["pattern"] = self.pattern
        if self.read_only:
            described["readOnly"] = True
        return described

    def problem(self, value: object) -> str | None:
        """Why `value` does not fit, or None."""
        if self.kind == "boolean":
            return None if isinstance(value, bool) else f"{self.name} must be a boolean"
        if not isinstance(value, str):
            return f"{self.name} must be a string"
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate: JSON can carry it, UTF-8 cannot
            return f"{self.name} must be valid Unicode"
        if not self.min_length <= len(value) <= self.max_length:
            return f"{self.name} must be {self.min_length} to {self.max_length} characters"
        if self.pattern is not None and re.search(self.pattern, value) is None:
            return f"{self.name} must match {self.pattern}"
        if self.kind == "email" and _EMAIL.match(value) is None:
            return f"{self.name} must be an email address"
        return None


_USERNAME = _Field("username", min_length=3, max_length=64, pattern=USERNAME_PATTERN)
_NEW_PASSWORD = _Field("password", min_length=8, max_length=200)
_DISPLAY_NAME = _Field("display_name", max_length=100)
_EMAIL_FIELD = _Field("email", kind="email", min_length=3, max_length=254)
SIGNUP_FIELDS: Final = (
    _USERNAME,
    _NEW_PASSWORD,
    _DISPLAY_NAME,
    _EMAIL_FIELD,
    _Field("is_admin", kind="boolean", required=False),
)
LOGIN_FIELDS: Final = (_Field("username", max_length=64), _Field("password", max_length=200))
ME_UPDATE_FIELDS: Final = (
    _Field("username", max_length=64, required=False, read_only=True),
    _Field("display_name", max_length=100, required=False),
    _Field("email", kind="email", min_length=3, max_length=254, required=False),
)
PROFILE_FIELDS: Final = (_DISPLAY_NAME, _EMAIL_FIELD)
PASSWORD_FIELDS: Final = (_NEW_PASSWORD,)
NOTE_FIELDS: Final = (_Field("title", max_length=200), _Field("body", min_length=0, max_length=10_000))


def _object_schema(fields: Iterable[_Field]) -> dict[str, Any]:
    fields = tuple(fields)
    described: dict[str, Any] = {"type": "object", "properties": {f.name: f.schema() for f in fields}}
    if required := [f.name for f in fields if f.required]:
        described["required"] = required
    return described


def _validated(payload: object, fields: tuple[_Field, ...]) -> dict[str, Any]:
    """The declared fields the body carries (unknown ones ignored); 422 names the first problem."""
    if not isinstance(payload, dict):
        raise _Refusal(422, "the body must be a JSON object")
    values: dict[str, Any] = {}
    for spec in fields:
        if spec.name not in payload:
            if spec.required:
                raise _Refusal(422, f"{spec.name} is required")
            continue
        problem = spec.problem(payload[spec.name])
        if problem is not None:
            raise _Refusal(422, problem)
        values[spec.name] = payload[spec.name]
    return values


def _json_body(request: Request, fields: tuple[_Field, ...]) -> dict[str, Any]:
    media = request.mimetype
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise _Refusal(415, "expected application/json")
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _Refusal(413, "body too large")
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise _Refusal(413, "body too large")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise _Refusal(422, "malformed JSON") from None
    return _validated(payload, fields)


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + password.encode()).digest()


# --- tokens: compact HS256 JWS, signed and checked here (one algorithm, nothing taken from the header) -------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if re.fullmatch(r"[A-Za-z0-9_-]*", text) is None:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_JOSE: Final = _b64(b'{"alg":"HS256","typ":"JWT"}')


def sign_token(claims: Mapping[str, Any], secret: bytes) -> str:
    """A compact HS256 JWT of `claims`."""
    signing_input = f"{_JOSE}.{_b64(json.dumps(dict(claims), separators=(',', ':')).encode())}"
    return f"{signing_input}.{_b64(hmac.digest(secret, signing_input.encode(), 'sha256'))}"


def token_subject(token: str, secret: bytes, now: float) -> str | None:
    """The `sub` of a token signed with `secret` by HS256 and not expired at `now`, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        signature = _unb64(parts[2])
        expected = hmac.digest(secret, f"{parts[0]}.{parts[1]}".encode(), "sha256")
        if not hmac.compare_digest(expected, signature):  # before anything of the token is believed
            return None
        header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    exp, sub = claims.get("exp"), claims.get("sub")
    if not isinstance(exp, int) or isinstance(exp, bool) or now >= exp or not isinstance(sub, str):
        return None
    return sub


# --- the app ------------------------------------------------------------------------------------------------------

_Handler = Callable[..., Response]
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")  # "/notes/<note_id>" -> "/notes/{note_id}"


class AccountsApp:
    """The WSGI app: its state, its routes, and the count of requests per `METHOD /path/{template}`."""

    def __init__(self, flaws: frozenset[str], token_lifetime: int, clock: Callable[[], float]) -> None:
        self.flaws = flaws
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.secret = WEAK_JWT_SECRET if "weak_jwt_secret" in flaws else secrets.token_bytes(32)
        self.lock = threading.Lock()
        self.state = _State()
        self.requests: Counter[str] = Counter()
        routes: list[tuple[str, str, _Handler]] = [
            ("GET", "/health", self.health),
            ("GET", "/openapi.json", self.openapi),
            ("POST", "/signup", self.signup),
            ("POST", "/login", self.login),
            ("GET", "/me", self.me),
            ("PATCH", "/me", self.update_me),
            ("GET", "/directory", self.directory),
            ("GET", "/users/<username>", self.profile),
            ("PUT", "/users/<username>/profile", self.set_profile),
            ("PUT", "/users/<username>/password", self.set_password),
            ("GET", "/notes", self.list_notes),
            ("POST", "/notes", self.create_note),
            ("GET", "/notes/<note_id>", self.read_note),
            ("PUT", "/notes/<note_id>", self.update_note),
            ("DELETE", "/notes/<note_id>", self.delete_note),
            ("GET", "/admin/users", self.admin_users),
        ]
        self.handlers: dict[str, _Handler] = {}
        rules = []
        for method, path, handler in routes:
            endpoint = method + " " + _CONVERTER.sub(r"{\1}", path)
            self.handlers[endpoint] = handler
            rules.append(Rule(path, methods=[method], endpoint=endpoint))
        # No slash merging and no redirects: a path is one route or none, as the schema says.
        self.url_map = Map(rules, merge_slashes=False, redirect_defaults=False)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
        except MethodNotAllowed as exc:
            self.count(f"{request.method} (no route)")
            allowed = ", ".join(sorted(exc.valid_methods or ()))
            response = _json({"detail": "method not allowed"}, 405, {"Allow": allowed})
        except HTTPException:  # no route, or a redirect to one (a trailing slash): neither is a route of the schema
            self.count(f"{request.method} (no route)")
            response = _json({"detail": NOT_FOUND}, 404)
        else:
            # werkzeug lets HEAD reach the GET route; it is counted as the HEAD it is
            self.count(f"{request.method} {str(endpoint).split(' ', 1)[1]}")
            try:
                response = self.handlers[str(endpoint)](request, **args)
            except _Refusal as refusal:
                response = _json({"detail": refusal.detail}, refusal.status, refusal.headers)
        return response(environ, start_response)

    def count(self, key: str) -> None:
        with self.lock:
            self.requests[key] += 1

    # who is calling

    def caller(self, request: Request) -> User:
        """The signed-in user, or 401."""
        header = request.headers.get("Authorization")
        if not header:
            raise _Refusal(401, "not authenticated", {"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        username = token_subject(token.strip(), self.secret, self.clock()) if scheme.lower() == "bearer" else None
        with self.lock:
            user = self.state.users.get(username) if username is not None else None
        if user is None:
            raise _Refusal(401, "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return user

    # public

    def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    def openapi(self, request: Request) -> Response:
        return _json(accounts_openapi())

    def signup(self, request: Request) -> Response:
        body = _json_body(request, SIGNUP_FIELDS)
        salt = secrets.token_bytes(16)
        user = User(
            body["username"],
            body["display_name"],
            body["email"],
            salt,
            _hash(body["password"], salt),
            is_admin="signup_is_admin" in self.flaws and body.get("is_admin") is True,
            kept_password=body["password"] if "profile_exposes_password" in self.flaws else None,
        )
        with self.lock:
            if user.username in self.state.users:
                raise _Refusal(409, "username taken")
            self.state.users[user.username] = user
        return _json({"username": user.username}, 201)

    def login(self, request: Request) -> Response:
        body = _json_body(request, LOGIN_FIELDS)
        with self.lock:
            user = self.state.users.get(body["username"])
            known = user is not None and hmac.compare_digest(user.password_hash, _hash(body["password"], user.salt))
        if user is None or not known:
            raise _Refusal(401, "wrong username or password")
        now = self.clock()
        claims = {"sub": user.username, "iat": int(now), "exp": int(now) + self.token_lifetime}
        answer = {"token": sign_token(claims, self.secret), "expires_in": self.token_lifetime}
        return _json(answer, headers={"Cache-Control": "no-store"})

    def directory(self, request: Request) -> Response:
        with self.lock:
            answer = [{"username": name} for name in sorted(self.state.users)]
        return _json(answer)

    def profile(self, request: Request, username: str) -> Response:
        with self.lock:
            user = self.state.users.get(username)
            if user is None:
                raise _Refusal(404, NOT_FOUND)
            answer = {"username": user.username, "display_name": user.display_name}
            if user.kept_password is not None:
                answer["password"] = user.kept_password
        return _json(answer)

    # about the caller

    def me(self, request: Request) -> Response:
        user = self.caller(request)
        with self.lock:
            answer = user.me()
        return _json(answer)

    def update_me(self, request: Request) -> Response:
        user = self.caller(request)
        body = _json_body(request, ME_UPDATE_FIELDS)
        with self.lock:
            if "me_body_username" in self.flaws and "username" in body:
                named = self.state.users.get(body["username"])
                if named is None:
                    raise _Refusal(404, NOT_FOUND)
                user = named
            user.display_name = body.get("display_name", user.display_name)
            user.email = body.get("email", user.email)
            answer = user.me()
        return _json(answer)

    def set_profile(self, request: Request, username: str) -> Response:
        user = self.caller(request)
        body = _json_body(request, PROFILE_FIELDS)
        with self.lock:
            target = self.state.users.get(username) if "profile_write_any" in self.flaws else user
            if target is not None and target.username == username:
                target.display_name, target.email = body["display_name"], body["email"]
        return Response(status=204)

    def set_password(self, request: Request, username: str) -> Response:
        user = self.caller(request)
        body = _json_body(request, PASSWORD_FIELDS)
        with self.lock:
            target = self.state.users.get(username) if "password_set_any" in self.flaws else user
            if target is not None and target.username == username:
                target.salt = secrets.token_bytes(16)
                target.password_hash = _hash(body["password"], target.salt)
                if target.kept_password is not None:
                    target.kept_password = body["password"]
        return Response(status=204)

    def admin_users(self, request: Request) -> Response:
        user = self.caller(request)
        if not user.is_admin:
            raise _Refusal(403, "staff only")
        with self.lock:
            answer = [u.me() for _, u in sorted(self.state.users.items())]
        return _json(answer)

    # notes

    def own_note(self, user: User, note_id: str, *, reading: bool = False) -> Note:
        """The note if the user may reach it; call with the lock held."""
        note = self.state.notes.get(note_id)
        if note is None or (note.owner != user.username and not (reading and "note_idor" in self.flaws)):
            raise _Refusal(404, NOT_FOUND)
        return note

    def list_notes(self, request: Request) -> Response:
        user = self.caller(request)
        with self.lock:
            answer = [n.public() for n in self.state.notes.values() if n.owner == user.username]
        return _json(answer)

    def create_note(self, request: Request) -> Response:
        user = self.caller(request)
        body = _json_body(request, NOTE_FIELDS)
        with self.lock:
            note_id = _new_note_id(self.state.notes)
            note = Note(note_id, user.username, body["title"], body["body"])
            self.state.notes[note_id] = note
            answer = note.public()
        return _json(answer, 201, {"Location": f"/notes/{note_id}"})

    def read_note(self, request: Request, note_id: str) -> Response:
        user = self.caller(request)
        with self.lock:
            answer = self.own_note(user, note_id, reading=True).public()
        return _json(answer)

    def update_note(self, request: Request, note_id: str) -> Response:
        user = self.caller(request)
        body = _json_body(request, NOTE_FIELDS)
        with self.lock:
            note = self.own_note(user, note_id)
            note.title, note.body = body["title"], body["body"]
            answer = note.public()
        return _json(answer)

    def delete_note(self, request: Request, note_id: str) -> Response:
        user = self.caller(request)
        with self.lock:
            del self.state.notes[self.own_note(user, note_id).id]
        return Response(status=204)


def _new_note_id(taken: Mapping[str, Note]) -> str:
    while True:
        candidate = "n_" + "".join(secrets.choice(_NOTE_ID_ALPHABET) for _ in range(10))
        if candidate not in taken:
            return candidate


def create_accounts_app(
    flaws: frozenset[str] = frozenset(), *, token_lifetime: int = TOKEN_LIFETIME, clock: Callable[[], float] = time.time
) -> AccountsApp:
    """The app, with the named `flaws` planted (see the module docstring); tokens live `token_lifetime` seconds by
    `clock` (wall-clock seconds: a JWT's `exp` is one)."""
    unknown = flaws - FLAWS
    if unknown:
        raise ValueError(f"unknown flaw(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(FLAWS))}")
    if token_lifetime <= 0:
        raise ValueError("token_lifetime must be positive")
    return AccountsApp(frozenset(flaws), token_lifetime, clock)


def request_counts(app: Any) -> dict[str, int]:
    """The app's requests per `METHOD /path/{template}`."""
    assert isinstance(app, AccountsApp)
    with app.lock:
        return dict(app.requests)


# --- the OpenAPI document -----------------------------------------------------------------------------------------


def _content(schema: Mapping[str, Any] | str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else dict(schema)
    return {"application/json": {"schema": ref}}


def _answer(schema: Mapping[str, Any] | str, description: str) -> dict[str, Any]:
    return {"description": description, "content": _content(schema)}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": _content(schema)}


def _refusals(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/{code}"} for code in codes}


def _list_of(schema: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}


def accounts_openapi() -> dict[str, Any]:
    """The app's OpenAPI 3.0 document."""
    public: list[dict[str, list[str]]] = []
    username = {"name": "username", "in": "path", "required": True, "schema": _USERNAME.schema()}
    note_id = {
        "name": "note_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": NOTE_ID_PATTERN, "minLength": 12, "maxLength": 12},
    }
    string = {"type": "string"}
    written = {"204": {"description": "Done, or nothing to do: the answer is the same either way."}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "accounts", "version": "1.0.0", "description": "Personal accounts, profiles and notes."},
        "security": [{"bearerAuth": []}],
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "security": public,
                    "responses": {"200": _answer("Status", "The app is up.")},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": public,
                    "responses": {"200": _answer({"type": "object"}, "This document.")},
                }
            },
            "/signup": {
                "post": {
                    "operationId": "signup",
                    "security": public,
                    "requestBody": _body("Signup"),
                    "responses": {
                        "201": _answer("SignedUp", "Signed up."),
                        **_refusals("409", "413", "415", "422"),
                    },
                }
            },
            "/login": {
                "post": {
                    "operationId": "login",
                    "security": public,
                    "requestBody": _body("Login"),
                    "responses": {"200": _answer("Token", "A bearer JWT."), **_refusals("401", "413", "415", "422")},
                }
            },
            "/me": {
                "get": {
                    "operationId": "readMe",
                    "responses": {"200": _answer("Me", "The caller."), **_refusals("401")},
                },
                "patch": {
                    "operationId": "updateMe",
                    "requestBody": _body("MeUpdate"),
                    "responses": {"200": _answer("Me", "Updated."), **_refusals("401", "413", "415", "422")},
                },
            },
            "/directory": {
                "get": {
                    "operationId": "directory",
                    "security": public,
                    "responses": {"200": _answer(_list_of("DirectoryEntry"), "Every user's username.")},
                }
            },
            "/users/{username}": {
                "parameters": [username],
                "get": {
                    "operationId": "readProfile",
                    "security": public,
                    "responses": {"200": _answer("PublicProfile", "The public profile."), **_refusals("404")},
                },
            },
            "/users/{username}/profile": {
                "parameters": [username],
                "put": {
                    "operationId": "setProfile",
                    "requestBody": _body("ProfileUpdate"),
                    "responses": {**written, **_refusals("401", "413", "415", "422")},
                },
            },
            "/users/{username}/password": {
                "parameters": [username],
                "put": {
                    "operationId": "setPassword",
                    "requestBody": _body("PasswordUpdate"),
                    "responses": {**written, **_refusals("401", "413", "415", "422")},
                },
            },
            "/notes": {
                "get": {
                    "operationId": "listNotes",
                    "responses": {"200": _answer(_list_of("Note"), "The caller's notes."), **_refusals("401")},
                },
                "post": {
                    "operationId": "createNote",
                    "requestBody": _body("NoteIn"),
                    "responses": {
                        "201": {
                            **_answer("Note", "Created."),
                            "headers": {"Location": {"schema": string, "description": "/notes/{note_id}"}},
                        },
                        **_refusals("401", "413", "415", "422"),
                    },
                },
            },
            "/notes/{note_id}": {
                "parameters": [note_id],
                "get": {
                    "operationId": "readNote",
                    "responses": {"200": _answer("Note", "The note."), **_refusals("401", "404")},
                },
                "put": {
                    "operationId": "updateNote",
                    "requestBody": _body("NoteIn"),
                    "responses": {"200": _answer("Note", "Updated."), **_refusals("401", "404", "413", "415", "422")},
                },
                "delete": {
                    "operationId": "deleteNote",
                    "responses": {"204": {"description": "Deleted."}, **_refusals("401", "404")},
                },
            },
            "/admin/users": {
                "get": {
                    "operationId": "listUsers",
                    "summary": "Staff only: every user, with their email",
                    "responses": {"200": _answer(_list_of("Me"), "Every user."), **_refusals("401", "403")},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Signup": _object_schema(SIGNUP_FIELDS),
                "Login": _object_schema(LOGIN_FIELDS),
                "MeUpdate": _object_schema(ME_UPDATE_FIELDS),
                "ProfileUpdate": _object_schema(PROFILE_FIELDS),
                "PasswordUpdate": _object_schema(PASSWORD_FIELDS),
                "NoteIn": _object_schema(NOTE_FIELDS),
                "Status": {"type": "object", "properties": {"status": string}, "required": ["status"]},
                "Error": {"type": "object", "properties": {"detail": string}, "required": ["detail"]},
                "SignedUp": {"type": "object", "properties": {"username": string}, "required": ["username"]},
                "Token": {
                    "type": "object",
                    "properties": {"token": string, "expires_in": {"type": "integer"}},
                    "required": ["token", "expires_in"],
                },
                "Me": {
                    "type": "object",
                    "properties": {
                        "username": string,
                        "display_name": string,
                        "email": {"type": "string", "format": "email"},
                        "is_admin": {"type": "boolean"},
                    },
                    "required": ["username", "display_name", "email", "is_admin"],
                },
                "PublicProfile": {
                    "type": "object",
                    "properties": {"username": string, "display_name": string},
                    "required": ["username", "display_name"],
                },
                "DirectoryEntry": {"type": "object", "properties": {"username": string}, "required": ["username"]},
                "Note": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "pattern": NOTE_ID_PATTERN},
                        "title": string,
                        "body": string,
                    },
                    "required": ["id", "title", "body"],
                },
            },
            "responses": {
                "401": _answer("Error", "No valid bearer token (or, at login, wrong credentials)."),
                "403": _answer("Error", "Staff only."),
                "404": _answer("Error", "Nothing the caller may see has this id."),
                "409": _answer("Error", "The username is taken."),
                "413": _answer("Error", "The body is over 16 KiB."),
                "415": _answer("Error", "The body is not JSON."),
                "422": _answer("Error", "The body does not fit its schema."),
            },
        },
    }


# --- what the harness must say of each flaw -----------------------------------------------------------------------

PRACTICE = PracticeTarget(
    name="accounts",
    config=Path(__file__).with_name("accounts.toml"),
    health="/health",
    flaws=(
        Flaw(
            "profile_write_any",
            "M4",
            "CrossOrgWrite",
            "PUT /users/{username}/profile",
            evidence="GET /me shows tag",
            note="another user's profile is rewritten through their username; the answer is 204 either way",
        ),
        Flaw(
            "me_body_username",
            "M4",
            "CrossOrgWrite",
            "PATCH /me",
            evidence="(foreign-user:",
            note="PATCH /me with another user's username in the body rewrites that user's profile",
        ),
        Flaw(
            "password_set_any",
            "M4",
            "CrossOrgWrite",
            "PUT /users/{username}/password",
            evidence="can no longer sign in with its own credentials",
            note="another user's password is set through their username: the victim's next login fails",
        ),
        Flaw(
            "signup_is_admin",
            "M3",
            "PrivilegeEscalation",
            "POST /signup",
            evidence="as a user registered with",
            note="is_admin: true at sign-up is honoured; the new user reads every user's email at GET /admin/users",
        ),
        Flaw(
            "profile_exposes_password",
            "M4",
            "SecretExposed",
            "GET /users/{username}",
            evidence="shows a secret the run registered",
            note="the public profile answers the password as it was given at sign-up",
        ),
        Flaw(
            "note_idor",
            "M4",
            "CrossOrgRead",
            "GET /notes/{note_id}",
            evidence="answered 200 on",
            note="any user's note is read by its id",
        ),
        Flaw(
            "weak_jwt_secret",
            "C1",
            "WeakTokenSecret",
            "(offline)",
            evidence="weak secret",
            note="the login's JWTs are signed with an English word, found by an offline search of a token",
        ),
    ),
    make_app=create_accounts_app,
    wsgi=True,
    counts=request_counts,
)
