"""Org-scoped repositories: the only way business rows are read or written (see `base`)."""

from __future__ import annotations

from app.repository.base import OrgScopedRepository, Page
from app.repository.crm import CONTACT_FIELDS, DEAL_FIELDS, ContactRepository, DealRepository, NoteRepository
from app.repository.invites import InviteRepository, InviteRow, Revoked
from app.repository.members import MemberRepository, MemberRow

__all__ = [
    "CONTACT_FIELDS",
    "DEAL_FIELDS",
    "ContactRepository",
    "DealRepository",
    "InviteRepository",
    "InviteRow",
    "MemberRepository",
    "MemberRow",
    "NoteRepository",
    "OrgScopedRepository",
    "Page",
    "Revoked",
]
