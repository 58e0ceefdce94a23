"""Request cases generated from the schema once, with schemathesis, then replayed by every principal.

Generation is the costly part of fuzzing (schemathesis and Hypothesis spend milliseconds of CPU per
case); the cross-principal and cross-org probes are variations of the same cases, so each case is
generated once, seeded, and kept as plain data.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from harness.engine.schema import Operation, example_body

__all__ = ["PROBE", "Case", "generate_cases"]

PROBE = "probe"  # the text of generated example bodies, replaced by a marker of the caller's organisation


@dataclass(frozen=True)
class Case:
    """One request's variable parts for an operation (path parameters are substituted later)."""

    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None


def generate_cases(ops: list[Operation], *, per_operation: int, seed: int) -> dict[str, list[Case]]:
    """Up to `per_operation` distinct cases per operation; the first is always a minimal valid example."""
    out = {str(op): [Case(body=example_body(op, text=PROBE))] for op in ops}
    for op in ops:
        if op.source is not None and per_operation > 1:
            _collect(op.source, out[str(op)], per_operation, seed)
    return out


def _collect(operation: Any, found: list[Case], per_operation: int, seed: int) -> None:
    """Draw seeded cases from schemathesis's strategy for `operation` until `found` holds enough distinct ones."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    seen = {_fingerprint(c) for c in found}

    @given(operation.as_strategy())
    @settings(
        max_examples=per_operation * 3,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @hypothesis_seed(seed)
    def draw(case: Any) -> None:
        if len(found) >= per_operation:
            return
        candidate = Case(query=dict(case.query or {}), body=case.body if _is_set(case.body) else None)
        if (fingerprint := _fingerprint(candidate)) not in seen:
            seen.add(fingerprint)
            found.append(candidate)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draw()


def _is_set(value: Any) -> bool:
    return type(value).__name__ != "NotSet"


def _fingerprint(case: Case) -> str:
    return json.dumps([case.query, case.body], sort_keys=True, default=str)
