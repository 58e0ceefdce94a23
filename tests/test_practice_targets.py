"""The harness on practice targets unlike the reference app, each described by its config file alone.

The library (Starlette): users registered by `[[setup]]`, a form-encoded OAuth2 login, integer loan ids given
only in `Location`, books whose id is the title the harness sent, a destructive reset listed under `never`.
The flaky server (the standard library's): closes its keep-alive connection after every 500, and may answer
slowly. Each secure build must come out clean, each planted flaw must be found where it is, and the reset
must never be requested, by any phase of a whole run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.targets.flaky_app import serving_flaky
from tests.targets.library_app import create_library_app, request_counts
from tests.targets.serve import serving

pytestmark = pytest.mark.e2e

TARGETS = Path(__file__).parent / "targets"
RUN_TIMEOUT = 240


def _run(base: str, config: str, report_dir: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", base, "--config", str(TARGETS / config), "--seed", "3",
         "--report-dir", str(report_dir), *extra],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    path = report_dir / "report.json"
    assert path.exists(), done.stdout + done.stderr
    report: dict[str, Any] = json.loads(path.read_text())
    return done.returncode, report, done.stdout + done.stderr


def _answers(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["answer"] for c in report["checks"]}


def _text(report: dict[str, Any], check_id: str) -> str:
    check = next(c for c in report["checks"] if c["id"] == check_id)
    return json.dumps(check)


def test_secure_library_is_clean_and_its_reset_is_never_called(tmp_path: Path) -> None:
    app = create_library_app()
    with serving(app, "/health") as base:
        code, report, output = _run(base, "library.toml", tmp_path)
    counts = request_counts(app)
    assert counts["POST /admin/reset"] == 0, counts
    answers = _answers(report)
    assert answers["M3"] == answers["M4"] == answers["I3"] == answers["O1"] == "YES", json.dumps(report)[:4000]
    assert code == 0 and report["answer"] == "YES", output[-3000:]
    assert counts["POST /token"] >= 4 and counts["POST /register"] >= 4  # setup and form logins really ran
    assert counts["GET /loans/{loan_id}"] > 0 and counts["GET /books/{title}"] > 0  # both canaries planted and read
    assert "never" in output and "POST /admin/reset" in output  # the plan said so before anything was sent


@pytest.mark.parametrize(
    ("flaw", "check", "kind", "operation"),
    [
        ("book_bola", "M4", "CrossOrgRead", "GET /books/{title}"),
        ("loan_idor", "M4", "CrossOrgRead", "GET /loans/{loan_id}"),
        ("existence_oracle", "M4", "ExistenceOracle", "GET /loans/{loan_id}"),
        ("reader_can_write", "M3", "NotRefused", "PUT /books/{title}"),
        ("search_leak", "M4", "ForeignMarker", "GET /books"),
    ],
)
def test_each_planted_library_flaw_is_found(tmp_path: Path, flaw: str, check: str, kind: str, operation: str) -> None:
    app = create_library_app(flaws=frozenset({flaw}))
    with serving(app, "/health") as base:
        code, report, output = _run(base, "library.toml", tmp_path, "-k", "fuzz")
    assert request_counts(app)["POST /admin/reset"] == 0
    assert code == 1 and _answers(report)[check] == "NO", output[-3000:]
    text = _text(report, check)
    assert kind in text and operation in text, text[:3000]


def test_a_server_that_resets_after_each_500_costs_the_run_nothing(tmp_path: Path) -> None:
    with serving_flaky(close_after_500=True, leak=True, slow_seconds=0.05) as server:
        code, report, output = _run(server.base_url, "flaky.toml", tmp_path, "-k", "fuzz")
        assert code == 1  # the 500 and the leak are NOs; the run itself completed
        resets = server.resets
    answers = _answers(report)
    assert resets > 0, "the server never reset a connection: the test proves nothing"
    assert answers["M4"] == "NO" and "CrossOrgRead" in _text(report, "M4"), output[-3000:]  # the leak, found
    assert answers["O1"] == "NO" and "ServerError" in _text(report, "O1")  # the 500 itself
    # No false alarm from the resets: a request reset twice is Unanswered (it proves nothing), never NotRefused.
    m3 = next(c for c in report["checks"] if c["id"] == "M3")
    assert {f["kind"] for f in m3["findings"]} <= {"Unanswered"}, _text(report, "M3")[:3000]
    assert "retried on a fresh connection" in _text(report, "M4")
    assert "Traceback" not in output


def test_a_never_entry_that_names_no_operation_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    """A typo under `never` would protect nothing: the run refuses to go on, exit 2, the entry named."""
    config = tmp_path / "library.toml"
    text = (
        (TARGETS / "library.toml").read_text().replace('never = ["POST /admin/reset"]', 'never = ["POST /admin/rest"]')
    )
    config.write_text(text.replace("{config_dir}", str(TARGETS)))
    app = create_library_app()
    with serving(app, "/health") as base:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "run", "--target", base, "--config", str(config), "--report-dir",
             str(tmp_path / "out"), "-k", "fuzz"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "POST /admin/rest" in done.stderr and "names no operation" in done.stderr
    assert request_counts(app)["POST /admin/reset"] == 0


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_principal_whose_login_fails_is_a_config_error_naming_it(tmp_path: Path, workers: str) -> None:
    """The north reader's password is not the one its setup registered: exit 2, one line naming the principal."""
    text = (TARGETS / "library.toml").read_text(encoding="utf-8")
    reader = 'body = { username = "north-reader-{run}", password = "{secret}" }'
    assert reader in text
    config = tmp_path / "library.toml"
    config.write_text(
        text.replace(reader, 'body = { username = "north-reader-{run}", password = "not-{secret}" }').replace(
            "{config_dir}", str(TARGETS)
        ),
        encoding="utf-8",
    )
    assert "[[principals]] login: north reader could not log in" in _config_error(config, tmp_path, workers)


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize(
    ("schema", "said"),
    [("/health", "is not an OpenAPI document (no 'paths' object)"), ("/no-such-page", "answered 404")],
    ids=["other-json", "404"],
)
def test_a_schema_path_that_is_no_openapi_document_is_a_config_error_naming_it(
    tmp_path: Path, schema: str, said: str, workers: str
) -> None:
    text = (TARGETS / "library.toml").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("schema_file = "))
    config = tmp_path / "library.toml"
    config.write_text(text.replace(line, f'schema = "{schema}"'), encoding="utf-8")
    error = _config_error(config, tmp_path, workers)
    assert f"[target] schema {schema}" in error and said in error, error


def _config_error(config: Path, tmp_path: Path, workers: str) -> str:
    """Run the library with `config`: it must stop with exit 2 and one line, which is returned."""
    with serving(create_library_app(), "/health") as base:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "run", "--target", base, "--config", str(config), "--seed", "3",
             "--report-dir", str(tmp_path / "out"), "--workers", workers],
            capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("iam-harness: ")]
    assert done.returncode == 2 and len(errors) == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    return errors[0]
