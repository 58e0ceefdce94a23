"""The accounts practice target on its own, in-process (werkzeug's test client): every route, every refusal, each
planted flaw on and off."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import Client

from harness.config.model import load_config
from harness.config.operations import unmatched
from tests.targets.accounts_app import (
    FLAWS,
    PRACTICE,
    TOKEN_LIFETIME,
    WEAK_JWT_SECRET,
    AccountsApp,
    accounts_openapi,
    create_accounts_app,
    request_counts,
    sign_token,
    token_subject,
)

NOT_FOUND = {"detail": "not found"}
CONFIG = Path(__file__).with_name("accounts.toml")


@dataclass(frozen=True)
class _Answer:
    """One response, its JSON body typed as what a test reads it as."""

    status_code: int
    headers: Headers
    mimetype: str
    text: str
    json: Any


class _Client:
    """werkzeug's test client, with `token=` adding the bearer header."""

    def __init__(self, app: AccountsApp) -> None:
        self._client = Client(app)

    def request(self, method: str, url: str, *, token: str | None = None, **options: Any) -> _Answer:
        headers = dict(options.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        got = self._client.open(url, method=method, headers=headers, **options)
        text = got.get_data(as_text=True)
        document = json.loads(text) if got.mimetype == "application/json" else None
        return _Answer(got.status_code, got.headers, got.mimetype or "", text, document)

    def get(self, url: str, **options: Any) -> _Answer:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> _Answer:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Any) -> _Answer:
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Any) -> _Answer:
        return self.request("PATCH", url, **options)

    def delete(self, url: str, **options: Any) -> _Answer:
        return self.request("DELETE", url, **options)


def _password(username: str) -> str:
    return f"pw-{username}-long"


def _signup(client: _Client, username: str, **extra: Any) -> _Answer:
    body = {
        "username": username,
        "password": _password(username),
        "display_name": username.title(),
        "email": f"{username}@example.org",
        **extra,
    }
    return client.post("/signup", json=body)


def _login(client: _Client, username: str, password: str | None = None) -> _Answer:
    return client.post("/login", json={"username": username, "password": password or _password(username)})


def _token(client: _Client, username: str) -> str:
    answer = _login(client, username)
    assert answer.status_code == 200, answer.text
    token = answer.json["token"]
    assert isinstance(token, str)
    return token


def _claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    decoded = [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (header, payload)]
    return decoded[0], decoded[1]


@dataclass
class World:
    """Alice and Bob, signed up and signed in, each with a note."""

    app: AccountsApp
    client: _Client
    alice: str
    bob: str
    alice_note: str
    bob_note: str


def _world(*flaws: str) -> World:
    app = create_accounts_app(frozenset(flaws))
    client = _Client(app)
    tokens, notes = {}, {}
    for name in ("alice", "bob"):
        assert _signup(client, name).status_code == 201
        tokens[name] = _token(client, name)
        created = client.post("/notes", token=tokens[name], json={"title": f"{name}'s", "body": f"{name} secret"})
        assert created.status_code == 201, created.text
        notes[name] = created.json["id"]
    return World(app, client, tokens["alice"], tokens["bob"], notes["alice"], notes["bob"])


@pytest.fixture
def world() -> World:
    return _world()


# --- the schema, the config, the switches -------------------------------------------------------------------------

_ROUTES = {  # what an anonymous caller gets on each route (the world's ids in the paths)
    "GET /health": 200,
    "GET /openapi.json": 200,
    "POST /signup": 422,
    "POST /login": 422,
    "GET /directory": 200,
    "GET /users/{username}": 200,
    "GET /me": 401,
    "PATCH /me": 401,
    "PUT /users/{username}/profile": 401,
    "PUT /users/{username}/password": 401,
    "GET /notes": 401,
    "POST /notes": 401,
    "GET /notes/{note_id}": 401,
    "PUT /notes/{note_id}": 401,
    "DELETE /notes/{note_id}": 401,
    "GET /admin/users": 401,
}


