"""The receipts feed across webhook crashes: `dunning webhook` as a real process on a real
RabbitMQ (a vhost of its own, topology declared), signed provider callbacks (Twilio status
callbacks and the email provider's event batches) posted as providers post them, retried until
answered 200, the process killed or stopped mid-stream and started again. Every receipt the
ledger holds must then be in ``dunning.receipts.feed``, found by its message id: twice at most
for the batch a SIGKILL caught in flight, never after a clean stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import RECEIPTS_FEED_QUEUE, build_topology
from dunning.ledger import Ledger
from dunning.ledger.receipts_outbox import unpublished_count
from dunning.ledger.schema import receipts
from dunning.receipts.feed import BATCH_SIZE
from dunning.receipts.signatures import HMAC_HEADER, sign_body
from tests.factories import T0
from tests.integration.broker_relay import Relay
from tests.integration.drill_support import ROOT, Proc, free_port, wait_for_port
from tests.services import postgres_schema, rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.integration

AUTH_TOKEN = "feed-crash-token"
WEBHOOK_SECRET = "feed-crash-secret"
RECEIPTS = 600
EMAIL_BATCH = 25
POSTERS = 16  # concurrent requests in flight, as busy provider accounts send them
DEADLINE_S = 120


@contextmanager
def fresh_feed(vhost: str) -> Iterator[str]:
    """A vhost with the whole topology declared, as `dunning topology declare` leaves it."""
    url = rabbitmq_vhost_url(vhost)
    reset_rabbitmq_topology(url)
    admin = RabbitPublisher(url)
    try:
        admin.declare(build_topology())
    finally:
        admin.close()
    yield url
    reset_rabbitmq_topology(url)


@dataclass
class Webhook:
    """`dunning webhook` as a subprocess, restartable on the same port and ledger."""

    broker_url: str
    database_url: str
    workdir: Path
    port: int = field(default_factory=free_port)
    runs: list[Proc] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
        env.update(
            DUNNING_BROKER_URL=self.broker_url,
            DUNNING_DATABASE_URL=self.database_url,
            DUNNING_CONFIG_DIR=str(ROOT / "config"),
            DUNNING_DATA_DIR=str(self.workdir),
            DUNNING_NOW=T0.isoformat(),
            DUNNING_LOG_FORMAT="json",
            DUNNING_LOG_LEVEL="warning",
            DUNNING_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            DUNNING_WEBHOOK_SECRET=WEBHOOK_SECRET,
            DUNNING_WEBHOOK_PUBLIC_URL=self.public_url,
            DUNNING_SANDBOX="true",
            DUNNING_DECLARE_TOPOLOGY="false",  # relies on the declare above
        )
        return env

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        log = self.workdir / f"webhook-{len(self.runs)}.log"
        proc = Proc(["webhook", "--port", str(self.port)], self.env(), log)
        proc.start()
        self.runs.append(proc)
        await wait_for_port(self.port, timeout_s=30)

    @property
    def current(self) -> Proc:
        return self.runs[-1]


@asynccontextmanager
async def running_webhook(
    broker_url: str, database_url: str, workdir: Path
) -> AsyncIterator[Webhook]:
    Ledger.open(database_url).close()  # migrated, as after `dunning db upgrade`
    hook = Webhook(broker_url, database_url, workdir)
    try:
        await hook.start()
        yield hook
    finally:
        for proc in hook.runs:
            await asyncio.to_thread(proc.stop)


@dataclass(frozen=True)
class Callback:
    """One provider request: a Twilio status callback (form) or a signed batch of email events."""

    path: str
    form: dict[str, str] | None = None
    events: list[dict[str, str]] | None = None

    @property
    def receipts(self) -> int:
        return 1 if self.events is None else len(self.events)

    def request(self, public_url: str) -> dict[str, Any]:
        """httpx keyword arguments, signed as the provider signs."""
        url = f"{public_url}{self.path}"
        if self.form is not None:
            signature = RequestValidator(AUTH_TOKEN).compute_signature(url, self.form)
            return {"url": url, "data": self.form, "headers": {"X-Twilio-Signature": signature}}
        body = json.dumps({"events": self.events}).encode()
        headers = {HMAC_HEADER: sign_body(WEBHOOK_SECRET, body)}
        return {"url": url, "content": body, "headers": headers}


def provider_callbacks(tag: str) -> list[Callback]:
    """``RECEIPTS`` distinct receipts: a ``sent`` and a ``delivered`` status callback per SMS,
    interleaved with the email provider's batches of ``EMAIL_BATCH`` delivery events."""
    sms = [
        Callback(
            "/twilio/status",
            form={"MessageSid": f"SM{tag}{i:06d}".ljust(34, "0"), "MessageStatus": status},
        )
        for i in range(RECEIPTS // 4)
        for status in ("sent", "delivered")
    ]
    emails = [
        Callback(
            "/email/events",
            events=[
                {
                    "message_id": f"<{tag}{b:03d}.{i:03d}@mail.example-finance.com>",
                    "event": "delivered",
                }
                for i in range(EMAIL_BATCH)
            ],
        )
        for b in range(RECEIPTS // 2 // EMAIL_BATCH)
    ]
    step = len(sms) // len(emails)
    out: list[Callback] = []
    for index, batch in enumerate(emails):
        out.extend(sms[index * step : (index + 1) * step])
        out.append(batch)
    out.extend(sms[len(emails) * step :])
    return out


async def post_all(
    hook: Webhook,
    callbacks: list[Callback],
    on_answered: Callable[[Callback, int], Awaitable[None]],
) -> int:
    """POST every callback, each retried (as providers retry) until it is answered 200; calls
    ``on_answered`` with it and the running count of receipts answered. Returns how many tries
    failed."""
    todo: asyncio.Queue[Callback] = asyncio.Queue()
    for callback in callbacks:
        todo.put_nowait(callback)
    answered = 0
    failed_tries = 0
    deadline = time.monotonic() + DEADLINE_S

    async def poster(http: httpx.AsyncClient) -> None:
        nonlocal answered, failed_tries
        while not todo.empty():
            callback = todo.get_nowait()
            request = callback.request(hook.public_url)
            while True:
                assert time.monotonic() < deadline, "callbacks not answered before the deadline"
                try:
                    response = await http.post(**request)
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass  # the webhook is down: a provider retries later
                failed_tries += 1
                await asyncio.sleep(0.05)  # retry pause of the simulated provider
            answered += callback.receipts
            await on_answered(callback, answered)

    async with httpx.AsyncClient(timeout=10) as http:
        await asyncio.gather(*(poster(http) for _ in range(POSTERS)))
    return failed_tries


def ledger_message_ids(database_url: str) -> set[str]:
    """The feed's message id (``<provider_ref>:<status>``) of every receipt the ledger holds."""
    ledger = Ledger.open(database_url, migrate=False)
    try:
        with ledger._engine.connect() as conn:
            rows = conn.execute(select(receipts.c.provider_ref, receipts.c.status)).all()
    finally:
        ledger.close()
    return {f"{ref}:{status}" for ref, status in rows}


def owed(database_url: str) -> int:
    ledger = Ledger.open(database_url, migrate=False)
    try:
        return unpublished_count(ledger._engine)
    finally:
        ledger.close()


async def until_owed(database_url: str) -> None:
    """Wait until the ledger holds receipts the feed is owed."""
    deadline = time.monotonic() + 30
    while await asyncio.to_thread(owed, database_url) == 0:
        assert time.monotonic() < deadline, "no receipt owed to the feed"
        await asyncio.sleep(0.02)  # poll interval of the condition


def take_feed(broker_url: str) -> list[str]:
    """Consume everything waiting in ``dunning.receipts.feed``; the message ids in order."""
    reader = RabbitPublisher(broker_url)
    ids: list[str] = []
    try:
        while (delivery := reader.get(RECEIPTS_FEED_QUEUE)) is not None:
            assert delivery.message_id is not None
            ids.append(delivery.message_id)
            reader.ack(delivery)
    finally:
        reader.close()
    return ids


async def feed_until_complete(hook: Webhook, seen: list[str]) -> set[str]:
    """Read the feed into ``seen`` until it holds every receipt of the ledger; the ledger's ids.

    Fails naming how many stored receipts never reached the feed by the deadline.
    """
    deadline = time.monotonic() + 60
    while True:
        seen.extend(await asyncio.to_thread(take_feed, hook.broker_url))
        stored = await asyncio.to_thread(ledger_message_ids, hook.database_url)
        missing = stored - set(seen)
        if not missing:
            return stored
        if time.monotonic() > deadline:
            pytest.fail(
                f"{len(missing)} of {len(stored)} receipts stored in the ledger never reached "
                f"{RECEIPTS_FEED_QUEUE}, e.g. {sorted(missing)[:3]}"
            )
        await asyncio.sleep(0.2)  # poll interval of the condition


async def test_kill_9_mid_stream_loses_no_receipt_from_the_feed(tmp_path: Path) -> None:
    with fresh_feed("dunning-feed-crash") as broker_url, postgres_schema("feed_crash") as db:
        # The webhook reaches RabbitMQ through a relay, held just before the kill: a batch is
        # then mid-publish and receipts are owed when the process dies, on every run.
        relay = Relay(broker_url)
        await relay.restore()
        try:
            async with running_webhook(relay.url, db, tmp_path) as hook:
                killed: list[int] = []
                owed_at_kill: list[int] = []

                async def kill_once(callback: Callback, answered: int) -> None:
                    if answered >= RECEIPTS // 3 and not killed:
                        killed.append(answered)
                        relay.hold()
                        await until_owed(db)
                        await asyncio.to_thread(hook.current.kill)  # SIGKILL: no drain
                        owed_at_kill.append(await asyncio.to_thread(owed, db))
                        relay.release()  # what the dead process sent still reaches RabbitMQ
                        await hook.start()

                failed_tries = await post_all(hook, provider_callbacks("K"), kill_once)
                seen: list[str] = []
                stored = await feed_until_complete(hook, seen)
                await asyncio.to_thread(hook.current.stop)  # SIGTERM: publishes what is owed
                seen.extend(await asyncio.to_thread(take_feed, broker_url))
        finally:
            await relay.cut()

    copies = Counter(seen)
    twice = {mid for mid, n in copies.items() if n > 1}
    print(
        f"\nfeed crash: {len(stored)} receipts stored, {len(seen)} messages, "
        f"{len(twice)} published twice, killed after {killed} answers with {owed_at_kill} "
        f"owed to the feed, {failed_tries} tries refused while down"
    )
    assert len(owed_at_kill) == 1  # killed once
    assert owed_at_kill[0] > 0  # with receipts answered and not yet published
    assert len(stored) == RECEIPTS  # every receipt answered 200 is in the ledger
    assert set(copies) == stored  # every stored receipt on the feed, nothing else
    assert len(twice) <= BATCH_SIZE  # only the batch in flight at the kill
    assert max(copies.values()) <= 2


async def test_a_clean_restart_mid_stream_publishes_each_receipt_once(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    with fresh_feed("dunning-feed-restart") as broker_url:
        async with running_webhook(broker_url, database, tmp_path) as hook:
            restarted: list[int] = []

            async def restart_once(callback: Callback, answered: int) -> None:
                if answered >= RECEIPTS // 2 and callback.events and not restarted:
                    restarted.append(answered)
                    await asyncio.to_thread(hook.current.stop)  # SIGTERM
                    await hook.start()

            await post_all(hook, provider_callbacks("R"), restart_once)
            seen: list[str] = []
            stored = await feed_until_complete(hook, seen)
            await asyncio.to_thread(hook.current.stop)
            seen.extend(await asyncio.to_thread(take_feed, broker_url))

    assert restarted
    assert len(stored) == RECEIPTS
    assert sorted(seen) == sorted(stored)  # each exactly once
