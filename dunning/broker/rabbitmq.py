"""RabbitMQ: pika asyncio for workers (``rabbitmq_async``), kombu for publishers and admin
tools (``rabbitmq_sync``), and what both share: turning RabbitMQ's refusals into our errors.

RabbitMQ reports a re-declaration with other arguments as channel error 406 with a text like
``inequivalent arg 'x-delivery-limit' for queue 'dunning.sms' in vhost '/': received the value
'3' of type 'signedint' but current is the value '5' of type 'signedint'``;
:func:`mismatch_from_reply` parses it into a :class:`TopologyMismatchError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dunning.errors import BrokerError, TopologyMismatchError

__all__ = ["PRECONDITION_FAILED", "mismatch_from_reply", "plain_headers"]

PRECONDITION_FAILED = 406
_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for (?:queue|exchange) '(?P<name>[^']+)'"
    r" in vhost '[^']*': received (?P<wanted>.+?) but current is (?P<current>.+)$"
)
_DEAD_QUEUE = re.compile(r"^dunning\.[a-z]+\.dead$")
_VALUE = re.compile(r"^the value '(?P<value>.*)' of type '[^']+'$")


def _value(text: str) -> object:
    match = _VALUE.match(text.strip())
    if match:
        return match.group("value")
    return None if text.strip() == "none" else text.strip().strip("'")


def mismatch_from_reply(reply_text: str) -> BrokerError:
    """TopologyMismatchError naming the queue/exchange and argument; BrokerError otherwise."""
    match = _INEQUIVALENT.search(reply_text)
    if match is None:
        return BrokerError(f"declare refused: {reply_text}")
    name, argument = match.group("name"), match.group("arg")
    current, wanted = _value(match.group("current")), _value(match.group("wanted"))
    if argument == "x-queue-type" and _DEAD_QUEUE.match(name) and wanted == "classic":
        # A dead-letter queue from before they were classic: the admin command moves it.
        fix = "run `dunning topology declare` once: it moves its dead letters to a classic queue"
        return TopologyMismatchError(name, argument, current, wanted, fix=fix)
    return TopologyMismatchError(name, argument, current, wanted)


def plain_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """AMQP headers as plain Python values (bytes that are text become str)."""
    return {str(k): _plain(v) for k, v in (headers or {}).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if isinstance(value, Mapping):
        return plain_headers(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