def test_the_schema_declares_every_route_its_types_and_which_are_public() -> None:
    app = create_accounts_app()
    served = _Client(app).get("/openapi.json")
    assert served.status_code == 200 and served.mimetype == "application/json"
    schema = served.json
    assert schema == accounts_openapi() and schema["openapi"] == "3.0.3"
    assert schema["security"] == [{"bearerAuth": []}]
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    paths = schema["paths"]
    operations = {f"{m.upper()} {p}" for p, item in paths.items() for m in item if m != "parameters"}
    assert operations == set(_ROUTES) == set(app.handlers)
    public = {op for op in operations if "security" in paths[op.split(" ", 1)[1]][op.split(" ", 1)[0].lower()]}
    assert public == {op for op, status in _ROUTES.items() if status != 401}
    assert paths["/notes/{note_id}"]["parameters"][0]["schema"]["pattern"] == "^n_[a-z2-7]{10}$"
    assert paths["/users/{username}"]["parameters"][0]["schema"]["type"] == "string"
    signup = schema["components"]["schemas"]["Signup"]
    assert set(signup["properties"]) == {"username", "password", "display_name", "email", "is_admin"}
    assert signup["properties"]["is_admin"] == {"type": "boolean"} and "is_admin" not in signup["required"]
    assert schema["components"]["schemas"]["MeUpdate"]["properties"]["username"]["readOnly"] is True


def test_its_config_loads_and_names_only_operations_of_the_schema() -> None:
    config = load_config(CONFIG)
    served = [(route.split(" ", 1)[0], route.split(" ", 1)[1]) for route in _ROUTES]
    assert unmatched([ref for _, ref in config.named_operations()], served) == []
    assert {(p.org, p.role) for p in config.principals} == {("alice", "user"), ("bob", "user"), ("carol", "user")}
    assert "C1" not in config.checks.not_applicable  # its own JWTs are what C1 judges


def test_every_flaw_has_its_row_and_unknown_ones_are_refused() -> None:
    assert {flaw.name for flaw in PRACTICE.flaws} == FLAWS
    assert PRACTICE.wsgi and PRACTICE.config == CONFIG and PRACTICE.counts is request_counts
    with pytest.raises(ValueError, match="unknown flaw"):
        create_accounts_app(frozenset({"note_bola"}))


def test_requests_are_counted_per_route_template(world: World) -> None:
    before = request_counts(world.app)
    world.client.get(f"/notes/{world.alice_note}", token=world.alice)
    world.client.get("/nowhere")
    world.client.delete("/me", token=world.alice)
    after = request_counts(world.app)
    assert after["GET /notes/{note_id}"] == before.get("GET /notes/{note_id}", 0) + 1
    assert after["GET (no route)"] == 1 and after["DELETE (no route)"] == 1
    assert after["POST /signup"] == 2 and after["POST /login"] == 2 and after["POST /notes"] == 2


# --- signing up and in --------------------------------------------------------------------------------------------


def test_signup_refuses_bad_bodies_with_a_4xx_and_a_json_detail() -> None:
    client = _Client(create_accounts_app())
    assert _signup(client, "ann").status_code == 201
    assert _signup(client, "ann").status_code == 409
    good = {"username": "bea", "password": "long enough", "display_name": "Bea", "email": "bea@example.org"}
    bad_bodies: list[object] = [
        {k: v for k, v in good.items() if k != "email"},
        {**good, "username": "a/b"},
        {**good, "username": "ab"},
        {**good, "password": "short"},
        {**good, "email": "not an email"},
        {**good, "display_name": 7},
        {**good, "display_name": "\ud800"},
        {**good, "is_admin": "yes"},
        ["bea"],
    ]
    for bad in bad_bodies:
        answer = client.post("/signup", json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert set(answer.json) == {"detail"}
    as_json = {"Content-Type": "application/json"}
    assert client.post("/signup", data=b"{not json", headers=as_json).status_code == 422
    assert client.post("/signup", data=b"[" * 30_000 + b"]" * 30_000, headers=as_json).status_code == 413
    assert client.post("/signup", data=b"[" * 8000 + b"]" * 8000, headers=as_json).status_code == 422  # too deep
    assert client.post("/signup", data=good).status_code == 415  # a form
    assert client.post("/signup", json={**good, "role": "staff", "org_id": 1}).status_code == 201  # extras ignored


def test_login_hands_out_an_hs256_jwt_that_names_the_user() -> None:
    client = _Client(create_accounts_app())
    _signup(client, "ann")
    answer = _login(client, "ann")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert set(answer.json) == {"token", "expires_in"} and answer.json["expires_in"] == TOKEN_LIFETIME
    header, claims = _claims(answer.json["token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(claims) == {"sub", "iat", "exp"} and claims["sub"] == "ann"
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME
    assert token_subject(answer.json["token"], WEAK_JWT_SECRET, claims["iat"]) is None  # not the weak secret
    for wrong in ({"username": "ann", "password": "nope"}, {"username": "zed", "password": _password("ann")}):
        refused = client.post("/login", json=wrong)
        assert (refused.status_code, set(refused.json)) == (401, {"detail"})
        assert "token" not in refused.json


class _Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


def test_forged_tampered_and_expired_tokens_are_refused() -> None:
    clock = _Clock()
    app = create_accounts_app(token_lifetime=5, clock=clock)
    client = _Client(app)
    _signup(client, "ann")
    _signup(client, "ben")
    token = _token(client, "ann")
    assert client.get("/me", token=token).json["username"] == "ann"
    header, payload, signature = token.split(".")
    claims = _claims(token)[1]
    as_ben = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "ben"}).encode()).rstrip(b"=").decode()
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    forgeries = [
        f"{header}.{as_ben}.{signature}",  # another subject under the same signature
        f"{unsigned}.{payload}.",
        sign_token(claims, b"secret"),
        sign_token(claims, WEAK_JWT_SECRET),
        f"{header}.{payload}.{signature[:-2]}",
        "not-a-jwt",
        "a.b.c",
        f"{header}.{payload}.{signature}é",
    ]
    for forged in forgeries:
        refused = client.get("/me", token=forged)
        assert refused.status_code == 401, forged
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    clock.now += 5
    assert client.get("/me", token=token).status_code == 401  # expired
    assert client.get("/me", token=_token(client, "ann")).status_code == 200


