"""The broker message of a contact intent, built the same way by every component that
publishes one: the evaluator, the reconcile sweeper that re-publishes, the load test.

Routed on ``dunning.intents`` by channel; the intent id is the message id and the trace id
travels in a header.
"""

from __future__ import annotations

from dunning.broker.base import OutboundMessage
from dunning.broker.topology import INTENTS_EXCHANGE
from dunning.intents import ContactIntent, encode_intent

__all__ = ["TRACE_HEADER", "intent_message"]

TRACE_HEADER = "x-dunning-trace-id"


def intent_message(intent: ContactIntent) -> OutboundMessage:
    """The broker message for ``intent``: routed by channel, id and trace id in properties."""
    return OutboundMessage(
        exchange=INTENTS_EXCHANGE,
        routing_key=intent.channel.value,
        body=encode_intent(intent),
        headers={TRACE_HEADER: intent.trace_id},
        message_id=intent.intent_id,
    )
