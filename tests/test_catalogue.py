"""Every scenario names the checks it decides and says what it proves; every check is decided by a scenario."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import scenarios
from harness.checks.catalogue import CATALOGUE


def _scenarios() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for module_info in pkgutil.iter_modules(scenarios.__path__):
        module = importlib.import_module(f"scenarios.{module_info.name}")
        found += [
            (f"{module_info.name}.{n}", f) for n, f in vars(module).items() if n.startswith("test_") and callable(f)
        ]
    return found


def _decides(function: Callable[..., Any]) -> tuple[str, ...]:
    marks = [m for m in getattr(function, "pytestmark", []) if m.name == "decides"]
    return tuple(check for mark in marks for check in mark.args)


def test_every_scenario_decides_known_checks_and_explains_itself() -> None:
    known = {c.id for c in CATALOGUE}
    found = _scenarios()
    assert found
    for name, function in found:
        assert _decides(function), f"{name} decides no check"
        assert set(_decides(function)) <= known, f"{name} decides unknown checks {set(_decides(function)) - known}"
        assert (function.__doc__ or "").strip(), f"{name} has no docstring: the report has no sentence for it"


def test_every_check_is_decided_by_some_scenario() -> None:
    decided = {check for _, function in _scenarios() for check in _decides(function)}
    assert decided == {c.id for c in CATALOGUE}
