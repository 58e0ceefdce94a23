"""The pytest plugin: options, the `decides` marker, thin fixtures, and the report at the end of a run.

Scenarios are pytest tests marked `@pytest.mark.decides("M1", ...)`. Each outcome travels on the test
report's `user_properties` as JSON (so it survives pytest-xdist) and is rebuilt into typed findings, coverage
rows and token hints on arrival; the run's answers are decided once, at the end, from all of them. Scenarios
whose every check is N/A for the target's config are deselected. The built `Report` is written (report.json,
report.md, junit.xml) and handed to the `pytest_harness_report` hook, which is how the CLI gets it in-process.
"""

from __future__ import annotations

import importlib.util
import json
import random
import secrets
import time
from collections.abc import Generator, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
import pytest
from playwright.sync_api import Browser
from rich.console import Console

from harness.browser import driver as browser_driver
from harness.checks.catalogue import CATALOGUE
from harness.checks.findings import Finding
from harness.clerk import frontend
from harness.clerk.frontend import FrontendApi
from harness.clerk.issuer import Issuer
from harness.config.model import TargetConfig, load_config
from harness.config.reference import default_config_path, parse_faults
from harness.engine.handover import dump_issuer, dump_target, load_issuer, load_target
from harness.errors import ConfigError, HarnessError
from harness.report.document import artifact_json, coverage_json, write_json
from harness.report.evidence import NOT_APPLICABLE, Evidence
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.report.model import (
    NEVER_NOT_APPLICABLE,
    Answer,
    Artifact,
    ArtifactKind,
    CoverageRow,
    ErrorKind,
    Report,
    ScenarioOutcome,
    TokenHint,
    decide,
)
from harness.report.terminal import print_table
from harness.target.launch import launch
from harness.target.running import Target

__all__ = ["RUNNING_KEY", "ReportHolder", "RunState", "build_report", "record_error", "run_seed"]

_OUTCOME = "iam_outcome"
_EVIDENCE_KEY = pytest.StashKey[Evidence]()
_STATE_KEY = pytest.StashKey["RunState"]()
RUNNING_KEY = pytest.StashKey["tuple[Target, Issuer] | None"]()  # the controller's running target, in a parallel run
SHARED_INPUT = "iam_harness"
SEED_INPUT = "iam_harness_seed"
_FAILURE_CHARS = 600


@dataclass
class RunState:
    """What the plugin keeps for one run."""

    seed: int
    report_dir: Path | None
    target: str = "not started"
    error: str | None = None
    error_kind: ErrorKind | None = None
    interrupted: bool = False
    outcomes: list[ScenarioOutcome] = field(default_factory=list)
    scenarios_seen: int = 0
    not_applicable: dict[str, str] | None = None  # read from the target's config once it is needed
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    clock: float = field(default_factory=time.monotonic)


_hookspec = pluggy.HookspecMarker("pytest")


class _Hooks:
    """The hooks this plugin adds."""

    @_hookspec
    def pytest_harness_report(self, report: Report, config: pytest.Config) -> None:
        """Called once at the end of a conformance run, on the controller, with the report just built."""


