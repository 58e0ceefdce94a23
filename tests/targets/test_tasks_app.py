"""The project tracker practice target on its own, in-process through Flask's test client: every route, every
refusal of the secure build, and each planted flaw doing what it says."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from harness.config.model import load_config
from harness.config.operations import unmatched
from tests.targets.tasks_app import FLAWS, PRACTICE, create_tasks_app, request_counts, tasks_openapi

NOT_FOUND = {"error": "not found"}
FORBIDDEN = {"error": "forbidden"}
ROUTES = (
    "GET /health",
    "GET /openapi.json",
    "POST /signup",
    "GET /projects",
    "POST /projects",
    "GET /projects/{project_id}",
    "PATCH /projects/{project_id}",
    "DELETE /projects/{project_id}",
    "GET /projects/{project_id}/tasks",
    "POST /projects/{project_id}/tasks",
    "GET /projects/{project_id}/tasks/{task_id}",
    "PATCH /projects/{project_id}/tasks/{task_id}",
    "DELETE /projects/{project_id}/tasks/{task_id}",
    "GET /tasks/search",
)


class Api:
    """The test client with each principal's key: `api.call("north_admin", "GET", "/projects")`."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def call(self, who: str | None, method: str, path: str, **options: Any) -> TestResponse:
        headers = dict(options.pop("headers", {}))
        if who is not None:
            headers["X-Api-Key"] = _key(who)
        return self.client.open(path, method=method, headers=headers, **options)


def _key(who: str) -> str:
    return f"key-{who}-0123456789"


def _signup(api: Api, workspace: str, who: str, role: str) -> dict[str, int]:
    body = {"workspace": workspace, "username": who, "role": role, "api_key": _key(who)}
    answer = api.call(None, "POST", "/signup", json=body)
    assert answer.status_code == 201, answer.text
    found: dict[str, int] = answer.get_json()
    assert set(found) == {"user_id", "workspace_id"}
    return found


def _created(answer: TestResponse) -> int:
    assert answer.status_code == 201, answer.text
    record_id = answer.get_json()["id"]
    assert isinstance(record_id, int)
    return record_id


@dataclass
class World:
    """Two workspaces with an admin, a member and a viewer each; in each a project holding a task."""

    app: Flask
    api: Api
    workspace: dict[str, int]
    project: dict[str, int]
    task: dict[str, int]

    def task_path(self, project_of: str, task_of: str) -> str:
        return f"/projects/{self.project[project_of]}/tasks/{self.task[task_of]}"


@contextmanager
def _world(*flaws: str) -> Iterator[World]:
    app = create_tasks_app(frozenset(flaws))
    api = Api(app.test_client())
    workspace, project, task = {}, {}, {}
    for space in ("north", "south"):
        workspace[space] = _signup(api, space, f"{space}_admin", "admin")["workspace_id"]
        for role in ("member", "viewer"):
            assert _signup(api, space, f"{space}_{role}", role)["workspace_id"] == workspace[space]
        body = {"name": f"{space} project", "description": f"{space} plans"}
        project[space] = _created(api.call(f"{space}_admin", "POST", "/projects", json=body))
        task_body = {"title": f"{space} task", "note": f"{space} secret note", "done": False}
        task[space] = _created(api.call(f"{space}_admin", "POST", f"/projects/{project[space]}/tasks", json=task_body))
    yield World(app, api, workspace, project, task)


@pytest.fixture
def world() -> Iterator[World]:
    with _world() as built:
        yield built


# --- the schema, the config, the catalogue ------------------------------------------------------------------------


