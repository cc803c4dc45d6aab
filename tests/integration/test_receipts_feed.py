"""The receipts feed on a real RabbitMQ: `dunning topology declare` gives dunning.receipts a
queue, so every receipt the webhook publishes is routable and waits in dunning.receipts.feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from typer.testing import CliRunner

from dunning.broker import open_publisher
from dunning.broker.topology import RECEIPTS_FEED_QUEUE
from dunning.cli.main import app
from dunning.clock import ManualClock
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.receipts.service import RECEIPT_SCHEMA, ReceiptService
from tests.services import rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points structlog at the runner's stream, which closes after each invoke."""
    yield
    structlog.reset_defaults()


async def test_a_receipt_published_by_the_webhook_lands_in_the_feed(tmp_path: Path) -> None:
    url = rabbitmq_vhost_url("dunning-receipts-feed")
    reset_rabbitmq_topology(url)
    declared = CliRunner().invoke(app, ["topology", "declare", "--broker", url])
    assert declared.exit_code == 0, declared.output
    structlog.reset_defaults()

    # As the webhook runs with DUNNING_DECLARE_TOPOLOGY=false: it relies on the declare above.
    publisher = open_publisher(url)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    service = ReceiptService(ledger, ManualClock(T0), publisher)
    try:
        with capture_logs() as logs:
            await service.record(Channel.SMS, "SM" + "1" * 32, "delivered", intent_id=None, raw={})
            await service.drain()
        assert [e for e in logs if e["event"] == "receipts.publish_failed"] == []
        delivery = publisher.get(RECEIPTS_FEED_QUEUE)
        assert delivery is not None
        publisher.ack(delivery)
        assert publisher.get(RECEIPTS_FEED_QUEUE) is None  # published once
    finally:
        publisher.close()
        ledger.close()
    assert (delivery.exchange, delivery.routing_key) == ("dunning.receipts", "sms.delivered")
    body = json.loads(delivery.body)
    assert body["schema"] == RECEIPT_SCHEMA
    assert (body["channel"], body["status"], body["provider_ref"]) == (
        "sms",
        "delivered",
        "SM" + "1" * 32,
    )
    assert body["received_at"] == T0.isoformat()
