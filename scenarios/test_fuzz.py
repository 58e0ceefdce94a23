"""M3, O4, M4, I3 and O1 over the whole API: every operation of the schema fuzzed as every principal."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.checks.fuzz import FuzzResult
from harness.engine.world import World
from harness.report.evidence import Evidence
from harness.report.model import CoverageRow

# One fuzz run per run: in a parallel run every fuzz scenario goes to the same worker (`--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("fuzz")


def _conclude(fuzzed: FuzzResult, world: World, check_id: str, evidence: Evidence, what: str) -> None:
    findings = fuzzed.by_check(check_id)
    kinds = Counter(f.kind.value for f in findings)
    run = fuzzed.run
    evidence.add(f"{len(fuzzed.operations)} operations, {fuzzed.requests} requests in {fuzzed.seconds:.1f} s")
    if run.never:
        evidence.add(f"never called, as the config says: {', '.join(run.never)}")
    if run.retried or run.unanswered:
        evidence.add(f"{run.retried} requests retried on a fresh connection; {run.unanswered} never answered")
    evidence.add_findings(findings)
    named = {f.principal for f in findings}
    evidence.add_token_hints(p for p in world.principals() if p.name in named)
    assert not findings, f"{len(findings)} finding(s): " + ", ".join(f"{n} {k}" for k, n in kinds.items())
    evidence.add(what)


def _coverage(fuzzed: FuzzResult) -> list[CoverageRow]:
    return [
        CoverageRow(op, who, cell.requests, tuple(sorted(cell.families)), cell.note)
        for op, row in fuzzed.coverage.items()
        for who, cell in row.items()
    ]


@pytest.mark.decides("M3")
def test_role_matrix_holds_on_every_operation(fuzzed: FuzzResult, world: World, evidence: Evidence) -> None:
    """Anonymous is refused (401) but on public operations, a member with no role (403) but on those about
    the caller alone, a read-only role on every mutating operation; no privileged field takes effect and no
    write raises what its principal may do."""
    assert not world.problems, world.incomplete()
    _conclude(fuzzed, world, "M3", evidence, "every principal without the permission was refused, on every operation")


@pytest.mark.decides("O4")
def test_no_default_allow_on_any_operation(fuzzed: FuzzResult, world: World, evidence: Evidence) -> None:
    """No principal without a grant is let through on any operation: the policy's default is deny."""
    assert not world.problems, world.incomplete()
    _conclude(fuzzed, world, "O4", evidence, "every principal without the permission was refused, on every operation")


@pytest.mark.decides("M4")
def test_no_principal_reaches_another_org(fuzzed: FuzzResult, world: World, evidence: Evidence) -> None:
    """No principal reads, lists, changes or detects another organisation's records, by id, by reference,
    by a privileged body field or by an org-switching header; every canary is unchanged afterwards."""
    assert not world.problems, world.incomplete()
    evidence.add_coverage(_coverage(fuzzed))
    assert not fuzzed.unexercised, f"operations never exercised: {', '.join(fuzzed.unexercised)}"
    _conclude(
        fuzzed, world, "M4", evidence, "no cross-org read, write, reference or existence leak; canaries unchanged"
    )


@pytest.mark.decides("I3")
def test_org_scoping_keeps_queries_working(fuzzed: FuzzResult, world: World, evidence: Evidence) -> None:
    """Each organisation's admin succeeds on every operation on its own data, while no cross-org access succeeds."""
    assert not world.problems, world.incomplete()
    _conclude(
        fuzzed, world, "I3", evidence, "every operation works on the caller's own data; none crosses organisations"
    )


@pytest.mark.decides("O1")
def test_no_internal_errors_anywhere(fuzzed: FuzzResult, world: World, evidence: Evidence) -> None:
    """No operation, for any principal or input, answers 5xx or shows a stack trace or SQL text."""
    _conclude(fuzzed, world, "O1", evidence, "no 5xx, no stack trace, no SQL text in any fuzzed response")
