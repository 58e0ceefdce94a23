"""One router per resource; `api_router` gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import contacts, deals, health, invites, me, members, notes, roles, webhooks

__all__ = ["api_router"]

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(me.router)
api_router.include_router(roles.router)
api_router.include_router(members.router)
api_router.include_router(invites.router)
api_router.include_router(contacts.router)
api_router.include_router(deals.router)
api_router.include_router(notes.router)
api_router.include_router(webhooks.router)
