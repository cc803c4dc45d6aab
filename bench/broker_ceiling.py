"""Broker ceiling: raw pika (asyncio adapter) publishing with pipelined confirms, then consuming
with acks, on one quorum queue of the local RabbitMQ; messages the size of an encoded intent.

No dunning code on the path: this is the most one Python process can move through the broker,
the upper bound for a worker process.

    .venv/bin/python bench/broker_ceiling.py --count 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import pika
from pika.adapters.asyncio_connection import AsyncioConnection

from dunning.intents import encode_intent
from dunning.loadtest.generator import IntentMix, SyntheticIntents

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


async def run(count: int, window: int, prefetch: int) -> dict[str, float]:  # noqa: PLR0915  one linear script
    body = encode_intent(SyntheticIntents(IntentMix()).make(1, now=datetime.now(UTC))[0])
    queue = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[AsyncioConnection] = loop.create_future()
    conn = AsyncioConnection(
        pika.URLParameters(URL),
        on_open_callback=opened.set_result,
        on_open_error_callback=lambda _c, e: opened.set_exception(RuntimeError(e)),
        custom_ioloop=loop,
    )
    await opened
    ch_ready: asyncio.Future[object] = loop.create_future()
    conn.channel(on_open_callback=ch_ready.set_result)
    ch = await ch_ready
    declared: asyncio.Future[object] = loop.create_future()
    ch.queue_declare(  # type: ignore[attr-defined]
        queue, durable=True, arguments={"x-queue-type": "quorum"}, callback=declared.set_result
    )
    await declared
    confirmed = 0
    done_publishing = loop.create_future()
    acked_to = 0

    def on_confirm(frame: object) -> None:
        nonlocal confirmed, acked_to
        method = frame.method  # type: ignore[attr-defined]
        tag = method.delivery_tag
        confirmed += tag - acked_to if method.multiple else 1
        acked_to = max(acked_to, tag)
        if confirmed >= count and not done_publishing.done():
            done_publishing.set_result(None)

    selected: asyncio.Future[object] = loop.create_future()
    ch.confirm_delivery(on_confirm, callback=selected.set_result)  # type: ignore[attr-defined]
    await selected
    props = pika.BasicProperties(delivery_mode=2)
    started = time.perf_counter()
    sent = 0
    while sent < count:
        # keep at most `window` unconfirmed messages in flight (pipelined confirms)
        while sent - confirmed < window and sent < count:
            ch.basic_publish("", queue, body, props)  # type: ignore[attr-defined]
            sent += 1
        await asyncio.sleep(0)
    await done_publishing
    publish_s = time.perf_counter() - started

    consumed = 0
    done_consuming = loop.create_future()

    def on_message(channel: object, method: object, _props: object, _body: bytes) -> None:
        nonlocal consumed
        channel.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
        consumed += 1
        if consumed >= count and not done_consuming.done():
            done_consuming.set_result(None)

    ch.basic_qos(prefetch_count=prefetch)  # type: ignore[attr-defined]
    started = time.perf_counter()
    ch.basic_consume(queue, on_message)  # type: ignore[attr-defined]
    await done_consuming
    consume_s = time.perf_counter() - started
    deleted: asyncio.Future[object] = loop.create_future()
    ch.queue_delete(queue, callback=deleted.set_result)  # type: ignore[attr-defined]
    await deleted
    conn.close()
    return {
        "count": count,
        "message_bytes": len(body),
        "publish_confirmed_per_s": round(count / publish_s),
        "consume_acked_per_s": round(count / consume_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=1000, help="unconfirmed publishes")
    parser.add_argument("--prefetch", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.count, args.window, args.prefetch))))


if __name__ == "__main__":
    main()
