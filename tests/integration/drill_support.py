"""Plumbing for the reliability drills: real RabbitMQ (a vhost per drill), a PostgreSQL schema
per drill, the Twilio stand-in in the test's loop, and the webhook and workers as real
subprocesses (``python -m dunning ...``) that can be killed with SIGKILL.

Every blocking call (ledger, kombu) goes through ``asyncio.to_thread``: the stand-in lives on
the test's event loop and must keep answering while the test waits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import build_topology
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.schema import intents as intents_table
from dunning.producers.publisher import IntentPublisher
from dunning.records import TERMINAL_STATES
from dunning.sandbox.twilio_api import TwilioStandIn
from tests.factories import T0, make_intent
from tests.services import (
    POSTGRES_URL,
    rabbitmq_vhost_url,
    require,
    reset_rabbitmq_topology,
)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "drill-token"
#: The drills run "at 10:00 in Shanghai" so that the contact window is open.
DRILL_NOW = T0
DELIVERY_LIMIT = 5
RECONCILE_AFTER_S = 30  # well above the receipt lag: one webhook process trails two workers
FINAL = {s.value for s in TERMINAL_STATES}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def drill_intents(
    count: int, *, tag: str, phone: Callable[[int], str] | None = None
) -> list[ContactIntent]:
    """``count`` SMS intents for distinct people and numbers (caps never interfere)."""
    out = []
    for i in range(count):
        intent = make_intent(
            Channel.SMS,
            account_id=f"drill-{tag}-{i:05d}",
            created_at=DRILL_NOW - timedelta(minutes=1),
            expires_at=DRILL_NOW + timedelta(days=1),
        )
        number = phone(i) if phone else f"+86139{i:08d}"
        out.append(replace(intent, recipient=replace(intent.recipient, phone=number)))
    return out


@dataclass
class Proc:
    """One subprocess of the drill, with its log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dunning", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no drain, no ack, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Drill:
    """One drill's services and processes; use :func:`drill` to get one."""

    name: str
    broker_url: str
    database_url: str
    standin: TwilioStandIn
    workdir: Path
    webhook_port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    ledger: Ledger | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
        env.update(
            DUNNING_BROKER_URL=self.broker_url,
            DUNNING_DATABASE_URL=self.database_url,
            DUNNING_CONFIG_DIR=str(ROOT / "config"),
            DUNNING_DATA_DIR=str(self.workdir),
            DUNNING_NOW=DRILL_NOW.isoformat(),
            DUNNING_LOG_FORMAT="json",
            DUNNING_LOG_LEVEL="warning",
            DUNNING_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            DUNNING_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            DUNNING_TWILIO_API_BASE=self.standin.base_url,
            DUNNING_TWILIO_TIMEOUT_S="10",
            DUNNING_WEBHOOK_PUBLIC_URL=f"http://127.0.0.1:{self.webhook_port}",
            DUNNING_SANDBOX="true",  # beside the stand-ins: the sandbox's HMAC keys are fine
            DUNNING_RECONCILE_AFTER_S=str(RECONCILE_AFTER_S),
            DUNNING_RECONCILE_EVERY_S="2",
            DUNNING_RETRY_DELAYS_S="1,1,1",
            DUNNING_DELIVERY_LIMIT=str(DELIVERY_LIMIT),
        )
        env.update(extra)
        return env

    def spawn(self, args: list[str], **extra: str) -> Proc:
        proc = Proc(args, self.env(**extra), self.workdir / f"{args[0]}-{len(self.procs)}.log")
        proc.start()
        self.procs.append(proc)
        return proc

    def worker(self, **extra: str) -> Proc:
        return self.spawn(["worker", "sms"], **extra)

    async def start_webhook(self) -> Proc:
        proc = self.spawn(["webhook", "--port", str(self.webhook_port), "--no-publish"])
        await wait_for_port(self.webhook_port, timeout_s=30)
        return proc

    def open_ledger(self) -> Ledger:
        if self.ledger is None:
            self.ledger = Ledger.open(self.database_url)
        return self.ledger

    async def publish(self, batch: list[ContactIntent]) -> None:
        """Record in the ledger and publish with confirms, as the evaluator does."""
        ledger = self.open_ledger()

        def run() -> None:
            publisher = RabbitPublisher(self.broker_url)
            try:
                with IntentPublisher(
                    publisher,
                    record=lambda b: ledger.record_published(b, now=DRILL_NOW),
                    mark=lambda ids: ledger.mark_published(ids, now=DRILL_NOW),
                ) as out:
                    out.submit(batch)
            finally:
                publisher.close()

        await asyncio.to_thread(run)

    async def states(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = set(ids)
        engine = self.open_ledger()._engine

        def read() -> dict[str, str]:
            with engine.connect() as conn:
                rows = conn.execute(select(intents_table.c.intent_id, intents_table.c.state))
                return {r.intent_id: r.state for r in rows if r.intent_id in wanted}

        return await asyncio.to_thread(read)

    async def provider_refs(self) -> dict[str, str | None]:
        engine = self.open_ledger()._engine

        def read() -> dict[str, str | None]:
            with engine.connect() as conn:
                rows = conn.execute(select(intents_table.c.intent_id, intents_table.c.provider_ref))
                return {r.intent_id: r.provider_ref for r in rows}

        return await asyncio.to_thread(read)

    async def wait_until_final(
        self,
        ids: list[str],
        timeout_s: float,
        on_progress: Callable[[int], Any] | None = None,
    ) -> dict[str, str]:
        """Poll the ledger until every id is in a terminal state; returns id -> state."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = await self.states(ids)
            done = sum(1 for i in ids if states.get(i) in FINAL)
            if on_progress is not None:
                await on_progress(done)
            if done == len(ids):
                return states
            if time.monotonic() > deadline:
                left = Counter(states.get(i, "absent") for i in ids if states.get(i) not in FINAL)
                raise TimeoutError(f"{len(ids) - done} intents not final: {dict(left)}")
            await asyncio.sleep(0.25)  # poll interval of the condition, not a synchronisation

    async def queue_depth(self, queue: str) -> int:
        def read() -> int:
            publisher = RabbitPublisher(self.broker_url)
            try:
                return publisher.queue_depth(queue)
            finally:
                publisher.close()

        return await asyncio.to_thread(read)

    async def wait_for_depth(self, queue: str, at_least: int, timeout_s: float) -> int:
        """Poll ``queue``'s depth until it reaches ``at_least``; raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while (depth := await self.queue_depth(queue)) < at_least:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{queue} holds {depth}, expected {at_least}")
            await asyncio.sleep(0.25)  # poll interval of the condition
        return depth

    async def wait_for_depth_below(self, queue: str, below: int, timeout_s: float) -> int:
        """Poll ``queue``'s depth until it drops below ``below``; raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while (depth := await self.queue_depth(queue)) >= below:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{queue} still holds {depth}")
            await asyncio.sleep(0.1)  # poll interval of the condition
        return depth

    def creates(self) -> Counter[str]:
        return self.standin.creates_per_intent()

    def sids(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for record in self.standin.requests:
            if record.intent_id is not None:
                out.setdefault(record.intent_id, []).append(record.sid)
        return out


async def wait_for_port(port: int, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return


def _schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@asynccontextmanager
async def drill(name: str, tmp: Path, broker_url: str | None = None) -> AsyncIterator[Drill]:
    """Fresh vhost topology, fresh ledger schema, the stand-in; every process stopped at the end.

    ``broker_url`` replaces the vhost of the machine's RabbitMQ (the cluster drill's node list).
    """
    if broker_url is None:
        require("rabbitmq")
        broker_url = rabbitmq_vhost_url(f"dunning-drill-{name}")
    require("postgres")
    schema = f"dunning_drill_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)

    def prepare() -> None:
        reset_rabbitmq_topology(broker_url)
        publisher = RabbitPublisher(broker_url)
        publisher.declare(build_topology(delivery_limit=DELIVERY_LIMIT))
        publisher.close()
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        Ledger.open(_schema_url(schema)).close()

    await asyncio.to_thread(prepare)
    try:
        async with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as standin:
            d = Drill(name, broker_url, _schema_url(schema), standin, tmp)
            try:
                yield d
            finally:
                for proc in d.procs:
                    await asyncio.to_thread(proc.stop)
                if d.ledger is not None:
                    d.ledger.close()
    finally:

        def drop() -> None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

        await asyncio.to_thread(drop)
