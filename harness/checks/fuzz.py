"""The fuzz phase judged: the engine's probes and state reads handed to every registered check as they come.

`fuzz()` runs the engine once and returns typed findings: those of the registered checks, plus one
finding per check the run could not finish deciding when a budget ran out or the target stopped
answering (partial coverage is NO for what it leaves undecided, never a crash), plus one per operation
nobody could be made to call.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

import httpx

# Importing the check modules registers their checks.
from harness.checks import authorization, errors, exposure, isolation, privilege, state  # noqa: F401
from harness.checks.findings import Finding, FindingKind, Severity
from harness.checks.registry import PROBE_CHECKS, STATE_CHECKS, Context, RegisteredCheck
from harness.config.model import TargetConfig
from harness.engine.fuzz import Fuzzer, FuzzLimits, FuzzRun
from harness.engine.probes import CoverageCell, Probe, StateRead
from harness.engine.schema import ApiSchema
from harness.engine.world import World

__all__ = ["FUZZ_CHECK_IDS", "FuzzResult", "Judge", "fuzz"]

FUZZ_CHECK_IDS = ("M3", "O4", "M4", "I3", "O1")  # what a fuzz run that stopped early leaves undecided


@dataclass(frozen=True)
class FuzzResult:
    """Everything one fuzz run found and did."""

    findings: tuple[Finding, ...]
    run: FuzzRun

    @property
    def coverage(self) -> dict[str, dict[str, CoverageCell]]:
        """Operation -> principal -> how it was exercised."""
        return self.run.coverage

    @property
    def requests(self) -> int:
        """Requests sent."""
        return self.run.requests

    @property
    def seconds(self) -> float:
        """Wall time of the fuzz phase."""
        return self.run.seconds

    @property
    def operations(self) -> tuple[str, ...]:
        """The operations fuzzed."""
        return self.run.operations

    @property
    def unexercised(self) -> list[str]:
        """Operations no principal sent a single request to."""
        return [op for op in self.run.operations if not any(c.requests for c in self.run.coverage.get(op, {}).values())]

    def by_check(self, check_id: str) -> list[Finding]:
        """The findings that decide `check_id`."""
        return [f for f in self.findings if check_id in f.checks]


class Judge:
    """Applies every registered check to each probe and state read, from any thread; collects findings."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.findings: list[Finding] = []
        self._seen: set[tuple[object, ...]] = set()
        self._lock = threading.Lock()

    def _collect(self, check: RegisteredCheck, made: list[Finding]) -> None:
        for finding in made:
            if finding.kind not in check.raises:
                raise TypeError(f"check {check.name} raised {finding.kind}, which it does not declare")
        stamped = [dataclasses.replace(f, checks=check.decides) for f in made]
        with self._lock:
            # One violation seen twice (a victim's state read after an operation and again at the end) is one.
            for finding in stamped:
                key = (finding.kind, finding.checks, finding.operation, finding.principal, finding.detail)
                if key not in self._seen:
                    self._seen.add(key)
                    self.findings.append(finding)

    def probe(self, probe: Probe) -> None:
        """Judge one probe with every check of its family. A request the target never answered proves nothing
        either way, so it is a finding of its own for every check that needed it: a check cannot pass on it."""
        applicable = [check for check in PROBE_CHECKS if check.applies_to(probe)]
        for check in applicable:
            self._collect(check, list(check.function(self.ctx, probe)))
        lost = [seen for seen in (*probe.exchanges, probe.control) if seen is not None and not seen.answered]
        lost = [seen for seen in lost if not seen.refused]
        if lost:
            decided = tuple(dict.fromkeys(c for check in applicable for c in check.decides))
            detail = f"{len(lost)} request(s) got no answer, even on a fresh connection: {lost[0].failure}"
            finding = Finding(FindingKind.UNANSWERED, decided, str(probe.operation), probe.principal.name, detail,
                              lost[0], probe.family.value)  # fmt: skip
            with self._lock:
                self.findings.append(finding)

    def state(self, read: StateRead) -> None:
        """Judge one state read with every state check; a read the target never answered is a finding of its own."""
        for check in STATE_CHECKS:
            self._collect(check, list(check.function(self.ctx, read)))
        seen = read.exchange
        if not seen.answered and not seen.refused:
            decided = tuple(dict.fromkeys(c for check in STATE_CHECKS for c in check.decides))
            detail = f"the state read got no answer, even on a fresh connection: {seen.failure}"
            finding = Finding(
                FindingKind.UNANSWERED, decided, read.operation, read.principal.name, detail, seen, "state"
            )
            with self._lock:
                self.findings.append(finding)


def fuzz(
    base_url: str,
    config: TargetConfig,
    world: World,
    schema: ApiSchema,
    seed: int,
    *,
    cases: int | None = None,
    transport: httpx.BaseTransport | None = None,
    limits: FuzzLimits | None = None,
) -> FuzzResult:
    """Fuzz every operation of `schema` as every principal of `world` (`cases` per operation: the config's)."""
    judge = Judge(Context(config, world))
    limits = limits or FuzzLimits(
        max_requests=config.fuzz.max_requests,
        max_seconds=config.fuzz.max_seconds,
        per_operation=config.fuzz.per_operation,
    )
    run = Fuzzer(
        base_url, config, world, schema, seed, cases=cases or config.fuzz.cases, on_probe=judge.probe,
        on_state=judge.state, transport=transport, limits=limits,
    ).run()  # fmt: skip
    findings = list(judge.findings)
    if run.stopped is not None:
        findings.append(
            Finding(FindingKind.BUDGET_EXHAUSTED, FUZZ_CHECK_IDS, "*", "*", f"fuzz stopped early: {run.stopped}")
        )
    partial = {
        (op, who): cell.note
        for op, row in run.coverage.items()
        for who, cell in row.items()
        if cell.note.startswith("partial: ")
    }
    for (op, who), note in sorted(partial.items()):
        findings.append(Finding(FindingKind.BUDGET_EXHAUSTED, FUZZ_CHECK_IDS, op, who, note))
    result = FuzzResult((), run)
    for op in result.unexercised:
        findings.append(Finding(FindingKind.NOT_EXERCISED, ("M4",), op, "*", "no principal sent it a request"))
    rank = list(Severity)  # the worst first, so that a reader meets the real leaks before the noise
    findings.sort(key=lambda f: (rank.index(f.severity), f.kind, f.operation, f.principal, f.detail))
    return FuzzResult(tuple(findings), run)
