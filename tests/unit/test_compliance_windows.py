"""Contact windows: boundaries, DST edges, far zones, jitter, invalid zones."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dunning.compliance.packs import Window
from dunning.compliance.windows import allowed, jitter_s_for, next_opening, zone_or_none
from tests.unit.test_compliance_helpers import NY, SHANGHAI, local, window

CN_WINDOW, US_WINDOW = window("CN"), window("US")


@pytest.mark.parametrize(
    ("wall", "expected"),
    [((7, 59, 59), False), ((8, 0, 0), True), ((21, 59, 59), True), ((22, 0, 0), False)],
)
def test_cn_nifa2024_window_0800_to_2200_local(wall: tuple[int, int, int], expected: bool) -> None:
    assert allowed(local(SHANGHAI, 2026, 11, 28, *wall), SHANGHAI, CN_WINDOW) is expected


@pytest.mark.parametrize(
    ("wall", "expected"),
    [((7, 59, 59), False), ((8, 0, 0), True), ((20, 59, 59), True), ((21, 0, 0), False)],
)
def test_us_1006_6b1i_window_0800_to_2100_local(wall: tuple[int, int, int], expected: bool) -> None:
    assert allowed(local(NY, 2026, 7, 1, *wall), NY, US_WINDOW) is expected


def test_us_1006_6b1i_spring_forward_opening_is_0800_edt() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT. From 01:30 EST the next opening is 08:00 EDT = 12:00Z.
    before = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    assert before.astimezone(NY).hour == 1
    opening = next_opening(before, NY, US_WINDOW)
    assert opening == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert opening.astimezone(NY).time() == time(8, 0)


def test_us_1006_6b1i_fall_back_opening_is_0800_est() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice; 08:00 EST = 13:00Z.
    second_0130 = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert second_0130.astimezone(NY).fold == 1
    assert next_opening(second_0130, NY, US_WINDOW) == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert not allowed(datetime(2026, 11, 1, 12, 59, tzinfo=UTC), NY, US_WINDOW)


def test_us_1006_6b1i_evening_close_on_dst_days() -> None:
    assert allowed(local(NY, 2026, 3, 8, 20, 59), NY, US_WINDOW)
    assert not allowed(local(NY, 2026, 3, 8, 21, 0), NY, US_WINDOW)
    assert allowed(local(NY, 2026, 11, 1, 20, 59), NY, US_WINDOW)
    assert not allowed(local(NY, 2026, 11, 1, 21, 0), NY, US_WINDOW)


def test_opening_inside_a_dst_gap_resolves_after_the_gap() -> None:
    window = Window("T.window", time(2, 30), time(21, 0), "test")
    opening = next_opening(datetime(2026, 3, 8, 5, 0, tzinfo=UTC), NY, window)  # 00:00 EST
    assert opening >= datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # the 03:00 EDT transition
    assert allowed(opening, NY, window)


def test_far_zone_kiritimati_plus_14() -> None:
    kiritimati = ZoneInfo("Pacific/Kiritimati")
    # 2026-11-28 08:00 local is 2026-11-27 18:00Z: the day starts there before anywhere else.
    assert allowed(datetime(2026, 11, 27, 18, 0, tzinfo=UTC), kiritimati, US_WINDOW)
    late = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # 21:00 local on the 28th
    assert not allowed(late, kiritimati, US_WINDOW)
    assert next_opening(late, kiritimati, US_WINDOW) == datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


def test_far_zone_pago_pago_minus_11() -> None:
    pago = ZoneInfo("Pacific/Pago_Pago")
    early = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)  # 07:00 local on the 28th
    assert not allowed(early, pago, US_WINDOW)
    assert next_opening(early, pago, US_WINDOW) == datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
    assert allowed(datetime(2026, 11, 29, 7, 59, tzinfo=UTC), pago, US_WINDOW)  # 20:59 local


def test_next_opening_is_now_when_open() -> None:
    now = local(SHANGHAI, 2026, 11, 28, 10, 0)
    assert next_opening(now, SHANGHAI, CN_WINDOW, jitter_s=900, seed="x") == now


def test_jitter_is_stable_per_intent_and_within_range() -> None:
    values = [jitter_s_for(f"intent-{i}", 900) for i in range(500)]
    assert all(0 <= v < 900 for v in values)
    assert values == [jitter_s_for(f"intent-{i}", 900) for i in range(500)]
    assert len(set(values)) > 100  # a book spreads out rather than firing at 08:00:00
    assert jitter_s_for("anything", 0) == 0


def test_next_opening_with_jitter_stays_in_window() -> None:
    night = local(SHANGHAI, 2026, 11, 28, 23, 0)
    opening = local(SHANGHAI, 2026, 11, 29, 8, 0)
    for i in range(50):
        result = next_opening(night, SHANGHAI, CN_WINDOW, jitter_s=900, seed=f"i{i}")
        assert opening <= result < opening + timedelta(seconds=900)
        assert allowed(result, SHANGHAI, CN_WINDOW)


def test_jitter_longer_than_the_window_is_capped_inside_it() -> None:
    window = Window("T.window", time(8, 0), time(8, 1), "test")
    result = next_opening(local(SHANGHAI, 2026, 11, 28, 9), SHANGHAI, window, 86_400, "seed")
    assert allowed(result, SHANGHAI, window)


@pytest.mark.parametrize(
    "name", ["", "Mars/Olympus_Mons", "../etc/passwd", "/etc/localtime", "EST5"]
)
def test_unknown_or_invalid_zone_is_refused(name: str) -> None:
    assert zone_or_none(name) is None


def test_known_zone_is_accepted() -> None:
    assert zone_or_none("Asia/Shanghai") == SHANGHAI