class ReportHolder:
    """A plugin object for `pytest.main(..., plugins=[holder])`: it keeps the run's report, so that a front end
    takes its answer from the run itself rather than from a file on disk."""

    def __init__(self) -> None:
        self.report: Report | None = None

    def pytest_harness_report(self, report: Report, config: pytest.Config) -> None:
        """Keep the report."""
        self.report = report


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_Hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("iam-harness", "iam-harness conformance run")
    group.addoption("--target", default="embedded", help="'embedded' (start the target locally) or a base URL")
    group.addoption(
        "--target-config", default=None, help="the target's config file (TOML); default: the reference app's"
    )
    group.addoption("--faults", default="", help="comma-separated fault switches passed to the embedded target")
    group.addoption("--seed", type=int, default=None, help="seed for every random choice (printed when not given)")
    group.addoption("--fuzz-cases", type=int, default=None, help="cases per operation (default: the config's)")
    group.addoption("--report-dir", default=None, help="write report.json, report.md and the server log here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "decides(*check_ids): the checks (M1, O2, ...) this scenario decides")
    seed = config.getoption("--seed")
    workerinput = getattr(config, "workerinput", None)
    if seed is None and isinstance(workerinput, dict) and SEED_INPUT in workerinput:
        seed = int(workerinput[SEED_INPUT])  # a worker of a parallel run takes the controller's seed
    if seed is None:
        seed = secrets.randbelow(2**31)
    report_dir = config.getoption("--report-dir")
    state = RunState(seed=seed, report_dir=Path(report_dir) if report_dir else None)
    config.stash[_STATE_KEY] = state
    config.pluginmanager.register(_Recorder(config, state), "iam-harness-recorder")
    if _is_parallel_controller(config):
        config.pluginmanager.register(_Controller(config), "iam-harness-controller")


def _is_parallel_controller(config: pytest.Config) -> bool:
    """Whether this process is the controller of a parallel run of the scenarios (which then starts the target
    once for every worker). Any other parallel session, where the plugin is merely installed, starts nothing."""
    workers = config.getoption("numprocesses", None) if config.pluginmanager.hasplugin("xdist") else None
    return bool(workers) and not hasattr(config, "workerinput") and _runs_scenarios(config)


def scenarios_dir() -> Path | None:
    """Where the installed `scenarios` package lives (None when it is not installed)."""
    spec = importlib.util.find_spec("scenarios")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _runs_scenarios(config: pytest.Config) -> bool:
    home = scenarios_dir()
    if home is None:
        return False
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == home or home in path.parents:
            return True
    return False


def pytest_report_header(config: pytest.Config) -> str:
    return f"iam-harness seed: {config.stash[_STATE_KEY].seed}"


def _state(config: pytest.Config) -> RunState:
    return config.stash[_STATE_KEY]


def run_seed(config: pytest.Config) -> int:
    """The run's seed (given, or chosen and printed at the start)."""
    return _state(config).seed


@pytest.fixture(scope="session")
def harness_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed: every random choice derives from it."""
    return _state(pytestconfig).seed


@pytest.fixture(scope="session")
def harness_rng(harness_seed: int) -> random.Random:
    """A random generator seeded with the run's seed."""
    return random.Random(harness_seed)


def _load_target_config(config: pytest.Config) -> TargetConfig:
    path = config.getoption("--target-config")
    return load_config(Path(path) if path else default_config_path())


@pytest.fixture(scope="session")
def target_config(pytestconfig: pytest.Config) -> TargetConfig:
    """The target's config file, validated."""
    try:
        return _load_target_config(pytestconfig)
    except HarnessError as exc:
        record_error(pytestconfig, exc)
        raise


@contextmanager
def _launch(config: pytest.Config, target_config: TargetConfig) -> Iterator[tuple[Target, Issuer]]:
    """Plan the target, make the issuer it will trust, start the target; stop it when the block ends."""
    state = _state(config)
    log_dir = state.report_dir or Path(config.rootpath) / "reports"

    def planned(description: str) -> None:
        state.target = description

    with launch(
        target_config,
        config.getoption("--target"),
        faults=parse_faults(config.getoption("--faults")),
        log_path=log_dir / "app.log",
        seed=state.seed,
        planned=planned,
    ) as running:
        yield running


def _shared(config: pytest.Config) -> dict[str, Any] | None:
    """On a worker of a parallel run: what the controller handed over."""
    workerinput = getattr(config, "workerinput", None)
    raw = workerinput.get(SHARED_INPUT) if isinstance(workerinput, dict) else None
    return json.loads(raw) if raw else None


@pytest.fixture(scope="session")
def _harness_run(pytestconfig: pytest.Config, target_config: TargetConfig) -> Iterator[tuple[Target, Issuer]]:
    shared = _shared(pytestconfig)
    try:
        if shared is not None:
            if shared.get("error"):
                raise HarnessError(shared["error"])
            issuer = load_issuer(shared["issuer"], _state(pytestconfig).seed)
            yield load_target(shared["target"], target_config), issuer
            return
        with _launch(pytestconfig, target_config) as (running, issuer):
            yield running, issuer
    except HarnessError as exc:
        record_error(pytestconfig, exc)
        if shared is None:  # nothing can run without the target: stop here, rather than fail every scenario on it
            pytest.exit(str(exc), returncode=exc.exit_code)
        raise


@pytest.fixture(scope="session")
def issuer(_harness_run: tuple[Target, Issuer]) -> Issuer:
    """The Clerk-shaped issuer whose key the target trusts."""
    return _harness_run[1]


@pytest.fixture(scope="session")
def target(_harness_run: tuple[Target, Issuer]) -> Target:
    """The running target (the controller's, in a parallel run); stopped at the end of the run."""
    return _harness_run[0]


class _Controller:
    """In a parallel run the controller starts the target once, hands it to every worker, and stops it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.stack = ExitStack()
        self.shared: dict[str, Any] = {}
        self.running: tuple[Target, Issuer] | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            self.running = self.stack.enter_context(_launch(self.config, _load_target_config(self.config)))
            target, issuer = self.running
            self.shared = {"target": dump_target(target), "issuer": dump_issuer(issuer)}
        except HarnessError as exc:
            record_error(self.config, exc)
            self.shared = {"error": str(exc)}
        self.config.stash[RUNNING_KEY] = self.running

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[SHARED_INPUT] = json.dumps(self.shared)
        node.workerinput[SEED_INPUT] = run_seed(self.config)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stack.close()


@pytest.fixture(scope="session")
def frontend_api(issuer: Issuer) -> Iterator[FrontendApi]:
    """A stand-in for the issuer's Clerk frontend API on loopback: it answers the handshake (one per worker)."""
    with frontend.serving(issuer) as server:
        yield server


@pytest.fixture(scope="session")
def chromium(frontend_api: FrontendApi) -> Iterator[Browser]:
    """A headless Chromium shared by the worker's browser scenarios, reaching the frontend API stand-in under
    the frontend API's own host name."""
    with browser_driver.browser(frontend_api.browser_args) as instance:
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


def record_error(config: pytest.Config, exc: HarnessError) -> None:
    """Keep the run's first harness error: the report shows it and the CLI exits with its code."""
    state = _state(config)
    if state.error is None:
        state.error = str(exc)
        state.error_kind = ErrorKind.CONFIG if isinstance(exc, ConfigError) else ErrorKind.UNREACHABLE


def _not_applicable(config: pytest.Config) -> dict[str, str]:
    """The checks the target's config declares N/A, with their reasons. A config that names M3 or M4 (never N/A)
    or an unknown check is a config error: the run answers NO, and those names are ignored."""
    state = _state(config)
    if state.not_applicable is not None:
        return state.not_applicable
    try:
        # `not_applicable` is a field of newer configs; an older one declares nothing N/A.
        declared: Mapping[str, str] = getattr(_load_target_config(config), "not_applicable", None) or {}
    except HarnessError:
        declared = {}  # the target_config fixture records the error where a scenario needs the config
    known = {c.id for c in CATALOGUE}
    if refused := sorted(k for k in declared if k in NEVER_NOT_APPLICABLE or k not in known):
        record_error(
            config,
            ConfigError(
                f"not_applicable: {', '.join(refused)} cannot be declared N/A"
                f" (M3 and M4 never can; known checks: {', '.join(sorted(known))})"
            ),
        )
    state.not_applicable = {k: str(v) for k, v in declared.items() if k not in refused}
    return state.not_applicable


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
    findings = list(found.findings) if found else []
    failure = None
    if report.skipped and NOT_APPLICABLE in _reason(call):
        return report  # the scenario cannot apply to this target: it decides nothing, either way
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
        # A finding turns its checks NO even if the scenario passed: it gets a repro line too.
        "repro": _repro(item, state) if not report.passed or findings else None,
        "findings": [f.to_json() for f in findings],
        "coverage": [coverage_json(row) for row in found.coverage] if found else [],
        "tokens": [[h.variable, h.principal, h.how] for h in found.tokens] if found else [],
        "artifacts": [artifact_json(a) for a in found.artifacts] if found else [],
    }
    report.user_properties.append((_OUTCOME, json.dumps(outcome)))
    return report


