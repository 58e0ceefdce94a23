"""A practice target of yet another shape: a project tracker written with Flask (WSGI), its tasks nested under
its projects, its callers known by API keys they chose themselves.

Shape
-----
* Tenants are *workspaces*, with sequential **integer** ids. Anyone may `POST /signup` a user
  (`{"workspace", "username", "role", "api_key"}`, answered `{"user_id", "workspace_id"}`): the first user naming
  a workspace creates it and must be its `admin`; later ones join it with any role. Sign-up is open by design of
  this target (the harness builds its world through it), so it is not counted as a flaw; nor is the 409 a taken
  API key gets, which comes with letting clients choose their keys (they must be 16 characters at least).
* Every other request carries the key as `X-Api-Key: <key>`; without one, or with a key nobody has, it answers 401.
* Roles: `admin` does everything in its workspace; `member` may create tasks and PATCH any task of its workspace,
  and delete the tasks it created, but may not create, PATCH or delete projects; `viewer` only reads.
* Projects (`/projects/{project_id}`) and their tasks (`/projects/{project_id}/tasks/{task_id}`) have integer,
  sequential ids, and every answer carries its record's `id`. Deleting a project deletes its tasks.
  `GET /projects?space=<workspace id>` lists the named workspace's projects, which must be the caller's own.
  `GET /tasks/search?text=` searches the titles and notes of the caller's workspace's tasks.
* A path whose id is not an integer matches no route: 404, like an unknown id.
* `app.extensions["tasks.requests"]` (read it with `request_counts`) is a `Counter` keyed `"METHOD /path/{template}"`,
  counted before each request is handled. The app serves its own OpenAPI 3.1 document at `/openapi.json`.

Authorization of the secure build (`flaws` empty)
-------------------------------------------------
Another workspace's project or task answers 404 with the very body an id nobody has gets (`{"error": "not
found"}`), and a task is reached only through the project it belongs to. `space` naming another workspace answers
403 with the body a workspace nobody has gets. A body's `workspace_id` (read-only: the answer's own field, so that
a client may send back what it read) is ignored. What a role may never do is refused 403 before any lookup or
body is read; a member deleting a task another user created is refused 403 once the task is found in its own
workspace. Bodies are JSON objects of at most 64 KiB holding the fields their schema lists, else 413, 415 or 422.

Planted flaws, each switched on by its name in `flaws`
------------------------------------------------------
* `nested_task_unchecked`: `GET`/`PATCH`/`DELETE /projects/{project_id}/tasks/{task_id}` check that the project is
  the caller's but not that the task is in it: the caller's own project id with another workspace's task id
  reaches that task (API1, object-level authorization through a nested path).
* `space_switches_workspace`: `GET /projects?space=<id>` lists any existing workspace's projects.
* `search_all_workspaces`: `GET /tasks/search` also matches every other workspace's tasks, on their `note` alone
  (a search for a title, or for a project's text, still finds nothing foreign).
* `patch_moves_workspace`: `PATCH /projects/{project_id}` honours a `workspace_id` in the body, moving the project
  (and its tasks) into that workspace (API3, mass assignment).
* `member_deletes_any_project`: a member may `DELETE /projects/{project_id}` of its workspace, those the admin
  created included (API5, function-level authorization).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from tests.targets.catalog import HERE, Flaw, PracticeTarget

__all__ = [
    "FLAWS",
    "PRACTICE",
    "ROLES",
    "Project",
    "Task",
    "User",
    "create_tasks_app",
    "request_counts",
    "tasks_openapi",
]

FLAWS: Final = frozenset(
    {
        "nested_task_unchecked",
        "space_switches_workspace",
        "search_all_workspaces",
        "patch_moves_workspace",
        "member_deletes_any_project",
    }
)
ROLES: Final = ("admin", "member", "viewer")
API_KEY_HEADER: Final = "X-Api-Key"
MAX_BODY_BYTES: Final = 64 * 1024
MIN_API_KEY_LENGTH: Final = 16
NOT_FOUND: Final = "not found"  # the one body for "nobody has it" and "it is another workspace's"
FORBIDDEN: Final = "forbidden"
_REQUESTS: Final = "tasks.requests"
_CONVERTOR = re.compile(r"<(?:\w+:)?(\w+)>")  # "/projects/<id:project_id>" -> "/projects/{project_id}"
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: `int()` would take other scripts' digits too
_LONGEST_ID = 30  # digits: past any id handed out; a longer number is read as 0, which no record has


@dataclass(frozen=True)
class User:
    """A signed-up user: one workspace, one role, and the hash of the API key it chose."""

    id: int
    workspace_id: int
    username: str
    role: str
    key_hash: str


@dataclass
class Project:
    """A project of one workspace (a `workspace_id` that only the flaw `patch_moves_workspace` ever changes)."""

    id: int
    workspace_id: int
    name: str
    description: str
    created_by: int

    def public(self) -> dict[str, Any]:
        """What the API answers for it."""
        return {
            "id": self.id,
            "workspace_id": self.workspace_id,
            "name": self.name,
            "description": self.description,
            "created_by": self.created_by,
        }


@dataclass
class Task:
    """A task of one project (and so of that project's workspace)."""

    id: int
    project_id: int
    title: str
    note: str
    done: bool
    created_by: int

    def public(self) -> dict[str, Any]:
        """What the API answers for it."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "title": self.title,
            "note": self.note,
            "done": self.done,
            "created_by": self.created_by,
        }


@dataclass
class _State:
    workspaces: dict[int, str] = field(default_factory=dict)  # id -> name
    workspace_ids: dict[str, int] = field(default_factory=dict)  # name -> id
    users: dict[int, User] = field(default_factory=dict)
    usernames: set[str] = field(default_factory=set)
    keys: dict[str, int] = field(default_factory=dict)  # the key's hash -> user id
    projects: dict[int, Project] = field(default_factory=dict)
    tasks: dict[int, Task] = field(default_factory=dict)
    next_id: dict[str, int] = field(default_factory=lambda: {"workspace": 1, "user": 1, "project": 1, "task": 1})

    def new_id(self, kind: str) -> int:
        """The next sequential id of one kind of record; call with the lock held."""
        found = self.next_id[kind]
        self.next_id[kind] = found + 1
        return found


class _Refusal(Exception):
    """An answer other than success, raised from anywhere in a handler."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(status, error)
        self.status = status
        self.error = error


# --- request bodies: one description gives both the validation and the schema -------------------------------------


@dataclass(frozen=True)
class _Field:
    """One field of a JSON request body."""

    name: str
    kind: Literal["string", "boolean", "integer"] = "string"
    required: bool = False
    min_length: int = 0
    max_length: int = 200
    choices: tuple[str, ...] = ()
    read_only: bool = False  # the answer's own field: accepted and ignored (save by a flaw)
    description: str = ""

    def schema(self) -> dict[str, Any]:
        """The field's JSON Schema."""
        described: dict[str, Any]
        if self.choices:
            described = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "string":
            described = {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}
        elif self.kind == "integer":
            described = {"type": "integer", "minimum": 1}
        else:
            described = {"type": "boolean"}
        if self.read_only:
            described["readOnly"] = True
        if self.description:
            described["description"] = self.description
        return described

    def problem(self, value: object) -> str | None:
        """Why `value` does not fit, or None."""
        if self.kind == "boolean":
            return None if isinstance(value, bool) else f"{self.name} must be true or false"
        if self.kind == "integer":
            fits = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            return None if fits else f"{self.name} must be a positive integer"
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
        return None


_WORKSPACE_ID = _Field(
    "workspace_id",
    kind="integer",
    read_only=True,
    description="the project's workspace, as answered; ignored: a project stays in the workspace it was created in",
)
SIGNUP_FIELDS: Final = (
    _Field("workspace", required=True, min_length=1, max_length=100),
    _Field("username", required=True, min_length=1, max_length=100),
    _Field("role", required=True, choices=ROLES),
    _Field("api_key", required=True, min_length=MIN_API_KEY_LENGTH, max_length=200),
)
PROJECT_FIELDS: Final = (
    _Field("name", required=True, min_length=1),
    _Field("description", max_length=2000),
    _WORKSPACE_ID,
)
PROJECT_UPDATE_FIELDS: Final = (_Field("name", min_length=1), _Field("description", max_length=2000), _WORKSPACE_ID)
TASK_FIELDS: Final = (
    _Field("title", required=True, min_length=1),
    _Field("note", max_length=2000),
    _Field("done", kind="boolean"),
)
TASK_UPDATE_FIELDS: Final = (
    _Field("title", min_length=1),
    _Field("note", max_length=2000),
    _Field("done", kind="boolean"),
)


def _object_schema(fields: tuple[_Field, ...]) -> dict[str, Any]:
    described: dict[str, Any] = {"type": "object", "properties": {f.name: f.schema() for f in fields}}
    if required := [f.name for f in fields if f.required]:
        described["required"] = required
    described["additionalProperties"] = False
    return described


def _json_body(fields: tuple[_Field, ...]) -> dict[str, Any]:
    """The request's JSON body, checked against `fields`: only the fields given (a PATCH changes just those)."""
    media = (request.mimetype or "").lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise _Refusal(415, "expected application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _Refusal(413, "body too large")
    raw = request.get_data(cache=False)  # past MAX_CONTENT_LENGTH (chunked bodies too) werkzeug raises 413
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # a digit string past Python's limit is a ValueError too
        raise _Refusal(422, "malformed JSON") from None
    if not isinstance(payload, dict):
        raise _Refusal(422, "the body must be a JSON object")
    known = {f.name: f for f in fields}
    unknown = sorted(str(key) for key in payload if key not in known)
    if unknown:
        raise _Refusal(422, f"unknown field {unknown[0]}")
    for spec in fields:
        if spec.name not in payload:
            if spec.required:
                raise _Refusal(422, f"{spec.name} is required")
            continue
        if (problem := spec.problem(payload[spec.name])) is not None:
            raise _Refusal(422, problem)
    return dict(payload)


def _key_hash(api_key: str) -> str:
    # Keys are long random strings the client chose, so a plain digest is enough to keep them out of memory dumps.
    return hashlib.sha256(api_key.encode()).hexdigest()


def _json(document: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(document), status=status, headers=dict(headers or {}), mimetype="application/json")


# --- the app ------------------------------------------------------------------------------------------------------


class _Tracker:
    """The state and the endpoints of one app."""

    def __init__(self, flaws: frozenset[str]) -> None:
        self.flaws = flaws
        self.lock = threading.Lock()
        self.state = _State()

    # who is calling

    def caller(self) -> User:
        """The user whose key the request carries, or 401."""
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            raise _Refusal(401, "not authenticated")
        with self.lock:
            user_id = self.state.keys.get(_key_hash(key))
            user = self.state.users.get(user_id) if user_id is not None else None
        if user is None:
            raise _Refusal(401, "invalid api key")
        return user

    def with_role(self, *roles: str) -> User:
        """The caller if its role is one of `roles`, else 403 (before anything is looked up)."""
        user = self.caller()
        if user.role not in roles:
            raise _Refusal(403, FORBIDDEN)
        return user

    def project_of(self, user: User, project_id: int) -> Project:
        """The caller's workspace's project; call with the lock held."""
        project = self.state.projects.get(project_id)
        if project is None or project.workspace_id != user.workspace_id:
            raise _Refusal(404, NOT_FOUND)
        return project

    def task_of(self, user: User, project_id: int, task_id: int) -> Task:
        """The task, reached through the caller's project it belongs to; call with the lock held."""
        project = self.project_of(user, project_id)
        task = self.state.tasks.get(task_id)
        if task is None:
            raise _Refusal(404, NOT_FOUND)
        if task.project_id != project.id and "nested_task_unchecked" not in self.flaws:
            raise _Refusal(404, NOT_FOUND)
        return task

    # public

    def health(self) -> Response:
        return _json({"status": "ok"})

    def openapi(self) -> Response:
        return _json(tasks_openapi())

    def signup(self) -> Response:
        body = _json_body(SIGNUP_FIELDS)
        with self.lock:
            state = self.state
            if body["username"] in state.usernames:
                raise _Refusal(409, "username taken")
            key_hash = _key_hash(body["api_key"])
            if key_hash in state.keys:
                raise _Refusal(409, "api_key taken")
            workspace_id = state.workspace_ids.get(body["workspace"])
            if workspace_id is None:
                if body["role"] != "admin":
                    raise _Refusal(422, "the first user of a workspace must be its admin")
                workspace_id = state.new_id("workspace")
                state.workspaces[workspace_id] = body["workspace"]
                state.workspace_ids[body["workspace"]] = workspace_id
            user = User(state.new_id("user"), workspace_id, body["username"], body["role"], key_hash)
            state.users[user.id] = user
            state.usernames.add(user.username)
            state.keys[key_hash] = user.id
        return _json({"user_id": user.id, "workspace_id": workspace_id}, 201)

    # projects

    def list_projects(self) -> Response:
        user = self.caller()
        space = request.args.get("space")
        with self.lock:
            workspace_id = user.workspace_id
            if space is not None:
                if _DIGITS.fullmatch(space) is None:
                    raise _Refusal(422, "space must be a workspace id")
                asked = _id_number(space)
                # One refusal for another workspace and for one nobody has: nothing tells them apart.
                switch = "space_switches_workspace" in self.flaws and asked in self.state.workspaces
                if asked != user.workspace_id and not switch:
                    raise _Refusal(403, FORBIDDEN)
                workspace_id = asked
            answer = [p.public() for p in self.state.projects.values() if p.workspace_id == workspace_id]
        return _json(answer)

    def create_project(self) -> Response:
        user = self.with_role("admin")
        body = _json_body(PROJECT_FIELDS)
        with self.lock:
            project = Project(
                self.state.new_id("project"), user.workspace_id, body["name"], body.get("description", ""), user.id
            )
            self.state.projects[project.id] = project
            answer = project.public()
        return _json(answer, 201, {"Location": f"/projects/{project.id}"})

    def read_project(self, project_id: int) -> Response:
        user = self.caller()
        with self.lock:
            answer = self.project_of(user, project_id).public()
        return _json(answer)

    def update_project(self, project_id: int) -> Response:
        user = self.with_role("admin")
        with self.lock:
            self.project_of(user, project_id)
        body = _json_body(PROJECT_UPDATE_FIELDS)
        with self.lock:
            project = self.project_of(user, project_id)  # again: it may have gone while the body was read
            moved_to = body.get("workspace_id")
            if moved_to is not None and "patch_moves_workspace" in self.flaws:
                if moved_to not in self.state.workspaces:
                    raise _Refusal(422, "no such workspace")
                project.workspace_id = moved_to
            project.name = body.get("name", project.name)
            project.description = body.get("description", project.description)
            answer = project.public()
        return _json(answer)

    def delete_project(self, project_id: int) -> Response:
        roles = ("admin", "member") if "member_deletes_any_project" in self.flaws else ("admin",)
        user = self.with_role(*roles)
        with self.lock:
            project = self.project_of(user, project_id)
            del self.state.projects[project.id]
            for task_id in [t.id for t in self.state.tasks.values() if t.project_id == project.id]:
                del self.state.tasks[task_id]
        return Response(status=204)

    # tasks

    def list_tasks(self, project_id: int) -> Response:
        user = self.caller()
        with self.lock:
            project = self.project_of(user, project_id)
            answer = [t.public() for t in self.state.tasks.values() if t.project_id == project.id]
        return _json(answer)

    def create_task(self, project_id: int) -> Response:
        user = self.with_role("admin", "member")
        with self.lock:
            self.project_of(user, project_id)
        body = _json_body(TASK_FIELDS)
        with self.lock:
            project = self.project_of(user, project_id)
            task = Task(
                self.state.new_id("task"),
                project.id,
                body["title"],
                body.get("note", ""),
                body.get("done", False),
                user.id,
            )
            self.state.tasks[task.id] = task
            answer = task.public()
        return _json(answer, 201, {"Location": f"/projects/{project.id}/tasks/{task.id}"})

    def read_task(self, project_id: int, task_id: int) -> Response:
        user = self.caller()
        with self.lock:
            answer = self.task_of(user, project_id, task_id).public()
        return _json(answer)

    def update_task(self, project_id: int, task_id: int) -> Response:
        user = self.with_role("admin", "member")
        with self.lock:
            self.task_of(user, project_id, task_id)
        body = _json_body(TASK_UPDATE_FIELDS)
        with self.lock:
            task = self.task_of(user, project_id, task_id)
            task.title = body.get("title", task.title)
            task.note = body.get("note", task.note)
            task.done = body.get("done", task.done)
            answer = task.public()
        return _json(answer)

    def delete_task(self, project_id: int, task_id: int) -> Response:
        user = self.with_role("admin", "member")
        with self.lock:
            task = self.task_of(user, project_id, task_id)
            if user.role != "admin" and task.created_by != user.id:
                raise _Refusal(403, FORBIDDEN)
            del self.state.tasks[task.id]
        return Response(status=204)

    # search

    def search_tasks(self) -> Response:
        user = self.caller()
        text = request.args.get("text")
        if text is None or not 1 <= len(text) <= 200:
            raise _Refusal(422, "text must be 1 to 200 characters")
        wanted = text.casefold()
        with self.lock:
            workspace_of = {p.id: p.workspace_id for p in self.state.projects.values()}
            answer = []
            for task in self.state.tasks.values():
                if workspace_of.get(task.project_id) == user.workspace_id:
                    found = wanted in task.title.casefold() or wanted in task.note.casefold()
                else:
                    found = "search_all_workspaces" in self.flaws and wanted in task.note.casefold()
                if found:
                    answer.append(task.public())
        return _json(answer)


def _id_number(digits: str) -> int:
    """An id the client sent, as a number; however long, it is an id nobody has, never an error (`int()` refuses
    more than 4300 digits)."""
    return int(digits) if len(digits) <= _LONGEST_ID else 0


class _IdConverter(BaseConverter):
    """A record id in a path: ASCII digits, any number of them (werkzeug's own `int` takes any script's digits, and
    raises on a very long number), so that every integer answers as any other id nobody has."""

    regex = _DIGITS.pattern
    weight = 50

    def to_python(self, value: str) -> int:
        return _id_number(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


def _template(rule: str) -> str:
    return _CONVERTOR.sub(r"{\1}", rule)


def create_tasks_app(flaws: frozenset[str] = frozenset()) -> Flask:
    """The app, with the named `flaws` planted (see the module docstring). `request_counts(app)` counts the
    requests per `METHOD /path/{template}`."""
    unknown = flaws - FLAWS
    if unknown:
        raise ValueError(f"unknown flaw(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(FLAWS))}")
    tracker = _Tracker(flaws)
    app = Flask("tasks")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.url_map.converters["id"] = _IdConverter
    counter: Counter[str] = Counter()
    counter_lock = threading.Lock()
    app.extensions[_REQUESTS] = counter
    routes: list[tuple[str, str, Callable[..., Response]]] = [
        ("/health", "GET", tracker.health),
        ("/openapi.json", "GET", tracker.openapi),
        ("/signup", "POST", tracker.signup),
        ("/projects", "GET", tracker.list_projects),
        ("/projects", "POST", tracker.create_project),
        ("/projects/<id:project_id>", "GET", tracker.read_project),
        ("/projects/<id:project_id>", "PATCH", tracker.update_project),
        ("/projects/<id:project_id>", "DELETE", tracker.delete_project),
        ("/projects/<id:project_id>/tasks", "GET", tracker.list_tasks),
        ("/projects/<id:project_id>/tasks", "POST", tracker.create_task),
        ("/projects/<id:project_id>/tasks/<id:task_id>", "GET", tracker.read_task),
        ("/projects/<id:project_id>/tasks/<id:task_id>", "PATCH", tracker.update_task),
        ("/projects/<id:project_id>/tasks/<id:task_id>", "DELETE", tracker.delete_task),
        ("/tasks/search", "GET", tracker.search_tasks),
    ]
    for rule, method, view in routes:
        app.add_url_rule(rule, f"{method} {rule}", view, methods=[method], provide_automatic_options=False)

    @app.before_request
    def count() -> None:
        rule = request.url_rule
        template = _template(rule.rule) if rule is not None else "(no route)"
        with counter_lock:
            counter[f"{request.method} {template}"] += 1

    @app.errorhandler(_Refusal)
    def refused(exc: _Refusal) -> Response:
        return _json({"error": exc.error}, exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        error = NOT_FOUND if status == 404 else (exc.name or "error").lower()
        headers = {k: v for k, v in exc.get_headers() if k == "Allow"}
        return _json({"error": error}, status, headers)

    return app


def request_counts(app: Flask) -> Counter[str]:
    """The app's request counter, typed."""
    counter = app.extensions[_REQUESTS]
    assert isinstance(counter, Counter)
    return counter


# --- the OpenAPI document -----------------------------------------------------------------------------------------


def _answer(schema: Mapping[str, Any] | str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else dict(schema)
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _list_of(schema: str, description: str) -> dict[str, Any]:
    return _answer({"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}, description)


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _refusals(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/{code}"} for code in codes}


def _id_param(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "integer", "format": "int64", "minimum": 1},
    }


def tasks_openapi() -> dict[str, Any]:
    """The app's OpenAPI 3.1 document."""
    public: list[dict[str, list[str]]] = []
    integer = {"type": "integer", "format": "int64"}
    string = {"type": "string"}
    write = ("401", "403", "404", "413", "415", "422")
    project_id = _id_param("project_id", "a project of the caller's workspace")
    task_id = _id_param("task_id", "a task of that project")
    return {
        "openapi": "3.1.0",
        "info": {"title": "tasks", "version": "1.0.0", "description": "Workspaces, their projects and tasks."},
        "security": [{"ApiKey": []}],
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
                    "summary": "Sign a user up; the first user naming a workspace creates it and must be its admin",
                    "security": public,
                    "requestBody": _body("Signup"),
                    "responses": {
                        "201": _answer("SignedUp", "Signed up."),
                        **_refusals("409", "413", "415", "422"),
                    },
                }
            },
            "/projects": {
                "get": {
                    "operationId": "listProjects",
                    "parameters": [
                        {
                            "name": "space",
                            "in": "query",
                            "required": False,
                            "description": "the workspace to list: the caller's own (the default); another answers 403",
                            "schema": {**integer, "minimum": 1},
                        }
                    ],
                    "responses": {
                        "200": _list_of("Project", "The workspace's projects."),
                        **_refusals("401", "403", "422"),
                    },
                },
                "post": {
                    "operationId": "createProject",
                    "summary": "Admins only",
                    "requestBody": _body("ProjectIn"),
                    "responses": {
                        "201": _answer("Project", "Created."),
                        **_refusals("401", "403", "413", "415", "422"),
                    },
                },
            },
            "/projects/{project_id}": {
                "parameters": [project_id],
                "get": {
                    "operationId": "readProject",
                    "responses": {"200": _answer("Project", "The project."), **_refusals("401", "404")},
                },
                "patch": {
                    "operationId": "updateProject",
                    "summary": "Admins only",
                    "requestBody": _body("ProjectUpdate"),
                    "responses": {"200": _answer("Project", "Updated."), **_refusals(*write)},
                },
                "delete": {
                    "operationId": "deleteProject",
                    "summary": "Admins only; deletes the project's tasks too",
                    "responses": {"204": {"description": "Deleted."}, **_refusals("401", "403", "404")},
                },
            },
            "/projects/{project_id}/tasks": {
                "parameters": [project_id],
                "get": {
                    "operationId": "listTasks",
                    "responses": {"200": _list_of("Task", "The project's tasks."), **_refusals("401", "404")},
                },
                "post": {
                    "operationId": "createTask",
                    "summary": "Admins and members",
                    "requestBody": _body("TaskIn"),
                    "responses": {"201": _answer("Task", "Created."), **_refusals(*write)},
                },
            },
            "/projects/{project_id}/tasks/{task_id}": {
                "parameters": [project_id, task_id],
                "get": {
                    "operationId": "readTask",
                    "responses": {"200": _answer("Task", "The task."), **_refusals("401", "404")},
                },
                "patch": {
                    "operationId": "updateTask",
                    "summary": "Admins and members",
                    "requestBody": _body("TaskUpdate"),
                    "responses": {"200": _answer("Task", "Updated."), **_refusals(*write)},
                },
                "delete": {
                    "operationId": "deleteTask",
                    "summary": "Admins; members only the tasks they created",
                    "responses": {"204": {"description": "Deleted."}, **_refusals("401", "403", "404")},
                },
            },
            "/tasks/search": {
                "get": {
                    "operationId": "searchTasks",
                    "parameters": [
                        {
                            "name": "text",
                            "in": "query",
                            "required": True,
                            "description": "found in the titles and notes of the caller's workspace's tasks",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        }
                    ],
                    "responses": {"200": _list_of("Task", "The matching tasks."), **_refusals("401", "422")},
                }
            },
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}},
            "schemas": {
                "Signup": _object_schema(SIGNUP_FIELDS),
                "SignedUp": {
                    "type": "object",
                    "properties": {"user_id": integer, "workspace_id": integer},
                    "required": ["user_id", "workspace_id"],
                },
                "ProjectIn": _object_schema(PROJECT_FIELDS),
                "ProjectUpdate": _object_schema(PROJECT_UPDATE_FIELDS),
                "TaskIn": _object_schema(TASK_FIELDS),
                "TaskUpdate": _object_schema(TASK_UPDATE_FIELDS),
                "Project": {
                    "type": "object",
                    "properties": {
                        "id": {**integer, "readOnly": True},
                        "workspace_id": {**integer, "readOnly": True},
                        "name": string,
                        "description": string,
                        "created_by": {**integer, "readOnly": True, "description": "the user who created it"},
                    },
                    "required": ["id", "workspace_id", "name", "description", "created_by"],
                },
                "Task": {
                    "type": "object",
                    "properties": {
                        "id": {**integer, "readOnly": True},
                        "project_id": {**integer, "readOnly": True},
                        "title": string,
                        "note": string,
                        "done": {"type": "boolean"},
                        "created_by": {**integer, "readOnly": True, "description": "the user who created it"},
                    },
                    "required": ["id", "project_id", "title", "note", "done", "created_by"],
                },
                "Status": {"type": "object", "properties": {"status": string}, "required": ["status"]},
                "Error": {"type": "object", "properties": {"error": string}, "required": ["error"]},
            },
            "responses": {
                "401": _answer("Error", "No API key, or one nobody has."),
                "403": _answer("Error", "The caller's role may not do this, or the workspace is not the caller's."),
                "404": _answer("Error", "Nothing the caller may see has this id."),
                "409": _answer("Error", "The username or the API key is taken."),
                "413": _answer("Error", "The body is larger than 64 KiB."),
                "415": _answer("Error", "The body is not JSON."),
                "422": _answer("Error", "The body or a parameter does not fit its schema."),
            },
        },
    }


def _make_app(flaws: frozenset[str]) -> Flask:
    return create_tasks_app(flaws)


def _counts(app: Any) -> dict[str, int]:
    return dict(request_counts(app))


PRACTICE: Final = PracticeTarget(
    name="tasks",
    config=HERE / "tasks.toml",
    health="/health",
    flaws=(
        Flaw(
            "nested_task_unchecked",
            "M4",
            "CrossOrgRead",
            "GET /projects/{project_id}/tasks/{task_id}",
            evidence="(the rest the caller's own: project_id)",
            note="a task is reached through any project of the caller's: its own project id with another "
            "workspace's task id reads, changes or deletes that task",
        ),
        Flaw(
            "space_switches_workspace",
            "M4",
            "ForeignMarker",
            "GET /projects",
            evidence="space",
            note="the integer query parameter `space` lists any workspace's projects",
        ),
        Flaw(
            "search_all_workspaces",
            "M4",
            "ForeignMarker",
            "GET /tasks/search",
            evidence="searching text for",
            note="the task search matches every workspace's tasks, on their note alone",
        ),
        Flaw(
            "patch_moves_workspace",
            "M4",
            "MassAssignment",
            "PATCH /projects/{project_id}",
            evidence="workspace_id=",
            note="a `workspace_id` in a project's PATCH body moves the project into that workspace: the victim's "
            "list then holds the attacker's project",
        ),
        Flaw(
            "member_deletes_any_project",
            "M3",
            "NotRefused",
            "DELETE /projects/{project_id}",
            evidence="answered 204, expected 403 or 404",
            note="a member may delete projects its workspace's admin created",
        ),
    ),
    make_app=_make_app,
    wsgi=True,
    counts=_counts,
)
