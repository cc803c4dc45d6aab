"""How a worker gives a message back when processing it failed, without spending an attempt.

RabbitMQ counts every return of a message to a quorum queue against ``x-delivery-limit``: a
``basic.reject`` or ``basic.nack`` with requeue, and (measured on 3.10) a closed channel or
connection with the message unacked. Only 4.3 stops counting ``nack``. So a message that failed
because the ledger, Redis or the broker did is never requeued: the worker **parks** it, i.e.
publishes a copy through a delay queue (with the publisher confirm) and then acks the original.
The copy comes back to the work queue after the hop as a fresh delivery, with its attempt
header kept and its queue-side delivery count at zero.

A message that keeps failing while every infrastructure check passes is the message's own
fault (a value the database refuses, a bug): it is dead-lettered by the worker with the real
error class and reason, not left for the delivery limit to kill as ``delivery_limit``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dunning.broker.base import AsyncBroker, Delivery, OutboundMessage
from dunning.broker.topology import DEAD_LETTER_EXCHANGE, delay_exchange, delay_hop_s
from dunning.intents import Channel
from dunning.workers import headers as h

__all__ = ["dead_letter_failed", "park"]

# Queue-side bookkeeping that must not travel with the copy: x-death would grow with every hop,
# and a stale x-delivery-count would misreport the copy's history.
_QUEUE_HEADERS = ("x-death", "x-delivery-count", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason")  # fmt: skip


#: Like the reason header: enough to diagnose, bounded so a huge message cannot bloat the letter.
_DETAIL_MAX = 1000


def _copy_headers(delivery: Delivery) -> dict[str, Any]:
    return {k: v for k, v in delivery.headers.items() if k not in _QUEUE_HEADERS}


async def park(broker: AsyncBroker, delivery: Delivery, channel: Channel, wait_s: float) -> None:
    """Publish a copy of ``delivery`` through the delay queue that fits ``wait_s``; the caller
    acks the original once this returns. Raises BrokerError when the copy was not confirmed.
    """
    await broker.publish(
        OutboundMessage(
            exchange=delay_exchange(delay_hop_s(wait_s)),
            routing_key=channel.value,
            body=delivery.body,
            headers=_copy_headers(delivery),
            message_id=delivery.message_id,
        )
    )


async def dead_letter_failed(
    broker: AsyncBroker,
    delivery: Delivery,
    channel: Channel,
    error: BaseException,
    *,
    now: datetime,
) -> str:
    """Publish ``delivery`` to the dead-letter exchange with ``error`` as its cause; returns the
    reason. The caller acks the original once this returns (raises BrokerError otherwise).

    The reason names the error's class only, so dead letters of one cause group under one
    reason (``dunning dlq list``); the error's text, which differs per message, goes into
    ``x-dunning-error-detail``. The ledger is not written: it is what failed for this message.
    The intent keeps its state and ``dunning dlq replay`` sends it once the cause is fixed.
    """
    reason = f"processing failed: {type(error).__name__}"
    attempt = delivery.headers.get(h.ATTEMPT)
    headers = h.dead_letter_headers(
        _copy_headers(delivery),
        error_class=type(error).__name__,
        reason=reason,
        provider_code=None,
        attempts=attempt if isinstance(attempt, int) else 0,
        now=now,
        queue=delivery.queue,
    )
    headers[h.ERROR_DETAIL] = str(error)[:_DETAIL_MAX]
    await broker.publish(
        OutboundMessage(
            exchange=DEAD_LETTER_EXCHANGE,
            routing_key=channel.value,
            body=delivery.body,
            headers=headers,
            message_id=delivery.message_id,
        )
    )
    return reason
