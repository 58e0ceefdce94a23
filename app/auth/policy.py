"""Layer 3 of authentication: may this principal do this action on this resource?

The decision is separate from storage (grants are loaded by `app.governance`) and from enforcement
(the API and the pages act on the answer). It denies by default and explains itself: which role
granted the permission, or that no rule matched.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from app.auth.identity import Identity

__all__ = ["BUSINESS_RESOURCES", "READ_ONLY_ROLE", "Decision", "Effect", "PolicyEngine", "Principal", "permission_name"]

BUSINESS_RESOURCES = frozenset({"contacts", "deals", "notes"})
READ_ONLY_ROLE = "Viewer"


def permission_name(action: str, resource: str) -> str:
    """The permission guarding `action` on `resource`: `contacts` + `read` -> `contacts:read`."""
    return f"{resource}:{action}"


@dataclass(frozen=True)
class Principal:
    """A resolved caller and the grants their roles give them in their active organisation."""

    identity: Identity
    roles: tuple[str, ...]
    grants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """permission -> the caller's roles that grant it (from the database, never from the token)."""

    @property
    def user_id(self) -> uuid.UUID:
        """The caller's system user id."""
        return self.identity.user_id

    @property
    def org_id(self) -> uuid.UUID:
        """The caller's active organisation."""
        return self.identity.organisation.id

    @property
    def permissions(self) -> tuple[str, ...]:
        """Every permission the caller's roles grant, sorted."""
        return tuple(sorted(self.grants))


class Effect(StrEnum):
    """What a decision says."""

    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True)
class Decision:
    """The answer to one `can_i` question, with the rule that decided it."""

    effect: Effect
    permission: str
    rule: str
    """`role:<name>` when a role granted the permission; `default` when no rule matched."""
    reason: str

    @property
    def allowed(self) -> bool:
        """Whether the action may go ahead."""
        return self.effect is Effect.ALLOW

    def explain(self) -> str:
        """One line: the effect, the permission and why."""
        return f"{self.effect.value} {self.permission}: {self.reason}"


class PolicyEngine:
    """Decides from the principal's grants; when no rule matches, the default effect applies (deny)."""

    def __init__(self, *, default_allow: bool = False, viewer_can_write: bool = False) -> None:
        # default_allow exists only as a fault switch: a policy that allows what no rule grants is
        # exactly the bug that let members without roles do everything.
        self._default = Effect.ALLOW if default_allow else Effect.DENY
        # viewer_can_write exists only as a fault switch: the read-only role's guard on writes is lost.
        self._viewer_can_write = viewer_can_write

    def can_i(self, principal: Principal, action: str, resource: str) -> Decision:
        """May `principal` do `action` on `resource`? Allowed only by a role granting `resource:action`."""
        permission = permission_name(action, resource)
        granted_by = principal.grants.get(permission, ())
        if granted_by:
            roles = ", ".join(granted_by)
            return Decision(Effect.ALLOW, permission, f"role:{granted_by[0]}", f"granted by role {roles}")
        if (
            self._viewer_can_write
            and READ_ONLY_ROLE in principal.roles
            and resource in BUSINESS_RESOURCES
            and action in ("write", "delete")
        ):
            return Decision(Effect.ALLOW, permission, f"role:{READ_ONLY_ROLE}", "read-only guard missing (fault)")
        held = ", ".join(principal.roles) if principal.roles else "no role"
        if self._default is Effect.ALLOW:
            return Decision(Effect.ALLOW, permission, "default", f"no rule matched ({held}); default allow")
        return Decision(Effect.DENY, permission, "default", f"no role grants it ({held}); default deny")
