"""SMS and voice through the real twilio SDK, over sockets, to the Twilio stand-in.

Nothing is patched: the channels' own HTTP client talks to the stand-in on loopback, and the
stand-in posts signed callbacks to a receiver in the test.
"""

from __future__ import annotations

import re
import shutil
import warnings
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from dunning.channels.segments import count_segments
from dunning.channels.twilio.sms import SmsChannel
from dunning.channels.twilio.voice import VoiceChannel, dial_outcome_from_status, voicemail_twiml
from dunning.channels_toml import load_twilio_config
from dunning.errors import (
    ConfigError,
    PermanentChannelError,
    RateLimitedError,
    TransientChannelError,
)
from dunning.intents import Channel, ContactIntent, Recipient
from dunning.records import DialOutcome
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.settings import Settings
from dunning.templates import TemplateStore
from tests.factories import make_intent
from tests.integration.twilio_support import (
    AUTH_TOKEN,
    CallbackReceiver,
    closed_port,
    receiver,
    settings_for,
    standin,
)

__all__ = ["receiver", "standin"]  # fixtures, imported for pytest

CONFIG = Path(__file__).resolve().parents[2] / "config"


def _us_intent(phone: str, channel: Channel = Channel.SMS) -> ContactIntent:
    return make_intent(
        channel, jurisdiction="US", recipient=Recipient(name="Jane Doe", phone=phone)
    )


