"""`GET /health`: public liveness and database reachability."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.api.schemas import Health

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    openapi_extra={"security": []},
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
def health(services: ServicesDep) -> JSONResponse:
    """Public: `{"status": "ok"}` when the app and its database answer."""
    if not services.database.ping():
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
