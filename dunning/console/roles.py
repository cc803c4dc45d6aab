"""Roles and what each may do in the console.

A page or action asks for one :class:`Permission`; a role is a set of permissions. Adding a
role (or giving one a new permission) is one line in :data:`ROLES`; adding a page is one
:class:`~dunning.console.sections.Section` naming the permission it needs.
"""

from __future__ import annotations

import enum

__all__ = ["ROLES", "Permission", "check_role", "permissions_of"]


class Permission(enum.StrEnum):
    VIEW = "view"  # queues, dead-letter counts, timelines with personal data masked
    SEE_PII = "see_pii"  # phone numbers, emails, names, addresses, letter PDFs
    ACT = "act"  # replay and purge dead letters, verify disputes
    MANAGE_USERS = "manage_users"  # add, change and disable console users; read the audit log
    FIELD_VISITS = "field_visits"  # the field-visit pages of collectors


ROLES: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.VIEW}),
    "operator": frozenset({Permission.VIEW, Permission.SEE_PII, Permission.ACT}),
    "admin": frozenset(
        {Permission.VIEW, Permission.SEE_PII, Permission.ACT, Permission.MANAGE_USERS}
    ),
    # Collectors visit people in the field: they see only the pages that ask for FIELD_VISITS.
    "collector": frozenset({Permission.FIELD_VISITS}),
}


def check_role(role: str) -> str:
    """``role`` if it is known; ValueError listing the roles otherwise."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def permissions_of(role: str) -> frozenset[Permission]:
    """A role's permissions; an unknown role (a row written by a newer version) has none."""
    return ROLES.get(role, frozenset())
