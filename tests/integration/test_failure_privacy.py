"""Failed sends leave no personal data in logs, dead-letter headers or the ledger, and the same
failure of two people reads the same.

Workers run over the memory broker and a SQLite ledger against the stand-ins: the Twilio
stand-in refuses both numbers with an error whose message quotes the number, the SMTP sink
refuses both addresses with a reply that quotes the address, an SMS template fails with an
error that quotes the name, two messages carry malformed numbers, and a letter adapter raises
an exception quoting the address and number.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, dead_queue
from dunning.channels.base import CallbackChannel, ChannelAdapter, SendResult
from dunning.channels.email import EmailChannel
from dunning.channels.twilio.base import twilio_client
from dunning.channels.twilio.sms import SmsChannel
from dunning.channels_toml import load_twilio_config
from dunning.intents import Channel, ContactIntent, PostalAddress, Recipient, encode_intent
from dunning.ledger import Ledger
from dunning.logs import configure_logging
from dunning.sandbox.smtp_sink import SmtpSink
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.settings import Settings
from dunning.templates import TemplateStore
from dunning.workers import headers as h
from dunning.workers.middleware import OutcomeCounter
from tests.factories import make_intent
from tests.worker_rig import memory_workers

ROOT = Path(__file__).resolve().parents[2]
SID, TOKEN = "AC" + "7" * 32, "privacy-token"


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    phone: str
    spaced_phone: str  # how a careless export writes it: not E.164, so the decode refuses it
    email: str
    street: str

    def recipient(self) -> Recipient:
        address = PostalAddress((self.street,), "San Francisco", "94105", "US", "CA")
        return Recipient(self.name, self.phone, self.email, address)

    def secrets(self) -> list[str]:
        parts = [p for p in re.split(r"\W+", self.name) if len(p) >= 3]
        return [self.name, *parts, self.email, self.email.split("@")[0], self.street]

    def digit_windows(self, size: int) -> set[str]:
        national = self.phone[2:]  # +1 and the 10 national digits
        return {national[i : i + size] for i in range(len(national) - size + 1)}


JANE = Person(
    "A", "Jane Quincy Doe", "+14155550123", "+1 415-555-0123", "jane.doe@example.org", "1 Main St"
)
WEI = Person(
    "B",
    "Zhang Weilong",
    "+14155550187",
    "+1 415-555-0187",
    "zhang.weilong@example.net",
    "99 Mission Street",
)
PEOPLE = (JANE, WEI)


def leaks(text: str, person: Person, window: int) -> list[str]:
    """The person's values found in ``text``; digits are compared with separators removed."""
    found = [s for s in person.secrets() if s.casefold() in text.casefold()]
    digits = re.sub(r"(?<=\d)[\s().-]+(?=\d)", "", text)
    return found + sorted(w for w in person.digit_windows(window) if w in digits)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    saved = structlog.get_config()
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    yield stream
    structlog.configure(**saved)


def intent(channel: Channel, person: Person, **changes: Any) -> ContactIntent:
    now = datetime.now(UTC)
    base = make_intent(
        channel,
        jurisdiction="US",
        created_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(hours=1),
        **changes,
    )
    return dataclasses.replace(base, recipient=person.recipient())


def malformed(person: Person) -> bytes:
    data = json.loads(encode_intent(intent(Channel.SMS, person)))
    data["recipient"]["phone"] = person.spaced_phone
    return json.dumps(data).encode()


