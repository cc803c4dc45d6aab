"""The Twilio channels' part of ``config/channels.toml``: institutions, senders, budgets.

Sections read here: ``[institution.<JURISDICTION>]``, ``[sms]`` with ``[sms.senders.<J>]`` and
``[voice]`` with ``[voice.senders.<J>]``. Other channels' sections are ignored. Every problem is
a :class:`~dunning.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from dunning.errors import ConfigError
from dunning.intents import Channel, ContactIntent, Recipient, Stage, TemplateRef

__all__ = [
    "Institution",
    "Sender",
    "TwilioChannelsConfig",
    "load_twilio_config",
    "parse_twilio_config",
    "worst_case_intent",
]

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


@dataclass(frozen=True, slots=True)
class Institution:
    """The lender as named to debtors in one jurisdiction."""

    jurisdiction: str
    name: str
    sms_prefix: str
    locale: str
    opt_out: str
    voicemail_business_name: str
    contact_name: str
    callback_number: str


@dataclass(frozen=True, slots=True)
class Sender:
    """Exactly one of ``messaging_service_sid`` and ``from_number`` is set."""

    messaging_service_sid: str | None = None
    from_number: str | None = None


@dataclass(frozen=True, slots=True)
class TwilioChannelsConfig:
    institutions: Mapping[str, Institution]
    sms_senders: Mapping[str, Sender]
    voice_senders: Mapping[str, Sender]
    sms_max_segments: int = 3
    voice_ring_timeout_s: int = 30

    def institution(self, jurisdiction: str) -> Institution:
        """The institution for ``jurisdiction`` (``US-MA`` falls back to ``US``)."""
        found = self.institutions.get(jurisdiction) or self.institutions.get(jurisdiction[:2])
        if found is None:
            raise ConfigError(f"channels.toml: no [institution.{jurisdiction}] section")
        return found

    def sender(self, channel: str, jurisdiction: str) -> Sender:
        table = self.sms_senders if channel == "sms" else self.voice_senders
        found = table.get(jurisdiction) or table.get(jurisdiction[:2])
        if found is None:
            raise ConfigError(f"channels.toml: no [{channel}.senders.{jurisdiction}] section")
        return found


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"channels.toml: [{where}] {key} must be a non-empty string")
    return value


def _sender(table: Mapping[str, Any], where: str, *, voice: bool) -> Sender:
    service = table.get("messaging_service_sid")
    number = table.get("from")
    if voice and service is not None:
        raise ConfigError(f"channels.toml: [{where}] calls need 'from', not a messaging service")
    if (service is None) == (number is None):
        raise ConfigError(f"channels.toml: [{where}] set exactly one of messaging_service_sid/from")
    if service is not None and not (isinstance(service, str) and _SERVICE_SID.match(service)):
        raise ConfigError(f"channels.toml: [{where}] messaging_service_sid must be MG + 32 hex")
    if number is not None and not (isinstance(number, str) and _E164.match(number)):
        raise ConfigError(f"channels.toml: [{where}] from must be an E.164 number")
    return Sender(messaging_service_sid=service, from_number=number)


def _positive(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"channels.toml: [{where}] {key} must be a positive integer")
    return value


def parse_twilio_config(data: Mapping[str, Any]) -> TwilioChannelsConfig:
    """Build the config from the parsed TOML mapping."""
    institutions: dict[str, Institution] = {}
    for jurisdiction, table in dict(data.get("institution", {})).items():
        where = f"institution.{jurisdiction}"
        callback = _text(table, "callback_number", where)
        if not _E164.match(callback):
            raise ConfigError(f"channels.toml: [{where}] callback_number must be E.164")
        institutions[jurisdiction] = Institution(
            jurisdiction=jurisdiction,
            name=_text(table, "name", where),
            sms_prefix=_text(table, "sms_prefix", where),
            locale=_text(table, "locale", where),
            opt_out=_text(table, "opt_out", where),
            voicemail_business_name=_text(table, "voicemail_business_name", where),
            contact_name=_text(table, "contact_name", where),
            callback_number=callback,
        )
    for inst in institutions.values():
        if inst.name not in inst.sms_prefix:
            raise ConfigError(
                f"channels.toml: [institution.{inst.jurisdiction}] sms_prefix must contain the "
                "registered name"
            )
    sms = dict(data.get("sms", {}))
    voice = dict(data.get("voice", {}))
    return TwilioChannelsConfig(
        institutions=institutions,
        sms_senders={
            j: _sender(t, f"sms.senders.{j}", voice=False)
            for j, t in dict(sms.get("senders", {})).items()
        },
        voice_senders={
            j: _sender(t, f"voice.senders.{j}", voice=True)
            for j, t in dict(voice.get("senders", {})).items()
        },
        sms_max_segments=_positive(sms, "max_segments", 3, "sms"),
        voice_ring_timeout_s=_positive(voice, "ring_timeout_s", 30, "voice"),
    )


def load_twilio_config(config_dir: Path) -> TwilioChannelsConfig:
    """Read ``<config_dir>/channels.toml``; raises ConfigError when missing or invalid."""
    path = config_dir / "channels.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_twilio_config(data)


def worst_case_intent(
    jurisdiction: str, locale: str, channel: Channel, template: str
) -> ContactIntent:
    """A synthetic intent with long values, for checking templates against their budgets."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    chinese = locale.startswith("zh")
    return ContactIntent(
        intent_id="0" * 32,
        account_id="template-check-0000",
        person_id="template-check",
        debt_id="template-check",
        jurisdiction=jurisdiction,
        stage=Stage.LATE,
        channel=channel,
        step="template.check",
        template=TemplateRef(name=template, locale=locale),
        recipient=Recipient(
            name="欧阳某某某" if chinese else "Maximilian Richardson-Whitfield",
            phone="+8613800138000" if chinese else "+12025550143",
        ),
        timezone="Asia/Shanghai" if chinese else "America/New_York",
        amount_due=Decimal("9999999.99"),
        currency="CNY" if chinese else "USD",
        days_past_due=999,
        expires_at=created + timedelta(days=1),
        strategy="template-check",
        variant="champion",
        created_at=created,
        trace_id="template-check",
    )
