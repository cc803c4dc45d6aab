"""Re-issue dead intents whose configuration was wrong: rebuilt from the current strategy.

``dunning dlq replay`` republishes the dead body as it is, so an intent that died because its
strategy step named a template that does not exist dies again: the template name travels in the
message. Re-issuing rebuilds the intent with the template of its step in the strategy as it is
now (the locale stays the account's, which the strategy does not set) and keeps ``intent_id``.

Why the same id: the ledger sends an intent at most once, keyed on its id. The old and the new
body are then one intent with one row: whichever copy claims first decides, and a copy of the
old body still in flight can never add a second contact. A new id would make two intents of
one contact, and a later replay of a leftover old copy (after its template was added back, say)
could send both.

Per dead letter, in this order:

1. The ledger row is rewritten in one transaction: the new body, ``queued``, not yet published,
   and an audit record ``reissued`` (who, old and new template). Only an intent in ``dead``
   that never reached a provider is rewritten; one that was sent is obsolete (its dead copy is
   removed); anything else is left alone.
2. The new body is published to ``dunning.intents`` and the broker's confirm awaited, then the
   intent is marked published.
3. Only then is the dead copy acknowledged.

A crash after 1 leaves the intent queued and unpublished: the reconcile sweeper republishes it
from the ledger within a minute, and a second ``reissue`` finds the row already rewritten and
publishes it again (the ledger claim makes the extra copy harmless) before removing the dead one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from dunning.broker.base import Delivery, Publisher
from dunning.clock import Clock
from dunning.intents import ContactIntent, TemplateRef, encode_intent
from dunning.ledger import Ledger
from dunning.ledger.repairs import ReissueVerdict
from dunning.workers.dlq import replay_message, walk_dead_letters
from dunning.workers.dlq_letters import DeadLetter, DeadLetterFilter

__all__ = ["REISSUED_HEADER", "Reissue", "ReissueReport", "TemplateLookup", "reissue_dead_letters"]

log = structlog.get_logger(__name__)

#: Header of a re-issued copy: the template it replaced.
REISSUED_HEADER = "x-dunning-reissued-from"

#: The template an intent's step names now, or None and why not. The caller answers from the
#: strategy (:func:`dunning.producers.step_templates.template_now`): workers read no strategy.
TemplateLookup = Callable[[ContactIntent], tuple[TemplateRef | None, str]]


@dataclass(frozen=True)
class Reissue:
    """What happened (or, in a dry run, would happen) to one dead letter."""

    intent_id: str
    channel: str
    old_template: str
    new_template: str | None
    verdict: ReissueVerdict
    why: str = ""


@dataclass
class ReissueReport:
    items: list[Reissue] = field(default_factory=list)

    def count(self, verdict: ReissueVerdict) -> int:
        return sum(1 for item in self.items if item.verdict == verdict)


def reissue_dead_letters(
    publisher: Publisher,
    ledger: Ledger,
    template_now: TemplateLookup,
    flt: DeadLetterFilter,
    *,
    clock: Clock,
    operator: str,
    limit: int | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReissueReport:
    """Re-issue matching dead intents whose strategy step now names another template.

    A dead letter whose template is unchanged, that does not decode, or whose step left the
    strategy stays in the queue (reported as skipped, with why). ``dry_run`` changes nothing.
    Raises PublishError/BrokerError/LedgerError; what was done before stays done.
    """
    report = ReissueReport()
    seen: set[str] = set()

    def act(delivery: Delivery, letter: DeadLetter) -> bool:
        old = letter.intent
        if old is None:
            return False  # undecodable: nothing to rebuild (purge it after review)
        if old.intent_id in seen:
            return False  # a second dead copy of an intent handled in this run: next run
        seen.add(old.intent_id)
        template, why = template_now(old)
        if template is not None and template == old.template:
            why = f"template {old.template.name!r} is what the strategy still names"
            template = None
        item = Reissue(
            old.intent_id,
            letter.channel,
            old.template.name,
            None if template is None else template.name,
            "skipped",
            why,
        )
        if template is None:
            report.items.append(item)
            return False
        if dry_run:
            report.items.append(dataclasses.replace(item, verdict="reissued"))
            return False
        new = dataclasses.replace(old, template=template)
        now = clock.now()
        verdict, why = ledger.reissue(old, new, now=now, operator=operator)
        report.items.append(dataclasses.replace(item, verdict=verdict, why=why))
        if verdict == "skipped":
            return False
        if verdict == "obsolete":
            ledger.audit(old.intent_id, "dlq_obsolete", now=now, detail={"reason": letter.reason})
        else:
            message = replay_message(letter)
            headers = {**message.headers, REISSUED_HEADER: old.template.name}
            reissued = dataclasses.replace(message, body=encode_intent(new), headers=headers)
            publisher.publish_many([reissued])  # returns after the broker's confirm
            ledger.mark_published([old.intent_id], now=clock.now())
            log.info(
                "dlq.reissued",
                intent_id=old.intent_id,
                from_template=old.template.name,
                to_template=template.name,
            )
        publisher.ack(delivery)
        if progress is not None:
            progress(1)
        return True

    walk_dead_letters(publisher, flt, limit, act)
    return report
