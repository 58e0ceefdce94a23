"""The config's JSON Schema, and `iam-harness config schema | check`: exit codes, one line, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.cli.main import main
from harness.config.model import config_json_schema
from tests.harness.config.support import SHIPPED, changed, shipped, write

LEDGER = Path(__file__).parents[2] / "targets" / "ledger.toml"
OPENAPI = {
    "openapi": "3.1.0",
    "paths": {
        "/api/members": {"post": {}},
        "/api/contacts": {"post": {}},
        "/api/contacts/{contact_id}": {"get": {}},
        "/api/deals": {"post": {}},
        "/api/deals/{deal_id}": {"get": {}},
        "/api/deals/{deal_id}/notes": {"post": {}},
        "/api/deals/{deal_id}/notes/{note_id}": {"get": {}},
        "/admin/reset": {"post": {}},
    },
}


def test_the_schema_is_valid_json_schema_and_the_shipped_files_meet_it() -> None:
    schema = config_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(shipped())
    import tomllib

    validator.validate(tomllib.loads(LEDGER.read_text(encoding="utf-8")))
    assert "fuzz" in schema["properties"] and schema["required"] == ["target", "canaries"]


def test_the_schema_refuses_what_the_reader_refuses() -> None:
    validator = jsonschema.Draft202012Validator(config_json_schema())
    raw = shipped()
    raw["fuzz"] = {"casez": 3}
    assert not validator.is_valid(raw)  # additionalProperties: false, as the reader's extra="forbid"
    raw["fuzz"] = {"cases": 501}
    assert not validator.is_valid(raw)


def test_config_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(config_json_schema()))


def test_config_check_passes_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(SHIPPED)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"{SHIPPED}: valid, 12 operations named")


@pytest.mark.e2e  # the CLI in a subprocess
def test_config_check_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = changed(tmp_path, lambda raw: raw.update(fuzz={"casez": 3}))
    done = subprocess.run(
        [sys.executable, "-m", "harness", "config", "check", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "[fuzz] casez: unknown field" in lines[0] and "did you mean 'cases'?" in lines[0]
    assert "Traceback" not in done.stderr


def _with_schema_file(tmp_path: Path, never: list[str]) -> Path:
    (tmp_path / "api.json").write_text(json.dumps(OPENAPI), encoding="utf-8")
    raw = shipped()
    raw["target"] = {"schema_file": "{config_dir}/api.json", "health": "/health"}
    raw["fuzz"] = {"never": never}
    return write(tmp_path, raw)


def test_config_check_finds_every_operation_in_a_schema_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _with_schema_file(tmp_path, ["POST /admin/*"])
    assert main(["config", "check", str(path)]) == 0
    assert "each found among the schema's 8 operations" in capsys.readouterr().out


def test_config_check_names_an_entry_that_names_no_operation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _with_schema_file(tmp_path, ["POST /admin/rest"])
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"iam-harness: config {path}: [fuzz] never: POST /admin/rest names no operation of the schema"]


@contextmanager
def _serving(document: dict[str, Any]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(document).encode()
            self.send_response(200 if self.path == "/openapi.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_config_check_reads_the_targets_schema(capsys: pytest.CaptureFixture[str]) -> None:
    with _serving(OPENAPI) as base:
        assert main(["config", "check", str(SHIPPED), "--target", base]) == 0
    assert "each found among the schema's 8 operations" in capsys.readouterr().out
    broken = {"openapi": "3.1.0", "paths": {k: v for k, v in OPENAPI["paths"].items() if k != "/api/members"}}  # type: ignore[attr-defined]
    with _serving(broken) as base:
        assert main(["config", "check", str(SHIPPED), "--target", base]) == 2
    assert "[members] add: POST /api/members names no operation of the schema" in capsys.readouterr().err


def test_config_check_of_an_unreachable_target_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(SHIPPED), "--target", "http://127.0.0.1:9"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("iam-harness: http://127.0.0.1:9/openapi.json did not answer")
