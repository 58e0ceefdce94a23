"""Recall and false findings on the practice targets: iam-harness against plain schemathesis with two users.

    python -m bench.recall [--seed S] [--targets NAME,...] [--flaws NAME,...] [--only harness|schemathesis]
                           [--max-examples N] [--st-phases P,...] [--timeout SECONDS] [--json FILE]
                           [--modules MODULE,...]

For every practice target of `tests.targets.catalog.MODULES` (or `--modules`: modules exporting `PRACTICE`), each
build is served on a loopback port, a fresh app for every run: the secure build, then each planted flaw alone.
A module that cannot be imported is named ("<module>: not available (<error>)") and the others go on.

iam-harness, on each build: `python -m harness run --target <base> --config <config> --seed <seed>
--report-dir <tmp> -k "fuzz or authentication"` in a subprocess with a timeout; its `report.json` is read.
* A flaw is found when some finding of the report (any check's `findings`) has the flaw's `kind`, names the flaw's
  operation (the same method and path, path parameters compared by position) and decides the flaw's check (the
  check is among the finding's `checks`, or the finding is listed under that check). The flaw's `evidence` is not
  required; where the finding's detail lacks it, the flaw's line says so.
* False findings: every finding on the secure build whose kind is an authorization one, that is every kind but
  Unanswered, BudgetExhausted and NotExercised (coverage lost, not a violation); each counted once (a finding
  listed under several checks is one) and printed.

Plain schemathesis (4.x), on each build: the world is built on the served app by the harness's own code (the
config's `[[setup]]`, each principal's login), the admin of each of two organisations becomes a user, both peers
of a Web Fuzzing Commons auth document (see `bench._schemathesis_users`), then `schemathesis run --checks all
--max-examples N --seed S`, the config's `[fuzz] never` operations excluded, in a subprocess with a timeout.
A failure is one failed check on one operation (schemathesis's own attribution of the failure), once however
often it was found.
* A flaw is found when the flaw build's run has a failure on the flaw's operation whose check is an
  authorization one (`object_level_authorization`, `ignored_auth`), or any failure on that operation whose check
  and operation the secure build's run did not have.
* False findings: every failure of the secure build's run, whatever the check (conformance checks included:
  plain schemathesis cannot tell a tenancy bug from a schema nit, and a user would triage each).

Both tools get the same seed and the same builds; the harness's budgets come from the target's config,
schemathesis's from `--max-examples`, with all of its default phases (`--st-phases fuzzing,stateful` leaves out
the coverage phase, which on some schemas costs minutes on one operation). Every request goes to 127.0.0.1.
Where a target counts its own requests, the requests each run sent are reported, and a run that called a `never`
operation is named.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._schemathesis_users import AUTHORIZATION_CHECKS, StFailure, StRun, operation_key, run_schemathesis
from harness.config.model import load_config
from tests.targets.catalog import MODULES, Flaw, PracticeTarget, serving_practice

__all__ = [
    "HarnessRun",
    "ReportFinding",
    "harness_false_findings",
    "harness_finds",
    "main",
    "recall",
    "report_findings",
    "schemathesis_false_findings",
    "schemathesis_finds",
]

NOT_AUTHORIZATION = frozenset({"Unanswered", "BudgetExhausted", "NotExercised"})
SCENARIOS = "fuzz or authentication"
TOOLS = ("harness", "schemathesis")


# -- counting: iam-harness -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFinding:
    """One finding of a report.json, with every check id it decides."""

    kind: str
    operation: str
    principal: str
    detail: str
    checks: tuple[str, ...]
    severity: str = ""

    def line(self) -> str:
        """`Kind OPERATION as principal [checks]: detail`."""
        return f"{self.kind} {self.operation} as {self.principal} [{','.join(self.checks)}]: {self.detail}"[:400]


def report_findings(report: dict[str, Any]) -> list[ReportFinding]:
    """Every finding of the report once, with the check ids it names and those it is listed under."""
    merged: dict[tuple[str, str, str, str], tuple[set[str], str]] = {}
    for check in report.get("checks") or ():
        for finding in check.get("findings") or ():
            key = (
                str(finding.get("kind", "")),
                str(finding.get("operation", "")),
                str(finding.get("principal", "")),
                str(finding.get("detail", "")),
            )
            checks, _ = merged.setdefault(key, (set(), str(finding.get("severity", ""))))
            checks.update(str(c) for c in finding.get("checks") or ())
            checks.add(str(check.get("id", "")))
    return [
        ReportFinding(kind, operation, principal, detail, tuple(sorted(c for c in checks if c)), severity)
        for (kind, operation, principal, detail), (checks, severity) in merged.items()
    ]


def harness_finds(report: dict[str, Any], flaw: Flaw) -> ReportFinding | None:
    """The first finding of the report that shows the flaw: its kind, on its operation, deciding its check."""
    want = operation_key(flaw.operation)
    for finding in report_findings(report):
        if finding.kind == flaw.kind and operation_key(finding.operation) == want and flaw.check in finding.checks:
            return finding
    return None


def harness_false_findings(report: dict[str, Any]) -> list[ReportFinding]:
    """Every finding of an authorization kind: on a secure build, each is a false finding."""
    return [f for f in report_findings(report) if f.kind not in NOT_AUTHORIZATION]


# -- counting: schemathesis -------------------------------------------------------------------------------------


def schemathesis_finds(failures: Iterable[StFailure], flaw: Flaw, secure: Iterable[StFailure]) -> StFailure | None:
    """The failure that shows the flaw: on its operation, of an authorization check or absent from the secure
    build's run (an authorization check first, where there are both)."""
    want = operation_key(flaw.operation)
    baseline = {f.key for f in secure}
    on_operation = [f for f in failures if operation_key(f.operation) == want]
    authorization = [f for f in on_operation if f.check in AUTHORIZATION_CHECKS]
    new = [f for f in on_operation if f.key not in baseline]
    shown = authorization or new
    return shown[0] if shown else None


