"""`GET /api/roles`: the governance roles and what each grants."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RolesReader, SessionDep
from app.api.schemas import RoleOut, error_responses
from app.governance import role_catalogue

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["roles"])


@router.get("/roles", responses=error_responses(401, 403))
def list_roles(principal: RolesReader, session: SessionDep) -> list[RoleOut]:
    """Every role with its permissions (needs `roles:read`)."""
    return [RoleOut(name=role.name, permissions=list(role.permissions)) for role in role_catalogue(session)]
