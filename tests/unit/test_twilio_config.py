"""Pure parts of the Twilio channels: config parsing, URL rewriting, dial outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dunning.channels.twilio.http import DunningTwilioHttpClient
from dunning.channels.twilio.voice import dial_outcome_from_status
from dunning.channels_toml import ChannelsToml, TwilioChannelsConfig
from dunning.errors import ConfigError
from dunning.records import DialOutcome

INSTITUTION = {
    "name": "XX消费金融",
    "sms_prefix": "【XX消费金融】",
    "locale": "zh-CN",
    "opt_out": "回复TD退订",
    "voicemail_business_name": "XX客户服务中心",
    "contact_name": "王经理",
    "callback_number": "+864008001234",
}


def _config(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"institution": {"CN": dict(INSTITUTION)}}
    data.update(sections)
    return data


def parse_twilio_config(data: dict[str, Any]) -> TwilioChannelsConfig:
    return ChannelsToml(Path("channels.toml"), data).twilio()


def test_sender_per_jurisdiction_with_fallback_to_the_country() -> None:
    config = parse_twilio_config(
        _config(sms={"senders": {"US": {"from": "+15005550006"}}, "max_segments": 2})
    )
    assert config.sender("sms", "US-MA").from_number == "+15005550006"
    assert config.sms_max_segments == 2
    with pytest.raises(ConfigError, match=r"sms\.senders\.CN"):
        config.sender("sms", "CN")
    with pytest.raises(ConfigError, match=r"institution\.UK"):
        config.institution("UK")


@pytest.mark.parametrize(
    ("sender", "message"),
    [
        ({"from": "+15005550006", "messaging_service_sid": "MG" + "0" * 32}, "exactly one"),
        ({}, "exactly one"),
        ({"from": "15005550006"}, "E.164"),
        ({"messaging_service_sid": "MG123"}, "MG"),
    ],
)
def test_bad_sms_senders_are_config_errors(sender: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_twilio_config(_config(sms={"senders": {"CN": sender}}))


def test_voice_sender_cannot_be_a_messaging_service() -> None:
    with pytest.raises(ConfigError, match="calls need 'from'"):
        parse_twilio_config(
            _config(voice={"senders": {"CN": {"messaging_service_sid": "MG" + "0" * 32}}})
        )


def test_prefix_must_carry_the_registered_name() -> None:
    data = _config()
    data["institution"]["CN"]["sms_prefix"] = "【催收中心】"
    with pytest.raises(ConfigError, match="registered name"):
        parse_twilio_config(data)


def test_rewrites_only_twilio_hosts_to_the_configured_base() -> None:
    client = DunningTwilioHttpClient(timeout_s=1, api_base="http://127.0.0.1:8099/")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
    assert client.rewrite(url) == "http://127.0.0.1:8099/2010-04-01/Accounts/AC1/Messages.json"
    assert client.rewrite("https://messaging.twilio.com/v1/Services") == (
        "http://127.0.0.1:8099/v1/Services"
    )
    assert client.rewrite("https://example.com/x.twilio.com") == "https://example.com/x.twilio.com"
    untouched = DunningTwilioHttpClient(timeout_s=1)
    assert untouched.rewrite(url) == url


def test_client_can_be_built_outside_a_running_loop() -> None:
    client = DunningTwilioHttpClient(timeout_s=3)
    assert client.is_async
    assert client.timeout == 3


@pytest.mark.parametrize(
    ("status", "answered_by", "outcome"),
    [
        ("completed", "human", DialOutcome.CONVERSATION),
        ("completed", None, DialOutcome.CONVERSATION),
        ("completed", "unknown", DialOutcome.CONVERSATION),
        ("completed", "machine_start", DialOutcome.VOICEMAIL),
        ("completed", "machine_end_beep", DialOutcome.VOICEMAIL),
        ("completed", "machine_end_silence", DialOutcome.VOICEMAIL),
        ("completed", "machine_end_other", DialOutcome.VOICEMAIL),
        ("completed", "fax", DialOutcome.FAILED),
        ("busy", None, DialOutcome.BUSY),
        ("no-answer", None, DialOutcome.NO_ANSWER),
        ("failed", None, DialOutcome.NOT_IN_SERVICE),
        ("canceled", None, DialOutcome.FAILED),
        ("initiated", None, DialOutcome.PENDING),
        ("ringing", None, DialOutcome.PENDING),
        ("in-progress", "human", DialOutcome.PENDING),
    ],
)
def test_dial_outcome_from_status(
    status: str, answered_by: str | None, outcome: DialOutcome
) -> None:
    assert dial_outcome_from_status(status, answered_by) is outcome
