"""Deciding answers: YES needs evidence and no failure; zero evidence is NO, never YES."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

from rich.console import Console

from harness.checks.catalogue import CATALOGUE
from harness.report.markdown import markdown, print_table
from harness.report.model import Answer, Report, ScenarioOutcome, decide, write_json


def _answers(*outcomes: ScenarioOutcome) -> dict[str, Answer]:
    return {c.id: c.answer for c in decide(outcomes)}


def test_check_nobody_decided_is_no() -> None:
    answers = _answers(ScenarioOutcome("s::a", ("M1",), True, ("dashboard shown",)))
    assert answers["M1"] is Answer.YES
    assert all(answers[c.id] is Answer.NO for c in CATALOGUE if c.id != "M1")


def test_passing_scenario_without_evidence_is_no() -> None:
    assert _answers(ScenarioOutcome("s::a", ("M2",), True, ()))["M2"] is Answer.NO


def test_one_failure_among_passes_is_no_and_explained() -> None:
    results = decide(
        [
            ScenarioOutcome("s::a", ("M3", "O4"), True, ("GET /x -> 403",)),
            ScenarioOutcome("s::b", ("M3",), False, ("GET /y -> 200",), "1 of 2 not refused", "pytest 's::b' --seed 1"),
        ]
    )
    m3 = next(c for c in results if c.id == "M3")
    o4 = next(c for c in results if c.id == "O4")
    assert m3.answer is Answer.NO and o4.answer is Answer.YES
    assert m3.evidence[0] == "s::b: 1 of 2 not refused"
    assert "repro: pytest 's::b' --seed 1" in m3.evidence


def test_json_shape(tmp_path: Path) -> None:
    report = Report(seed=42, target="embedded", checks=decide([ScenarioOutcome("s::a", ("M1",), True, ("ok",))]))
    write_json(report, tmp_path / "report.json")
    document = json.loads((tmp_path / "report.json").read_text())
    assert document["schema_version"] == 1 and document["answer"] == "NO" and document["seed"] == 42
    assert document["target"] == "embedded"
    assert [c["id"] for c in document["checks"]] == [c.id for c in CATALOGUE]
    assert set(document["checks"][0]) == {"id", "question", "answer", "evidence"}


def test_markdown_puts_answers_first() -> None:
    report = Report(seed=1, target="t", checks=decide([ScenarioOutcome("s::a", ("M1",), True, ("shown | ok",))]))
    text = markdown(report)
    table = text.index("| M1 |")
    assert table < text.index("## M1")
    assert "shown \\| ok" in text  # a pipe in evidence does not break the table


def test_catalogue_entries_are_complete() -> None:
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert {"M1", "M2", "M3", "M4", "O1", "O2", "O3", "O4"} <= set(ids)
    assert all(c.question and c.kind in {"measure", "obstacle", "factor", "investigation"} for c in CATALOGUE)


def test_terminal_table_keeps_brackets() -> None:
    report = Report(
        seed=1, target="t", checks=decide([ScenarioOutcome("s::a", ("M1",), True, ("[data-testid=x] shown",))])
    )
    out = StringIO()
    print_table(report, Console(file=out, width=200))
    assert "[data-testid=x] shown" in out.getvalue()