def schemathesis_false_findings(secure: Iterable[StFailure]) -> list[StFailure]:
    """Every failure on the secure build, once per check and operation."""
    seen: dict[tuple[str, str], StFailure] = {}
    for failure in secure:
        seen.setdefault(failure.key, failure)
    return list(seen.values())


# -- running -----------------------------------------------------------------------------------------------------


@dataclass
class HarnessRun:
    """One iam-harness run on one build."""

    report: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    exit_code: int | None = None


@dataclass
class BuildRuns:
    """What each tool made of one build (None: the tool was not run)."""

    build: str  # "secure" or the flaw's name
    harness: HarnessRun | None = None
    schemathesis: StRun | None = None
    requests: dict[str, int] = field(default_factory=dict)  # tool -> requests the app counted
    never_called: dict[str, list[str]] = field(default_factory=dict)  # tool -> never operations it reached


def run_harness(target: PracticeTarget, base_url: str, seed: int, timeout: float) -> HarnessRun:
    """`python -m harness run` on the served build; its report.json."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recall-harness-") as tmp:
        command = [
            sys.executable, "-m", "harness", "run", "--target", base_url, "--config", str(target.config),
            "--seed", str(seed), "--report-dir", tmp, "-k", SCENARIOS,
        ]  # fmt: skip
        run = HarnessRun()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            run.error = f"no answer within {timeout:.0f} s"
        else:
            run.exit_code = done.returncode
            path = Path(tmp) / "report.json"
            if path.exists():
                run.report = json.loads(path.read_text(encoding="utf-8"))
                if run.report and run.report.get("error"):
                    run.error = f"exit {done.returncode}: {run.report['error']}"[:300]
            else:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                run.error = f"exit {done.returncode}, no report: {tail[0][:300]}"
    run.seconds = time.perf_counter() - started
    return run


@contextmanager
def _served(target: PracticeTarget, flaws: frozenset[str], runs: BuildRuns, tool: str) -> Iterator[str]:
    """A fresh app of the build, served; afterwards its own request counts, where it keeps them."""
    app = target.make_app(flaws)
    with serving_practice(target, app) as base:
        yield base
    if target.counts is not None:
        counts = target.counts(app)
        runs.requests[tool] = sum(counts.values())
        reached = [f"{op} x{counts[op]}" for op in target.never if counts.get(op, 0) > 0]
        if reached:
            runs.never_called[tool] = reached


@dataclass(frozen=True)
class Budget:
    """What bounds each run: its time, and schemathesis's cases per operation and phases."""

    max_examples: int = 20
    timeout: float = 600.0
    phases: str | None = None  # schemathesis's own default: every phase


