"""Queue depths for `dunning status`: the management API when reachable, passive declares else.

Per channel: the work queue's ready / unacked / consumer counts and the age of its oldest
message, and the dead-letter queue's depth and oldest dead letter. The delay queues are shared by
every channel (they dead-letter back to ``dunning.intents`` with the routing key kept), so their
depths are reported once, not per channel.

Without the management plugin, AMQP says only ready and consumer counts (``queue.declare-ok``):
unacked is unknown and a work queue's oldest-message age is unknown (peeking would count against
the quorum delivery limit). A dead-letter queue is a classic queue, with no delivery limit and
no delivery count, so its head message is peeked (``basic.get`` then requeue) and its age read
from ``x-dunning-last-failure-at``.

Rates for `dunning status --watch` come from the difference of two reports: the net change of
each queue's depth, and, when the management API gives the cumulative publish count, messages
in (publishes) and out (publishes less the growth of the depth).
"""

from __future__ import annotations

import base64
import dataclasses
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
from dunning.broker.urls import split_broker_urls
from dunning.errors import BrokerConnectionError, BrokerError, ConfigError
from dunning.intents import Channel
from dunning.urls import check_broker_url
from dunning.workers.headers import FIRST_FAILURE_AT, LAST_FAILURE_AT

__all__ = [
    "QueueRate",
    "QueueStats",
    "StatusReport",
    "collect_status",
    "management_url",
    "queue_rates",
]


@dataclass(frozen=True)
class QueueStats:
    """One queue; ``None`` means the source cannot tell (unacked and age without management)."""

    name: str
    ready: int | None
    unacked: int | None = None
    consumers: int | None = None
    oldest_age_s: float | None = None
    missing: bool = False
    published: int | None = None  # messages ever published to it (management API only)

    @property
    def depth(self) -> int | None:
        """Messages in the queue, ready plus unacked (ready alone when unacked is unknown)."""
        return None if self.ready is None else self.ready + (self.unacked or 0)


@dataclass(frozen=True)
class QueueRate:
    """Messages per second between two reports; ``None`` where the counts cannot tell."""

    name: str
    in_per_s: float | None
    out_per_s: float | None
    net_per_s: float | None


@dataclass
class StatusReport:
    source: str  # "management" or "amqp"
    channels: dict[str, tuple[QueueStats, QueueStats]] = field(default_factory=dict)
    delay: list[QueueStats] = field(default_factory=list)
    unrouted: QueueStats | None = None
    taken_at: datetime | None = None
    management_url: str | None = None
    #: Why the counts come from passive declares (None when the management API answered).
    management_problem: str | None = None

    def without_consumers(self) -> list[QueueStats]:
        """Work queues holding ready messages that no worker consumes."""
        return [
            work
            for work, _ in self.channels.values()
            if work.ready and work.consumers is not None and work.consumers == 0
        ]

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
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "management_url": self.management_url,
            "management_problem": self.management_problem,
            "without_consumers": [q.name for q in self.without_consumers()],
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


def queue_rates(previous: StatusReport, current: StatusReport, elapsed_s: float) -> list[QueueRate]:
    """Per channel queue and dead-letter queue: messages/s in, out and net over ``elapsed_s``.

    Net is the change of the depth; in is the change of the publish count (management API
    only) and out is in less net. A queue missing from either report gets no numbers.
    """
    rates: list[QueueRate] = []
    if elapsed_s <= 0:
        return rates
    for name, (work, dead) in current.channels.items():
        before = previous.channels.get(name)
        if before is None:
            continue
        for old, new in zip(before, (work, dead), strict=True):
            net = _per_s(old.depth, new.depth, elapsed_s)
            arrived = _per_s(old.published, new.published, elapsed_s)
            left = None if arrived is None or net is None else max(arrived - net, 0.0)
            rates.append(QueueRate(new.name, arrived, left, net))
    return rates


def _per_s(before: int | None, after: int | None, elapsed_s: float) -> float | None:
    return None if before is None or after is None else (after - before) / elapsed_s


