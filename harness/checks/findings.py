"""Findings: what a check raises, typed, with the exchange that shows it and the line that reproduces it.

A finding is named for the violation (`CrossOrgRead`), carries the check ids it decides, a severity, the
operation and principal it was seen on, and the exchange as data. Its repro never holds a secret: the
principal's credential is `$IAM_TOKEN_<PRINCIPAL>` (see `harness.engine.exchange.token_variable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.engine.exchange import Exchange

__all__ = ["Finding", "FindingKind", "Severity"]


class Severity(StrEnum):
    """How bad a finding is, as a security team ranks it."""

    CRITICAL = "critical"  # another organisation's data read or changed
    HIGH = "high"  # an operation let through that must be refused
    MEDIUM = "medium"  # an oracle or an internal error shown to a caller
    LOW = "low"  # coverage lost: something that should have worked did not


class FindingKind(StrEnum):
    """Every kind of finding, each named for the violation it is."""

    NOT_REFUSED = "NotRefused"  # a principal without the permission was not refused
    NEVER_SUCCEEDED = "NeverSucceeded"  # the organisation's admin never succeeded on its own data
    CROSS_ORG_READ = "CrossOrgRead"  # 2xx on another organisation's id
    FOREIGN_MARKER = "ForeignMarker"  # a marker the caller may not see appeared
    EXISTENCE_ORACLE = "ExistenceOracle"  # another organisation's id answered unlike an id nobody has
    CROSS_ORG_WRITE = "CrossOrgWrite"  # a canary changed, vanished, or gained foreign data
    SERVER_ERROR = "ServerError"  # 5xx, a stack trace or SQL text
    UNANSWERED = "Unanswered"  # a request a check needed got no answer, even on a fresh connection
    BUDGET_EXHAUSTED = "BudgetExhausted"  # a request budget ran out before every probe was sent
    NOT_EXERCISED = "NotExercised"  # an operation no principal could be made to call, or a probe with no ground
    SECRET_EXPOSED = "SecretExposed"  # noqa: S105 (a kind, not a secret): a password the run registered came back
    MASS_ASSIGNMENT = "MassAssignment"  # a privileged field sent in a body took effect
    PRIVILEGE_ESCALATION = "PrivilegeEscalation"  # a refusal turned into a success after the principal's own write
    STALE_ACTIVE_ORG = "StaleActiveOrg"  # after a switch of the active organisation, the session acted in another one
    # provisioning (I1)
    PROVISIONING_RACE = "ProvisioningRace"  # racing first requests of one user failed, or made more than one of it
    HALF_PROVISIONED = "HalfProvisioned"  # a first login that failed midway left rows behind, or locked the user out
    # invites (O5)
    INVITE_MISUSED = "InviteMisused"  # an invite let in someone it must not: another address, twice, expired, revoked
    WEAK_INVITE_TOKEN = "WeakInviteToken"  # noqa: S105 (a kind, not a secret): an invite's token is too short to be unguessable
    # organisation sync (I2)
    SYNC_DUPLICATE = "SyncDuplicate"  # one Clerk organisation became several on the target
    SYNC_DIVERGED = "SyncDiverged"  # after every event, the target's organisations or members are not Clerk's
    # lockout (C3)
    LOCKOUT = "Lockout"  # an organisation's last member manager stepped down or was removed: nobody can manage it
    # authentication (C1)
    VALID_TOKEN_REFUSED = "ValidTokenRefused"  # noqa: S105 (a kind, not a secret): a session token of a valid shape was refused: a lockout
    FORGERY_ACCEPTED = "ForgeryAccepted"  # a forged, stale or malformed token was let in
    TOKEN_ECHOED = "TokenEchoed"  # noqa: S105 (a kind, not a secret): a refusal showed the token it refused
    CHALLENGE_MISSING = "ChallengeMissing"  # a 401 without `WWW-Authenticate: Bearer` (RFC 6750 3)
    KEY_URL_FETCHED = "KeyUrlFetched"  # the target fetched a key a token pointed at (jku, x5u)
    JWKS_HAMMERED = "JwksHammered"  # forged kids made the target refetch its JWKS
    REFUSAL_NOT_LOGGED = "RefusalNotLogged"  # a refusal left no line in the server's log
    FORGERY_PROVISIONED = "ForgeryProvisioned"  # a refused token left its identity in the database
    FOREIGN_ORG_SESSION = "ForeignOrgSession"  # a session naming an organisation its user is not in was let in
    DELETED_USER_ACCEPTED = "DeletedUserAccepted"  # a deleted user's still-valid session was let in
    FORGED_WEBHOOK_ACCEPTED = "ForgedWebhookAccepted"  # a webhook signed with another secret, or stale, was taken
    ROLE_CLAIM_TRUSTED = "RoleClaimTrusted"  # a role claimed by the token, not granted by the target, was honoured
    WEAK_TOKEN_SECRET = "WeakTokenSecret"  # noqa: S105 (a kind, not a secret): the target's own tokens are signed with a guessable secret

    @property
    def severity(self) -> Severity:
        """The severity every finding of this kind has."""
        return _SEVERITY[self]


_SEVERITY = {
    FindingKind.NOT_REFUSED: Severity.HIGH,
    FindingKind.NEVER_SUCCEEDED: Severity.LOW,
    FindingKind.CROSS_ORG_READ: Severity.CRITICAL,
    FindingKind.FOREIGN_MARKER: Severity.CRITICAL,
    FindingKind.EXISTENCE_ORACLE: Severity.MEDIUM,
    FindingKind.CROSS_ORG_WRITE: Severity.CRITICAL,
    FindingKind.SERVER_ERROR: Severity.MEDIUM,
    FindingKind.UNANSWERED: Severity.LOW,
    FindingKind.BUDGET_EXHAUSTED: Severity.LOW,
    FindingKind.NOT_EXERCISED: Severity.LOW,
    FindingKind.SECRET_EXPOSED: Severity.CRITICAL,
    FindingKind.MASS_ASSIGNMENT: Severity.CRITICAL,
    FindingKind.PRIVILEGE_ESCALATION: Severity.CRITICAL,
    FindingKind.LOCKOUT: Severity.HIGH,
    FindingKind.VALID_TOKEN_REFUSED: Severity.HIGH,
    FindingKind.FORGERY_ACCEPTED: Severity.CRITICAL,
    FindingKind.TOKEN_ECHOED: Severity.MEDIUM,
    FindingKind.CHALLENGE_MISSING: Severity.LOW,
    FindingKind.KEY_URL_FETCHED: Severity.HIGH,
    FindingKind.JWKS_HAMMERED: Severity.MEDIUM,
    FindingKind.REFUSAL_NOT_LOGGED: Severity.LOW,
    FindingKind.FORGERY_PROVISIONED: Severity.HIGH,
    FindingKind.FOREIGN_ORG_SESSION: Severity.CRITICAL,
    FindingKind.STALE_ACTIVE_ORG: Severity.HIGH,
    FindingKind.PROVISIONING_RACE: Severity.HIGH,
    FindingKind.HALF_PROVISIONED: Severity.HIGH,
    FindingKind.INVITE_MISUSED: Severity.CRITICAL,
    FindingKind.WEAK_INVITE_TOKEN: Severity.HIGH,
    FindingKind.SYNC_DUPLICATE: Severity.HIGH,
    FindingKind.SYNC_DIVERGED: Severity.HIGH,
    FindingKind.DELETED_USER_ACCEPTED: Severity.CRITICAL,
    FindingKind.FORGED_WEBHOOK_ACCEPTED: Severity.CRITICAL,
    FindingKind.ROLE_CLAIM_TRUSTED: Severity.CRITICAL,
    FindingKind.WEAK_TOKEN_SECRET: Severity.CRITICAL,
}


@dataclass(frozen=True)
class Finding:
    """One violation, with what shows it and what reproduces it."""

    kind: FindingKind
    checks: tuple[str, ...]  # the check ids this finding turns NO
    operation: str  # `METHOD /path/{template}`
    principal: str
    detail: str
    exchange: Exchange | None = None
    family: str = ""  # the probe family that produced it

    @property
    def severity(self) -> Severity:
        """The kind's severity."""
        return self.kind.severity

    @property
    def repro(self) -> str:
        """A curl line that sends the request again (credentials as environment variables), or ''."""
        return self.exchange.curl if self.exchange is not None else ""

    def line(self) -> str:
        """`Kind: principal OPERATION: detail  repro: curl ...`."""
        repro = f"  repro: {self.repro}" if self.repro else ""
        return f"{self.kind.value}: {self.principal} {self.operation}: {self.detail}{repro}"

    def to_json(self) -> dict[str, Any]:
        """The finding as report.json holds it."""
        exchange = None
        if self.exchange is not None:
            seen = self.exchange
            exchange = {
                "method": seen.method,
                "url": seen.url,
                "status": seen.status,
                "excerpt": " ".join(seen.text.split())[:300],
                "retried": seen.retried,
                "failure": seen.failure,
            }
        return {
            "kind": self.kind.value,
            "severity": self.severity.value,
            "checks": list(self.checks),
            "operation": self.operation,
            "principal": self.principal,
            "family": self.family,
            "detail": self.detail,
            "exchange": exchange,
            "repro": self.repro or None,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Finding:
        """The finding back from `to_json`'s form (as it travels from a parallel worker); the exchange keeps the
        excerpt of its body that `to_json` kept, and its repro line."""
        seen = document.get("exchange")
        exchange = None
        if seen is not None:
            exchange = Exchange(
                method=str(seen["method"]),
                url=str(seen["url"]),
                status=int(seen["status"]),
                text=str(seen["excerpt"]),
                curl=str(document.get("repro") or ""),
                retried=seen.get("retried"),
                failure=seen.get("failure"),
            )
        return cls(
            kind=FindingKind(document["kind"]),
            checks=tuple(str(c) for c in document["checks"]),
            operation=str(document["operation"]),
            principal=str(document["principal"]),
            detail=str(document["detail"]),
            exchange=exchange,
            family=str(document.get("family") or ""),
        )
