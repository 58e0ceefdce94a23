"""The pytest plugin: options, the `decides` marker, thin fixtures, and the report at the end of a run.

Scenarios are pytest tests marked `@pytest.mark.decides("M1", ...)`. Each outcome travels on the test
report's `user_properties` (so it survives pytest-xdist), and the run's answers are decided once, at
the end, from all of them.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from rich.console import Console

from harness import browser as browser_driver
from harness.config import TargetConfig, load_config
from harness.errors import HarnessError
from harness.evidence import Evidence
from harness.issuer import Issuer
from harness.render import print_table, write_markdown
from harness.report import Answer, Report, ScenarioOutcome, decide, write_json
from harness.target import EmbeddedTarget, RemoteTarget, Target, origin_of
from harness.targets import default_config_path, parse_faults

__all__ = ["RunState"]

_OUTCOME = "iam_outcome"
_EVIDENCE_KEY = pytest.StashKey[Evidence]()
_STATE_KEY = pytest.StashKey["RunState"]()
_FAILURE_CHARS = 600


@dataclass
class RunState:
    """What the plugin keeps for one run."""

    seed: int
    report_dir: Path | None
    target: str = "not started"
    error: str | None = None
    error_kind: str | None = None
    outcomes: list[ScenarioOutcome] = field(default_factory=list)
    scenarios_seen: int = 0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("iam-harness", "iam-harness conformance run")
    group.addoption("--target", default="embedded", help="'embedded' (start the target locally) or a base URL")
    group.addoption(
        "--target-config", default=None, help="the target's config file (TOML); default: the reference app's"
    )
    group.addoption("--faults", default="", help="comma-separated fault switches passed to the embedded target")
    group.addoption("--seed", type=int, default=None, help="seed for every random choice (printed when not given)")
    group.addoption("--report-dir", default=None, help="write report.json, report.md and the server log here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "decides(*check_ids): the checks (M1, O2, ...) this scenario decides")
    seed = config.getoption("--seed")
    if seed is None:
        seed = secrets.randbelow(2**31)
    report_dir = config.getoption("--report-dir")
    state = RunState(seed=seed, report_dir=Path(report_dir) if report_dir else None)
    config.stash[_STATE_KEY] = state
    config.pluginmanager.register(_Recorder(state), "iam-harness-recorder")


def pytest_report_header(config: pytest.Config) -> str:
    return f"iam-harness seed: {config.stash[_STATE_KEY].seed}"


def _state(config: pytest.Config) -> RunState:
    return config.stash[_STATE_KEY]


@pytest.fixture(scope="session")
def harness_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed: every random choice derives from it."""
    return _state(pytestconfig).seed


@pytest.fixture(scope="session")
def harness_rng(harness_seed: int) -> random.Random:
    """A random generator seeded with the run's seed."""
    return random.Random(harness_seed)


@pytest.fixture(scope="session")
def target_config(pytestconfig: pytest.Config) -> TargetConfig:
    """The target's config file, validated."""
    path = pytestconfig.getoption("--target-config")
    try:
        return load_config(Path(path) if path else default_config_path())
    except HarnessError as exc:
        _record_error(pytestconfig, exc)
        raise


@pytest.fixture(scope="session")
def _planned_target(pytestconfig: pytest.Config, target_config: TargetConfig) -> EmbeddedTarget | RemoteTarget:
    where = pytestconfig.getoption("--target")
    state = _state(pytestconfig)
    try:
        if where == "embedded":
            log_dir = state.report_dir or Path(pytestconfig.rootpath) / "reports"
            faults = parse_faults(pytestconfig.getoption("--faults"))
            return EmbeddedTarget(target_config, faults=faults, log_path=log_dir / "app.log")
        return RemoteTarget(where, target_config)
    except HarnessError as exc:
        _record_error(pytestconfig, exc)
        raise


@pytest.fixture(scope="session")
def issuer(_planned_target: EmbeddedTarget | RemoteTarget, harness_rng: random.Random) -> Issuer:
    """The Clerk-shaped issuer whose key the target trusts."""
    return Issuer(
        issuer_url=_planned_target.config.issuer,
        authorized_party=origin_of(_planned_target.base_url),
        rng=harness_rng,
    )