async def test_cn_sms_carries_prefix_opt_out_sender_and_callback(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    intent = make_intent()
    try:
        result = await channel.send(intent, attempt=1)
    finally:
        await channel.aclose()
    [record] = standin.requests
    form = record.form
    body = form["Body"][0]
    assert result.provider_ref == record.sid
    assert re.fullmatch(r"SM[0-9a-f]{32}", record.sid)
    assert result.status == "queued"
    assert form["To"] == ["+8613800138000"]
    assert body.startswith("【XX消费金融】")
    assert "回复TD退订" in body
    assert "¥1,234.50" in body
    assert form["MessagingServiceSid"] == ["MG00000000000000000000000000000001"]
    assert "From" not in form
    assert form["StatusCallback"] == [
        f"{receiver.base_url}/twilio/status?intent_id={intent.intent_id}"
    ]
    assert record.intent_id == intent.intent_id
    assert result.detail["segments"] == count_segments(body).segments
    assert result.detail["encoding"] == "ucs2"


async def test_us_sms_uses_from_number_and_gsm7(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        result = await channel.send(make_intent(jurisdiction="US"), attempt=1)
    finally:
        await channel.aclose()
    form = standin.requests[0].form
    assert form["From"] == ["+15005550006"]
    assert "MessagingServiceSid" not in form
    assert form["Body"][0].startswith("Example Consumer Finance: ")
    assert "Reply STOP to opt out" in form["Body"][0]
    assert result.detail["encoding"] == "gsm7"


async def test_status_callbacks_arrive_signed_and_forgeries_fail(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    intent = make_intent()
    try:
        result = await channel.send(intent, attempt=1)
    finally:
        await channel.aclose()
    sent, delivered = await receiver.wait_for(2)
    assert [sent.params["MessageStatus"], delivered.params["MessageStatus"]] == [
        "sent",
        "delivered",
    ]
    assert delivered.params["MessageSid"] == result.provider_ref
    assert parse_qs(urlsplit(delivered.url).query)["intent_id"] == [intent.intent_id]
    validator = RequestValidator(AUTH_TOKEN)
    for callback in (sent, delivered):
        assert validator.validate(callback.url, callback.params, callback.signature)
    forged = dict(delivered.params, MessageStatus="failed")
    assert not validator.validate(delivered.url, forged, delivered.signature)
    assert not RequestValidator("another-token").validate(
        delivered.url, delivered.params, delivered.signature
    )


@pytest.mark.parametrize(
    ("phone", "code", "suppress"),
    [("+15005550001", "21211", False), ("+15005550002", "21614", False),
     ("+15005550009", "21610", True)],
)  # fmt: skip
async def test_recipient_failures_are_permanent(
    standin: TwilioStandIn, receiver: CallbackReceiver, phone: str, code: str, suppress: bool
) -> None:
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        with pytest.raises(PermanentChannelError) as caught:
            await channel.send(_us_intent(phone), attempt=1)
    finally:
        await channel.aclose()
    assert caught.value.provider_code == code
    assert caught.value.suppress is suppress
    assert standin.requests == []


async def test_other_4xx_is_permanent_with_the_code_in_the_reason(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    standin.behaviour.failure_numbers["+12025550143"] = 21408
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        with pytest.raises(PermanentChannelError) as caught:
            await channel.send(make_intent(jurisdiction="US"), attempt=1)
    finally:
        await channel.aclose()
    assert "21408" in caught.value.reason
    assert caught.value.suppress is False


async def test_429_is_rate_limited_with_retry_after(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    standin.behaviour.update({"rate_429": 1.0, "retry_after_s": 7})
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        with pytest.raises(RateLimitedError) as caught:
            await channel.send(make_intent(), attempt=1)
    finally:
        await channel.aclose()
    assert caught.value.provider_code == "20429"
    assert caught.value.retry_after_s == 7.0


async def test_5xx_is_transient_not_rate_limited(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    standin.behaviour.update({"rate_500": 1.0})
    channel = VoiceChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        with pytest.raises(TransientChannelError) as caught:
            await channel.send(make_intent(Channel.VOICE), attempt=1)
    finally:
        await channel.aclose()
    assert not isinstance(caught.value, RateLimitedError)
    assert caught.value.provider_code == "20500"


async def test_slow_response_times_out_as_transient(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    standin.behaviour.response_delay_ms = 2000
    settings = settings_for(standin, receiver.base_url, twilio_timeout_s=0.2)
    channel = SmsChannel.from_settings(settings)
    try:
        with pytest.raises(TransientChannelError) as caught:
            await channel.send(make_intent(), attempt=1)
    finally:
        await channel.aclose()
    assert caught.value.provider_code == "timeout"
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_connection_refused_is_transient(receiver: CallbackReceiver) -> None:
    settings = settings_for(f"http://127.0.0.1:{closed_port()}", receiver.base_url)
    channel = SmsChannel.from_settings(settings)
    try:
        with pytest.raises(TransientChannelError) as caught:
            await channel.send(make_intent(), attempt=1)
    finally:
        await channel.aclose()
    assert caught.value.provider_code == "transport"


async def test_sends_raise_no_warnings(standin: TwilioStandIn, receiver: CallbackReceiver) -> None:
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # the second and third reuse the kept-alive connection
            await channel.send(make_intent(), attempt=1)
        await channel.aclose()
    assert [str(w.message) for w in caught] == []
    assert len(standin.requests) == 3


async def test_call_form_twiml_and_callbacks(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    channel = VoiceChannel.from_settings(settings_for(standin, receiver.base_url))
    intent = make_intent(Channel.VOICE, account_id="CN-2026-100042")  # the right party keys 0042
    try:
        result = await channel.send(intent, attempt=1)
    finally:
        await channel.aclose()
    assert result.detail["dial_outcome"] == "pending"
    [record] = standin.requests
    form = record.form
    assert re.fullmatch(r"CA[0-9a-f]{32}", result.provider_ref)
    assert form["From"] == ["+864008001234"]
    assert form["MachineDetection"] == ["DetectMessageEnd"]
    assert form["AsyncAmd"] == ["true"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    suffix = f"?intent_id={intent.intent_id}"
    assert form["StatusCallback"] == [f"{receiver.base_url}/twilio/call-status{suffix}"]
    assert form["AsyncAmdStatusCallback"] == [f"{receiver.base_url}/twilio/amd{suffix}"]
    # The call opens with the right-party check: digits first, no creditor, no debt.
    root = ET.fromstring(form["Twiml"][0])
    gather = root.find("Gather")
    redirect = root.find("Redirect")
    assert gather is not None
    assert redirect is not None
    prompt = gather.find("Say")
    assert prompt is not None
    assert prompt.get("language") == "zh-CN"
    assert "XX消费金融" not in form["Twiml"][0]
    assert gather.get("numDigits") == "4"
    assert gather.get("action") == f"{receiver.base_url}/twilio/identity{suffix}"
    assert redirect.text == f"{receiver.base_url}/twilio/identity{suffix}"

    callbacks = await receiver.wait_for(5)  # four progress events and the AMD result
    progress = [c.params["CallStatus"] for c in callbacks if c.path == "/twilio/call-status"]
    assert progress == ["initiated", "ringing", "in-progress", "completed"]
    [amd] = [c for c in callbacks if c.path == "/twilio/amd"]
    assert amd.params["AnsweredBy"] == "human"
    final = next(c for c in callbacks if c.params.get("CallStatus") == "completed")
    outcome = dial_outcome_from_status(final.params["CallStatus"], final.params.get("AnsweredBy"))
    assert outcome is DialOutcome.CONVERSATION
    validator = RequestValidator(AUTH_TOKEN)
    assert all(validator.validate(c.url, c.params, c.signature) for c in callbacks)


@pytest.mark.parametrize(
    ("phone", "outcome"),
    [("+15005550010", DialOutcome.VOICEMAIL), ("+15005550011", DialOutcome.BUSY),
     ("+15005550012", DialOutcome.NO_ANSWER), ("+15005550013", DialOutcome.NOT_IN_SERVICE)],
)  # fmt: skip
async def test_call_outcomes_map_to_dial_outcomes(
    standin: TwilioStandIn, receiver: CallbackReceiver, phone: str, outcome: DialOutcome
) -> None:
    channel = VoiceChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        await channel.send(_us_intent(phone, Channel.VOICE), attempt=1)
    finally:
        await channel.aclose()
    await standin.wait_idle()
    final = [c for c in receiver.received if c.path == "/twilio/call-status"][-1]
    got = dial_outcome_from_status(final.params["CallStatus"], final.params.get("AnsweredBy"))
    assert got is outcome


def test_voicemail_uses_only_limited_content_fields() -> None:
    config = load_twilio_config(CONFIG)
    templates = TemplateStore(CONFIG / "templates")
    for jurisdiction in ("CN", "US"):
        intent = make_intent(Channel.VOICE, jurisdiction=jurisdiction)
        twiml = voicemail_twiml(intent, config=config, templates=templates)
        institution = config.institution(jurisdiction)
        assert institution.voicemail_business_name in twiml
        assert institution.callback_number in twiml
        assert institution.contact_name in twiml
        assert institution.name not in twiml  # the registered lender name reveals the debt
        assert intent.recipient.name not in twiml
        assert "1,234.50" not in twiml


def _config_copy(tmp_path: Path) -> Path:
    shutil.copytree(CONFIG, tmp_path / "config", ignore=shutil.ignore_patterns("assets"))
    return tmp_path / "config"


def test_voicemail_template_with_debt_details_is_refused(tmp_path: Path) -> None:
    config = _config_copy(tmp_path)
    part = config / "templates/en-US/voice/early_reminder.voicemail.j2"
    part.write_text("Call {{ callback_number }} about {{ amount }}.\n")
    settings = _settings(config)
    with pytest.raises(ConfigError, match="voicemail"):
        VoiceChannel.from_settings(settings)


def test_sms_template_over_the_segment_budget_is_refused(tmp_path: Path) -> None:
    config = _config_copy(tmp_path)
    part = config / "templates/zh-CN/sms/early_reminder.txt.j2"
    part.write_text("您好" * 100 + "{{ opt_out }}\n")  # > 3 x 67 units
    settings = _settings(config)
    with pytest.raises(ConfigError, match="segments"):
        SmsChannel.from_settings(settings)


def test_sms_template_without_opt_out_is_refused(tmp_path: Path) -> None:
    config = _config_copy(tmp_path)
    (config / "templates/en-US/sms/mid_reminder.txt.j2").write_text("Pay {{ amount }} now.\n")
    settings = _settings(config)
    with pytest.raises(ConfigError, match="opt-out"):
        SmsChannel.from_settings(settings)


def _settings(config_dir: Path) -> Settings:
    return settings_for("http://127.0.0.1:9", "http://127.0.0.1:9", config_dir=config_dir)


async def test_find_sent_recognises_the_message_an_intent_became(
    standin: TwilioStandIn, receiver: CallbackReceiver
) -> None:
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    sent, other, never = make_intent(), make_intent(amount_due=Decimal("99.00")), make_intent()
    since = datetime.now(UTC) - timedelta(minutes=1)
    try:
        result = await channel.send(sent, attempt=1)
        await channel.send(other, attempt=1)  # same number, different text
        found = await channel.find_sent(sent, since=since)
        missing = await channel.find_sent(never, since=since)
        too_late = await channel.find_sent(sent, since=datetime.now(UTC) + timedelta(hours=1))
    finally:
        await channel.aclose()
    assert found is not None
    assert found.provider_ref == result.provider_ref
    assert missing is None  # same number and template, another account: not this intent's text
    assert too_late is None