async def test_failures_keep_personal_data_out_and_reasons_equal(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "config" / "templates", templates)
    # A template fault whose error message quotes the value it looked up: the name.
    (templates / "en-US" / "sms" / "broken.txt.j2").write_text("{{ {}[name] }}", encoding="utf-8")

    async def printer_bug(failing: ContactIntent, attempt: int) -> SendResult:
        raise RuntimeError(f"spool refused {failing.recipient.email} / {failing.recipient.phone}")

    server = MemoryBroker()
    server.declare(build_topology())
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    counter = OutcomeCounter()
    scenarios: dict[str, dict[str, str]] = {}  # scenario -> person -> message id
    messages: list[OutboundMessage] = []

    def publish(scenario: str, person: Person, channel: Channel, body: bytes, mid: str) -> None:
        scenarios.setdefault(scenario, {})[person.key] = mid
        messages.append(OutboundMessage(INTENTS_EXCHANGE, channel.value, body, {}, mid))

    for person in PEOPLE:
        for scenario, channel, changes in (
            ("twilio 21408", Channel.SMS, {}),
            ("template", Channel.SMS, {"template": None}),
            ("smtp 550", Channel.EMAIL, {}),
            ("adapter bug", Channel.LETTER, {}),
        ):
            one = intent(channel, person)
            if changes:
                one = dataclasses.replace(
                    one, template=dataclasses.replace(one.template, name="broken")
                )
            publish(scenario, person, channel, encode_intent(one), one.intent_id)
        publish("malformed phone", person, Channel.SMS, malformed(person), f"decode-{person.key}")

    async with TwilioStandIn(SID, TOKEN) as twilio, SmtpSink() as smtp:
        for person in PEOPLE:
            twilio.behaviour.failure_numbers[person.phone] = 21408  # region not enabled
            smtp.fail_recipient(person.email, code=550)
        settings = Settings(
            config_dir=ROOT / "config",
            twilio_account_sid=SID,
            twilio_auth_token=TOKEN,
            twilio_api_base=twilio.base_url,
            smtp_port=smtp.port,
            max_attempts=1,
        )
        client, http = twilio_client(settings)
        adapters: dict[Channel, ChannelAdapter] = {
            Channel.SMS: SmsChannel(
                client=client,
                http=http,
                config=load_twilio_config(settings.config_dir),
                templates=TemplateStore(templates),
                webhook_public_url="http://127.0.0.1:9",
            ),
            Channel.EMAIL: EmailChannel.from_settings(settings),
            Channel.LETTER: CallbackChannel(Channel.LETTER, printer_bug),
        }
        workers = memory_workers(settings, ledger, server, adapters, counter)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        server.publisher().publish_many(messages)
        try:
            await counter.wait_until(lambda: counter.counts["dead"] >= len(messages), 30)
        finally:
            for w in workers:
                w.stop()
            await asyncio.gather(*tasks)
            for adapter in adapters.values():
                await adapter.aclose()
    assert counter.counts["dead"] == len(messages)

    reader = server.publisher()
    dead: dict[str, dict[str, str]] = {}
    for channel in (Channel.SMS, Channel.EMAIL, Channel.LETTER):
        while (letter := reader.get(dead_queue(channel))) is not None:
            assert letter.message_id is not None
            dead[letter.message_id] = {k: str(v) for k, v in letter.headers.items()}
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT intent_id, last_error FROM intents")).all()
        last_error = {str(i): str(e) for i, e in rows}
        rows = connection.execute(sa.text("SELECT intent_id, reason FROM attempts")).all()
        attempt_reasons = {str(i): str(r) for i, r in rows}
    engine.dispose()
    ledger.close()

    reasons = {
        s: {p: dead[mid][h.REASON] for p, mid in ids.items()} for s, ids in scenarios.items()
    }
    assert reasons["twilio 21408"]["A"] == "twilio rejected the request (21408)"
    assert reasons["smtp 550"]["A"] == "recipient refused: 550 5.1.1"
    assert reasons["malformed phone"]["A"] == (
        "recipient.phone: the value is not an E.164 phone number"
    )
    assert reasons["template"]["A"] == (
        "template en-US/sms/broken.txt.j2: 'dict object' has no attribute '<name>'"
    )
    assert reasons["adapter bug"]["A"] == "unexpected RuntimeError: spool refused <email> / <phone>"
    for scenario, by_person in reasons.items():
        assert by_person["A"] == by_person["B"], scenario
        ids = scenarios[scenario]
        if not scenario.startswith("malformed"):
            assert last_error[ids["A"]] == last_error[ids["B"]], scenario
            assert attempt_reasons.get(ids["A"]) == attempt_reasons.get(ids["B"]), scenario

    logs = "\n".join(
        json.dumps({k: v for k, v in json.loads(line).items() if k != "timestamp"})
        for line in captured_logs.getvalue().splitlines()
    )
    assert '"outcome": "dead"' in logs  # the failures were logged: the check means something
    for person in PEOPLE:
        assert leaks(logs, person, 6) == [], person.key
        for mid in scenarios_of(scenarios, person):
            stored = [v for k, v in dead[mid].items() if k.startswith("x-dunning")]
            stored += [str(last_error.get(mid, "")), str(attempt_reasons.get(mid, ""))]
            assert leaks(" | ".join(stored), person, 4) == [], (person.key, mid)


def scenarios_of(scenarios: dict[str, dict[str, str]], person: Person) -> list[str]:
    return [ids[person.key] for ids in scenarios.values()]
