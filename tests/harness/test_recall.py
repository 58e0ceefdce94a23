"""bench.recall's counting: when a report.json shows a planted flaw, which findings of a secure build are false,
how schemathesis's NDJSON events become failures, and when a failure shows a flaw; in-process, no subprocess.

The module also exports `PRACTICE`, a practice target over the library app (its four flaws that the harness's own
library tests pin down), so that `python -m bench.recall --modules tests.harness.test_recall` and the end-to-end
test below have a target whatever the catalog holds.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench._schemathesis_users import StFailure, StUser, never_regex, parse_events, users_config, wfc_document
from bench.recall import (
    harness_false_findings,
    harness_finds,
    load_targets,
    main,
    report_findings,
    schemathesis_false_findings,
    schemathesis_finds,
)
from harness.config.operations import parse_pattern
from tests.targets.catalog import Flaw, PracticeTarget
from tests.targets.library_app import create_library_app, request_counts

TARGETS = Path(__file__).parent.parent / "targets"


def _library_counts(app: Any) -> dict[str, int]:
    counts: Counter[str] = request_counts(app)
    return dict(counts)


PRACTICE = PracticeTarget(
    name="library",
    config=TARGETS / "library.toml",
    health="/health",
    flaws=(
        Flaw("book_bola", "M4", "CrossOrgRead", "GET /books/{title}", note="another branch's book by its title"),
        Flaw("loan_idor", "M4", "CrossOrgRead", "GET /loans/{loan_id}", note="any branch's loan by its integer id"),
        Flaw("reader_can_write", "M3", "NotRefused", "PUT /books/{title}", note="a read-only reader edits books"),
        Flaw("search_leak", "M4", "ForeignMarker", "GET /books", note="?q= searches every branch"),
    ),
    make_app=lambda flaws: create_library_app(flaws=flaws),
    never=("POST /admin/reset",),
    counts=_library_counts,
)
BOOK_BOLA = PRACTICE.flaw("book_bola")


def _finding(kind: str, operation: str, checks: list[str], principal: str = "south librarian") -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": "critical",
        "checks": checks,
        "operation": operation,
        "principal": principal,
        "family": "foreign_id",
        "detail": "answered 200 with north's canary",
        "exchange": None,
        "repro": None,
    }


def _report(*checks: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"checks": [{"id": check_id, "answer": "NO" if f else "YES", "findings": f} for check_id, f in checks]}


# -- iam-harness ----------------------------------------------------------------------------------------------


def test_a_finding_of_the_flaws_kind_on_its_operation_deciding_its_check_finds_it() -> None:
    report = _report(("M4", [_finding("CrossOrgRead", "GET /books/{title}", ["M4"])]), ("M3", []))
    found = harness_finds(report, BOOK_BOLA)
    assert found is not None and found.kind == "CrossOrgRead" and found.operation == "GET /books/{title}"


def test_path_parameters_compare_by_position_not_by_name() -> None:
    report = _report(("M4", [_finding("CrossOrgRead", "GET /books/{book}", ["M4"])]))
    assert harness_finds(report, BOOK_BOLA) is not None


@pytest.mark.parametrize(
    "finding",
    [
        _finding("ExistenceOracle", "GET /books/{title}", ["M4"]),  # another kind
        _finding("CrossOrgRead", "GET /loans/{loan_id}", ["M4"]),  # another operation
        _finding("CrossOrgRead", "DELETE /books/{title}", ["M4"]),  # another method
        _finding("CrossOrgRead", "GET /books/{title}", ["I3"]),  # another check
    ],
)
def test_a_finding_that_differs_in_kind_operation_or_check_does_not(finding: dict[str, Any]) -> None:
    check_id = finding["checks"][0]
    assert harness_finds(_report((check_id, [finding])), BOOK_BOLA) is None


def test_a_finding_listed_under_the_flaws_check_decides_it() -> None:
    report = _report(("M4", [_finding("CrossOrgRead", "GET /books/{title}", [])]))
    assert harness_finds(report, BOOK_BOLA) is not None


def test_false_findings_are_every_authorization_finding_once_and_never_lost_coverage() -> None:
    shared = _finding("NotRefused", "PUT /books/{title}", ["M3", "O4"], "north reader")
    report = _report(
        ("M3", [shared, _finding("Unanswered", "GET /books", ["M3"])]),
        (
            "O4",
            [shared, _finding("BudgetExhausted", "GET /loans", ["O4"]), _finding("NotExercised", "GET /me", ["O4"])],
        ),
        ("M4", []),
    )
    assert len(report_findings(report)) == 4
    false = harness_false_findings(report)
    assert [(f.kind, f.operation, f.checks) for f in false] == [("NotRefused", "PUT /books/{title}", ("M3", "O4"))]
    assert "north reader" in false[0].line()


# -- schemathesis ---------------------------------------------------------------------------------------------


def _check(name: str, status: str = "success", operation: str = "", title: str = "") -> dict[str, Any]:
    check: dict[str, Any] = {"name": name, "status": status}
    if status == "failure":
        check["failure_info"] = {"failure": {"operation": operation, "title": title, "message": "m", "code": "ST"}}
    return check


def _finished(label: str, checks: dict[str, list[dict[str, Any]]], cases: dict[str, Any] | None = None) -> str:
    recorder = {"label": label, "cases": cases or {}, "checks": checks}
    return json.dumps({"ScenarioFinished": {"phase": "fuzzing", "status": "failure", "recorder": recorder}})


def test_schemathesis_events_give_each_failed_check_once() -> None:
    ola = _check("object_level_authorization", "failure", "GET /books/{title}", "Object-level authorization bypass")
    lines = [
        json.dumps({"Initialize": {"seed": 1}}),
        "not json",
        _finished("GET /books/{title}", {"a1": [_check("not_a_server_error"), ola], "a2": [ola]}),
        _finished("GET /books/{title}", {"b1": [ola]}),  # found again in another phase: one failure
        _finished(
            "Stateful tests",
            {"c1": [_check("not_a_server_error", "failure")]},
            {"c1": {"value": {"method": "POST", "path": "/loans"}}},
        ),  # no operation in the failure: the case's own
        json.dumps({"NonFatalError": {"label": "GET /me", "value": {"type": "ConnectionError", "message": "reset"}}}),
    ]
    failures, errors = parse_events(lines)
    assert [(f.check, f.operation) for f in failures] == [
        ("object_level_authorization", "GET /books/{title}"),
        ("not_a_server_error", "POST /loans"),
    ]
    assert failures[0].line() == "object_level_authorization GET /books/{title}: Object-level authorization bypass"
    assert errors == ["GET /me: ConnectionError: reset"]


def test_an_authorization_failure_on_the_flaws_operation_finds_it_whatever_the_secure_build_had() -> None:
    ola = StFailure("object_level_authorization", "GET /books/{title}")
    assert schemathesis_finds([ola], BOOK_BOLA, secure=[ola]) == ola
    ignored = StFailure("ignored_auth", "GET /books/{book}")
    assert schemathesis_finds([ignored], BOOK_BOLA, secure=[]) == ignored


def test_another_failure_finds_it_only_when_the_secure_build_did_not_have_it() -> None:
    nit = StFailure("response_schema_conformance", "GET /books/{title}")
    assert schemathesis_finds([nit], BOOK_BOLA, secure=[nit]) is None
    assert schemathesis_finds([nit], BOOK_BOLA, secure=[StFailure("not_a_server_error", "GET /books/{title}")]) == nit
    elsewhere = StFailure("object_level_authorization", "GET /loans/{loan_id}")
    assert schemathesis_finds([elsewhere], BOOK_BOLA, secure=[]) is None


def test_the_authorization_failure_is_named_before_a_new_conformance_one() -> None:
    nit, ola = StFailure("status_code_conformance", "GET /books/{t}"), StFailure("ignored_auth", "GET /books/{t}")
    assert schemathesis_finds([nit, ola], BOOK_BOLA, secure=[]) == ola


def test_schemathesis_false_findings_are_every_failure_of_the_secure_build_once() -> None:
    secure = [
        StFailure("allow_header_conformance", "POST /books", "Allow header mismatch"),
        StFailure("allow_header_conformance", "POST /books", "Allow header mismatch, again"),
        StFailure("not_a_server_error", "GET /me"),
    ]
    assert [f.key for f in schemathesis_false_findings(secure)] == [
        ("allow_header_conformance", "POST /books"),
        ("not_a_server_error", "GET /me"),
    ]


def test_the_two_users_are_peers_of_one_auth_document() -> None:
    users = [
        StUser("north", "north librarian", {"Authorization": "Bearer n"}),
        StUser("south", "south librarian", {"Cookie": "sid=s", "X-Api-Key": "k"}),
    ]
    document = wfc_document(users)
    assert document["auth"][1] == {
        "name": "south",
        "fixedHeaders": [{"name": "Cookie", "value": "sid=s"}, {"name": "X-Api-Key", "value": "k"}],
    }
    config = tomllib.loads(users_config(Path("/tmp/users.json"), users))
    assert config == {"auth": {"wfc": {"path": "/tmp/users.json", "peers": ["north", "south"]}}}


def test_never_entries_become_one_regex_over_operation_names() -> None:
    regex = never_regex([parse_pattern("POST /admin/reset"), parse_pattern("* /danger/{id}/*")])
    assert regex is not None
    import re

    assert re.match(regex, "POST /admin/reset") and not re.match(regex, "GET /admin/reset")
    assert re.match(regex, "DELETE /danger/{thing_id}/wipe") and not re.match(regex, "DELETE /danger")
    assert never_regex([]) is None


# -- the command line -----------------------------------------------------------------------------------------


def test_a_module_that_cannot_be_imported_is_named_and_the_others_go_on() -> None:
    targets, unavailable = load_targets(["tests.targets.no_such_app", __name__])
    assert [t.name for t in targets] == ["library"]
    assert unavailable[0][0] == "tests.targets.no_such_app" and "ModuleNotFoundError" in unavailable[0][1]


@pytest.mark.e2e
def test_recall_on_the_library_for_one_flaw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "recall.json"
    code = main(["--modules", f"tests.targets.no_such_app,{__name__}", "--flaws", "book_bola", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "tests.targets.no_such_app: not available (ModuleNotFoundError" in printed
    assert "seed 1" in printed and "\ntotal" in printed
    result = json.loads(out.read_text())
    library = result["targets"][0]
    assert library["planted"] == 1 and library["harness"]["found"] == 1 and library["harness"]["false"] == 0
    assert library["flaws"][0]["harness"].startswith("CrossOrgRead GET /books/{title}")
    assert library["schemathesis"]["secure_run"]["error"] is None  # it ran, with its two users
    assert library["never_called"] == {}  # neither tool called the reset