def _queue_names() -> list[str]:
    names = [name for c in Channel for name in (work_queue(c), dead_queue(c))]
    names += [delay_exchange(step) for step in DELAY_STEPS_S]
    return [*names, UNROUTED_QUEUE]


def _assemble(
    source: str, stats: dict[str, QueueStats], now: datetime, api: str, problem: str | None
) -> StatusReport:
    report = StatusReport(source, taken_at=now, management_url=api, management_problem=problem)
    for c in Channel:
        report.channels[c.value] = (stats[work_queue(c)], stats[dead_queue(c)])
    report.delay = [stats[delay_exchange(step)] for step in DELAY_STEPS_S]
    report.unrouted = stats[UNROUTED_QUEUE]
    return report


def management_url(broker_url: str) -> str:
    """The management API base the broker URL implies: same host, port 15672 (15671 for TLS);
    of a cluster's URL list, the first node's."""
    parts = urllib.parse.urlsplit(split_broker_urls(broker_url)[0])
    scheme, port = ("https", 15671) if parts.scheme == "amqps" else ("http", 15672)
    return f"{scheme}://{parts.hostname or 'localhost'}:{port}"


def _vhost(broker_url: str) -> str:
    path = urllib.parse.urlsplit(broker_url).path
    return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


class _ManagementUnavailableError(Exception):
    """The management API did not answer; the message says how (for the status line)."""


def _from_management(
    broker_url: str, api_url: str, timeout_s: float, now: datetime
) -> dict[str, QueueStats]:
    """Queue stats from ``GET /api/queues/<vhost>``; raises _ManagementUnavailableError."""
    parts = urllib.parse.urlsplit(broker_url)
    vhost = urllib.parse.quote(_vhost(broker_url), safe="")
    request = urllib.request.Request(f"{api_url.rstrip('/')}/api/queues/{vhost}")  # noqa: S310  http(s) only, built above
    creds = f"{urllib.parse.unquote(parts.username or 'guest')}:"
    creds += urllib.parse.unquote(parts.password or "guest")
    request.add_header("Authorization", "Basic " + base64.b64encode(creds.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            rows = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # before OSError: it is one
        raise _ManagementUnavailableError(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise _ManagementUnavailableError(str(exc.reason)) from exc
    except (OSError, ValueError) as exc:  # not the management API, or it broke off
        raise _ManagementUnavailableError(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(rows, list):
        raise _ManagementUnavailableError("the answer is not a list of queues")
    by_name = {str(row.get("name")): row for row in rows if isinstance(row, dict)}
    stats: dict[str, QueueStats] = {}
    for name in _queue_names():
        row = by_name.get(name)
        if row is None:
            stats[name] = QueueStats(name, None, missing=True)
            continue
        head = row.get("head_message_timestamp")
        age_s = now.timestamp() - float(head) if isinstance(head, int | float) else None
        counters = row.get("message_stats")
        published = counters.get("publish") if isinstance(counters, dict) else None
        stats[name] = QueueStats(
            name,
            int(row.get("messages_ready", 0)),
            int(row.get("messages_unacknowledged", 0)),
            int(row.get("consumers", 0)),
            age_s,
            published=int(published) if isinstance(published, int | float) else None,
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
    check_broker_url(broker_url)
    now = now or datetime.now(UTC)
    api = management or management_url(broker_url)
    publisher = open_publisher(broker_url)
    assert isinstance(publisher, RabbitPublisher)
    try:
        problem = "not asked (--no-management)"
        if use_management:
            try:
                stats = _from_management(split_broker_urls(broker_url)[0], api, timeout_s, now)
            except _ManagementUnavailableError as exc:
                problem = f"not reachable at {api} ({exc})"
            else:
                for c in Channel:
                    name = dead_queue(c)
                    if stats[name].ready:
                        age_s = _dead_letter_age_s(publisher, name, now)
                        stats[name] = dataclasses.replace(stats[name], oldest_age_s=age_s)
                return _assemble("management", stats, now, api, None)
        return _assemble("amqp", _from_amqp(publisher, now), now, api, problem)
    finally:
        publisher.close()