def run_build(
    target: PracticeTarget, flaws: frozenset[str], tools: Sequence[str], *, seed: int, budget: Budget
) -> BuildRuns:
    """Each tool on its own fresh app of the build."""
    runs = BuildRuns(build=next(iter(flaws)) if flaws else "secure")
    if "harness" in tools:
        with _served(target, flaws, runs, "harness") as base:
            runs.harness = run_harness(target, base, seed, budget.timeout)
        _progress(target, runs.build, "iam-harness", runs.harness.seconds, runs.harness.error)
    if "schemathesis" in tools:
        with (
            _served(target, flaws, runs, "schemathesis") as base,
            tempfile.TemporaryDirectory(prefix="recall-st-") as tmp,
        ):
            try:
                runs.schemathesis = run_schemathesis(
                    load_config(target.config),
                    base,
                    seed,
                    max_examples=budget.max_examples,
                    timeout=budget.timeout,
                    workdir=Path(tmp),
                    phases=budget.phases,
                )
            except Exception as exc:  # a config or a world that cannot be had: named in the table, the rest go on
                runs.schemathesis = StRun(error=f"{type(exc).__name__}: {exc}"[:300])
        _progress(target, runs.build, "schemathesis", runs.schemathesis.seconds, runs.schemathesis.error)
    return runs


def _progress(target: PracticeTarget, build: str, tool: str, seconds: float, error: str | None) -> None:
    print(f"  {target.name} {build}: {tool} {seconds:.1f} s" + (f" ({error})" if error else ""), file=sys.stderr)


# -- results -----------------------------------------------------------------------------------------------------


@dataclass
class FlawResult:
    """One planted flaw and what each tool made of it."""

    flaw: Flaw
    runs: BuildRuns
    harness: ReportFinding | None = None
    schemathesis: StFailure | None = None

    def harness_text(self) -> str:
        run = self.runs.harness
        if run is None:
            return "-"
        if self.harness is not None:
            lacking = self.flaw.evidence and self.flaw.evidence not in self.harness.detail
            return f"{self.harness.kind} {self.harness.operation}" + (" (evidence not in detail)" if lacking else "")
        return "missed" + (f" ({run.error})" if run.error else "")

    def schemathesis_text(self) -> str:
        run = self.runs.schemathesis
        if run is None:
            return "-"
        if self.schemathesis is not None:
            return f"{self.schemathesis.check} {self.schemathesis.operation}"
        return "missed" + (f" ({run.error})" if run.error else "")


@dataclass
class TargetResult:
    """One practice target: its secure build's runs and each flaw's."""

    target: PracticeTarget
    secure: BuildRuns
    flaws: list[FlawResult]

    def found(self, tool: str) -> int | None:
        if getattr(self.secure, tool) is None:
            return None
        return sum(1 for f in self.flaws if getattr(f, tool) is not None)

    def harness_false(self) -> list[ReportFinding] | None:
        run = self.secure.harness
        if run is None or run.report is None or run.error is not None:
            return None
        return harness_false_findings(run.report)

    def schemathesis_false(self) -> list[StFailure] | None:
        run = self.secure.schemathesis
        return None if run is None or run.error is not None else schemathesis_false_findings(run.failures)

    def false_count(self, tool: str) -> int | None:
        found = self.harness_false() if tool == "harness" else self.schemathesis_false()
        return None if found is None else len(found)


def recall(
    targets: Sequence[PracticeTarget],
    *,
    seed: int,
    tools: Sequence[str] = TOOLS,
    flaws: Sequence[str] | None = None,
    budget: Budget = Budget(),
) -> list[TargetResult]:
    """Every target's secure build, then each of its flaws (those of `flaws`, if given) alone, by each tool."""
    results = []
    for target in targets:
        planted = [f for f in target.flaws if flaws is None or f.name in flaws]
        if flaws is not None and not planted:
            continue  # none of the chosen flaws is this target's
        secure = run_build(target, frozenset(), tools, seed=seed, budget=budget)
        outcomes = []
        for flaw in planted:
            runs = run_build(target, frozenset({flaw.name}), tools, seed=seed, budget=budget)
            outcome = FlawResult(flaw, runs)
            if runs.harness is not None and runs.harness.report is not None:
                outcome.harness = harness_finds(runs.harness.report, flaw)
            if runs.schemathesis is not None and secure.schemathesis is not None:
                outcome.schemathesis = schemathesis_finds(
                    runs.schemathesis.failures, flaw, secure.schemathesis.failures
                )
            outcomes.append(outcome)
        results.append(TargetResult(target, secure, outcomes))
    return results


