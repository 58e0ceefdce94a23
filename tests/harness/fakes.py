"""A small multi-tenant API served in-process through `httpx.MockTransport`, with flaws behind switches.

Two organisations (`a`, `b`), each with an admin and a read-only viewer (API keys), items with integer
ids, and a destructive `POST /admin/reset` the config lists under `never`. Every request is counted, so
a test can prove what was and was not called; the flaws bring back the bugs the checks must catch.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.config.model import TargetConfig, load_config
from harness.engine.schema import parse_schema
from harness.engine.world import Canary, Org, Principal, StaticCredentials, World

KEYS = {"key-a-admin": ("a", "admin"), "key-a-viewer": ("a", "viewer"), "key-b-admin": ("b", "admin"),
        "key-b-viewer": ("b", "viewer")}  # fmt: skip

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "items", "version": "1"},
    "components": {"securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}}},
    "security": [{"key": []}],
    "paths": {
        "/items": {
            "get": {"parameters": [{"name": "q", "in": "query", "schema": {"type": "string"}}], "responses": {}},
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}},
                                "required": ["name"],
                            }
                        }
                    }
                },
                "responses": {},
            },
        },
        "/items/{item_id}": {
            "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"responses": {}},
            "delete": {"responses": {}},
        },
        "/admin/reset": {"post": {"security": [], "responses": {}}},
    },
}
SCHEMA = parse_schema(DOCUMENT)

CONFIG = """
[target]
schema = "/openapi.json"
health = "/health"

[roles]
admin = "admin"
read_only = ["viewer"]

[[principals]]
name = "a admin"
org = "a"
role = "admin"
headers = { "X-Key" = "key-a-admin" }

[[principals]]
name = "a viewer"
org = "a"
role = "viewer"
headers = { "X-Key" = "key-a-viewer" }

[[principals]]
name = "b admin"
org = "b"
role = "admin"
headers = { "X-Key" = "key-b-admin" }

[[principals]]
name = "b viewer"
org = "b"
role = "viewer"
headers = { "X-Key" = "key-b-viewer" }

[[canaries]]
key = "items"
param = "item_id"
create = "POST /items"
body = { name = "{marker}" }
id = "id"
read = "GET /items/{id}"

[fuzz]
never = ["POST /admin/*"]
cases = 3
"""


def fake_config(tmp_path: Path, extra: str = "") -> TargetConfig:
    """The fake API's config (with `extra` TOML appended)."""
    path = tmp_path / "items.toml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return load_config(path)


@dataclass
class FakeApi:
    """The API's state and its switches; call it as a MockTransport handler."""

    flaws: frozenset[str] = frozenset()
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    reset_next: int = 0  # this many requests fail with a connection reset before reaching the API
    down: bool = False  # every request fails with a connection reset

    def transport(self) -> httpx.MockTransport:
        """A transport that serves this API."""
        return httpx.MockTransport(self)

    def plant(self, org: str, name: str) -> int:
        """An item of `org`, created directly."""
        item_id = len(self.items) + 1
        self.items[item_id] = {"id": item_id, "org": org, "name": name}
        return item_id

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        template = "/items/{item_id}" if path.startswith("/items/") else path
        self.requests[f"{request.method} {template}"] += 1
        if self.down or self.reset_next > 0:
            self.reset_next -= 1
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        if path == "/admin/reset":
            self.items.clear()
            return httpx.Response(204)
        who = KEYS.get(request.headers.get("X-Key", ""))
        if who is None:
            return httpx.Response(401, json={"detail": "sign in"})
        org, role = who
        writes = request.method != "GET"
        if writes and role == "viewer" and "viewer_writes" not in self.flaws:
            return httpx.Response(403, json={"detail": "forbidden"})
        if path == "/items":
            if request.method == "POST":
                body = json.loads(request.content or b"{}")
                if not isinstance(body.get("name"), str):
                    return httpx.Response(422, json={"detail": "name must be a string"})
                return httpx.Response(201, json=self.items[self.plant(org, body["name"])])
            mine = [i for i in self.items.values() if i["org"] == org or "list_leak" in self.flaws]
            query = request.url.params.get("q")
            return httpx.Response(200, json=[i for i in mine if query is None or query in i["name"]])
        raw = path.rsplit("/", 1)[-1]
        if not raw.isdigit():
            if "crash" not in self.flaws:
                return httpx.Response(422, json={"detail": "item_id must be an integer"})
            # like a server that closes its keep-alive connection after a 500: the next request is reset
            self.reset_next = 1 if "reset_after_500" in self.flaws else 0
            return httpx.Response(500, text="internal error")
        item = self.items.get(int(raw))
        if item is None:
            return httpx.Response(404, json={"detail": "not found"})
        if item["org"] != org and "bola" not in self.flaws:
            if "oracle" in self.flaws:
                return httpx.Response(403, json={"detail": "forbidden"})
            return httpx.Response(404, json={"detail": "not found"})
        if request.method == "DELETE":
            del self.items[int(raw)]
            return httpx.Response(204)
        return httpx.Response(200, json=item)


def fake_world(api: FakeApi) -> World:
    """Two organisations with an admin and a viewer each, a canary and a scratch item each."""
    world = World(orgs={})
    for key in ("a", "b"):
        org = Org(key=key, id=key)
        for role in ("admin", "viewer"):
            creds = StaticCredentials(static_headers=(("X-Key", f"key-{key}-{role}"),))
            org.principals.append(Principal(f"{key} {role}", key, role, creds))
        for kind in ("canary", "scratch"):
            marker = f"{kind}{key}x0123456789ab"
            item_id = api.plant(key, marker)
            record = Canary(key, "items", marker, str(item_id), f"/items/{item_id}", api.items[item_id].copy())
            (org.canaries if kind == "canary" else org.scratch).append(record)
        world.orgs[key] = org
    return world
