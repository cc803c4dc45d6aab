"""Segment counting: GSM-7 160/153, UCS-2 70/67, extension characters and surrogate pairs."""

from __future__ import annotations

import pytest

from dunning.channels.segments import Encoding, count_segments


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    count = count_segments("a" * length)
    assert count.encoding is Encoding.GSM7
    assert count.units == length
    assert count.segments == segments


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_chinese_is_ucs2_with_70_and_67(length: int, segments: int) -> None:
    count = count_segments("欠" * length)
    assert count.encoding is Encoding.UCS2
    assert count.units == length
    assert count.segments == segments


def test_one_chinese_character_turns_a_latin_message_into_ucs2() -> None:
    latin = "Your payment is due. " * 7  # 147 characters: one GSM-7 segment
    assert count_segments(latin).segments == 1
    mixed = count_segments(latin + "您")
    assert mixed.encoding is Encoding.UCS2
    assert mixed.segments == 3  # 148 code units over 67 per part


def test_extension_characters_cost_two_septets() -> None:
    count = count_segments("€" * 80)
    assert count.encoding is Encoding.GSM7
    assert count.units == 160
    assert count.segments == 1
    assert count_segments("€" * 80 + "a").segments == 2


def test_gsm7_accented_letters_stay_gsm7_but_others_do_not() -> None:
    assert count_segments("Café à Málaga").encoding is Encoding.UCS2  # á is not GSM-7
    assert count_segments("Caffè è ù ì ò").encoding is Encoding.GSM7


def test_emoji_count_two_ucs2_units() -> None:
    count = count_segments("👍" * 35)
    assert count.encoding is Encoding.UCS2
    assert count.units == 70
    assert count.segments == 1


def test_empty_text_is_one_segment() -> None:
    assert count_segments("").segments == 1