# -- output ------------------------------------------------------------------------------------------------------


def _cell(value: int | None, ran: bool) -> str:
    return "-" if not ran else "error" if value is None else str(value)


def table(results: Sequence[TargetResult], seed: int) -> list[str]:
    """The summary table: per target, flaws planted, found and false findings by each tool; then the total."""
    header = ("target", "planted", "iam-harness found", "false", "schemathesis found", "false")
    rows: list[tuple[str, ...]] = []
    totals = [0, 0, 0, 0, 0]
    for result in results:
        values = [
            len(result.flaws),
            result.found("harness"),
            result.false_count("harness"),
            result.found("schemathesis"),
            result.false_count("schemathesis"),
        ]
        ran = [True, *[getattr(result.secure, tool) is not None for tool in TOOLS for _ in (0, 1)]]
        rows.append((result.target.name, *(_cell(v, r) for v, r in zip(values, ran, strict=True))))
        totals = [t + (v or 0) for t, v in zip(totals, values, strict=True)]
    ran_any = [True, *[any(getattr(r.secure, tool) is not None for r in results) for tool in TOOLS for _ in (0, 1)]]
    rows.append(("total", *(str(t) if r else "-" for t, r in zip(totals, ran_any, strict=True))))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [f"seed {seed}"]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return lines


def details(results: Sequence[TargetResult]) -> list[str]:
    """Per flaw what each tool found; the secure builds' false findings; runs that reached a `never` operation."""
    lines: list[str] = []
    flaws = [(r.target.name, f) for r in results for f in r.flaws]
    if flaws:
        lines.append("")
        lines.append("per flaw (target, flaw: by iam-harness; by schemathesis)")
        for name, outcome in flaws:
            note = f"  [{outcome.flaw.note}]" if outcome.flaw.note else ""
            lines.append(
                f"{name}  {outcome.flaw.name}: iam-harness {outcome.harness_text()}; "
                f"schemathesis {outcome.schemathesis_text()}{note}"
            )
    lines.append("")
    lines.append("false findings on the secure builds")
    for result in results:
        name, secure = result.target.name, result.secure
        if secure.harness is not None:
            found = result.harness_false()
            if found is None:
                lines.append(f"{name}  iam-harness: no answer ({secure.harness.error})")
            lines += [f"{name}  iam-harness: {f.line()}" for f in found or ()]
            if found == []:
                lines.append(f"{name}  iam-harness: none")
        if secure.schemathesis is not None:
            failures = result.schemathesis_false()
            if failures is None:
                lines.append(f"{name}  schemathesis: no answer ({secure.schemathesis.error})")
            lines += [f"{name}  schemathesis: {f.line()}" for f in failures or ()]
            if failures == []:
                lines.append(f"{name}  schemathesis: none")
    runs = [(r.target.name, b) for r in results for b in (r.secure, *(f.runs for f in r.flaws))]
    measured = [(name, b) for name, b in runs if b.requests]
    if measured:
        lines.append("")
        lines.append("requests the app counted, per run")
        for name, b in measured:
            counted = ", ".join(f"{tool} {n}" for tool, n in b.requests.items())
            lines.append(f"{name}  {b.build}: {counted}")
    for name, b in runs:
        for tool, reached in b.never_called.items():
            lines.append(f"WARNING {name} {b.build}: {tool} called a never operation: {', '.join(reached)}")
    for result in results:
        run = result.secure.schemathesis
        if run is not None and run.problems:
            lines.append(f"{result.target.name}: world building for schemathesis: {'; '.join(run.problems)}")
    return lines


