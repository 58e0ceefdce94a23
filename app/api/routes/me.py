"""`GET /api/me`: who the caller is, in which organisation, with which roles and permissions."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CurrentPrincipal
from app.api.schemas import Me, OrganisationOut, UserOut, error_responses

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["me"])


@router.get(
    "/me",
    responses=error_responses(401, 403),
    openapi_extra={"x-iam-self": True},
)
async def read_me(principal: CurrentPrincipal) -> Me:
    """The signed-in caller (provisioned on a first login), their active organisation, roles and permissions.
    (Nothing here waits on I/O: it runs on the event loop, without a trip to a worker thread.)"""
    identity = principal.identity
    return Me(
        user=UserOut(id=identity.user_id, external_id=identity.external_id),
        organisation=OrganisationOut(
            id=identity.organisation.id,
            external_id=identity.organisation.external_id,
            name=identity.organisation.name,
        ),
        roles=list(principal.roles),
        permissions=list(principal.permissions),
    )
