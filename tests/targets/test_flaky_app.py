"""The flaky practice target on its own, over real loopback: its API, its refusals, its leak, and its misbehaviour
(a 500 that poisons the pooled keep-alive connection, slowness)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.config.model import load_config
from tests.targets.flaky_app import (
    API_KEYS,
    EAST_EDITOR_KEY,
    EAST_VIEWER_KEY,
    WEST_EDITOR_KEY,
    WEST_VIEWER_KEY,
    FlakyServer,
    flaky_openapi,
    serving_flaky,
)

TIMEOUT = httpx.Timeout(2.0)
NOT_FOUND = {"detail": "not found"}


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    with serving_flaky() as serving:
        yield serving


def _client(server: FlakyServer, key: str | None = None) -> httpx.Client:
    headers = {} if key is None else {"X-Api-Key": key}
    # plain http: verify=False only spares building a TLS context (~60 ms) per client
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=TIMEOUT, verify=False)


def _create(server: FlakyServer, key: str, text: str) -> str:
    with _client(server, key) as client:
        answer = client.post("/notes", json={"text": text})
    assert answer.status_code == 201, answer.text
    note_id = answer.json()["id"]
    assert isinstance(note_id, str)
    assert answer.json() == {"id": note_id, "text": text}
    assert str(uuid.UUID(note_id)) == note_id
    return note_id


def test_keys_are_one_editor_and_one_viewer_per_tenant() -> None:
    assert sorted(API_KEYS.values()) == [("east", "editor"), ("east", "viewer"), ("west", "editor"), ("west", "viewer")]
    assert API_KEYS[EAST_EDITOR_KEY] == ("east", "editor") and API_KEYS[WEST_VIEWER_KEY] == ("west", "viewer")


def test_its_config_loads_with_the_module_keys() -> None:
    """The harness's own loader reads flaky.toml; its principals present exactly this module's keys."""
    config = load_config(Path(__file__).parent / "flaky.toml")
    principals = {p.headers["X-Api-Key"]: (p.org, p.role) for p in config.principals}
    assert principals == dict(API_KEYS)
    assert [(str(c.create), str(c.read)) for c in config.canaries] == [("POST /notes", "GET /notes/{id}")]


def test_health_and_schema_are_public(server: FlakyServer) -> None:
    with _client(server) as client:
        health = client.get("/health")
        schema = client.get("/openapi.json")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert schema.status_code == 200 and schema.json() == flaky_openapi()
    document = schema.json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"] == {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    }
    assert document["paths"]["/health"]["get"]["security"] == []
    assert document["security"] == [{"ApiKey": []}]


def test_notes_crud_for_an_editor_and_reads_for_a_viewer(server: FlakyServer) -> None:
    first = _create(server, EAST_EDITOR_KEY, "east one")
    second = _create(server, EAST_EDITOR_KEY, "east two")
    _create(server, WEST_EDITOR_KEY, "west one")
    with _client(server, EAST_VIEWER_KEY) as viewer:
        assert viewer.get("/notes").json() == [{"id": first, "text": "east one"}, {"id": second, "text": "east two"}]
        assert viewer.get(f"/notes/{first}").json() == {"id": first, "text": "east one"}
    with _client(server, EAST_EDITOR_KEY) as editor:
        deleted = editor.delete(f"/notes/{first}")
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert editor.get(f"/notes/{first}").status_code == 404
        assert editor.delete(f"/notes/{first}").status_code == 404
        assert [note["id"] for note in editor.get("/notes").json()] == [second]
        assert editor.get("/notes?limit=1").status_code == 200  # a query string is not part of the path


@pytest.mark.parametrize("key", [None, "not-a-key", ""])
def test_no_key_or_an_unknown_one_is_refused_401(server: FlakyServer, key: str | None) -> None:
    note_id = _create(server, EAST_EDITOR_KEY, "east secret")
    with _client(server, key) as client:
        answers = [
            client.get("/notes"),
            client.post("/notes", json={"text": "x"}),
            client.post("/notes", json={"text": 5}),  # refused before the body can crash anything
            client.get(f"/notes/{note_id}"),
            client.delete(f"/notes/{note_id}"),
        ]
    assert [a.status_code for a in answers] == [401] * len(answers)
    assert all("east secret" not in a.text for a in answers)
    assert server.resets == 0


def test_viewers_are_refused_every_write(server: FlakyServer) -> None:
    note_id = _create(server, WEST_EDITOR_KEY, "west")
    with _client(server, WEST_VIEWER_KEY) as viewer:
        answers = [
            viewer.post("/notes", json={"text": "x"}),
            viewer.post("/notes", json={"text": 5}),  # the role is checked before the body
            viewer.delete(f"/notes/{note_id}"),
        ]
    assert [(a.status_code, a.json()) for a in answers] == [(403, {"detail": "read only"})] * 3
    assert server.resets == 0
    with _client(server, WEST_EDITOR_KEY) as editor:
        assert editor.get(f"/notes/{note_id}").status_code == 200


@pytest.mark.parametrize("leak", [False, True], ids=["secure", "leak"])
def test_another_tenants_note(leak: bool) -> None:
    with serving_flaky(leak=leak) as server:
        east_note = _create(server, EAST_EDITOR_KEY, "east secret")
        with _client(server, WEST_EDITOR_KEY) as west:
            read = west.get(f"/notes/{east_note}")
            missing = west.get(f"/notes/{uuid.uuid4()}")
            deleted = west.delete(f"/notes/{east_note}")
            listed = west.get("/notes")
        with _client(server, EAST_VIEWER_KEY) as east:
            still_there = east.get(f"/notes/{east_note}")
    if leak:
        assert (read.status_code, read.json()) == (200, {"id": east_note, "text": "east secret"})
    else:
        assert (read.status_code, read.content) == (missing.status_code, missing.content)
        assert read.json() == NOT_FOUND
    assert (deleted.status_code, deleted.json()) == (404, NOT_FOUND)  # the leak is in reading only
    assert listed.json() == []
    assert still_there.status_code == 200


def test_unknown_paths_and_methods(server: FlakyServer) -> None:
    with _client(server, EAST_EDITOR_KEY) as client:
        assert (client.get("/nowhere").status_code, client.get("/notes/a/b").status_code) == (404, 404)
        put = client.put("/notes", json={"text": "x"})
        assert (put.status_code, put.headers["allow"]) == (405, "GET, POST")
        assert client.post("/notes", content=b"{not json").status_code == 400
        chunked = client.post("/notes", content=iter([b'{"text": ', b'"x"}']))
        assert chunked.status_code == 411
    assert server.resets == 0


def test_requests_are_counted_per_route_template(server: FlakyServer) -> None:
    note_id = _create(server, EAST_EDITOR_KEY, "x")
    with _client(server, EAST_VIEWER_KEY) as client:
        client.get(f"/notes/{note_id}")
        client.get(f"/notes/{uuid.uuid4()}")
        client.delete(f"/notes/{note_id}")
        client.get("/health")
        client.get("/nowhere")
        client.put("/notes")
    assert server.requests == {
        "POST /notes": 1,
        "GET /notes/{note_id}": 2,
        "DELETE /notes/{note_id}": 1,
        "GET /health": 1,
        "GET (no route)": 1,
        "PUT /notes": 1,
    }


# --- the misbehaviour ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{"text": 5}, {}, {"text": None}, {"text": ["x"]}, [1], "text"])
def test_a_500_then_the_pooled_connection_is_reset(body: object) -> None:
    with serving_flaky() as server, _client(server, EAST_EDITOR_KEY) as client:
        assert client.get("/notes").status_code == 200
        assert client.get("/health").status_code == 200
        assert server.connections == 1  # the pool keeps one connection alive
        crashed = client.post("/notes", json=body)
        assert (crashed.status_code, crashed.text) == (500, "internal error")
        assert crashed.headers["content-type"].startswith("text/plain")
        assert "connection" not in crashed.headers  # no warning that the connection is about to go
        assert "Traceback" not in crashed.text
        assert server.connections == 1
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get("/notes")
        assert server.resets == 1
        assert client.get("/notes").json() == []  # a fresh connection works
        assert server.connections == 2
        assert server.requests["POST /notes"] == 1 and server.requests["GET /notes"] == 2  # the reset one unread


def test_a_malformed_note_id_is_the_same_500_and_reset() -> None:
    with serving_flaky() as server, _client(server, EAST_EDITOR_KEY) as client:
        assert client.get("/notes/not-an-id'").status_code == 500
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get("/notes")
        assert server.resets == 1
        assert client.get(f"/notes/{uuid.uuid4()}").status_code == 404  # a well-formed id nobody has


def test_the_reset_is_a_tcp_reset_not_a_clean_close(server: FlakyServer) -> None:
    body = b'{"text": 5}'
    crash = (
        b"POST /notes HTTP/1.1\r\nHost: flaky\r\nX-Api-Key: " + EAST_EDITOR_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])), timeout=2) as sock:
        sock.sendall(crash)
        response = b""
        deadline = time.monotonic() + 2
        while not response.endswith(b"internal error") and time.monotonic() < deadline:
            response += sock.recv(4096)
        head = response.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 500") and b"connection:" not in head
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: flaky\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            for _ in range(10):  # bounded: the reset comes at once
                if sock.recv(4096) == b"":
                    pytest.fail("a clean close (FIN), not a reset")
    assert server.resets == 1


def test_without_close_after_500_the_connection_survives_the_500() -> None:
    with serving_flaky(close_after_500=False) as server, _client(server, EAST_EDITOR_KEY) as client:
        assert client.post("/notes", json={"text": 5}).status_code == 500
        assert client.post("/notes", json={}).status_code == 500
        assert client.get("/notes").status_code == 200
        assert (server.connections, server.resets) == (1, 0)


def test_a_malformed_body_is_a_400_not_a_500(server: FlakyServer) -> None:
    with _client(server, EAST_EDITOR_KEY) as client:
        malformed = client.post("/notes", content=b'{"text": ', headers={"Content-Type": "application/json"})
        assert (malformed.status_code, malformed.json()) == (400, {"detail": "malformed JSON"})
        assert client.get("/notes").status_code == 200
    assert server.resets == 0


def test_slow_seconds_delays_reading_one_note_only() -> None:
    delay = 0.4
    with serving_flaky(slow_seconds=delay) as server, _client(server, EAST_EDITOR_KEY) as client:
        note_id = client.post("/notes", json={"text": "x"}).json()["id"]
        started = time.monotonic()
        assert client.get(f"/notes/{note_id}").status_code == 200
        slow = time.monotonic() - started
        started = time.monotonic()
        assert client.get("/notes").status_code == 200
        fast = time.monotonic() - started
        started = time.monotonic()
        assert client.get(f"/notes/{note_id}", headers={"X-Api-Key": ""}).status_code == 401  # every one
        refused = time.monotonic() - started
    assert delay <= slow < delay + 1.0
    assert delay <= refused < delay + 1.0
    assert fast < delay


def test_shutdown_is_prompt_with_connections_open_and_a_slow_request_in_flight() -> None:
    outcome: list[object] = []
    with serving_flaky(slow_seconds=30) as server:
        base = server.base_url
        idle = _client(server, EAST_EDITOR_KEY)
        assert idle.get("/notes").status_code == 200  # a keep-alive connection left open

        def slow_read() -> None:
            try:
                outcome.append(httpx.get(f"{base}/notes/{uuid.uuid4()}", headers={"X-Api-Key": EAST_EDITOR_KEY}))
            except httpx.TransportError as error:
                outcome.append(error)

        reader = threading.Thread(target=slow_read)
        reader.start()
        deadline = time.monotonic() + 2
        while server.requests["GET /notes/{note_id}"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
    stopped = time.monotonic() - started
    reader.join(timeout=5)
    idle.close()
    assert stopped < 2.0
    assert not reader.is_alive() and len(outcome) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/health", timeout=1)


def test_the_schema_is_valid_json_with_every_route() -> None:
    document = json.loads(json.dumps(flaky_openapi()))
    operations = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item if m != "parameters"}
    assert operations == {
        "GET /health",
        "GET /openapi.json",
        "GET /notes",
        "POST /notes",
        "GET /notes/{note_id}",
        "DELETE /notes/{note_id}",
    }
    assert document["paths"]["/notes"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoteIn"
    }
