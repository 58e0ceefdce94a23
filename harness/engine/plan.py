"""The fuzz plan, told before anything is sent: every operation, who calls it with which families, and what
the config says never to call.

`iam-harness plan` prints it whole; a run prints its summary at the start. It is worked out from the
config and the schema alone, with the same rules the engine follows, so that what it says is what the
run does.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.model import TargetConfig
from harness.engine.fuzz import families_for, is_never, planned_operations
from harness.engine.probes import Family
from harness.engine.schema import ApiSchema

__all__ = ["OperationPlan", "plan", "plan_lines", "plan_summary", "principal_names"]


@dataclass(frozen=True)
class OperationPlan:
    """One operation: who calls it, with which families of probes, or why nobody does."""

    operation: str
    principals: tuple[str, ...]
    families: tuple[Family, ...]
    never: bool = False
    unreadable: str | None = None  # why schemathesis cannot read the operation's definition


def principal_names(config: TargetConfig) -> tuple[str, ...]:
    """The principals a run acts as: those the config declares, or the Clerk world's, then anonymous."""
    if config.principals:
        return (*(p.name for p in config.principals), "anonymous")
    per_org = [f"admin ({config.admin_role})", *config.roles.member_roles, "member without a role"]
    return (*(f"org{n} {who}" for n in (1, 2) for who in per_org), "anonymous")


def plan(config: TargetConfig, schema: ApiSchema) -> tuple[OperationPlan, ...]:
    """Every operation of the schema, in the engine's order, then those never called."""
    ops, never = planned_operations(config, schema)
    who = principal_names(config)
    planned = [OperationPlan(str(op), who, families_for(config, op)) for op in ops]
    planned += [OperationPlan(str(op), (), (), never=True) for op in never]
    planned += [
        OperationPlan(str(op), (), (), unreadable=op.reason)
        for op in schema.unreadable
        if not is_never(config, op.method, op.path)
    ]
    return tuple(planned)


def plan_lines(config: TargetConfig, schema: ApiSchema) -> list[str]:
    """The whole plan, one line per operation."""
    planned = plan(config, schema)
    width = max((len(p.operation) for p in planned), default=0)
    lines = [f"principals: {', '.join(principal_names(config))}"]
    for p in planned:
        if p.never:
            lines.append(f"{p.operation:<{width}}  NEVER: listed under [fuzz] never; no phase calls it")
        elif p.unreadable is not None:
            lines.append(f"{p.operation:<{width}}  NOT FUZZED: schemathesis cannot read it: {p.unreadable}")
        else:
            lines.append(f"{p.operation:<{width}}  {len(p.principals)} principals: {', '.join(p.families)}")
    return [*lines, plan_summary(config, schema)]


def plan_summary(config: TargetConfig, schema: ApiSchema, cases: int | None = None) -> str:
    """One line: how many operations and principals, `cases` each (the config's), and what is never called."""
    planned = plan(config, schema)
    called = [p for p in planned if not p.never and p.unreadable is None]
    never = [p.operation for p in planned if p.never]
    unreadable = [p.operation for p in planned if p.unreadable is not None]
    told = f"never called: {', '.join(never)}" if never else "nothing listed under never"
    if unreadable:
        told += f"; not fuzzed, the schema's definition unreadable: {', '.join(unreadable)}"
    return (
        f"plan: {len(called)} operations x {len(principal_names(config))} principals, "
        f"{cases or config.fuzz.cases} cases each; {told}"
    )
