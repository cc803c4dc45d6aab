"""Roles and what each may do in the console.

A page or action asks for one :class:`Permission`; a role is a set of permissions. Adding a
role (or giving one a new permission) is one line in :data:`ROLES`; adding a page is one
:class:`~dunning.console.sections.Section` naming the permission it needs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dunning.ledger.visit_store import Collector

__all__ = ["ROLES", "Permission", "check_collector_link", "check_role", "permissions_of"]


class Permission(enum.StrEnum):
    VIEW = "view"  # queues, dead-letter counts, timelines with personal data masked
    SEE_PII = "see_pii"  # phone numbers, emails, names, addresses, letter PDFs
    ACT = "act"  # replay and purge dead letters, verify disputes
    MANAGE_USERS = "manage_users"  # add, change and disable console users; read the audit log
    FIELD_VISITS = "field_visits"  # the field-visit pages of collectors


ROLES: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.VIEW}),
    "operator": frozenset({Permission.VIEW, Permission.SEE_PII, Permission.ACT}),
    # An admin also sees the field-visit pages (every team's tasks), but records no outcome.
    "admin": frozenset(
        {
            Permission.VIEW,
            Permission.SEE_PII,
            Permission.ACT,
            Permission.MANAGE_USERS,
            Permission.FIELD_VISITS,
        }
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


def check_collector_link(role: str, collector_id: str | None, known: Iterable[Collector]) -> None:
    """A ``collector`` login names one active collector of ``known``; no other role names any.

    ValueError saying which, so `dunning console user add` and the users page refuse alike.
    """
    if role != "collector":
        if collector_id:
            raise ValueError(f"a collector id is for role collector, not {role}")
        return
    if not collector_id:
        raise ValueError("role collector needs a collector id (see `dunning collectors list`)")
    found = {c.collector_id: c for c in known}.get(collector_id)
    if found is None:
        raise ValueError(f"collector: no collector {collector_id!r} in the collectors table")
    if found.retired_at is not None:
        raise ValueError(f"collector: collector {collector_id!r} is retired")
