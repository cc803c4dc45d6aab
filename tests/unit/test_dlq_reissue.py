"""`dunning dlq reissue`: a dead intent whose strategy named a missing template, re-issued after
the strategy was fixed, is sent exactly once and the change is in the audit log.

Memory broker (the CLI and the worker share the process-wide ``memory://`` server), SQLite
ledger, and a copy of config/ whose strategy is broken, then fixed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from dunning.broker import memory_server, reset_memory_server
from dunning.broker.base import OutboundMessage
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, dead_queue, work_queue
from dunning.channels.base import CallbackChannel, SendResult
from dunning.cli.main import app
from dunning.clock import SystemClock
from dunning.errors import ConfigError
from dunning.intents import Channel, ContactIntent, TemplateRef, encode_intent
from dunning.ledger import Ledger
from dunning.records import IntentState
from dunning.settings import Settings
from dunning.templates import TemplateStore, template_context
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from tests.factories import make_intent

ROOT = Path(__file__).resolve().parents[2]
STEP_BLOCK = 'id = "early.sms"\nstage = "early"\nchannel = "sms"\ntemplate = "{}"'
SMS_DEAD = dead_queue(Channel.SMS)


class Rig:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.config = tmp / "config"
        shutil.copytree(ROOT / "config", self.config)
        self.set_step_template("early_remindr")  # the typo that kills the intents
        self.ledger_url = f"sqlite:///{tmp / 'ledger.db'}"
        self.ledger = Ledger.open(self.ledger_url)
        for key in [k for k in os.environ if k.startswith("DUNNING_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("DUNNING_BROKER_URL", "memory://")
        monkeypatch.setenv("DUNNING_DATABASE_URL", self.ledger_url)
        monkeypatch.setenv("DUNNING_CONFIG_DIR", str(self.config))
        monkeypatch.setenv("DUNNING_LOG_LEVEL", "error")
        monkeypatch.setenv("COLUMNS", "250")
        self.server = memory_server()
        self.server.declare(build_topology())
        self.publisher = self.server.publisher()
        self.sent: list[tuple[str, str]] = []

    def set_step_template(self, name: str) -> None:
        path = self.config / "strategy.toml"
        text = path.read_text(encoding="utf-8")
        for current in ("early_reminder", "early_remindr"):
            text = text.replace(STEP_BLOCK.format(current), STEP_BLOCK.format(name), 1)
        path.write_text(text, encoding="utf-8")

    def evaluated(self) -> ContactIntent:
        """An intent as the evaluator built it from the broken strategy."""
        now = datetime.now(UTC)
        return make_intent(
            Channel.SMS,
            step="early.sms",
            template=TemplateRef("early_remindr", "zh-CN"),
            created_at=now - timedelta(minutes=1),
            expires_at=now + timedelta(days=1),
        )

    async def send(self, intent: ContactIntent, attempt: int) -> SendResult:
        store = TemplateStore(self.config / "templates")
        name, locale = intent.template.name, intent.template.locale
        # The sender's number and opt-out wording come from channels.toml in the real adapter.
        extra = {"callback_number": "400-800-1234", "opt_out": "回T退订"}
        context = template_context(intent, extra)
        store.render(locale, "sms", name, "txt", context)
        self.sent.append((intent.intent_id, name))
        return SendResult(provider_ref=f"SM{len(self.sent):032d}", status="queued")

    async def work(self, *, until_kind: str) -> OutcomeCounter:
        counter = OutcomeCounter()
        parts = WorkerParts(
            channel=Channel.SMS,
            adapter=CallbackChannel(Channel.SMS, self.send),
            ledger=self.ledger,
            clock=SystemClock(),
            broker=self.server.client(),
            middleware=(counter,),
        )
        worker = build_worker(Settings(config_dir=self.config), parts, declare=False)
        task = asyncio.create_task(worker.run())
        try:
            await counter.wait_until(lambda: counter.counts[until_kind] >= 1, 20)
        finally:
            worker.stop()
            assert await task == 0
        return counter

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(app, ["dlq", "reissue", *args])
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    reset_memory_server()
    r = Rig(tmp_path, monkeypatch)
    yield r
    r.ledger.close()
    reset_memory_server()
    structlog.reset_defaults()


async def test_reissue_after_the_strategy_is_fixed_sends_once_and_audits(rig: Rig) -> None:
    intent = rig.evaluated()
    rig.publisher.publish_many(
        [OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(intent), {})]
    )
    await rig.work(until_kind="dead")
    assert rig.server.queue_depth(SMS_DEAD) == 1
    assert rig.ledger.get_state(intent.intent_id) is IntentState.DEAD
    with pytest.raises(ConfigError, match="early_remindr"):
        await rig.send(intent, 1)  # the reason it died

    rig.set_step_template("early_reminder")  # the fix
    dry = rig.cli("--channel", "sms", "--reason", "ConfigError", "--dry-run")
    assert f"{intent.intent_id}" in dry
    assert "early_remindr -> early_reminder" in dry
    assert "would re-issue 1;" in dry
    assert rig.server.queue_depth(SMS_DEAD) == 1
    assert rig.server.queue_depth(work_queue(Channel.SMS)) == 0
    assert rig.ledger.get_state(intent.intent_id) is IntentState.DEAD
    assert "reissued" not in [e.kind for e in rig.ledger.timeline(intent.intent_id)]

    done = rig.cli("--channel", "sms", "--reason", "ConfigError", "--operator", "ops-anna")
    assert "re-issued 1;" in done
    assert rig.server.queue_depth(SMS_DEAD) == 0
    assert rig.ledger.get_state(intent.intent_id) is IntentState.QUEUED
    await rig.work(until_kind="sent")
    assert rig.sent == [(intent.intent_id, "early_reminder")]
    assert rig.ledger.get_state(intent.intent_id) is IntentState.SENT

    again = rig.cli("--channel", "sms", "--operator", "ops-anna")
    assert "re-issued 0;" in again
    assert rig.server.queue_depth(work_queue(Channel.SMS)) == 0
    (audit,) = [e for e in rig.ledger.timeline(intent.intent_id) if e.kind == "reissued"]
    assert audit.detail["by"] == "ops-anna"
    assert (audit.detail["from_template"], audit.detail["to_template"]) == (
        "early_remindr",
        "early_reminder",
    )


async def test_reissue_leaves_a_dead_intent_whose_strategy_is_still_wrong(rig: Rig) -> None:
    intent = rig.evaluated()
    rig.publisher.publish_many(
        [OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(intent), {})]
    )
    await rig.work(until_kind="dead")
    output = rig.cli("--channel", "sms")
    assert "still names" in output
    assert "re-issued 0; removed 0 already sent; left 1" in output
    assert rig.server.queue_depth(SMS_DEAD) == 1
    assert rig.ledger.get_state(intent.intent_id) is IntentState.DEAD
