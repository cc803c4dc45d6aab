"""The receipts feed while RabbitMQ is unreachable: the webhook keeps answering callbacks 200,
their receipts wait in the ledger unpublished, and reach ``dunning.receipts.feed`` once the
broker is back. The webhook reaches the real RabbitMQ through a TCP relay the test cuts (every
connection dropped, new ones refused) and restores (``tests/integration/broker_relay.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from dunning.broker import open_publisher
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import RECEIPTS_FEED_QUEUE, build_topology
from dunning.ledger import Ledger
from dunning.ledger.receipts_outbox import unpublished_count
from dunning.receipts.app import create_app
from dunning.receipts.feed import ReceiptFeed
from dunning.receipts.server import bind, serving
from tests.factories import T0
from tests.integration.broker_relay import Relay
from tests.integration.twilio_support import closed_port, settings_for
from tests.integration.webhook_support import CONFIG, Hook
from tests.services import rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.integration


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not before the deadline"
        await asyncio.sleep(0.02)  # poll interval of the condition


@asynccontextmanager
async def webhook_through(relay: Relay, tmp_path: Path) -> AsyncIterator[Hook]:
    """The webhook app publishing its receipts through ``relay``, retrying every 0.05-0.2 s."""
    sock, url = bind()
    settings = settings_for(f"http://127.0.0.1:{closed_port()}", url, config_dir=CONFIG, now=T0)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    feed = ReceiptFeed(
        ledger,
        settings.clock(),
        lambda: open_publisher(relay.url),
        retry_initial_s=0.05,
        retry_max_s=0.2,
    )
    try:
        app = create_app(settings, ledger, feed=feed)
        async with serving(app, sock), httpx.AsyncClient(timeout=10) as http:
            yield Hook(url, app, ledger, settings, http)
    finally:
        ledger.close()


def take_feed(broker_url: str) -> list[str]:
    reader = RabbitPublisher(broker_url)
    ids: list[str] = []
    try:
        while (delivery := reader.get(RECEIPTS_FEED_QUEUE)) is not None:
            ids.append(str(delivery.message_id))
            reader.ack(delivery)
    finally:
        reader.close()
    return ids


async def status(hook: Hook, sid: str) -> int:
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    return (await hook.post_signed("/twilio/status", params)).status_code


def declared_vhost() -> tuple[str, Relay]:
    """A vhost with the topology declared, and a relay to its broker (not listening yet)."""
    broker_url = rabbitmq_vhost_url("dunning-feed-broker-down")
    reset_rabbitmq_topology(broker_url)
    admin = RabbitPublisher(broker_url)
    try:
        admin.declare(build_topology())
    finally:
        admin.close()
    return broker_url, Relay(broker_url)


async def test_receipts_wait_for_a_broker_that_is_down_and_are_published_after(
    tmp_path: Path,
) -> None:
    broker_url, relay = declared_vhost()
    await relay.restore()
    try:
        async with webhook_through(relay, tmp_path) as hook:
            feed: ReceiptFeed = hook.app.state.receipts.feed
            before = [f"SM{i:032d}" for i in range(3)]
            assert [await status(hook, sid) for sid in before] == [200] * 3
            await hook.app.state.receipts.drain()  # connected and publishing

            await relay.cut()
            during = [f"SM{i:032d}" for i in range(3, 23)]
            with capture_logs() as logs:
                assert [await status(hook, sid) for sid in during] == [200] * 20
                failed_before = feed.failed_passes
                await until(lambda: feed.failed_passes >= failed_before + 2, "retries failed")
            assert unpublished_count(hook.ledger._engine) == 20
            assert len(take_feed(broker_url)) == 3  # only what was published before the cut
            assert any(e["event"] == "receipts.publish_failed" for e in logs)

            await relay.restore()
            await hook.app.state.receipts.drain(30)
            assert unpublished_count(hook.ledger._engine) == 0
            published = take_feed(broker_url)
    finally:
        await relay.cut()
    assert sorted(published) == sorted(f"{sid}:delivered" for sid in during)
    assert feed.failures == 0


async def test_the_webhook_starts_and_answers_with_the_broker_down(tmp_path: Path) -> None:
    broker_url, relay = declared_vhost()  # the relay is not listening: the broker is down
    try:
        async with webhook_through(relay, tmp_path) as hook:
            sids = [f"SM{i:032d}" for i in range(5)]
            assert [await status(hook, sid) for sid in sids] == [200] * 5
            feed: ReceiptFeed = hook.app.state.receipts.feed
            await until(lambda: feed.failed_passes >= 2, "retries failed")
            assert unpublished_count(hook.ledger._engine) == 5
            await relay.restore()
            await hook.app.state.receipts.drain(30)
    finally:
        await relay.cut()
    assert sorted(take_feed(broker_url)) == sorted(f"{sid}:delivered" for sid in sids)
