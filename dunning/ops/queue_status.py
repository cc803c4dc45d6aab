"""Queue depths for `dunning status`: the management API when reachable, passive declares else.

Per channel: the work queue's ready / unacked / consumer counts and the age of its oldest
message, and the dead-letter queue's depth and oldest dead letter. The delay queues are shared by
every channel (they dead-letter back to ``dunning.intents`` with the routing key kept), so their
depths are reported once, not per channel.

Without the management plugin, AMQP says only ready and consumer counts (``queue.declare-ok``):
unacked is unknown and a work queue's oldest-message age is unknown (peeking would count against
the quorum delivery limit). A dead-letter queue has no delivery limit, so its head message is
peeked (``basic.get`` then requeue) and its age read from ``x-dunning-last-failure-at``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from dunning.broker import open_publisher
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import (
    DELAY_STEPS_S,
    UNROUTED_QUEUE,
    dead_queue,
    delay_exchange,
    work_queue,
)
from dunning.errors import BrokerConnectionError, BrokerError, ConfigError
from dunning.intents import Channel
from dunning.workers.headers import FIRST_FAILURE_AT, LAST_FAILURE_AT

__all__ = ["QueueStats", "StatusReport", "collect_status", "management_url"]


@dataclass(frozen=True)
class QueueStats:
    """One queue; ``None`` means the source cannot tell (unacked and age without management)."""

    name: str
    ready: int | None
    unacked: int | None = None
    consumers: int | None = None
    oldest_age_s: float | None = None
    missing: bool = False


@dataclass
class StatusReport:
    source: str  # "management" or "amqp"
    channels: dict[str, tuple[QueueStats, QueueStats]] = field(default_factory=dict)
    delay: list[QueueStats] = field(default_factory=list)
    unrouted: QueueStats | None = None

    def over_threshold(self, dlq_threshold: int) -> list[str]:
        """Dead-letter queues holding more than ``dlq_threshold`` messages."""
        return [
            dead.name
            for _, dead in self.channels.values()
            if dead.ready is not None and dead.ready + (dead.unacked or 0) > dlq_threshold
        ]

    def as_json(self, dlq_threshold: int) -> dict[str, Any]:
        return {
            "source": self.source,
            "channels": {
                name: {"queue": asdict(work), "dead": asdict(dead)}
                for name, (work, dead) in self.channels.items()
            },
            "delay": [asdict(q) for q in self.delay],
            "delay_total": sum(q.ready or 0 for q in self.delay),
            "unrouted": asdict(self.unrouted) if self.unrouted else None,
            "dlq_threshold": dlq_threshold,
            "dlq_over_threshold": self.over_threshold(dlq_threshold),
        }


def _queue_names() -> list[str]:
    names = [name for c in Channel for name in (work_queue(c), dead_queue(c))]
    names += [delay_exchange(step) for step in DELAY_STEPS_S]
    return [*names, UNROUTED_QUEUE]


def _assemble(source: str, stats: dict[str, QueueStats]) -> StatusReport:
    report = StatusReport(source)
    for c in Channel:
        report.channels[c.value] = (stats[work_queue(c)], stats[dead_queue(c)])
    report.delay = [stats[delay_exchange(step)] for step in DELAY_STEPS_S]
    report.unrouted = stats[UNROUTED_QUEUE]
    return report


def management_url(broker_url: str) -> str:
    """The management API base the broker URL implies: same host, port 15672 (15671 for TLS)."""
    parts = urllib.parse.urlsplit(broker_url)
    scheme, port = ("https", 15671) if parts.scheme == "amqps" else ("http", 15672)
    return f"{scheme}://{parts.hostname or 'localhost'}:{port}"


def _vhost(broker_url: str) -> str:
    path = urllib.parse.urlsplit(broker_url).path
    return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


def _from_management(
    broker_url: str, api_url: str, timeout_s: float, now: datetime
) -> dict[str, QueueStats] | None:
    """Queue stats from ``GET /api/queues/<vhost>``; None when the API does not answer."""
    parts = urllib.parse.urlsplit(broker_url)
    vhost = urllib.parse.quote(_vhost(broker_url), safe="")
    request = urllib.request.Request(f"{api_url.rstrip('/')}/api/queues/{vhost}")  # noqa: S310  http(s) only, built above
    creds = f"{urllib.parse.unquote(parts.username or 'guest')}:"
    creds += urllib.parse.unquote(parts.password or "guest")
    request.add_header("Authorization", "Basic " + base64.b64encode(creds.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            rows = json.loads(response.read())
    except (OSError, ValueError):
        return None  # not enabled, not reachable, or not the management API: fall back
    by_name = {str(row.get("name")): row for row in rows if isinstance(row, dict)}
    stats: dict[str, QueueStats] = {}
    for name in _queue_names():
        row = by_name.get(name)
        if row is None:
            stats[name] = QueueStats(name, None, missing=True)
            continue
        head = row.get("head_message_timestamp")
        age_s = now.timestamp() - float(head) if isinstance(head, int | float) else None
        stats[name] = QueueStats(
            name,
            int(row.get("messages_ready", 0)),
            int(row.get("messages_unacknowledged", 0)),
            int(row.get("consumers", 0)),
            age_s,
        )
    return stats


def _dead_letter_age_s(publisher: RabbitPublisher, queue: str, now: datetime) -> float | None:
    """Age of the head dead letter since it died: peek (get, then requeue) its headers."""
    delivery = publisher.get(queue)
    if delivery is None:
        return None
    publisher.reject(delivery, requeue=True)
    raw = delivery.headers.get(LAST_FAILURE_AT) or delivery.headers.get(FIRST_FAILURE_AT)
    try:
        died = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return (now - died).total_seconds() if died.tzinfo else None


def _from_amqp(publisher: RabbitPublisher, now: datetime) -> dict[str, QueueStats]:
    stats: dict[str, QueueStats] = {}
    dead_names = {dead_queue(c) for c in Channel}
    for name in _queue_names():
        try:
            ready, consumers = publisher.queue_stats(name)
        except BrokerConnectionError:
            raise
        except BrokerError:
            stats[name] = QueueStats(name, None, missing=True)
            continue
        age_s = _dead_letter_age_s(publisher, name, now) if name in dead_names and ready else None
        stats[name] = QueueStats(name, ready, None, consumers, age_s)
    return stats


def collect_status(
    broker_url: str,
    *,
    management: str | None = None,
    use_management: bool = True,
    timeout_s: float = 3.0,
    now: datetime | None = None,
) -> StatusReport:
    """Collect every dunning queue's counts; raises ConfigError for memory:// and
    BrokerConnectionError when RabbitMQ does not answer.

    Dead-letter ages always come from AMQP (the management API cannot read headers).
    """
    if not broker_url.startswith(("amqp://", "amqps://")):
        raise ConfigError(
            "dunning status reads RabbitMQ; the memory:// broker lives inside one process"
        )
    now = now or datetime.now(UTC)
    publisher = open_publisher(broker_url)
    assert isinstance(publisher, RabbitPublisher)
    try:
        stats = None
        if use_management:
            api = management or management_url(broker_url)
            stats = _from_management(broker_url, api, timeout_s, now)
        if stats is None:
            return _assemble("amqp", _from_amqp(publisher, now))
        for c in Channel:
            name = dead_queue(c)
            if stats[name].ready:
                age_s = _dead_letter_age_s(publisher, name, now)
                stats[name] = QueueStats(**{**asdict(stats[name]), "oldest_age_s": age_s})
        return _assemble("management", stats)
    finally:
        publisher.close()