@pytest.mark.parametrize("credentials", [None, "Bearer not-a-token", "Basic YW5uOnB3", "Bearer "])
def test_anonymous_and_bad_tokens_get_401_everywhere_but_the_public_routes(credentials: str | None) -> None:
    world = _world()
    headers = {} if credentials is None else {"Authorization": credentials}
    for route, status in _ROUTES.items():
        method, template = route.split(" ", 1)
        url = template.replace("{username}", "alice").replace("{note_id}", world.alice_note)
        answer = world.client.request(method, url, headers=headers, json={})
        assert answer.status_code == status, (route, answer.text)
        assert "secret" not in answer.text and "pw-" not in answer.text, route
        if status == 401:
            assert answer.headers["WWW-Authenticate"].startswith("Bearer"), route


# --- the caller, profiles, the directory ---------------------------------------------------------------------------


def test_me_is_the_caller_and_patch_me_changes_only_the_caller(world: World) -> None:
    client = world.client
    assert client.get("/me", token=world.alice).json == {
        "username": "alice",
        "display_name": "Alice",
        "email": "alice@example.org",
        "is_admin": False,
    }
    changed = client.patch("/me", token=world.alice, json={"display_name": "Al", "username": "bob", "is_admin": True})
    assert changed.status_code == 200
    assert changed.json == {"username": "alice", "display_name": "Al", "email": "alice@example.org", "is_admin": False}
    assert client.get("/me", token=world.bob).json["display_name"] == "Bob"
    assert client.patch("/me", token=world.alice, json={"email": "nope"}).status_code == 422


def test_profile_writes_answer_204_and_change_only_the_callers_own(world: World) -> None:
    client = world.client
    profile = {"display_name": "Mallory", "email": "mallory@example.org"}
    for username in ("bob", "nobody-at-all", "not-an-id'"):
        assert client.put(f"/users/{username}/profile", token=world.alice, json=profile).status_code == 204
        assert (
            client.put(f"/users/{username}/password", token=world.alice, json={"password": "owned-you"}).status_code
            == 204
        )
    assert client.get("/me", token=world.bob).json["display_name"] == "Bob"
    assert _login(client, "bob").status_code == 200  # Bob's password is his still
    assert client.put("/users/alice/profile", token=world.alice, json=profile).status_code == 204
    assert client.get("/me", token=world.alice).json["display_name"] == "Mallory"
    assert client.put("/users/alice/password", token=world.alice, json={"password": "a new one"}).status_code == 204
    assert _login(client, "alice").status_code == 401 and _login(client, "alice", "a new one").status_code == 200
    assert client.put("/users/alice/profile", token=world.alice, json={"display_name": "X"}).status_code == 422


def test_public_profiles_and_the_directory_show_names_only(world: World) -> None:
    client = world.client
    assert client.get("/users/bob").json == {"username": "bob", "display_name": "Bob"}
    assert client.get("/users/nobody-at-all").json == NOT_FOUND
    assert client.get("/directory").json == [{"username": "alice"}, {"username": "bob"}]


def test_admin_users_is_refused_to_everyone_even_one_who_asked_for_it(world: World) -> None:
    assert _signup(world.client, "eve", is_admin=True).status_code == 201
    eve = _token(world.client, "eve")
    assert world.client.get("/me", token=eve).json["is_admin"] is False
    for token in (world.alice, world.bob, eve):
        refused = world.client.get("/admin/users", token=token)
        assert (refused.status_code, refused.json) == (403, {"detail": "staff only"})


# --- notes --------------------------------------------------------------------------------------------------------


