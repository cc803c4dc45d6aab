"""The console's sections: one entry per page group, in navigation order.

A section is a title, a mount path, the permission it needs to appear in the navigation, and
its routes. A new page group (the collectors' field visits, say) is a module with a
``section()`` function added to :data:`SECTION_FACTORIES`; its endpoints use
:func:`dunning.console.web.page` and :func:`~dunning.console.web.action`, which check the
permission (and CSRF) on every request whatever the navigation shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from dunning.console.roles import Permission

if TYPE_CHECKING:
    from dunning.console.web import SignedIn

__all__ = ["SECTION_FACTORIES", "Section", "all_sections", "visible_sections"]


@dataclass(frozen=True)
class Section:
    title: str
    path: str  # the section's first page, and the prefix of its routes
    permission: Permission
    routes: Sequence[BaseRoute]


def _overview() -> Section:
    from dunning.console.pages import overview

    return overview.section()


def _dead_letters() -> Section:
    from dunning.console.pages import dead_letters

    return dead_letters.section()


def _people() -> Section:
    from dunning.console.pages import people

    return people.section()


def _today() -> Section:
    from dunning.console.pages import today

    return today.section()


def _reports() -> Section:
    from dunning.console.pages import reports

    return reports.section()


def _field() -> Section:
    from dunning.console.pages import field

    return field.section()


def _admin() -> Section:
    from dunning.console.pages import admin

    return admin.section()


#: Navigation order. Append a factory to add a section.
SECTION_FACTORIES: list[Callable[[], Section]] = [
    _overview,
    _dead_letters,
    _people,
    _today,
    _reports,
    _field,
    _admin,
]


def all_sections() -> list[Section]:
    return [factory() for factory in SECTION_FACTORIES]


def visible_sections(user: SignedIn | None) -> list[Section]:
    if user is None:
        return []
    return [s for s in all_sections() if user.can(s.permission)]
