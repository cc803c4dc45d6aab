"""What the demo's summary says about its instant: each zone's local time against its window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dunning.cli.demo import _default_now
from dunning.compliance import load_packs
from dunning.ops.demo import _local_times
from dunning.producers.synthetic import synthetic_book

PACKS = load_packs(Path(__file__).resolve().parents[2] / "config" / "compliance.toml")


def _zones(day: datetime) -> dict[str, set[str]]:
    zones: dict[str, set[str]] = {}
    for account in synthetic_book(400, seed=7, as_of=day.date()):
        zones.setdefault(account.timezone, set()).add(account.jurisdiction)
    return zones


@pytest.mark.parametrize(
    ("instant", "open_zones"),
    [
        # What `dunning demo --help` says of the default 13:30 UTC, in winter and in summer.
        ("2026-11-28T13:30:00+00:00", {"Asia/Shanghai", "America/New_York"}),
        ("2026-07-08T13:30:00+00:00", {"Asia/Shanghai", "America/New_York", "America/Chicago"}),
    ],
)
def test_the_default_instant_opens_shanghai_and_new_york_not_the_us_west(
    instant: str, open_zones: set[str]
) -> None:
    now = datetime.fromisoformat(instant)
    found = {t.zone: t for t in _local_times(_zones(now), PACKS, now)}
    assert set(found) == {
        "Asia/Shanghai", "America/New_York", "America/Chicago", "America/Denver",
        "America/Los_Angeles",
    }  # fmt: skip
    assert {zone for zone, t in found.items() if t.open} == open_zones
    assert found["Asia/Shanghai"].local == "21:30"
    assert found["Asia/Shanghai"].window == "08:00-22:00"
    assert found["America/Los_Angeles"].window == "08:00-21:00"
    assert found["America/New_York"].jurisdictions == ("US", "US-MA")


def test_the_default_instant_is_today_at_13_30_utc() -> None:
    now = _default_now()
    assert (now.hour, now.minute, now.tzinfo) == (13, 30, UTC)
