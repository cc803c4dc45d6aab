"""Put the webhook together from settings: what `dunning webhook` serves.

The settings are checked before anything is opened; then the ledger, and (with a RabbitMQ
broker) the receipts feed, which connects only when there is something to publish and again
after a broker failure, so a broker that is down does not stop the webhook answering.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette

from dunning.broker import open_publisher, topology_for
from dunning.ledger import Ledger
from dunning.receipts.app import check_webhook_settings, create_app
from dunning.receipts.feed import ReceiptFeed
from dunning.settings import Settings
from dunning.urls import check_broker_url

__all__ = ["Webhook", "open_webhook"]


@dataclass(frozen=True)
class Webhook:
    """The app to serve and the ledger it writes to (the caller closes it after serving)."""

    app: Starlette
    ledger: Ledger


def open_webhook(settings: Settings, *, publish: bool) -> Webhook:
    """The webhook app on an open ledger; ``publish`` feeds receipts to the broker (RabbitMQ
    URLs only: the memory broker lives in another process). Raises ConfigError or LedgerError.
    """
    check_webhook_settings(settings)
    ledger = Ledger.open(settings.database_url)
    try:
        feed: ReceiptFeed | None = None
        if publish and settings.broker_url.startswith("amqp"):
            check_broker_url(settings.broker_url)
            topology = topology_for(settings)
            feed = ReceiptFeed(
                ledger, settings.clock(), lambda: open_publisher(settings.broker_url, topology)
            )
        return Webhook(create_app(settings, ledger, feed=feed), ledger)
    except BaseException:
        ledger.close()
        raise
