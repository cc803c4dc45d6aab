"""``config/channels.toml``: read in one place; each section is a typed, checked value.

The readers (the SMS and voice channels, the email channel, the letter channel, the rate
limiter, the template lint) take their section from a :class:`ChannelsToml` and never open the
file. A section is checked when it is asked for, not when the file is read, so a worker stops
only on a fault in a section it uses (the letter worker starts whatever the SMS senders say).
Every fault is a :class:`~dunning.errors.ConfigError` naming the table and key.

    [institution.<J>]                        the lender as named to debtors in jurisdiction J
    [sms] [sms.senders.<J>] [voice] [voice.senders.<J>]            ChannelsToml.twilio()
    [email] [email.from_names]                                     ChannelsToml.email()
    [letter]                                                       ChannelsToml.letter()
    [rate_limits.<channel>] [rate_limits.<channel>.senders]        ChannelsToml.rate_limits()
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dunning.errors import ConfigError
from dunning.intents import Channel
from dunning.toml_files import read_toml

__all__ = [
    "CHANNELS_TOML",
    "ChannelsToml",
    "EmailSection",
    "Institution",
    "LetterSection",
    "RateLimitSection",
    "Sender",
    "TwilioChannelsConfig",
    "load_channels_toml",
    "load_twilio_config",
]

CHANNELS_TOML = "channels.toml"

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


def _twilio(data: Mapping[str, Any]) -> TwilioChannelsConfig:
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


@dataclass(frozen=True, slots=True)
class EmailSection:
    """``[email]``, with the institutions' names (senders' display names, overridden per
    jurisdiction by ``[email.from_names]``) and callback numbers."""

    from_address: str
    message_id_domain: str
    unsubscribe_url: str | None  # None: the webhook's own /email/unsubscribe
    from_names: Mapping[str, str]
    contact_numbers: Mapping[str, str]
    envelope_from: str = ""
    reply_to: str | None = None
    pool_size: int = 2
    probe_idle_s: float = 5.0


def _email_text(table: Mapping[str, Any], key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"channels.toml: [email] {key} must be a non-empty string")
    return value


def _email(data: Mapping[str, Any], file: Path) -> EmailSection:
    table = data.get("email")
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: no [email] section")
    if "unsubscribe_mailto" in table:
        raise ConfigError(
            f"{file}: [email] unsubscribe_mailto is no longer offered (nothing processes mail "
            "sent to it; List-Unsubscribe carries the one-click HTTPS URL only): remove the line"
        )
    institutions = data.get("institution", {})
    names = {j: t["name"] for j, t in institutions.items() if isinstance(t, dict) and "name" in t}
    names.update(table.get("from_names", {}))
    numbers = {
        j: t["callback_number"]
        for j, t in institutions.items()
        if isinstance(t, dict) and "callback_number" in t
    }
    pool_size = table.get("pool_size", 2)
    probe_idle_s = table.get("probe_idle_s", 5.0)
    if not isinstance(pool_size, int) or pool_size < 1:
        raise ConfigError("channels.toml: [email] pool_size must be an integer >= 1")
    if not isinstance(probe_idle_s, int | float) or probe_idle_s < 0:
        raise ConfigError("channels.toml: [email] probe_idle_s must be a number >= 0")
    url = table.get("unsubscribe_url")
    return EmailSection(
        from_address=_email_text(table, "from_address"),
        message_id_domain=_email_text(table, "message_id_domain"),
        unsubscribe_url=str(url) if url else None,
        from_names=names,
        contact_numbers=numbers,
        envelope_from=str(table.get("envelope_from", "")),
        reply_to=table.get("reply_to"),
        pool_size=pool_size,
        probe_idle_s=float(probe_idle_s),
    )


@dataclass(frozen=True, slots=True)
class LetterSection:
    """``[letter]`` (every key optional); relative paths are resolved against the file's folder.

    ``font_path``: empty for the bundled font, ``"system"`` for the machine's fonts, else one
    TrueType file or a folder of them.
    """

    law_firms: Path
    templates: Path
    render_processes: int = 0
    font_path: str = ""


_LETTER_KEYS = frozenset({"law_firms", "render_processes", "font_path", "templates"})


def _letter(data: Mapping[str, Any], folder: Path) -> LetterSection:
    section = dict(data.get("letter") or {})
    unknown = sorted(set(section) - _LETTER_KEYS)
    if unknown:
        raise ConfigError(f"[letter]: unknown key(s) {', '.join(unknown)}")
    processes = section.get("render_processes", 0)
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
        raise ConfigError("[letter] render_processes must be an integer >= 0")
    return LetterSection(
        law_firms=folder / str(section.get("law_firms", "law_firms.toml")),
        templates=folder / str(section.get("templates", "templates")),
        render_processes=processes,
        font_path=str(section.get("font_path", "")).strip(),
    )


@dataclass(frozen=True, slots=True)
class RateLimitSection:
    """``[rate_limits.<channel>]`` in sends per second; None means no limit on that level."""

    account_per_s: float | None = None
    sender_per_s: float | None = None
    recipient_per_s: float | None = None
    burst: int = 1
    senders_per_s: Mapping[str, float] = field(default_factory=dict)


_RATE_LIMIT_KEYS = frozenset(
    {"account_per_s", "sender_per_s", "recipient_per_s", "burst", "senders"}
)


def _rate(table: Mapping[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"channels.toml: [{where}] {key} must be a positive number")
    return float(value)


def _rate_limits(data: Mapping[str, Any], channel: Channel) -> RateLimitSection:
    where = f"rate_limits.{channel.value}"
    table = dict(dict(data.get("rate_limits", {})).get(channel.value, {}))
    unknown = sorted(set(table) - _RATE_LIMIT_KEYS)
    if unknown:
        raise ConfigError(f"channels.toml: [{where}] unknown key(s): {', '.join(unknown)}")
    burst = table.get("burst", 1)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ConfigError(f"channels.toml: [{where}] burst must be a positive integer")
    senders: dict[str, float] = {}
    for name in dict(table.get("senders", {})):
        rate = _rate(table["senders"], name, f"{where}.senders")
        assert rate is not None
        senders[name] = rate
    return RateLimitSection(
        account_per_s=_rate(table, "account_per_s", where),
        sender_per_s=_rate(table, "sender_per_s", where),
        recipient_per_s=_rate(table, "recipient_per_s", where),
        burst=burst,
        senders_per_s=senders,
    )


def _institution_samples(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    samples: dict[str, dict[str, Any]] = {}
    tables = data.get("institution", {})
    for key, table in tables.items() if isinstance(tables, dict) else ():
        if not isinstance(table, dict) or not isinstance(table.get("locale"), str):
            continue
        samples.setdefault(table["locale"], {}).update(
            {
                "institution": table.get("name", key),
                "opt_out": table.get("opt_out", ""),
                "callback_number": table.get("callback_number", ""),
                "contact_name": table.get("contact_name", ""),
                "business_name": table.get("voicemail_business_name", ""),
            }
        )
    return samples


@dataclass(frozen=True, slots=True)
class ChannelsToml:
    """The parsed ``channels.toml`` (``tables``: the TOML document) and its typed sections."""

    path: Path
    tables: Mapping[str, Any]

    def twilio(self) -> TwilioChannelsConfig:
        """Institutions, SMS and voice senders and budgets; ConfigError when one is wrong."""
        return _twilio(self.tables)

    def email(self) -> EmailSection:
        """``[email]``; ConfigError when it is missing or wrong."""
        return _email(self.tables, self.path)

    def letter(self) -> LetterSection:
        """``[letter]``; a missing section means the defaults."""
        return _letter(self.tables, self.path.parent)

    def rate_limits(self, channel: Channel) -> RateLimitSection:
        """``[rate_limits.<channel>]``; a missing table or key means no limit there."""
        return _rate_limits(self.tables, channel)

    def institution_samples(self) -> dict[str, dict[str, Any]]:
        """Per locale, the template variables an ``[institution.<J>]`` table gives (for linting
        templates with sample data); tables without a ``locale`` are skipped, nothing checked."""
        return _institution_samples(self.tables)


def load_channels_toml(path: Path, *, missing_ok: bool = False) -> ChannelsToml:
    """Read ``path`` (``<config_dir>/channels.toml``); a missing file reads as empty when
    ``missing_ok``. ConfigError when it cannot be read or is not valid TOML."""
    return ChannelsToml(path, read_toml(path, missing_ok=missing_ok))


def load_twilio_config(config_dir: Path) -> TwilioChannelsConfig:
    """The Twilio channels' sections of ``<config_dir>/channels.toml`` (which must exist)."""
    return load_channels_toml(config_dir / CHANNELS_TOML).twilio()
