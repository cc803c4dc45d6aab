"""Builders shared by the compliance tests (this module holds no tests of its own)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dunning.compliance import Pack, Window, load_packs
from dunning.intents import Channel, ContactIntent
from dunning.records import ContactAttempt, ContactHistory, DialOutcome, Suppression

CONFIG = Path(__file__).resolve().parents[2] / "config" / "compliance.toml"
PACKS = load_packs(CONFIG)
NY = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(zone: str | ZoneInfo, *parts: int) -> datetime:
    """The UTC instant of a local wall time (first occurrence when ambiguous)."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return datetime(*parts, tzinfo=tz).astimezone(UTC)  # type: ignore[arg-type,misc]


def attempt(
    intent: ContactIntent,
    at: datetime,
    *,
    channel: Channel | None = None,
    outcome: DialOutcome | None = None,
    debt_id: str | None = None,
    phone: str | None = None,
    template: str | None = None,
) -> ContactAttempt:
    channel = channel or intent.channel
    return ContactAttempt(
        intent_id=f"prior-{at.isoformat()}",
        debt_id=debt_id or intent.debt_id,
        channel=channel,
        at=at,
        phone=phone
        or (intent.recipient.phone if channel in (Channel.SMS, Channel.VOICE) else None),
        dial_outcome=outcome,
        template=template,
    )


def suppression(
    intent: ContactIntent,
    reason: str,
    *,
    channel: Channel | None = None,
    debt_id: str | None = None,
) -> Suppression:
    return Suppression(
        person_id=intent.person_id,
        channel=channel,
        reason=reason,
        source="account_flag",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        debt_id=debt_id,
    )


def history(
    intent: ContactIntent,
    attempts: tuple[ContactAttempt, ...] | list[ContactAttempt] = (),
    suppressions: tuple[Suppression, ...] | list[Suppression] = (),
) -> ContactHistory:
    return ContactHistory(intent.person_id, tuple(attempts), tuple(suppressions))


def pack(jurisdiction: str, at: datetime = datetime(2026, 11, 28, tzinfo=UTC)) -> Pack:
    """The merged pack in force for ``jurisdiction`` at ``at`` (fails the test if none)."""
    found = PACKS.select(jurisdiction, at)
    assert found is not None
    return found


def window(jurisdiction: str) -> Window:
    found = pack(jurisdiction).window
    assert found is not None
    return found
