"""Deciding answers: YES needs evidence, no failure and no finding; N/A only as declared, never for M3 or M4."""

from __future__ import annotations

import pytest

from harness.checks.catalogue import CATALOGUE
from harness.checks.findings import FindingKind
from harness.report.model import Answer, Report, ScenarioOutcome, decide
from tests.harness.report_support import all_yes, finding, interrupted_report, na_report


def _answers(*outcomes: ScenarioOutcome, **not_applicable: str) -> dict[str, Answer]:
    return {c.id: c.answer for c in decide(outcomes, not_applicable=not_applicable)}


def test_check_nobody_decided_is_no() -> None:
    results = decide([ScenarioOutcome("s::a", ("M1",), True, ("dashboard shown",))])
    assert results[0].answer is Answer.YES and results[0].reason is None
    assert all(r.answer is Answer.NO for r in results[1:])
    assert {r.reason for r in results[1:]} == {"not exercised: no scenario decided this check"}


def test_passing_scenario_without_evidence_is_no() -> None:
    m2 = decide([ScenarioOutcome("s::a", ("M2",), True, ())])[1]
    assert m2.answer is Answer.NO and m2.reason == "s::a: passed but recorded no evidence, so it proves nothing"


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
    assert m3.evidence[0] == m3.reason == "s::b: 1 of 2 not refused"
    assert "repro: pytest 's::b' --seed 1" in m3.evidence


def test_a_finding_turns_every_check_it_names_no_even_if_its_scenario_passed() -> None:
    leak = finding(FindingKind.CROSS_ORG_READ, ("M4", "I3"), 1)
    outcomes = [o for o in all_yes() if o.checks != ("M4",)]
    outcomes.append(ScenarioOutcome("s::M4", ("M4",), True, ("fuzzed",), repro="pytest 's::M4'", findings=(leak,)))
    results = {c.id: c for c in decide(outcomes)}
    assert results["M4"].answer is Answer.NO and results["M4"].findings == (leak,)
    assert results["I3"].answer is Answer.NO and results["I3"].findings == (leak,)  # recorded by M4's scenario
    assert "repro: pytest 's::M4'" in results["I3"].evidence
    assert results["O1"].answer is Answer.YES and results["O1"].findings == ()


def test_the_same_finding_from_two_scenarios_counts_once() -> None:
    leak = finding(FindingKind.CROSS_ORG_READ, ("M4", "I3"), 1)
    m4 = ScenarioOutcome("s::M4", ("M4",), False, ("x",), "leak", findings=(leak,))
    i3 = ScenarioOutcome("s::I3", ("I3",), False, ("x",), "leak", findings=(leak,))
    assert {c.id: len(c.findings) for c in decide([m4, i3]) if c.findings} == {"M4": 1, "I3": 1}


def test_declared_not_applicable_is_na_with_its_reason() -> None:
    answers = _answers(*all_yes(), C2="no database access")
    assert answers["C2"] is Answer.NA and set(answers.values()) == {Answer.YES, Answer.NA}
    c2 = next(c for c in decide([], not_applicable={"C2": "no database access"}) if c.id == "C2")
    assert c2.answer is Answer.NA and c2.reason == "no database access"  # N/A even with nothing run


def test_a_finding_turns_a_check_no_even_when_declared_not_applicable() -> None:
    """No config can declare a violation away: an O1 N/A still answers NO to the 500 the fuzz saw."""
    crash = finding(FindingKind.SERVER_ERROR, ("O1",), 1)
    fuzzed = ScenarioOutcome("s::O1", ("O1",), False, ("x",), "500", findings=(crash,))
    o1 = next(c for c in decide([fuzzed], not_applicable={"O1": "no first login"}) if c.id == "O1")
    assert o1.answer is Answer.NO and o1.findings == (crash,)


@pytest.mark.parametrize("gate", ["M3", "M4"])
def test_m3_and_m4_can_never_be_not_applicable(gate: str) -> None:
    with pytest.raises(ValueError, match=f"{gate} can never be N/A"):
        decide(all_yes(), not_applicable={gate: "we have no operations", "C2": "no database"})


def test_unknown_not_applicable_check_is_refused() -> None:
    with pytest.raises(ValueError, match="Z9"):
        decide(all_yes(), not_applicable={"Z9": "typo"})


def test_report_is_yes_with_na_checks_and_no_with_one_no() -> None:
    yes = Report(1, "t", decide(all_yes(), not_applicable={"M1": "no pages", "C2": "no database"}))
    assert yes.answer is Answer.YES and yes.reason is None
    report = na_report()  # O2 NO besides the N/As
    assert report.answer is Answer.NO and report.reason == "O2: s::O2: sent to sign-in"


def test_report_without_m3_or_m4_is_never_yes() -> None:
    # A catalogue that leaves the gates out cannot pass by their absence.
    others = tuple(c for c in CATALOGUE if c.id not in {"M3", "M4"})
    outcomes = [o for o in all_yes() if o.checks[0] not in {"M3", "M4"}]
    report = Report(1, "t", decide(outcomes, others))
    assert all(c.answer is Answer.YES for c in report.checks)
    assert report.answer is Answer.NO and report.reason == "M3, M4 must be answered YES"


def test_an_error_makes_the_run_no_and_an_interruption_interrupted() -> None:
    assert Report(1, "t", decide(all_yes()), error="boom").answer is Answer.NO
    interrupted = interrupted_report()
    assert interrupted.answer is Answer.INTERRUPTED and interrupted.reason == "interrupted"
    # even with every check YES so far: what a stopped run decided is no answer
    assert Report(1, "t", decide(all_yes()), interrupted=True).answer is Answer.INTERRUPTED


def test_catalogue_entries_are_complete() -> None:
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert {"M1", "M2", "M3", "M4", "O1", "O2", "O3", "O4"} <= set(ids)
    assert all(c.question and c.kind in {"measure", "obstacle", "factor", "investigation"} for c in CATALOGUE)
