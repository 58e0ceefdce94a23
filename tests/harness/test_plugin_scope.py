"""The plugin is installed for every pytest session of its environment: only a run of the scenarios starts a target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import scenarios
from harness.plugin import _is_parallel_controller

SCENARIOS = Path(scenarios.__file__).parent


@pytest.fixture
def parse(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[..., pytest.Config]:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return lambda *args: pytester.parseconfig("-p", "xdist", "-p", "harness.plugin", *args)


@pytest.mark.parametrize(
    "args",
    [
        ["-n", "2", str(SCENARIOS)],
        ["-n", "2", f"{SCENARIOS / 'test_fuzz.py'}::test_fuzz_roles"],
        ["-n", "2", "-k", "x", str(SCENARIOS)],
    ],
    ids=["the-package", "one-scenario", "a-selection"],
)
def test_a_parallel_run_of_the_scenarios_has_a_controller_that_starts_the_target(
    parse: Callable[..., pytest.Config], args: list[str]
) -> None:
    assert _is_parallel_controller(parse(*args))


@pytest.mark.parametrize(
    "args", [["-n", "2"], ["-n", "2", "tests"], [str(SCENARIOS)]], ids=["own-tests", "a-path", "one-process"]
)
def test_any_other_session_starts_nothing(parse: Callable[..., pytest.Config], args: list[str]) -> None:
    assert not _is_parallel_controller(parse(*args))
