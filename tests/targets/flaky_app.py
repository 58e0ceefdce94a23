"""A fourth practice target that misbehaves like real servers do: a plain standard-library HTTP/1.1 server.

Shape
-----
`http.server.ThreadingHTTPServer` with a `BaseHTTPRequestHandler` speaking HTTP/1.1, so connections are kept
alive, serving a tiny multi-tenant notes API: tenants `east` and `west`, each with a static `editor` API key
(may write) and a `viewer` key (read-only), sent in `X-Api-Key` (the keys are the module constants below).
`GET /health` and `GET /openapi.json` are public; `GET /notes`, `POST /notes` (JSON `{"text": ...}` -> 201
`{"id": "<uuid>", "text": ...}`), `GET /notes/{note_id}` and `DELETE /notes/{note_id}` (-> 204) need a key.
Another tenant's note answers 404, like an id nobody has; a viewer writing gets 403; no key or an unknown one 401.

Misbehaviour
------------
* `POST /notes` with a body whose `text` is missing or not a string (the JSON is fine, the handler assumed a
  string) answers **500**, plain text `internal error`, no trace, and no `Connection: close`. With
  `close_after_500` the server then drops that connection abruptly: `SO_LINGER` with a zero timeout, so closing
  sends a TCP reset. It does so when the client's next request arrives on the connection (or the connection has
  idled `IDLE_SECONDS`, or the server stops): a reset sent at once would race the client's pool, which checks an
  idle connection for readability before reusing it and would quietly discard it, so the reset could go unseen.
  This way a client pooling keep-alive connections reliably gets `ConnectionResetError` (`httpx.ReadError`) or
  `httpx.RemoteProtocolError` on its next request over that connection. `resets` counts the connections dropped.
* A `note_id` that is not a uuid (the harness's malformed-id probe sends one) is the same unhandled error: the
  real thing would have parsed it with `uuid.UUID`. So every run of the harness meets the 500 and the reset.
* `slow_seconds > 0`: every `GET /notes/{note_id}` sleeps that long before it answers (less if the server stops).

Planted flaw
------------
* `leak=True`: `GET /notes/{note_id}` returns another tenant's note.

`requests` counts every request under `METHOD /path/{template}` (`(no route)` for other paths) before it is
handled (a request met by the reset is never read, so it is not counted); `connections` counts the TCP
connections accepted.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

__all__ = [
    "API_KEYS",
    "EAST_EDITOR_KEY",
    "EAST_VIEWER_KEY",
    "WEST_EDITOR_KEY",
    "WEST_VIEWER_KEY",
    "FlakyServer",
    "Note",
    "flaky_openapi",
    "serving_flaky",
]

EAST_EDITOR_KEY: Final = "flaky-east-editor-7d1f"
EAST_VIEWER_KEY: Final = "flaky-east-viewer-2b9c"
WEST_EDITOR_KEY: Final = "flaky-west-editor-c40e"
WEST_VIEWER_KEY: Final = "flaky-west-viewer-95a3"
API_KEYS: Final[Mapping[str, tuple[str, str]]] = {
    EAST_EDITOR_KEY: ("east", "editor"),
    EAST_VIEWER_KEY: ("east", "viewer"),
    WEST_EDITOR_KEY: ("west", "editor"),
    WEST_VIEWER_KEY: ("west", "viewer"),
}
MAX_BODY_BYTES: Final = 64 * 1024
IDLE_SECONDS: Final = 5.0  # an idle keep-alive connection is closed after this
_METHODS: Final[Mapping[str, frozenset[str]]] = {
    "/health": frozenset({"GET"}),
    "/openapi.json": frozenset({"GET"}),
    "/notes": frozenset({"GET", "POST"}),
    "/notes/{note_id}": frozenset({"GET", "DELETE"}),
}


@dataclass(frozen=True)
class Note:
    """One tenant's note."""

    id: str
    tenant: str
    text: str

    def public(self) -> dict[str, str]:
        """What the API answers for it."""
        return {"id": self.id, "text": self.text}