def test_notes_crud_for_their_owner(world: World) -> None:
    client = world.client
    created = client.post("/notes", token=world.alice, json={"title": "t", "body": ""})
    assert created.status_code == 201
    note_id = created.json["id"]
    assert created.headers["Location"] == f"/notes/{note_id}"
    assert created.json == {"id": note_id, "title": "t", "body": ""}
    assert note_id.startswith("n_") and len(note_id) == 12
    assert [n["id"] for n in client.get("/notes", token=world.alice).json] == [world.alice_note, note_id]
    updated = client.put(f"/notes/{note_id}", token=world.alice, json={"title": "u", "body": "v"})
    assert updated.json == {"id": note_id, "title": "u", "body": "v"}
    assert client.get(f"/notes/{note_id}", token=world.alice).json == updated.json
    assert client.delete(f"/notes/{note_id}", token=world.alice).status_code == 204
    assert client.get(f"/notes/{note_id}", token=world.alice).json == NOT_FOUND
    assert client.post("/notes", token=world.alice, json={"title": ""}).status_code == 422


def test_another_users_note_answers_as_one_nobody_has(world: World) -> None:
    client = world.client
    for note_id in (world.bob_note, "n_aaaaaaaaaa", "not-an-id'"):
        for method, body in (("GET", None), ("PUT", {"title": "x", "body": "y"}), ("DELETE", None)):
            answer = client.request(method, f"/notes/{note_id}", token=world.alice, json=body)
            assert (answer.status_code, answer.json) == (404, NOT_FOUND), (method, note_id)
    assert [n["id"] for n in client.get("/notes", token=world.alice).json] == [world.alice_note]
    assert client.get(f"/notes/{world.bob_note}", token=world.bob).json["body"] == "bob secret"


# --- each planted flaw --------------------------------------------------------------------------------------------


def test_profile_write_any_rewrites_another_users_profile() -> None:
    world = _world("profile_write_any")
    profile = {"display_name": "Mallory", "email": "mallory@example.org"}
    assert world.client.put("/users/bob/profile", token=world.alice, json=profile).status_code == 204
    assert world.client.get("/me", token=world.bob).json["email"] == "mallory@example.org"


def test_me_body_username_updates_the_user_the_body_names() -> None:
    world = _world("me_body_username")
    answer = world.client.patch("/me", token=world.alice, json={"username": "bob", "email": "mallory@example.org"})
    assert answer.status_code == 200 and answer.json["username"] == "bob"
    assert world.client.get("/me", token=world.bob).json["email"] == "mallory@example.org"
    assert world.client.get("/me", token=world.alice).json["email"] == "alice@example.org"


def test_password_set_any_locks_the_victim_out() -> None:
    world = _world("password_set_any")
    assert world.client.put("/users/bob/password", token=world.alice, json={"password": "owned-you"}).status_code == 204
    assert _login(world.client, "bob").status_code == 401
    assert _login(world.client, "bob", "owned-you").status_code == 200


def test_signup_is_admin_makes_staff_who_read_every_email() -> None:
    world = _world("signup_is_admin")
    assert _signup(world.client, "eve", is_admin=True).status_code == 201
    eve = _token(world.client, "eve")
    assert world.client.get("/me", token=eve).json["is_admin"] is True
    listed = world.client.get("/admin/users", token=eve)
    assert listed.status_code == 200
    assert {u["email"] for u in listed.json} == {"alice@example.org", "bob@example.org", "eve@example.org"}
    assert world.client.get("/admin/users", token=world.alice).status_code == 403


def test_profile_exposes_password_answers_it_to_anyone() -> None:
    world = _world("profile_exposes_password")
    assert world.client.get("/users/bob").json == {
        "username": "bob",
        "display_name": "Bob",
        "password": _password("bob"),
    }


def test_note_idor_reads_any_users_note() -> None:
    world = _world("note_idor")
    stolen = world.client.get(f"/notes/{world.bob_note}", token=world.alice)
    assert stolen.status_code == 200 and stolen.json["body"] == "bob secret"
    refused = world.client.put(f"/notes/{world.bob_note}", token=world.alice, json={"title": "x", "body": "y"})
    assert refused.status_code == 404  # only the read is open


def test_weak_jwt_secret_signs_with_a_dictionary_word() -> None:
    world = _world("weak_jwt_secret")
    claims = _claims(world.alice)[1]
    assert token_subject(world.alice, WEAK_JWT_SECRET, claims["iat"]) == "alice"
    forged = sign_token({**claims, "sub": "bob"}, WEAK_JWT_SECRET)  # whoever guesses the word is anyone
    assert world.client.get("/me", token=forged).json["username"] == "bob"
