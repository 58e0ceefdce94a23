"""report.json against its schema, report.md, the terminal table, and what scenarios record for them."""

from __future__ import annotations

import json
import random
import re
import shlex
import tomllib
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import jwt
import pytest
from rich.console import Console

from harness.checks.findings import FindingKind, Severity
from harness.clerk.issuer import ActiveOrg, Issuer
from harness.cli.main import main
from harness.engine.world import ANONYMOUS, ClerkCredentials, Principal, StaticCredentials
from harness.report.document import report_schema, to_json, write_json
from harness.report.evidence import Evidence, token_hint
from harness.report.markdown import MAX_FINDINGS_PER_KIND, markdown
from harness.report.model import Answer, Report, ScenarioOutcome, decide
from harness.report.terminal import print_table
from tests.harness.report_support import (
    error_report,
    interrupted_report,
    na_report,
    no_report,
    validate_report,
    yes_report,
)

SAMPLES: dict[str, Callable[[], Report]] = {
    "yes": yes_report,
    "no-with-findings": no_report,
    "not-applicable": na_report,
    "error": error_report,
    "interrupted": interrupted_report,
}


@pytest.mark.parametrize("make", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_report_validates_against_the_schema(tmp_path: Path, make: Callable[[], Report]) -> None:
    report = make()
    write_json(report, tmp_path / "report.json")
    document = json.loads((tmp_path / "report.json").read_text())
    validate_report(document)
    assert document["schema_version"] == 2 and document["answer"] == report.answer.value
    assert [c["answer"] for c in document["checks"]] == [c.answer.value for c in report.checks]


def test_the_schema_refuses_what_a_report_must_not_say() -> None:
    document = to_json(na_report())
    m3 = next(c for c in document["checks"] if c["id"] == "M3")
    m3["answer"], m3["reason"] = "N/A", "declared away"
    with pytest.raises(AssertionError, match="answer"):
        validate_report(document)  # M3 is never N/A
    yes = to_json(yes_report()) | {"interrupted": True}
    with pytest.raises(AssertionError):
        validate_report(yes)  # an interrupted run is never YES


def test_schema_knows_every_finding_kind_and_severity() -> None:
    finding = report_schema()["$defs"]["finding"]["properties"]
    assert finding["kind"]["enum"] == [k.value for k in FindingKind]
    assert finding["severity"]["enum"] == [s.value for s in Severity]
    check = report_schema()["$defs"]["check"]["properties"]
    assert check["answer"]["enum"] == [a.value for a in Answer if a is not Answer.INTERRUPTED]  # a check's
    assert report_schema()["properties"]["answer"]["enum"] == ["YES", "NO", "INTERRUPTED"]  # the run's


def test_schema_ships_as_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "report.schema.json" in pyproject["tool"]["setuptools"]["package-data"]["harness.report"]


def test_json_keeps_every_finding_with_its_repro() -> None:
    document = to_json(no_report())
    m4 = next(c for c in document["checks"] if c["id"] == "M4")
    assert len(m4["findings"]) == 14 and m4["reason"] == "s::M4: 14 finding(s)"
    assert all(f["repro"].startswith("curl ") and "$IAM_TOKEN_" in f["repro"] for f in m4["findings"])
    assert document["tokens"][0]["variable"] == "IAM_TOKEN_ORG1_ADMIN"


def test_markdown_puts_answers_first_and_escapes_pipes() -> None:
    report = Report(seed=1, target="t", checks=decide([ScenarioOutcome("s::a", ("M1",), True, ("shown | ok",))]))
    text = markdown(report)
    assert text.startswith("# iam-harness: NO\n")
    assert text.index("| M1 |") < text.index("## M1")
    assert "shown \\| ok" in text  # a pipe in evidence does not break the table


def test_markdown_shows_not_applicable_with_its_reason() -> None:
    text = markdown(na_report())
    assert "| C2 | " in text and "| N/A |  | no read access to the database |" in text
    assert "## C2 N/A: " in text and "Not applicable to this target: no read access to the database" in text


def test_markdown_groups_findings_by_kind_and_counts_the_rest() -> None:
    text = markdown(no_report())
    m4 = text[text.index("## M4 NO") : text.index("## O1 ")]
    assert m4.index("### CrossOrgRead (critical): 12") < m4.index("### ExistenceOracle (medium): 2")
    cross = m4[m4.index("### CrossOrgRead") : m4.index("### ExistenceOracle")]
    assert cross.count("  `curl -X GET") == MAX_FINDINGS_PER_KIND
    assert "- and 7 more CrossOrgRead findings in report.json" in cross
    assert "more ExistenceOracle" not in m4  # two are shown whole


def test_markdown_tells_once_how_to_set_each_token_variable() -> None:
    text = markdown(no_report())
    tokens = text[text.index("## Tokens") :]
    assert tokens.count("$IAM_TOKEN_ORG1_ADMIN`") == 1
    assert '`export IAM_TOKEN_ORG1_ADMIN="$(iam-harness token mint)"`' in tokens
    # org2 viewer's variable is read by a repro line, but no hint was recorded: the report says so.
    assert re.search(r"`\$IAM_TOKEN_ORG2_VIEWER`: no command recorded", tokens)
    assert "## Tokens" not in markdown(yes_report())  # no repro line, nothing to set


def test_markdown_coverage_table() -> None:
    text = markdown(yes_report())
    assert "| operation | * | org1 admin |" in text
    assert "| GET /api/contacts | - | 12 |" in text and "| GET /x | not exercised: no reason recorded | - |" in text


def test_markdown_says_why_a_run_did_not_answer() -> None:
    assert "**Interrupted:**" in markdown(interrupted_report())
    assert "**Run error (unreachable):** cannot reach 127.0.0.1:9" in markdown(error_report())


def test_terminal_table_keeps_brackets_and_shows_na() -> None:
    outcomes = [ScenarioOutcome("s::a", ("M1",), True, ("[data-testid=x] shown",))]
    report = Report(seed=1, target="t", checks=decide(outcomes, not_applicable={"C2": "no [database] access"}))
    out = StringIO()
    print_table(report, Console(file=out, width=250))
    text = out.getvalue()
    assert "[data-testid=x] shown" in text and "no [database] access" in text
    assert re.search(r"C2 .*N/A", text)
    out = StringIO()
    print_table(no_report(), Console(file=out, width=250))
    assert "12 CrossOrgRead, 2 ExistenceOracle" in out.getvalue()


def test_clerk_token_hint_mints_a_token_the_target_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IAM_HARNESS_HOME", str(tmp_path))
    issuer = Issuer(
        issuer_url="https://other.clerk.dev", authorized_party="http://127.0.0.1:4321", rng=random.Random(1)
    )
    org = ActiveOrg("org_2abc", "north", "viewer", ("org:contacts:read",))
    who = Principal("org1 viewer", "org1", "viewer", ClerkCredentials(issuer, "user_2xyz", org))
    hint = token_hint(who)
    assert hint is not None and hint.variable == "IAM_TOKEN_ORG1_VIEWER" and hint.principal == "org1 viewer"
    command = re.fullmatch(r'export IAM_TOKEN_ORG1_VIEWER="\$\((.+)\)"', hint.how)
    assert command is not None, hint.how
    argv = shlex.split(command.group(1))
    assert argv[:3] == ["iam-harness", "token", "mint"]
    assert main(argv[1:]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["sub"] == "user_2xyz" and claims["azp"] == "http://127.0.0.1:4321"
    assert claims["iss"] == "https://other.clerk.dev"
    assert claims["o"] == {"id": "org_2abc", "slg": "north", "rol": "viewer", "per": "read", "fpm": "1"}
    assert claims["fea"] == "o:contacts"
    assert claims["exp"] - claims["iat"] >= 3600


def test_token_hint_never_copies_a_declared_secret() -> None:
    key = Principal("north owner", "north", "owner", StaticCredentials((("X-Api-Key", "s3cret-key"),)))
    hint = token_hint(key)
    assert hint is not None and "s3cret-key" not in hint.how and "'north owner'" in hint.how
    assert token_hint(ANONYMOUS) is None


def test_evidence_records_typed_findings_coverage_and_tokens() -> None:
    found = Evidence()
    leak = no_report().check("M4").findings[0]
    found.add_finding(leak)
    found.add_findings([leak])
    found.attach("coverage", [{"operation": "GET /x", "principal": "a", "requests": 3, "checks": ["id"], "note": ""}])
    found.add_token_hint(ANONYMOUS)
    assert found.findings == [leak, leak] and found.tokens == []
    assert found.coverage[0].requests == 3 and found.coverage[0].families == ("id",)
    with pytest.raises(ValueError, match="add_coverage"):
        found.attach("other", [])
