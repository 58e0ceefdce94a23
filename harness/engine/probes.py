"""What the fuzz engine hands the checks: probes (one family of requests, sent and answered) and state reads.

The engine decides nothing: it sends, and records what it sent and what came back. A probe says which
family of variation it was (the role matrix on the caller's own records, the other organisation's ids,
its references in a body, ...), who sent it, on which operation, what was substituted, and the answers,
with the control answer (the same request with a value nobody has) where the family has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.engine.exchange import Exchange
from harness.engine.schema import Operation
from harness.engine.world import Canary, Principal

__all__ = ["CoverageCell", "Family", "Probe", "StateKind", "StateRead"]


class Family(StrEnum):
    """The families of requests the engine sends for every operation and principal."""

    ROLE = "role"  # every generated case on the caller's own records
    FOREIGN_ID = "foreign-id"  # the other organisation's ids in the path
    FOREIGN_REFERENCE = "foreign-reference"  # the other organisation's ids in the body's reference fields
    MASS_ASSIGNMENT = "mass-assignment"  # privileged body fields aimed at the other organisation
    ORG_SWITCH = "org-switch"  # an org-switching header and parameter naming the other organisation
    ORG_CLAIM = "org-claim"  # the caller's own session naming the other organisation
    FOREIGN_QUERY = "foreign-query"  # searching for the other organisation's values
    FOREIGN_USER = "foreign-user"  # another principal's user id in the body's fields that name a user
    MALFORMED_ID = "malformed-id"  # ids that are not ids
    ESCALATION = "escalation"  # a principal's earlier refusals sent again after its own successful write


class StateKind(StrEnum):
    """What a state read reads: what the victim of a cross-organisation write would see changed."""

    CANARY = "canary"  # a protected canary, by its owner
    LIST = "list"  # a list operation, by the organisation's owner
    SELF = "self"  # an operation about the caller alone (its profile), by each principal
    SIGN_IN = "sign-in"  # a principal signing in again with its own credentials


@dataclass(frozen=True)
class Probe:
    """One family of requests by one principal on one operation, with every answer."""

    family: Family
    operation: Operation
    principal: Principal
    exchanges: tuple[Exchange, ...]
    control: Exchange | None = None  # the same request with a value nobody has, for families that compare
    other_org: str | None = None  # the organisation aimed at, for cross-org families
    substituted: str = ""  # what was put where, in words ("org2's {'contact_id': '...'}")
    echo: str | None = None  # a foreign value the caller sent itself, which may come back as sent
    control_echo: str | None = None  # the value nobody has that the control request sent instead
    own_records: bool = True  # whether the path addressed the caller's own records (False: none existed)
    privileged: tuple[tuple[str, Any], ...] = ()  # the privileged fields a mass-assignment probe sent, and values

    @property
    def answered(self) -> tuple[Exchange, ...]:
        """The exchanges the target answered."""
        return tuple(e for e in self.exchanges if e.answered)


@dataclass(frozen=True)
class StateRead:
    """A read the engine made after every probe: a canary re-read by its owner, or a list its owner sees."""

    org: str
    principal: Principal
    exchange: Exchange
    canary: Canary | None = None  # None: a list operation
    operation: str = ""
    kind: StateKind = StateKind.LIST
    expected: Any = None  # a canary as its owner last read it (changes are judged against it, once each)
    after: str = ""  # the operation whose probes were just sent ("" at the end of the run)
    failure: str | None = None  # a sign-in that failed: why
    public: bool = False  # a list anyone may read (a directory): what other organisations' principals wrote may show


@dataclass
class CoverageCell:
    """How one operation was exercised by one principal."""

    requests: int = 0
    families: set[str] = field(default_factory=set)
    note: str = ""
