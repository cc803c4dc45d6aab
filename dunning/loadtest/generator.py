"""Synthetic contact intents for load tests: unique accounts, people and phone numbers.

Every recipient is placed in a time zone where it is now mid-day, so the compliance gate lets
the send go (a load test measures throughput, not quiet-hours deferral). Numbers are fictional:
CN +86 170 (a virtual-operator block) and US 555 numbers.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dunning.intents import Channel, ContactIntent, Recipient, Stage, TemplateRef, make_intent_id

__all__ = ["IntentMix", "SyntheticIntents", "daytime_zone"]

# Home zone first; the rest span the globe so one of them always has mid-day.
_ZONES = (
    "Asia/Shanghai", "America/New_York", "America/Chicago", "America/Denver",
    "America/Los_Angeles", "Pacific/Honolulu", "Pacific/Auckland", "Australia/Brisbane",
    "Asia/Tokyo", "Asia/Bangkok", "Asia/Dhaka", "Asia/Karachi", "Asia/Dubai", "Europe/Moscow",
    "Europe/Athens", "Europe/Berlin", "Europe/London", "Atlantic/Azores", "America/Sao_Paulo",
)  # fmt: skip
_HOME = {"CN": "Asia/Shanghai", "US": "America/New_York"}


def daytime_zone(
    jurisdiction: str, now: datetime, *, earliest_h: int = 10, latest_h: int = 16
) -> str:
    """The jurisdiction's home zone when it is day there, else the first zone where it is."""
    home = _HOME.get(jurisdiction, "UTC")
    for name in (home, *_ZONES):
        if earliest_h <= now.astimezone(ZoneInfo(name)).hour < latest_h:
            return name
    return home


@dataclass(frozen=True, slots=True)
class IntentMix:
    """Shares of channels and jurisdictions (weights; they need not sum to 1)."""

    channels: Sequence[tuple[Channel, float]] = ((Channel.SMS, 1.0),)
    jurisdictions: Sequence[tuple[str, float]] = (("CN", 1.0),)


class SyntheticIntents:
    """Makes intents on demand; ``run_id`` prefixes every account so a run's rows are findable."""

    def __init__(self, mix: IntentMix, *, seed: int = 0, run_id: str | None = None) -> None:
        self.mix = mix
        self.run_id = run_id or uuid.uuid4().hex[:10]
        self._rng = random.Random(seed)
        self._count = 0
        self._zones: dict[str, tuple[datetime, str]] = {}

    @property
    def account_prefix(self) -> str:
        return f"lt-{self.run_id}-"

    def _zone(self, jurisdiction: str, now: datetime) -> str:
        cached = self._zones.get(jurisdiction)
        if cached is None or now - cached[0] > timedelta(minutes=5):
            cached = (now, daytime_zone(jurisdiction, now))
            self._zones[jurisdiction] = cached
        return cached[1]

    def make(self, count: int, *, now: datetime) -> list[ContactIntent]:
        """``count`` new intents created at ``now`` (expires a day later)."""
        channels = [c for c, _ in self.mix.channels]
        channel_w = [w for _, w in self.mix.channels]
        places = [j for j, _ in self.mix.jurisdictions]
        place_w = [w for _, w in self.mix.jurisdictions]
        out = []
        for _ in range(count):
            self._count += 1
            n = self._count
            channel = self._rng.choices(channels, channel_w)[0]
            jurisdiction = self._rng.choices(places, place_w)[0]
            account = f"{self.account_prefix}{n:08d}"
            step = f"early.{channel.value}.d1"
            chinese = jurisdiction == "CN"
            phone = f"+86170{n % 100_000_000:08d}" if chinese else f"+1202555{n % 10_000:04d}"
            out.append(
                ContactIntent(
                    intent_id=make_intent_id(account, step, now.astimezone(UTC).date()),
                    account_id=account,
                    person_id=f"p-{account}",
                    debt_id=f"d-{account}",
                    jurisdiction=jurisdiction,
                    stage=Stage.EARLY,
                    channel=channel,
                    step=step,
                    template=TemplateRef("early_reminder", "zh-CN" if chinese else "en-US"),
                    recipient=Recipient(name="测试用户" if chinese else "Test User", phone=phone),
                    timezone=self._zone(jurisdiction, now),
                    amount_due=Decimal(self._rng.randrange(10_000, 900_000)) / 100,
                    currency="CNY" if chinese else "USD",
                    days_past_due=3,
                    expires_at=now + timedelta(days=1),
                    strategy="loadtest",
                    variant="champion",
                    created_at=now,
                    trace_id=uuid.UUID(int=self._rng.getrandbits(128)).hex,
                )
            )
        return out
