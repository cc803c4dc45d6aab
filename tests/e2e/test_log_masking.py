"""No full phone number, email address, name or postal address from the input book appears in
any log line or output: `dunning demo`, and channel workers driven through failures.

Both run as subprocesses with JSON logs at debug level; the synthetic book is regenerated here
(same size, seed and day) to know the personal data to look for. Run directly, this file is
the worker half: ``python tests/e2e/test_log_masking.py pipeline SEED N DAY``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_AT = datetime(2026, 11, 27, 13, 30, tzinfo=UTC)


def personal_values(n: int, seed: int, day: date) -> list[str]:
    """Every name, phone (with and without +), email and address line of the book."""
    from dunning.producers.synthetic import synthetic_book

    values: list[str] = []
    for account in synthetic_book(n, seed=seed, as_of=day):
        values.append(account.name)
        if account.phone:
            values += [account.phone, account.phone.lstrip("+")]
        if account.email:
            values.append(account.email)
        if account.address:
            values += list(account.address.lines)
    return values


def leaks(text: str, values: list[str]) -> list[str]:
    return sorted({v for v in values if v and v in text})


def run(args: list[str], tmp: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env |= {
        "DUNNING_DATA_DIR": str(tmp / "var"),
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_LOG_FORMAT": "json",
        "DUNNING_LOG_LEVEL": "debug",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        args, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def test_demo_output_and_logs_hold_no_personal_data(tmp_path: Path) -> None:
    accounts, seed = 60, 11
    done = run(
        [sys.executable, "-m", "dunning", "demo", "--accounts", str(accounts),
         "--seed", str(seed), "--at", DEMO_AT.isoformat()],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    log_file = tmp_path / "var" / "demo" / "demo.log"
    logs = log_file.read_text(encoding="utf-8")
    assert logs.count("\n") > 50  # the demo did log (debug level), so the check means something
    assert '"event": "sending"' in logs
    text = done.stdout + done.stderr + logs
    values = personal_values(accounts, seed, DEMO_AT.date())
    assert len(values) > 150
    assert leaks(text, values) == []


def test_failing_workers_log_no_personal_data(tmp_path: Path) -> None:
    accounts, seed, day = 24, 5, date(2026, 11, 27)
    done = run(
        [sys.executable, __file__, "pipeline", str(seed), str(accounts), day.isoformat()],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout + done.stderr
    # The failures did happen and were logged (masked): dead letters, retries, an adapter bug.
    assert '"outcome": "dead"' in text
    assert '"outcome": "retry"' in text
    assert "adapter raised an unexpected exception" in text
    assert '"worker": ' in text
    assert leaks(text, personal_values(accounts, seed, day)) == []


# --- the worker half, run in a subprocess ---------------------------------------------------


async def _pipeline(seed: int, n: int, day: date) -> None:
    from dunning.broker import reset_memory_server
    from dunning.broker.topology import build_topology
    from dunning.channels.base import CallbackChannel, ChannelAdapter, SendResult
    from dunning.channels.email import EmailChannel
    from dunning.channels.twilio.sms import SmsChannel
    from dunning.intents import Channel, ContactIntent, Recipient, encode_intent
    from dunning.ledger import Ledger
    from dunning.logs import configure_logging
    from dunning.producers.synthetic import synthetic_book
    from dunning.sandbox.smtp_sink import SmtpSink
    from dunning.sandbox.twilio_api import TwilioStandIn
    from dunning.settings import Settings
    from dunning.workers.middleware import OutcomeCounter
    from tests.factories import make_intent
    from tests.worker_rig import memory_workers

    configure_logging("json", "debug")
    server = reset_memory_server()
    server.declare(build_topology())
    now = datetime.now(UTC)
    book = [a for a in synthetic_book(n, seed=seed, as_of=day) if a.phone and a.email]
    intents: list[ContactIntent] = []
    for account in book:
        for channel in (Channel.SMS, Channel.EMAIL, Channel.LETTER):
            base = make_intent(
                channel,
                jurisdiction=account.jurisdiction.split("-")[0],
                created_at=now - timedelta(minutes=1),
                expires_at=now + timedelta(hours=1),
            )
            recipient = Recipient(account.name, account.phone, account.email, account.address)
            intents.append(dataclasses.replace(base, recipient=recipient))

    async def printer_bug(intent: ContactIntent, attempt: int) -> SendResult:
        # Library errors often quote the address they failed on: the masking must catch it.
        raise RuntimeError(f"spool refused {intent.recipient.email} / {intent.recipient.phone}")

    sid, token = "AC" + "5" * 32, "masking-token"
    async with TwilioStandIn(sid, token) as twilio, SmtpSink() as smtp:
        twilio.behaviour.failure_numbers.update({a.phone: 21211 for a in book[::3] if a.phone})
        twilio.behaviour.rate_500 = 0.3
        for account in book[1::3]:
            smtp.fail_recipient(str(account.email), code=550)
        smtp.fail_next(2, code=451)
        settings = Settings(
            config_dir=ROOT / "config",
            twilio_account_sid=sid,
            twilio_auth_token=token,
            twilio_api_base=twilio.base_url,
            smtp_port=smtp.port,
            retry_delays_s=(1,),
            max_attempts=2,
        )
        ledger = Ledger.open(f"sqlite:///{Path.cwd() / 'ledger.db'}")
        counter = OutcomeCounter()
        adapters: dict[Channel, ChannelAdapter] = {
            Channel.SMS: SmsChannel.from_settings(settings),
            Channel.EMAIL: EmailChannel.from_settings(settings),
            Channel.LETTER: CallbackChannel(Channel.LETTER, printer_bug),
        }
        workers = memory_workers(settings, ledger, server, adapters, counter)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        publisher = server.publisher()
        from dunning.broker.base import OutboundMessage
        from dunning.broker.topology import INTENTS_EXCHANGE

        publisher.publish_many(
            OutboundMessage(INTENTS_EXCHANGE, i.channel.value, encode_intent(i), {})
            for i in intents
        )
        final = ("sent", "dead", "expired", "suppressed")
        try:
            await counter.wait_until(
                lambda: sum(counter.counts[k] for k in final) >= len(intents), 60
            )
        finally:
            for w in workers:
                w.stop()
            await asyncio.gather(*tasks)
            for adapter in adapters.values():
                await adapter.aclose()
            ledger.close()


if __name__ == "__main__" and sys.argv[1:2] == ["pipeline"]:
    asyncio.run(_pipeline(int(sys.argv[2]), int(sys.argv[3]), date.fromisoformat(sys.argv[4])))
elif __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