def test_the_schema_is_public_and_lists_every_route_with_its_types() -> None:
    api = Api(create_tasks_app().test_client())
    served = api.call(None, "GET", "/openapi.json")
    assert served.status_code == 200 and served.get_json() == tasks_openapi()
    assert api.call(None, "GET", "/health").get_json() == {"status": "ok"}
    schema = tasks_openapi()
    assert schema["openapi"] == "3.1.0" and schema["security"] == [{"ApiKey": []}]
    assert schema["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    paths = schema["paths"]
    operations = {f"{m.upper()} {p}" for p, item in paths.items() for m in item if m != "parameters"}
    assert operations == set(ROUTES)
    for path, method in [("/health", "get"), ("/openapi.json", "get"), ("/signup", "post")]:
        assert paths[path][method]["security"] == [], path
    nested = paths["/projects/{project_id}/tasks/{task_id}"]["parameters"]
    assert [p["schema"]["type"] for p in nested] == ["integer", "integer"]
    space = paths["/projects"]["get"]["parameters"][0]
    assert space["name"] == "space" and space["schema"]["type"] == "integer"
    schemas = schema["components"]["schemas"]
    assert set(schemas["ProjectUpdate"]["properties"]) == {"name", "description", "workspace_id"}
    assert schemas["ProjectUpdate"]["properties"]["workspace_id"]["readOnly"] is True
    assert set(schemas["TaskIn"]["properties"]) == {"title", "note", "done"}
    assert schemas["Project"]["properties"]["workspace_id"]["readOnly"] is True


def test_its_config_loads_and_names_only_operations_of_the_schema() -> None:
    config = load_config(PRACTICE.config)
    served = [(route.split(" ", 1)[0], route.split(" ", 1)[1]) for route in ROUTES]
    assert unmatched([ref for _, ref in config.named_operations()], served) == []
    assert {(p.org, p.role) for p in config.principals} == {
        (org, role) for org in ("north", "south") for role in ("admin", "member", "viewer")
    }
    assert config.saved[:2] == ("north_ws", "north_admin")


def test_the_catalogue_row_names_every_flaw_once_and_only_operations_of_the_schema() -> None:
    names = [f.name for f in PRACTICE.flaws]
    assert set(names) == FLAWS and len(names) == len(FLAWS)
    assert all(f.operation in ROUTES for f in PRACTICE.flaws)
    assert PRACTICE.wsgi and PRACTICE.config.exists()
    with pytest.raises(ValueError, match="unknown flaw"):
        create_tasks_app(frozenset({"no_such_flaw"}))


# --- sign-up and keys ---------------------------------------------------------------------------------------------


def test_signup_makes_the_first_user_the_admin_and_refuses_taken_names_keys_and_bad_bodies() -> None:
    api = Api(create_tasks_app().test_client())
    first = {"workspace": "acme", "username": "ann", "role": "member", "api_key": _key("ann")}
    assert api.call(None, "POST", "/signup", json=first).status_code == 422  # a new workspace needs its admin
    assert _signup(api, "acme", "ann", "admin") == {"user_id": 1, "workspace_id": 1}
    assert _signup(api, "other", "bob", "admin") == {"user_id": 2, "workspace_id": 2}
    again = {"workspace": "acme", "username": "ann", "role": "viewer", "api_key": _key("carl")}
    assert api.call(None, "POST", "/signup", json=again).status_code == 409
    same_key = {"workspace": "acme", "username": "carl", "role": "viewer", "api_key": _key("ann")}
    assert api.call(None, "POST", "/signup", json=same_key).status_code == 409
    good = {"workspace": "acme", "username": "dan", "role": "viewer", "api_key": _key("dan")}
    bad_bodies: list[object] = [
        {**good, "role": "owner"},
        {**good, "api_key": "short"},
        {**good, "username": ""},
        {**good, "username": 7},
        {**good, "admin": True},
        {k: v for k, v in good.items() if k != "role"},
        ["dan"],
    ]
    for bad in bad_bodies:
        answer = api.call(None, "POST", "/signup", json=bad)
        assert (answer.status_code, set(answer.get_json())) == (422, {"error"}), bad
    as_json = {"Content-Type": "application/json"}
    assert api.call(None, "POST", "/signup", data=b"{not json", headers=as_json).status_code == 422
    assert api.call(None, "POST", "/signup", data=b"[" * 30_000 + b"]" * 30_000, headers=as_json).status_code == 422
    assert api.call(None, "POST", "/signup", data=b"[" * 70_000, headers=as_json).status_code == 413
    assert api.call(None, "POST", "/signup", data=good).status_code == 415  # a form, not JSON
    assert api.call("dan", "GET", "/projects").status_code == 401  # none of the refused bodies signed dan up


def test_every_other_route_wants_a_known_key(world: World) -> None:
    for route in ROUTES[3:]:
        method, template = route.split(" ", 1)
        path = template.replace("{project_id}", "1").replace("{task_id}", "1")
        nobody = world.api.call(None, method, path, query_string={"text": "x"}, json={})
        assert (nobody.status_code, nobody.get_json()) == (401, {"error": "not authenticated"}), route
        wrong = world.api.call(None, method, path, headers={"X-Api-Key": "key-nobody-0123456789"}, json={})
        assert wrong.status_code == 401, route


def test_bad_ids_and_unknown_routes_answer_json(world: World) -> None:
    api = world.api
    for path in ("/projects/abc", "/projects/-1", "/projects/1/tasks/x'", "/projects/" + "9" * 5000, "/nowhere"):
        answer = api.call("north_admin", "GET", path)
        assert (answer.status_code, answer.get_json()) == (404, NOT_FOUND), path[:40]
    wrong_method = api.call("north_admin", "PUT", "/projects")
    assert wrong_method.status_code == 405 and wrong_method.get_json() == {"error": "method not allowed"}
    assert "GET" in wrong_method.headers["Allow"]


# --- the secure build ---------------------------------------------------------------------------------------------


def test_another_workspaces_records_answer_exactly_as_missing_ones(world: World) -> None:
    api, south_project = world.api, world.project["south"]
    reads = [
        f"/projects/{south_project}",
        f"/projects/{south_project}/tasks",
        world.task_path("south", "south"),
        world.task_path("north", "south"),  # the caller's own project, another workspace's task
    ]
    for path in reads:
        seen = api.call("north_admin", "GET", path)
        missing = api.call("north_admin", "GET", path.replace(str(south_project), "999999"))
        assert (seen.status_code, seen.get_json()) == (missing.status_code, missing.get_json()) == (404, NOT_FOUND)
    writes = [
        ("PATCH", f"/projects/{south_project}", {"name": "mine now"}),
        ("DELETE", f"/projects/{south_project}", None),
        ("POST", f"/projects/{south_project}/tasks", {"title": "planted"}),
        ("PATCH", world.task_path("south", "south"), {"note": "changed"}),
        ("PATCH", world.task_path("north", "south"), {"note": "changed"}),
        ("DELETE", world.task_path("north", "south"), None),
        ("DELETE", world.task_path("south", "south"), None),
    ]
    for method, path, body in writes:
        answer = api.call("north_admin", method, path, json=body)
        assert (answer.status_code, answer.get_json()) == (404, NOT_FOUND), (method, path)
    south = api.call("south_admin", "GET", world.task_path("south", "south")).get_json()
    assert south["note"] == "south secret note"
    assert api.call("south_admin", "GET", f"/projects/{south_project}").get_json()["name"] == "south project"


def test_lists_and_the_search_keep_to_the_callers_workspace(world: World) -> None:
    api = world.api
    projects = api.call("north_viewer", "GET", "/projects").get_json()
    assert [p["name"] for p in projects] == ["north project"]
    own = api.call("north_viewer", "GET", "/projects", query_string={"space": world.workspace["north"]})
    assert own.get_json() == projects
    other = api.call("north_viewer", "GET", "/projects", query_string={"space": world.workspace["south"]})
    nobody = api.call("north_viewer", "GET", "/projects", query_string={"space": 999})
    assert (other.status_code, other.get_json()) == (nobody.status_code, nobody.get_json()) == (403, FORBIDDEN)
    assert api.call("north_viewer", "GET", "/projects", query_string={"space": "two"}).status_code == 422
    for text in ("secret note", "TASK", "s"):
        found = api.call("north_viewer", "GET", "/tasks/search", query_string={"text": text}).get_json()
        assert [t["title"] for t in found] == ["north task"], text
    assert api.call("north_viewer", "GET", "/tasks/search").status_code == 422
    assert api.call("north_viewer", "GET", "/tasks/search", query_string={"text": ""}).status_code == 422


def test_a_viewer_is_refused_every_write_before_anything_is_looked_up(world: World) -> None:
    api, north = world.api, world.project["north"]
    writes = [
        ("POST", "/projects", {"name": "x"}),
        ("PATCH", f"/projects/{north}", {"name": "x"}),
        ("DELETE", f"/projects/{north}", None),
        ("POST", f"/projects/{north}/tasks", {"title": "x"}),
        ("PATCH", world.task_path("north", "north"), {"done": True}),
        ("DELETE", world.task_path("north", "north"), None),
        ("PATCH", "/projects/999999", {"name": "x"}),  # a project nobody has: the same 403
        ("PATCH", "/projects/" + "9" * 5000, {"name": "x"}),  # however long its id
        ("PATCH", f"/projects/{world.project['south']}", {"bad": "body"}),  # nor is the body read
    ]
    for method, path, body in writes:
        answer = api.call("north_viewer", method, path, json=body)
        assert (answer.status_code, answer.get_json()) == (403, FORBIDDEN), (method, path)
    assert len(api.call("north_admin", "GET", f"/projects/{north}/tasks").get_json()) == 1


def test_a_member_works_on_tasks_but_not_on_projects_nor_on_others_tasks(world: World) -> None:
    api, north = world.api, world.project["north"]
    for method, path, body in [
        ("POST", "/projects", {"name": "x"}),
        ("PATCH", f"/projects/{north}", {"name": "x"}),
        ("DELETE", f"/projects/{north}", None),
        ("DELETE", world.task_path("north", "north"), None),  # the admin's task
    ]:
        answer = api.call("north_member", method, path, json=body)
        assert (answer.status_code, answer.get_json()) == (403, FORBIDDEN), (method, path)
    changed = api.call("north_member", "PATCH", world.task_path("north", "north"), json={"done": True})
    assert changed.status_code == 200 and changed.get_json()["done"] is True
    mine = _created(api.call("north_member", "POST", f"/projects/{north}/tasks", json={"title": "mine"}))
    assert api.call("north_member", "DELETE", f"/projects/{north}/tasks/{mine}").status_code == 204
    assert api.call("north_admin", "GET", f"/projects/{north}").status_code == 200


def test_an_admin_edits_and_deletes_and_a_project_takes_its_tasks_along(world: World) -> None:
    api, north = world.api, world.project["north"]
    body = {"name": "renamed", "workspace_id": world.workspace["south"]}  # read-only: ignored
    patched = api.call("north_admin", "PATCH", f"/projects/{north}", json=body)
    assert patched.status_code == 200
    assert patched.get_json() == {
        "id": north,
        "workspace_id": world.workspace["north"],
        "name": "renamed",
        "description": "north plans",
        "created_by": 1,
    }
    assert api.call("south_admin", "GET", "/projects").get_json()[0]["name"] == "south project"
    bad = api.call("north_admin", "PATCH", world.task_path("north", "north"), json={"done": "yes"})
    assert bad.status_code == 422
    assert api.call("north_admin", "DELETE", f"/projects/{north}").status_code == 204
    assert api.call("north_admin", "GET", world.task_path("north", "north")).status_code == 404
    assert api.call("north_admin", "GET", "/tasks/search", query_string={"text": "north"}).get_json() == []


def test_requests_are_counted_by_route_template(world: World) -> None:
    world.api.call("north_admin", "GET", world.task_path("north", "north"))
    world.api.call("north_admin", "GET", "/projects/abc")
    counts = request_counts(world.app)
    assert counts["GET /projects/{project_id}/tasks/{task_id}"] == 1
    assert counts["POST /signup"] == 6 and counts["POST /projects/{project_id}/tasks"] == 2
    assert counts["GET (no route)"] == 1
    assert PRACTICE.counts is not None and PRACTICE.counts(world.app) == dict(counts)


# --- each planted flaw --------------------------------------------------------------------------------------------


def test_nested_task_unchecked_reaches_another_workspaces_task_through_the_callers_project() -> None:
    with _world("nested_task_unchecked") as world:
        api, through_own = world.api, world.task_path("north", "south")
        read = api.call("north_admin", "GET", through_own)
        assert read.status_code == 200 and read.get_json()["note"] == "south secret note"
        assert api.call("north_admin", "PATCH", through_own, json={"note": "defaced"}).status_code == 200
        assert api.call("south_admin", "GET", world.task_path("south", "south")).get_json()["note"] == "defaced"
        assert api.call("north_admin", "DELETE", through_own).status_code == 204
        assert api.call("south_admin", "GET", world.task_path("south", "south")).status_code == 404
        # The project is still checked: another workspace's project id is refused as before.
        assert api.call("north_admin", "GET", f"/projects/{world.project['south']}/tasks").status_code == 404


def test_space_switches_workspace_lists_another_workspaces_projects() -> None:
    with _world("space_switches_workspace") as world:
        query = {"space": world.workspace["south"]}
        listed = world.api.call("north_viewer", "GET", "/projects", query_string=query)
        assert listed.status_code == 200 and [p["name"] for p in listed.get_json()] == ["south project"]
        unknown = world.api.call("north_viewer", "GET", "/projects", query_string={"space": 999})
        assert unknown.status_code == 403


def test_search_all_workspaces_matches_other_workspaces_notes_only() -> None:
    with _world("search_all_workspaces") as world:
        api = world.api
        found = api.call("north_viewer", "GET", "/tasks/search", query_string={"text": "south secret"}).get_json()
        assert [t["title"] for t in found] == ["south task"]
        by_title = api.call("north_viewer", "GET", "/tasks/search", query_string={"text": "south task"}).get_json()
        assert by_title == []
        by_project = api.call("north_viewer", "GET", "/tasks/search", query_string={"text": "south plans"})
        assert by_project.get_json() == []


def test_patch_moves_workspace_puts_the_attackers_project_in_the_victims_list() -> None:
    with _world("patch_moves_workspace") as world:
        api, north = world.api, world.project["north"]
        body = {"name": "trojan", "workspace_id": world.workspace["south"]}
        moved = api.call("north_admin", "PATCH", f"/projects/{north}", json=body)
        assert moved.status_code == 200 and moved.get_json()["workspace_id"] == world.workspace["south"]
        assert sorted(p["name"] for p in api.call("south_admin", "GET", "/projects").get_json()) == [
            "south project",
            "trojan",
        ]
        assert api.call("south_admin", "GET", world.task_path("north", "north")).status_code == 200  # tasks went too
        nowhere = api.call("south_admin", "PATCH", f"/projects/{north}", json={"workspace_id": 999})
        assert nowhere.status_code == 422


def test_member_deletes_any_project_lets_a_member_delete_the_admins_project() -> None:
    with _world("member_deletes_any_project") as world:
        api, north = world.api, world.project["north"]
        assert api.call("north_member", "DELETE", f"/projects/{world.project['south']}").status_code == 404
        assert api.call("north_member", "DELETE", f"/projects/{north}").status_code == 204
        assert api.call("north_admin", "GET", f"/projects/{north}").status_code == 404
        assert api.call("north_viewer", "DELETE", f"/projects/{world.project['south']}").status_code == 403
