"""Governance storage: roles, permissions, and the roles users hold in each organisation.

The policy engine decides; this module only reads and writes the governance tables. Roles always
come from here, never from the token's role claim, which the app does not trust for authorisation.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.auth.identity import Identity
from app.auth.policy import Principal
from app.models import Permission, Role, RolePermission, UserRole

__all__ = [
    "RoleView",
    "UnknownRoles",
    "load_principal",
    "principal_from",
    "replace_roles",
    "role_catalogue",
    "role_ids",
    "roles_of",
]

# The caller's roles and what they grant, in the caller's active organisation. The user id is cast
# to uuid in SQL: binding anything but the user's uuid here (a Clerk `user_...` id, say) fails with
# SQLSTATE 22P02 instead of silently matching nothing.
USER_ROLE_QUERY = text(
    """
    SELECT r.name AS role, p.name AS permission
    FROM governance_user_roles ur
    JOIN governance_roles r ON r.id = ur.role_id
    LEFT JOIN governance_role_permissions rp ON rp.role_id = r.id
    LEFT JOIN governance_permissions p ON p.id = rp.permission_id
    WHERE ur.user_id = CAST(:user_id AS uuid) AND ur.org_id = CAST(:org_id AS uuid)
    ORDER BY r.name, p.name
    """
)


class UnknownRoles(ValueError):
    """Role names that are not in the governance tables."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(", ".join(names))
        self.names = tuple(names)


@dataclass(frozen=True)
class RoleView:
    """A role and the permissions it grants."""

    name: str
    permissions: tuple[str, ...]


def load_principal(session: Session, identity: Identity, *, bind_clerk_id: bool = False) -> Principal:
    """The caller's roles and grants in their active organisation.

    `bind_clerk_id` is the `user_role_query_uses_clerk_id` fault: it binds the Clerk `sub` where the
    user's uuid belongs, and PostgreSQL refuses the query (22P02).
    """
    user_param = identity.external_id if bind_clerk_id else str(identity.user_id)
    rows = session.execute(USER_ROLE_QUERY, {"user_id": user_param, "org_id": str(identity.organisation.id)}).all()
    return principal_from(identity, [(role, permission) for role, permission in rows])


def principal_from(identity: Identity, rows: Iterable[tuple[str | None, str | None]]) -> Principal:
    """The principal of `identity` from (role, permission) rows ordered by role, then permission; a role granting
    nothing comes with permission None, and a member holding no role as one row of two Nones."""
    roles: list[str] = []
    grants: dict[str, list[str]] = defaultdict(list)
    for role, permission in rows:
        if role is None:
            continue
        if role not in roles:
            roles.append(role)
        if permission is not None and role not in grants[permission]:
            grants[permission].append(role)
    return Principal(identity=identity, roles=tuple(roles), grants={p: tuple(r) for p, r in grants.items()})


def role_catalogue(session: Session) -> list[RoleView]:
    """Every role with its permissions, by name."""
    rows = session.execute(
        select(Role.name, Permission.name)
        .select_from(Role)
        .outerjoin(RolePermission, RolePermission.role_id == Role.id)
        .outerjoin(Permission, Permission.id == RolePermission.permission_id)
        .order_by(Role.name, Permission.name)
    ).all()
    catalogue: dict[str, list[str]] = {}
    for role, permission in rows:
        catalogue.setdefault(role, [])
        if permission is not None:
            catalogue[role].append(permission)
    return [RoleView(name=name, permissions=tuple(perms)) for name, perms in catalogue.items()]


def role_ids(session: Session, names: Iterable[str]) -> dict[str, uuid.UUID]:
    """Role ids by name; raise UnknownRoles naming every name that is not a role."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    found = {
        name: role_id for role_id, name in session.execute(select(Role.id, Role.name).where(Role.name.in_(wanted)))
    }
    missing = [name for name in wanted if name not in found]
    if missing:
        raise UnknownRoles(missing)
    return found


def granted_by(session: Session, names: Iterable[str]) -> set[str]:
    """Every permission the roles named grant together."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return set()
    rows = session.scalars(
        select(Permission.name)
        .join(RolePermission, RolePermission.permission_id == Permission.id)
        .join(Role, Role.id == RolePermission.role_id)
        .where(Role.name.in_(wanted))
    )
    return set(rows)


def others_holding(session: Session, org_id: uuid.UUID, permission: str, but: uuid.UUID) -> int:
    """How many members of `org_id` other than `but` hold `permission` there, by any of their roles. Taken under a
    lock on the organisation's roles until the transaction ends: two admins stepping down at once are decided one
    after the other, so they cannot both leave thinking the other stays."""
    session.execute(select(func.pg_advisory_xact_lock(_lock_key(org_id))))
    return (
        session.scalar(
            select(func.count(func.distinct(UserRole.user_id)))
            .join(RolePermission, RolePermission.role_id == UserRole.role_id)
            .join(Permission, Permission.id == RolePermission.permission_id)
            .where(UserRole.org_id == org_id, UserRole.user_id != but, Permission.name == permission)
        )
        or 0
    )


def _lock_key(org_id: uuid.UUID) -> int:
    """A signed 64-bit advisory lock key for an organisation's role changes."""
    return int.from_bytes(org_id.bytes[:8], "big", signed=True)


def roles_of(session: Session, org_id: uuid.UUID, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The role names each of `user_ids` holds in organisation `org_id`."""
    ids = list(user_ids)
    out: dict[uuid.UUID, list[str]] = {user_id: [] for user_id in ids}
    if not ids:
        return out
    rows = session.execute(
        select(UserRole.user_id, Role.name)
        .join(Role, Role.id == UserRole.role_id)
        .where(UserRole.org_id == org_id, UserRole.user_id.in_(ids))
        .order_by(Role.name)
    )
    for user_id, name in rows:
        out[user_id].append(name)
    return out


def replace_roles(session: Session, org_id: uuid.UUID, user_id: uuid.UUID, roles: dict[str, uuid.UUID]) -> None:
    """Make `roles` exactly the roles `user_id` holds in `org_id` (the user must be a member)."""
    session.execute(
        delete(UserRole).where(
            UserRole.org_id == org_id, UserRole.user_id == user_id, UserRole.role_id.not_in(list(roles.values()))
        )
    )
    for role_id in roles.values():
        session.execute(
            insert(UserRole)
            .values(id=uuid.uuid4(), user_id=user_id, org_id=org_id, role_id=role_id)
            .on_conflict_do_nothing(index_elements=[UserRole.user_id, UserRole.org_id, UserRole.role_id])
        )
