"""Console pages over the memory broker and a SQLite ledger, with the console's clock pinned:
purge and replay confirmations and their audit records, a person found by phone number and
masked for a viewer, today's contacts and their CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from dunning.broker import reset_memory_server
from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import DEAD_LETTER_EXCHANGE, build_topology, dead_queue, work_queue
from dunning.console.app import build_app
from dunning.console.security import hash_password
from dunning.console.server import ConsoleOptions, open_console
from dunning.console.web import ConsoleDeps
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.ledger.schema import audit
from dunning.settings import Settings
from dunning.workers import headers as h
from tests.factories import T0, make_intent

CONFIG = Path(__file__).resolve().parents[2] / "config"
PASSWORD = "correct horse battery staple"
NOW = T0 + timedelta(hours=1)


@pytest.fixture
def server() -> MemoryBroker:
    broker = reset_memory_server()
    broker.declare(build_topology())
    return broker


@pytest.fixture
def console(tmp_path: Path, server: MemoryBroker) -> Iterator[ConsoleDeps]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger.open(url).close()
    settings = Settings(broker_url="memory://", database_url=url, config_dir=CONFIG, now=NOW)
    with open_console(settings, ConsoleOptions()) as deps:
        deps.secure_cookies = False
        for name, role in (("olga", "operator"), ("vera", "viewer")):
            deps.store.add_user(name, role, hash_password(PASSWORD), now=NOW, replace=False)
        yield deps


def client_for(console: ConsoleDeps, name: str) -> TestClient:
    client = TestClient(build_app(console, secret_key="k" * 48))
    token = csrf(client, "/login")
    answer = client.post(
        "/login",
        data={"csrf_token": token, "name": name, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    return client


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None, path
    return found.group(1)


def kill(server: MemoryBroker, intent: ContactIntent) -> None:
    headers = h.dead_letter_headers(
        {},
        error_class="PermanentChannelError",
        reason="invalid number",
        provider_code="21211",
        attempts=1,
        now=T0,
        queue=work_queue(Channel.SMS),
    )
    server.publisher().publish_many(
        [
            OutboundMessage(
                DEAD_LETTER_EXCHANGE, "sms", encode_intent(intent), headers, intent.intent_id
            )
        ]
    )


def audited(console: ConsoleDeps, event: str) -> list[tuple[str | None, dict[str, Any]]]:
    with console.ledger._engine.connect() as conn:
        rows = conn.execute(select(audit.c.intent_id, audit.c.detail).where(audit.c.event == event))
        return [(intent_id, json.loads(detail or "{}")) for intent_id, detail in rows]


def sent(console: ConsoleDeps, intent: ContactIntent) -> None:
    console.ledger.record_published([intent], now=T0)
    claim = console.ledger.claim(intent, worker="w:1", now=T0, reconcile_after_s=60)
    console.ledger.record_sent(
        intent.intent_id, claim.attempt, provider_ref="SM1", status="queued", detail={}, now=T0
    )


def test_a_purge_happens_only_once_the_count_is_typed_back(
    console: ConsoleDeps, server: MemoryBroker
) -> None:
    for n in range(2):
        kill(server, make_intent(account_id=f"purge-{n}"))
    client = client_for(console, "olga")
    token = csrf(client, "/dead-letters")
    asked = client.post("/dead-letters/purge", data={"csrf_token": token, "channel": "sms"})
    assert "Type 2 to confirm" in asked.text
    wrong = client.post(
        "/dead-letters/purge", data={"csrf_token": token, "channel": "sms", "confirm": "1"}
    )
    assert "did not match" in wrong.text
    assert server.queue_depth(dead_queue(Channel.SMS)) == 2
    done = client.post(
        "/dead-letters/purge", data={"csrf_token": token, "channel": "sms", "confirm": "2"}
    )
    assert "Purged 2 dead letter(s)" in done.text
    assert server.queue_depth(dead_queue(Channel.SMS)) == 0
    assert [d["operator"] for _, d in audited(console, "console_purge")] == ["olga"]
    assert len(audited(console, "dlq_purged")) == 2


def test_a_replay_without_its_dry_run_is_refused(
    console: ConsoleDeps, server: MemoryBroker
) -> None:
    intent = make_intent(account_id="replay-1")
    kill(server, intent)
    client = client_for(console, "olga")
    token = csrf(client, "/dead-letters")
    form = {"csrf_token": token, "intent_id": intent.intent_id, "channel": "sms"}
    refused = client.post("/dead-letters/replay", data={**form, "mode": "replay"})
    assert refused.status_code == 409
    assert server.queue_depth(dead_queue(Channel.SMS)) == 1
    dry = client.post("/dead-letters/replay", data={**form, "mode": "dry_run"})
    assert 'id="replay-count">1<' in dry.text
    assert server.queue_depth(dead_queue(Channel.SMS)) == 1
    other = client.post(
        "/dead-letters/replay", data={**form, "intent_id": "f" * 32, "mode": "replay"}
    )
    assert other.status_code == 409  # the dry run was of another filter
    done = client.post("/dead-letters/replay", data={**form, "mode": "replay"})
    assert 'id="replay-count">1<' in done.text
    assert server.queue_depth(dead_queue(Channel.SMS)) == 0
    assert server.queue_depth(work_queue(Channel.SMS)) == 1
    assert audited(console, "console_replay") == [
        (
            intent.intent_id,
            {"operator": "olga", "filter": {"channel": "sms", "intent_id": intent.intent_id}},
        )
    ]


def test_a_person_found_by_phone_is_masked_for_a_viewer(console: ConsoleDeps) -> None:
    intent = make_intent(account_id="person-1")  # +8613800138000, 张三
    sent(console, intent)
    operator = client_for(console, "olga")
    token = csrf(operator, "/people")
    found = operator.post(
        "/people/search", data={"csrf_token": token, "kind": "phone", "value": "+86 138 0013 8000"}
    )
    assert f'href="/people/{intent.person_id}"' in found.text
    page = operator.get(f"/people/{intent.person_id}").text
    assert "+8613800138000" in page
    assert "张三" in page
    viewer = client_for(console, "vera").get(f"/people/{intent.person_id}").text
    assert "+8613800138000" not in viewer
    assert "+86*******8000" in viewer
    assert "张三" not in viewer


def test_today_counts_the_pinned_day_and_its_csv_has_no_personal_data(
    console: ConsoleDeps,
) -> None:
    intent = make_intent(account_id="today-1")
    sent(console, intent)
    client = client_for(console, "vera")
    page = client.get("/today").text
    assert f"Contacts on {T0.date().isoformat()}" in page
    assert 'id="total-sent">1<' in page
    assert 'id="total-sent">0<' in client.get("/today?day=2026-11-27").text
    download = client.get("/today.csv")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["intent_id"], r["channel"], r["outcome"]) for r in rows] == [
        (intent.intent_id, "sms", "sent")
    ]
    assert "138" not in download.text
    assert [d["operator"] for _, d in audited(console, "console_csv_download")] == ["vera"]