@dataclass(frozen=True)
class _Options:
    close_after_500: bool
    slow_seconds: float
    leak: bool


def _template(path: str) -> tuple[str, str | None] | None:
    """The route template of a path and its note id, or None."""
    if path in _METHODS:
        return path, None
    prefix = "/notes/"
    if path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix) :]:
        return "/notes/{note_id}", path[len(prefix) :]
    return None


class FlakyServer(ThreadingHTTPServer):
    """The server and its in-memory state; `base_url`, `requests`, `resets` and `connections` are for tests."""

    daemon_threads = True

    def __init__(self, *, close_after_500: bool, slow_seconds: float, leak: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.options = _Options(close_after_500, slow_seconds, leak)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests: Counter[str] = Counter()
        self.resets = 0
        self.connections = 0
        self.notes: dict[str, Note] = {}
        self._open: dict[socket.socket, threading.Thread] = {}

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def opened(self, connection: socket.socket) -> None:
        """A handler thread took a connection."""
        with self.lock:
            self.connections += 1
            self._open[connection] = threading.current_thread()

    def closed(self, connection: socket.socket) -> None:
        """A handler thread is done with a connection."""
        with self.lock:
            self._open.pop(connection, None)

    def stop_connections(self, timeout: float) -> None:
        """Shut every open connection down and wait, up to `timeout` seconds, for their threads."""
        with self.lock:
            open_now = dict(self._open)
        for connection in open_now:
            with contextlib.suppress(OSError):  # already closed by its thread
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in open_now.values():
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet while stopping (a handler may write to a connection shut under it), loud otherwise."""
        if not self.stopping.is_set():
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms wait on the client's delayed ACK
    server: FlakyServer
    _aborted = False

    # connection bookkeeping

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._aborted:
                self.connection.close()  # SO_LINGER 0: a reset, and no FIN before it
            self.server.closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read the counters, not a log."""

    # answers

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _detail(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        self._json(status, {"detail": detail}, headers)

    def _no_content(self) -> None:
        self.send_response(204)
        self.end_headers()
        self.wfile.flush()

    def _crash(self) -> None:
        """What an unhandled exception looks like here: a bare 500, then, maybe, a dropped connection."""
        self._send(500, b"internal error", "text/plain; charset=utf-8")
        if self.server.options.close_after_500:
            self._reset_on_next_request()

    def _reset_on_next_request(self) -> None:
        deadline = time.monotonic() + IDLE_SECONDS
        while not self.server.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                break
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._aborted = True
        self.close_connection = True
        with self.server.lock:
            self.server.resets += 1

    # requests

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes | None:
        """The request's body, or None once a refusal that closes the connection has been sent."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._detail(411, "a Content-Length is required", {"Connection": "close"})
            return None
        declared = self.headers.get("Content-Length", "0").strip() or "0"
        if not declared.isdigit():
            self.close_connection = True
            self._detail(400, "bad Content-Length", {"Connection": "close"})
            return None
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._detail(413, "body too large", {"Connection": "close"})
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        routed = _template(path)
        with self.server.lock:
            self.server.requests[f"{self.command} {routed[0] if routed else '(no route)'}"] += 1
        body = self._read_body()
        if body is None:
            return
        if routed is None:
            self._detail(404, "not found")
            return
        template, note_id = routed
        if self.command not in _METHODS[template]:
            self._detail(405, "method not allowed", {"Allow": ", ".join(sorted(_METHODS[template]))})
            return
        if template == "/health":
            self._json(200, {"status": "ok"})
        elif template == "/openapi.json":
            self._json(200, flaky_openapi())
        elif note_id is not None:
            self._note(note_id)
        elif self.command == "GET":
            self._list_notes()
        else:
            self._create_note(body)

    def _caller(self) -> tuple[str, str] | None:
        """(tenant, role) of the API key, or None once 401 has been sent."""
        found = API_KEYS.get(self.headers.get("X-Api-Key", ""))
        if found is None:
            self._detail(401, "missing or unknown API key")
        return found

    def _list_notes(self) -> None:
        caller = self._caller()
        if caller is None:
            return
        with self.server.lock:
            notes = [note.public() for note in self.server.notes.values() if note.tenant == caller[0]]
        self._json(200, notes)

    def _create_note(self, body: bytes) -> None:
        caller = self._caller()
        if caller is None:
            return
        if caller[1] != "editor":
            self._detail(403, "read only")
            return
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            self._detail(400, "malformed JSON")
            return
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str):  # the real thing would have raised on `payload["text"].strip()`
            self._crash()
            return
        note = Note(str(uuid.uuid4()), caller[0], text)
        with self.server.lock:
            self.server.notes[note.id] = note
        self._json(201, note.public())

    def _note(self, note_id: str) -> None:
        try:
            uuid.UUID(note_id)
        except ValueError:
            self._crash()
            return
        slow = self.server.options.slow_seconds
        if self.command == "GET" and slow > 0:
            self.server.stopping.wait(slow)
        caller = self._caller()
        if caller is None:
            return
        if self.command == "DELETE" and caller[1] != "editor":
            self._detail(403, "read only")
            return
        with self.server.lock:
            note = self.server.notes.get(note_id)
            leaks = self.command == "GET" and self.server.options.leak
            if note is None or (note.tenant != caller[0] and not leaks):
                note = None
            elif self.command == "DELETE":
                del self.server.notes[note_id]
        if note is None:
            self._detail(404, "not found")
        elif self.command == "DELETE":
            self._no_content()
        else:
            self._json(200, note.public())


@contextmanager
def serving_flaky(
    *, close_after_500: bool = True, slow_seconds: float = 0.0, leak: bool = False
) -> Iterator[FlakyServer]:
    """A `FlakyServer` on 127.0.0.1, an ephemeral port, served from a daemon thread; stopped and closed on exit."""
    server = FlakyServer(close_after_500=close_after_500, slow_seconds=slow_seconds, leak=leak)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.stop_connections(timeout=5.0)
        server.server_close()
        thread.join(timeout=5.0)


def flaky_openapi() -> dict[str, Any]:
    """The server's OpenAPI 3.1 document (its 500 is, of course, undocumented)."""
    public: list[dict[str, list[str]]] = []
    note = {"$ref": "#/components/schemas/Note"}
    message = {"$ref": "#/components/responses/Message"}
    note_id = {"name": "note_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "flaky notes", "version": "1.0.0"},
        "security": [{"ApiKey": []}],
        "paths": {
            "/health": {"get": {"operationId": "health", "security": public, "responses": {"200": message}}},
            "/openapi.json": {
                "get": {"operationId": "openapi", "security": public, "responses": {"200": message}},
            },
            "/notes": {
                "get": {
                    "operationId": "listNotes",
                    "responses": {
                        "200": {
                            "description": "The tenant's notes.",
                            "content": {"application/json": {"schema": {"type": "array", "items": note}}},
                        },
                        "401": message,
                    },
                },
                "post": {
                    "operationId": "createNote",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NoteIn"}}},
                    },
                    "responses": {
                        "201": {"description": "Created.", "content": {"application/json": {"schema": note}}},
                        "400": message,
                        "401": message,
                        "403": message,
                    },
                },
            },
            "/notes/{note_id}": {
                "parameters": [note_id],
                "get": {
                    "operationId": "readNote",
                    "responses": {
                        "200": {"description": "The note.", "content": {"application/json": {"schema": note}}},
                        "401": message,
                        "404": message,
                    },
                },
                "delete": {
                    "operationId": "deleteNote",
                    "responses": {"204": {"description": "Deleted."}, "401": message, "403": message, "404": message},
                },
            },
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
            "schemas": {
                "NoteIn": {
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                },
                "Note": {
                    "type": "object",
                    "properties": {"id": {"type": "string", "format": "uuid"}, "text": {"type": "string"}},
                    "required": ["id", "text"],
                },
            },
            "responses": {"Message": {"description": "A JSON object.", "content": {"application/json": {}}}},
        },
    }
