"""The ASGI app, built by `create_app(settings)`: nothing (engine, settings, keys) is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from app.admission import Admission
from app.api.routes import api_router
from app.api.schemas import ROLE_NAME_MARK
from app.auth.keys import key_source
from app.auth.policy import PolicyEngine
from app.auth.token import TokenVerifier
from app.config import Settings
from app.db import Database
from app.errors import install_error_handlers
from app.faults import Fault
from app.governance import role_catalogue
from app.pages import router as pages_router
from app.pages import template_environment
from app.services import Services

__all__ = ["create_app"]

log = logging.getLogger("app")


def create_app(settings: Settings) -> FastAPI:
    """The app for `settings`: API, pages, error handling, admission (`app.admission`: no more requests served at once
    than there are connections); the database engine is disposed on shutdown."""
    services = Services(
        settings=settings,
        database=Database(
            settings.database_url, app_role=settings.database_app_role, pool_size=settings.database_pool_size
        ),
        verifier=TokenVerifier(
            keys=key_source(
                jwt_key=settings.clerk_jwt_key,
                jwks_url=settings.clerk_jwks_url,
                refetch_every_unknown_kid=settings.has(Fault.JWKS_REFETCH_EVERY_UNKNOWN_KID),
            ),
            issuer=settings.clerk_issuer,
            authorized_parties=settings.clerk_authorized_parties,
            faults=settings.app_faults,
        ),
        policy=PolicyEngine(
            default_allow=settings.has(Fault.DEFAULT_ALLOW),
            viewer_can_write=settings.has(Fault.VIEWER_CAN_WRITE),
        ),
        templates=template_environment(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        faults = ",".join(sorted(settings.app_faults)) or "none"
        log.info("app started mode=%s faults=%s", settings.app_mode.value, faults)
        try:
            yield
        finally:
            services.database.dispose()

    app = FastAPI(
        title="IAM reference app",
        version="0.1.0",
        description="A multi-tenant CRM that signs users in with Clerk: the reference target of iam-harness.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(
        Admission,
        slots=services.database.capacity,
        queue_limit=settings.app_queue_limit,
        queue_seconds=settings.app_queue_seconds,
    )
    install_error_handlers(
        app,
        leak_database_errors=settings.has(Fault.SQL_ERROR_LEAKS),
        log_refusals=not settings.has(Fault.REFUSALS_NOT_LOGGED),
    )
    app.include_router(api_router)
    app.include_router(pages_router)

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, with the role catalogue's names as the enum of every role-name field."""
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        try:
            with services.database.session() as session:
                names = [role.name for role in role_catalogue(session)]
        except SQLAlchemyError as exc:  # the schema stays valid without them
            log.warning("role names left out of the schema: %s", type(exc).__name__)
            names = []
        _enumerate_roles(schema, names)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _enumerate_roles(node: Any, names: list[str]) -> None:
    """Replace each role-name mark with the names (or drop it, when there are none)."""
    if isinstance(node, dict):
        if node.pop(ROLE_NAME_MARK, False) and names:
            node["enum"] = names
        for value in node.values():
            _enumerate_roles(value, names)
    elif isinstance(node, list):
        for value in node:
            _enumerate_roles(value, names)