@pytest.fixture(scope="session")
def target(
    pytestconfig: pytest.Config, _planned_target: EmbeddedTarget | RemoteTarget, issuer: Issuer
) -> Iterator[Target]:
    """The running target; stopped at the end of the run."""
    state = _state(pytestconfig)
    state.target = _planned_target.description
    try:
        with _planned_target.running(issuer) as running:
            yield running
    except HarnessError as exc:
        _record_error(pytestconfig, exc)
        raise


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """A headless Chromium shared by the run's browser scenarios."""
    with browser_driver.browser() as instance:
        yield instance


@pytest.fixture
def evidence(request: pytest.FixtureRequest, target: Target) -> Evidence:
    """Where a scenario records its evidence."""
    found = Evidence(target)
    request.node.stash[_EVIDENCE_KEY] = found
    return found


@pytest.fixture(scope="session")
def report_dir(pytestconfig: pytest.Config) -> Path:
    """Where artefacts of this run (traces, logs) go."""
    return _state(pytestconfig).report_dir or Path(pytestconfig.rootpath) / "reports"


def _record_error(config: pytest.Config, exc: HarnessError) -> None:
    state = _state(config)
    if state.error is None:
        state.error = str(exc)
        state.error_kind = "config" if exc.exit_code == 2 else "unreachable"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    marker = item.get_closest_marker("decides")
    if marker is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return report
    found = item.stash.get(_EVIDENCE_KEY, None)
    lines = list(found.lines) if found else []
    failure = None
    if report.skipped:
        failure = f"skipped, so not exercised: {_reason(call)}"
    elif report.failed:
        failure = _reason(call)
        if found is not None:
            lines += found.server_errors()
    state = _state(item.config)
    outcome = {
        "nodeid": item.nodeid,
        "checks": list(marker.args),
        "passed": report.passed,
        "evidence": lines,
        "failure": failure,
        "repro": _repro(item, state) if not report.passed else None,
        "attachments": found.attachments if found else {},
    }
    report.user_properties.append((_OUTCOME, json.dumps(outcome)))
    return report


def _reason(call: pytest.CallInfo[None]) -> str:
    if call.excinfo is None:
        return "failed"
    value = call.excinfo.value
    text = str(getattr(value, "msg", "") or value) or call.excinfo.typename
    text = text.split("\nassert ")[0].strip()
    if isinstance(value, HarnessError):
        text = f"{type(value).__name__}: {text}"
    return text[:_FAILURE_CHARS]


def _repro(item: pytest.Item, state: RunState) -> str:
    options = [f"--seed {state.seed}"]
    for name in ("--target", "--target-config", "--faults"):
        value = item.config.getoption(name)
        if value and value != "embedded":
            options.append(f"{name} {value}")
    return f"pytest '{item.nodeid}' {' '.join(options)}"


class _Recorder:
    """Collects scenario outcomes as reports arrive (from this process or from xdist workers), then reports."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.report: Report | None = None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.state.scenarios_seen = sum(1 for i in items if i.get_closest_marker("decides"))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == _OUTCOME:
                raw = json.loads(str(value))
                self.state.outcomes.append(
                    ScenarioOutcome(
                        nodeid=raw["nodeid"],
                        checks=tuple(raw["checks"]),
                        passed=raw["passed"],
                        evidence=tuple(raw["evidence"]),
                        failure=raw["failure"],
                        repro=raw["repro"],
                        attachments=raw.get("attachments", {}),
                    )
                )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state = self.state
        if state.scenarios_seen == 0 and not state.outcomes:
            return  # not a conformance run (e.g. the project's own tests)
        if hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller decides
        self.report = build_report(state)
        if state.report_dir is not None:
            write_json(self.report, state.report_dir / "report.json")
            write_markdown(self.report, state.report_dir / "report.md")
        if self.report.answer is Answer.NO and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.report is not None:
            print_table(self.report, Console(file=terminalreporter._tw._file, width=160))


def build_report(state: RunState) -> Report:
    """The run's report from what the plugin collected."""
    extra: dict[str, Any] = {"error_kind": state.error_kind}
    for outcome in state.outcomes:
        extra.update(outcome.attachments)
    return Report(state.seed, state.target, decide(state.outcomes), error=state.error, extra=extra)
