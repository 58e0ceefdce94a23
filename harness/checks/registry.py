"""The registry of fuzz checks: plain functions, each registered by a decorator that names what it decides.

A probe check is `(ctx, probe) -> findings`, called for every probe of the families it names (every
family when it names none); a state check is `(ctx, read) -> findings`, called for every read the engine
makes after the probes (canaries re-read by their owners, lists). The decorator records the check ids a
check decides and the finding kinds it may raise, so that the catalogue can be tested whole, and a
finding of a kind a check did not declare is an error in that check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from harness.checks.catalogue import CATALOGUE
from harness.checks.findings import Finding, FindingKind
from harness.config.model import TargetConfig
from harness.engine.exchange import Exchange
from harness.engine.probes import Family, Probe, StateRead
from harness.engine.world import World

__all__ = [
    "PROBE_CHECKS",
    "STATE_CHECKS",
    "Context",
    "RegisteredCheck",
    "found",
    "probe_check",
    "state_check",
]

ProbeFunction = Callable[["Context", Probe], Iterable[Finding]]
StateFunction = Callable[["Context", StateRead], Iterable[Finding]]
F = TypeVar("F", ProbeFunction, StateFunction)


@dataclass(frozen=True)
class Context:
    """What every check may know besides the probe: the target's config and the world built on it."""

    config: TargetConfig
    world: World


@dataclass(frozen=True)
class RegisteredCheck:
    """One registered check function."""

    name: str
    decides: tuple[str, ...]
    raises: tuple[FindingKind, ...]
    families: frozenset[Family]  # empty: every family
    doc: str
    function: Callable[..., Iterable[Finding]] = field(compare=False)

    def applies_to(self, probe: Probe) -> bool:
        """Whether this check judges probes of `probe`'s family."""
        return not self.families or probe.family in self.families


PROBE_CHECKS: list[RegisteredCheck] = []
STATE_CHECKS: list[RegisteredCheck] = []


def _register(
    into: list[RegisteredCheck], decides: tuple[str, ...], raises: tuple[FindingKind, ...], families: Iterable[Family]
) -> Callable[[F], F]:
    known = {c.id for c in CATALOGUE}
    if unknown := set(decides) - known:
        raise ValueError(f"unknown check ids {sorted(unknown)}")

    def decorate(function: F) -> F:
        into.append(
            RegisteredCheck(
                name=function.__name__,
                decides=decides,
                raises=raises,
                families=frozenset(families),
                doc=(function.__doc__ or "").strip(),
                function=function,
            )
        )
        return function

    return decorate


def probe_check(
    *decides: str, raises: tuple[FindingKind, ...], families: Iterable[Family] = ()
) -> Callable[[ProbeFunction], ProbeFunction]:
    """Register a check of probes, deciding `decides`, raising findings of `raises`."""
    return _register(PROBE_CHECKS, decides, raises, families)


def state_check(*decides: str, raises: tuple[FindingKind, ...]) -> Callable[[StateFunction], StateFunction]:
    """Register a check of the state read after every probe."""
    return _register(STATE_CHECKS, decides, raises, ())


def found(kind: FindingKind, probe: Probe | StateRead, detail: str, exchange: Exchange | None = None) -> Finding:
    """A finding on `probe`'s operation and principal; the runner stamps the checks its registration decides."""
    if isinstance(probe, Probe):
        operation, principal, family = str(probe.operation), probe.principal.name, probe.family.value
        default = probe.exchanges[0] if probe.exchanges else None
    else:
        # A state read that follows an operation's writes names that operation: what the victim saw is its doing.
        operation, principal, family, default = (
            probe.after or probe.operation,
            probe.principal.name,
            "state",
            probe.exchange,
        )
    return Finding(kind, (), operation, principal, detail, exchange or default, family)