def as_json(results: Sequence[TargetResult], seed: int, unavailable: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The table and the per-flaw lines as data."""

    def harness_run(run: HarnessRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        return {"error": run.error, "seconds": round(run.seconds, 2), "exit_code": run.exit_code}

    def st_run(run: StRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        return {
            "error": run.error, "seconds": round(run.seconds, 2), "exit_code": run.exit_code, "users": run.users,
            "problems": run.problems, "errors": run.errors, "failures": [f.line() for f in run.failures],
            "summary": run.summary,
        }  # fmt: skip

    targets = []
    for r in results:
        targets.append(
            {
                "name": r.target.name,
                "planted": len(r.flaws),
                "harness": {
                    "found": r.found("harness"),
                    "false": r.false_count("harness"),
                    "false_findings": [f.line() for f in r.harness_false() or ()],
                    "secure_run": harness_run(r.secure.harness),
                },
                "schemathesis": {
                    "found": r.found("schemathesis"),
                    "false": r.false_count("schemathesis"),
                    "false_findings": [f.line() for f in r.schemathesis_false() or ()],
                    "secure_run": st_run(r.secure.schemathesis),
                },
                "requests": {"secure": r.secure.requests, **{f.flaw.name: f.runs.requests for f in r.flaws}},
                "never_called": {
                    b.build: b.never_called for b in (r.secure, *(f.runs for f in r.flaws)) if b.never_called
                },
                "flaws": [
                    {
                        "name": f.flaw.name,
                        "check": f.flaw.check,
                        "kind": f.flaw.kind,
                        "operation": f.flaw.operation,
                        "note": f.flaw.note,
                        "harness": f.harness_text(),
                        "schemathesis": f.schemathesis_text(),
                        "harness_run": harness_run(f.runs.harness),
                        "schemathesis_run": st_run(f.runs.schemathesis),
                    }
                    for f in r.flaws
                ],
            }
        )
    total: dict[str, int] = {"planted": sum(len(r.flaws) for r in results)}
    for tool in TOOLS:
        total[f"{tool}_found"] = sum(r.found(tool) or 0 for r in results)
        total[f"{tool}_false"] = sum(r.false_count(tool) or 0 for r in results)
    return {
        "seed": seed,
        "targets": targets,
        "total": total,
        "unavailable": [{"module": m, "error": e} for m, e in unavailable],
    }


# -- entry point -------------------------------------------------------------------------------------------------


def load_targets(modules: Iterable[str]) -> tuple[list[PracticeTarget], list[tuple[str, str]]]:
    """Each module's PRACTICE; the modules that could not give one, with why."""
    targets, unavailable = [], []
    for name in modules:
        try:
            practice = importlib.import_module(name).PRACTICE
        except Exception as exc:  # a target being written may fail in any way: it is named, then skipped
            unavailable.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        if not isinstance(practice, PracticeTarget):
            unavailable.append((name, f"PRACTICE is a {type(practice).__name__}, not a PracticeTarget"))
            continue
        targets.append(practice)
    return targets, unavailable


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [n.strip() for n in value.split(",") if n.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", help="practice targets by name, comma-separated (default: all)")
    parser.add_argument("--flaws", help="planted flaws by name, comma-separated (default: all)")
    parser.add_argument("--only", choices=TOOLS, help="run one tool")
    parser.add_argument("--max-examples", type=int, default=20, help="schemathesis's test cases per operation")
    parser.add_argument("--st-phases", help="schemathesis's phases, comma-separated (default: all of its own)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed to each run")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--modules", help="modules exporting PRACTICE, comma-separated (default: the catalog's)")
    args = parser.parse_args(argv)
    modules = _names(args.modules) or list(MODULES)
    wanted, flaws = _names(args.targets), _names(args.flaws)
    targets, unavailable = load_targets(modules)
    for module, error in unavailable:
        print(f"{module}: not available ({error})")
    if wanted is not None:
        unknown = sorted(set(wanted) - {t.name for t in targets})
        if unknown:
            print(f"no available practice target named {', '.join(unknown)}", file=sys.stderr)
        targets = [t for t in targets if t.name in wanted]
    if flaws is not None:
        known = {f.name for t in targets for f in t.flaws}
        if unknown := sorted(set(flaws) - known):
            print(f"no flaw named {', '.join(unknown)} in the chosen targets", file=sys.stderr)
            return 2
    tools = (args.only,) if args.only else TOOLS
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a WSGI target's server logs every request otherwise
    budget = Budget(max_examples=args.max_examples, timeout=args.timeout, phases=args.st_phases)
    results = recall(targets, seed=args.seed, tools=tools, flaws=flaws, budget=budget)
    print("\n".join(table(results, args.seed)))
    print("\n".join(details(results)))
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results, args.seed, unavailable), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
