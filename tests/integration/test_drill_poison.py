"""Poison drill: bad messages among good ones on real RabbitMQ, one worker subprocess.

Malformed JSON, the wrong schema, an unknown channel, a 10 MB body, a number the provider
refuses (21211) and an intent whose template does not exist (the adapter raises ConfigError):
each ends where it belongs with its reason, and every good message is still delivered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import INTENTS_EXCHANGE, UNROUTED_QUEUE, dead_queue
from dunning.intents import Channel, TemplateRef, encode_intent
from dunning.workers import headers as h
from dunning.workers.dlq import DeadLetterFilter, find_dead_letter, summarize_dead_letters
from tests.integration.drill_support import drill, drill_intents

pytestmark = pytest.mark.integration

GOOD = 200
REFUSED_NUMBER = "+8613900000999"


async def test_poison_messages_dead_letter_with_reasons_and_good_ones_flow(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    async with drill("poison", tmp_path) as d:
        good = drill_intents(GOOD, tag=f"poison{time.time_ns()}")
        bad_phone, bad_template = drill_intents(2, tag=f"bad{time.time_ns()}")
        bad_phone = dataclasses.replace(
            bad_phone, recipient=dataclasses.replace(bad_phone.recipient, phone=REFUSED_NUMBER)
        )
        bad_template = dataclasses.replace(
            bad_template, template=TemplateRef(name="no_such_template", locale="zh-CN")
        )
        d.standin.behaviour.failure_numbers[REFUSED_NUMBER] = 21211
        schema_body = json.dumps({"schema": "dunning.intent/1", "hello": "world"}).encode()
        huge_body = b'{"schema": "dunning.intent/1", "pad": "' + b"x" * (10 * 2**20) + b'"}'
        poison = [
            ("malformed", "sms", b'{"schema": "dunning.intent/1", '),
            ("schema", "sms", schema_body),
            ("unknown-channel", "fax", encode_intent(good[0])),
            ("huge", "sms", huge_body),
            ("phone", "sms", encode_intent(bad_phone)),
            ("template", "sms", encode_intent(bad_template)),
        ]
        await d.start_webhook()
        d.worker()
        await d.publish(good[: GOOD // 2])

        def publish_poison() -> None:
            publisher = RabbitPublisher(d.broker_url)
            try:
                publisher.publish_many(
                    OutboundMessage(INTENTS_EXCHANGE, key, body, {}, f"poison-{name}")
                    for name, key, body in poison
                )
            finally:
                publisher.close()

        await asyncio.to_thread(publish_poison)
        await d.publish(good[GOOD // 2 :])
        states = await d.wait_until_final([i.intent_id for i in good], timeout_s=90)
        await d.wait_for_depth(dead_queue(Channel.SMS), 5, timeout_s=60)
        unrouted = await d.queue_depth(UNROUTED_QUEUE)

        def read_dlq() -> tuple[object, dict[str, object]]:
            publisher = RabbitPublisher(d.broker_url)
            try:
                flt = DeadLetterFilter(channels=(Channel.SMS,))
                summary = summarize_dead_letters(publisher, flt)
                found = {
                    name: find_dead_letter(publisher, f"poison-{name}", flt)
                    for name in ("malformed", "schema", "huge")
                }
                found["phone"] = find_dead_letter(publisher, bad_phone.intent_id, flt)
                found["template"] = find_dead_letter(publisher, bad_template.intent_id, flt)
                return summary, found
            finally:
                publisher.close()

        summary, found = await asyncio.to_thread(read_dlq)
        creates = d.creates()

    print(
        f"\npoison drill: {GOOD} good + {len(poison)} poison, dead {summary.total}, "  # type: ignore[attr-defined]
        f"unrouted {unrouted}, {time.monotonic() - started:.1f}s"
    )
    assert set(states.values()) <= {"sent", "delivered"}
    assert all(creates[i.intent_id] == 1 for i in good)
    assert unrouted == 1
    assert summary.total == 5  # type: ignore[attr-defined]
    letters = dict(found)
    assert all(letter is not None for letter in letters.values()), letters
    for name in ("malformed", "schema", "huge"):
        assert letters[name].error_class == "DecodeError", name  # type: ignore[union-attr]
    assert letters["huge"].body == huge_body  # type: ignore[union-attr]  # original body kept
    assert letters["phone"].headers[h.PROVIDER_CODE] == "21211"  # type: ignore[union-attr]
    assert letters["template"].error_class == "ConfigError"  # type: ignore[union-attr]
    assert creates[bad_phone.intent_id] == 0
    assert creates[bad_template.intent_id] == 0
