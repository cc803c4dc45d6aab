"""The visit channel's adapter: a claimed, gated visit intent becomes one field task.

The worker pipeline does what it does for every channel (decode, claim with the gate, record,
ack); "sending" a visit is creating its task in the ledger and choosing its team. The task is
keyed by the intent id, so a redelivered message finds the task it made and creates no other.
The task's window is the pack's visit window on the local day of the claim, cut short by the
intent's expiry; the gate has already held the intent until the contact window opened.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import structlog

from dunning.channels.base import SendResult
from dunning.clock import Clock
from dunning.compliance.packs import PackSet
from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.visit_store import VisitTask
from dunning.templates import TemplateStore, template_context
from dunning.visits.sweep import assign

__all__ = ["VisitChannel", "task_for"]

log = structlog.get_logger(__name__)

#: Highest priority a task can have; days past due up to this order the teams' lists.
MAX_PRIORITY = 999


class VisitChannel:
    """Creates and staffs field tasks; see the module docstring."""

    channel = Channel.VISIT

    def __init__(self, ledger: Ledger, packs: PackSet, templates: Path, clock: Clock) -> None:
        self._ledger = ledger
        self._packs = packs
        self._templates = TemplateStore(templates)
        self._clock = clock

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        return await asyncio.to_thread(self._create, intent, self._clock.now())

    def _create(self, intent: ContactIntent, now: datetime) -> SendResult:
        task = task_for(intent, self._packs, self._templates, now)
        stored, created = self._ledger.create_visit_task(task)
        staffed = assign(self._ledger, self._packs, stored, now)
        log.info(
            "visit.task_created" if created else "visit.task_found",
            task_id=stored.task_id, state=staffed.state, territory=stored.territory,
        )  # fmt: skip
        return SendResult(
            provider_ref=stored.task_id,
            status=staffed.state,
            detail={"territory": stored.territory, "team_size": len(staffed.team)},
        )

    async def aclose(self) -> None:
        """Nothing to release: the ledger belongs to the worker."""


def task_for(
    intent: ContactIntent, packs: PackSet, templates: TemplateStore, now: datetime
) -> VisitTask:
    """The field task of ``intent`` claimed at ``now``; raises PermanentChannelError when its
    pack has no visit rules or its window has closed, ConfigError for a broken brief."""
    pack = packs.select(intent.jurisdiction, now)
    rules = None if pack is None else pack.visit
    if rules is None:
        raise PermanentChannelError(f"no [pack.visit] rules for jurisdiction {intent.jurisdiction}")
    address = intent.recipient.postal_address
    if address is None:  # the contract requires one for a visit; kept for the type checker
        raise PermanentChannelError("a visit intent needs a postal address")
    opens, closes = rules.local_window(now, intent.zone)
    closes = min(closes, intent.expires_at)
    if closes <= now:
        raise PermanentChannelError(
            f"{rules.window_rule_id}: the visit window {rules.start:%H:%M}-{rules.end:%H:%M} "
            "local has closed for today"
        )
    window = {"window_start": f"{rules.start:%H:%M}", "window_end": f"{rules.end:%H:%M}",
              "min_collectors": rules.min_collectors}  # fmt: skip
    try:
        brief = templates.render(
            intent.template.locale, Channel.VISIT.value, intent.template.name, "txt",
            template_context(intent, window),
        )  # fmt: skip
    except ConfigError as exc:
        raise PermanentChannelError(f"visit brief: {exc}") from exc
    lines = [
        *address.lines,
        " ".join(x for x in (address.postal_code, address.city, address.region) if x),
    ]
    return VisitTask(
        task_id=intent.intent_id,
        account_id=intent.account_id,
        person_id=intent.person_id,
        debt_id=intent.debt_id,
        jurisdiction=intent.jurisdiction,
        territory=address.territory,
        address="\n".join(lines),
        latitude=address.latitude,
        longitude=address.longitude,
        timezone=intent.timezone,
        window_opens_at=max(opens, now),
        window_closes_at=closes,
        priority=min(max(intent.days_past_due, 0), MAX_PRIORITY),
        state="waiting",
        reason="not yet assigned",
        team=(),
        brief=brief,
        created_at=now,
        updated_at=now,
    )