def _outcome(raw: dict[str, Any]) -> ScenarioOutcome:
    """An outcome as it arrived (from this process or a worker), typed again."""
    return ScenarioOutcome(
        nodeid=raw["nodeid"],
        checks=tuple(raw["checks"]),
        passed=raw["passed"],
        evidence=tuple(raw["evidence"]),
        failure=raw["failure"],
        repro=raw["repro"],
        findings=tuple(Finding.from_json(f) for f in raw["findings"]),
        coverage=tuple(
            CoverageRow(r["operation"], r["principal"], r["requests"], tuple(r["families"]), r["note"])
            for r in raw["coverage"]
        ),
        tokens=tuple(TokenHint(variable, principal, how) for variable, principal, how in raw["tokens"]),
        artifacts=tuple(Artifact(ArtifactKind(a["kind"]), a["path"], a["label"]) for a in raw["artifacts"]),
    )


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

    def __init__(self, config: pytest.Config, state: RunState) -> None:
        self.config = config
        self.state = state
        self.report: Report | None = None

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        scenarios = [i for i in items if i.get_closest_marker("decides")]
        self.state.scenarios_seen = len(scenarios)
        if not scenarios:
            return  # not a conformance run: no config to read
        shared = _shared(config)
        if self.state.error is not None or (shared is not None and shared.get("error")):
            # The target did not start (the controller said why): every scenario would fail on it alike.
            config.hook.pytest_deselected(items=list(items))
            items[:] = []
            return
        not_applicable = _not_applicable(config)
        # A scenario all of whose checks the target cannot have would only fail, or prove nothing: not run.
        skipped = [i for i in scenarios if set(_decided(i)) <= not_applicable.keys()]
        if skipped:
            config.hook.pytest_deselected(items=skipped)
            items[:] = [i for i in items if i not in skipped]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == _OUTCOME:
                self.state.outcomes.append(_outcome(json.loads(str(value))))

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if excinfo.errisinstance(pytest.exit.Exception) and self.state.error is not None:
            return  # the run stopped itself on its error (the target did not start): that error is its answer
        self.state.interrupted = True  # Ctrl-C, a signal (or pytest.exit): the run did not finish

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state = self.state
        if state.scenarios_seen == 0 and not state.outcomes and state.error is None:
            return  # not a conformance run (e.g. the project's own tests)
        if hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller decides
        self.report = build_report(state, _not_applicable(session.config))
        if state.report_dir is not None:
            write_json(self.report, state.report_dir / "report.json")
            write_markdown(self.report, state.report_dir / "report.md")
            write_junit(self.report, state.report_dir / "junit.xml")
        session.config.hook.pytest_harness_report(report=self.report, config=session.config)
        if self.report.answer is not Answer.YES and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.report is not None and self.report.error is None:  # a run that could not start has one line to say
            print_table(self.report, Console(file=terminalreporter._tw._file, width=160))


def _decided(item: pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker("decides")
    return tuple(marker.args) if marker is not None else ()


def build_report(state: RunState, not_applicable: Mapping[str, str] | None = None) -> Report:
    """The run's report from what the plugin collected."""
    coverage: dict[CoverageRow, None] = {}
    tokens: dict[str, TokenHint] = {}
    for outcome in state.outcomes:
        coverage.update(dict.fromkeys(outcome.coverage))
        for hint in outcome.tokens:
            tokens.setdefault(hint.variable, hint)
    return Report(
        seed=state.seed,
        target=state.target,
        checks=decide(state.outcomes, not_applicable=not_applicable or {}),
        error=state.error,
        error_kind=state.error_kind,
        interrupted=state.interrupted,
        coverage=tuple(coverage),
        tokens=tuple(tokens.values()),
        started=state.started,
        seconds=time.monotonic() - state.clock,
    )
