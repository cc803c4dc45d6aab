"""The Metro 2 writer against a golden file, field by field at the documented positions.

Positions are 1-based and inclusive as in docs/bureau.md ("Metro 2 layout"); the test slices
them itself rather than asking the layout module, so a shifted field fails here.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest

from dunning.bureau.metro2 import Furnisher, parse_metro2, write_metro2
from dunning.bureau.metro2_layout import BASE, HEADER, K1, TRAILER, write_segment
from tests.bureau_samples import us_records

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "bureau" / "metro2-2026-11.golden.txt"
FURNISHER = Furnisher(
    "FURNISHER01", "EXAMPLE CONSUMER FINANCE", "1 MAIN ST BOSTON MA 02108", 6175550100
)


def written() -> str:
    out = io.StringIO()
    write_metro2(out, us_records(), FURNISHER, "2026-11", date(2026, 11, 30))
    return out.getvalue()


def field(line: str, start: int, end: int) -> str:
    return line[start - 1 : end]


def lines() -> list[str]:
    return GOLDEN.read_text("ascii").split("\n")[:-1]


def test_the_writer_reproduces_the_golden_file_byte_for_byte() -> None:
    assert written().encode("ascii") == GOLDEN.read_bytes()


def test_every_record_descriptor_word_is_the_record_length() -> None:
    for line in lines():
        assert int(field(line, 1, 4)) == len(line)
    assert [len(line) for line in lines()] == [426, 426, 460, 426, 426, 426]


def test_header_fields_sit_at_their_offsets() -> None:
    header = lines()[0]
    assert field(header, 5, 10) == "HEADER"
    assert field(header, 48, 55) == "11302026"  # activity date, MMDDYYYY: the cycle's last day
    assert field(header, 56, 63) == "11302026"  # date created: the same, so reruns match
    assert field(header, 80, 119) == "EXAMPLE CONSUMER FINANCE".ljust(40)
    assert field(header, 120, 215) == "1 MAIN ST BOSTON MA 02108".ljust(96)
    assert field(header, 216, 225) == "6175550100"
    assert field(header, 226, 265) == "DUNNING".ljust(40)


def test_base_segment_fields_sit_at_their_offsets() -> None:
    a1 = lines()[1]
    assert field(a1, 5, 5) == "1"  # processing indicator
    assert field(a1, 6, 19) == "11162026143005"  # time stamp: when it was furnished (UTC)
    assert field(a1, 21, 40) == "FURNISHER01".ljust(20)
    assert field(a1, 43, 72) == "A1".ljust(30)
    assert field(a1, 73, 73) == "I"  # portfolio: installment
    assert field(a1, 74, 75) == "01"  # account type: unsecured
    assert field(a1, 76, 83) == "03022025"  # date opened
    assert field(a1, 84, 92) == "000000000"  # credit limit: none
    assert field(a1, 93, 101) == "000012000"  # highest credit = principal, whole units
    assert field(a1, 102, 104) == "24 "  # terms duration, left-justified
    assert field(a1, 105, 105) == "M"
    assert field(a1, 124, 125) == "84"  # 184 days past due
    assert field(a1, 126, 126) == " "  # payment rating: only for paid/closed statuses
    assert field(a1, 127, 150) == "B" * 24  # first reported cycle
    assert field(a1, 153, 154) == "  "  # no compliance condition
    assert field(a1, 155, 163) == "000002345"  # current balance 2345.99: cents truncated
    assert field(a1, 164, 172) == "000002345"  # amount past due
    assert field(a1, 182, 189) == "11162026"  # date of account information
    assert field(a1, 190, 197) == "05162026"  # date of first delinquency
    assert field(a1, 198, 205) == "00000000"  # not closed
    assert field(a1, 206, 213) == "04302026"  # date of last payment
    assert field(a1, 232, 256) == "DOE".ljust(25)
    assert field(a1, 257, 276) == "JANE Q".ljust(20)
    assert field(a1, 298, 306) == "000000000"  # no SSN in the book
    assert field(a1, 325, 325) == "1"  # ECOA: individual
    assert field(a1, 328, 329) == "US"
    assert field(a1, 330, 361) == "12 ELM STREET".ljust(32)
    assert field(a1, 362, 393) == "APT 4".ljust(32)
    assert field(a1, 394, 413) == "BOSTON".ljust(20)
    assert field(a1, 414, 415) == "MA"
    assert field(a1, 416, 424) == "02108".ljust(9)


def test_a_third_party_collection_carries_k1_and_the_collection_codes() -> None:
    a2 = lines()[2]
    assert field(a2, 73, 75) == "O48"
    assert field(a2, 124, 125) == "93"
    assert field(a2, 427, 428) == "K1"
    assert field(a2, 429, 458) == "ACME BANK N.A.".ljust(30)
    assert field(a2, 459, 460) == "12"  # creditor classification: financial


def test_a_disputed_account_carries_xb_and_a_deleted_one_df() -> None:
    a3, a4 = lines()[3], lines()[4]
    assert (field(a3, 124, 125), field(a3, 153, 154)) == ("71", "XB")
    assert field(a3, 84, 92) == "000005000"  # credit limit
    assert (field(a3, 73, 75), field(a3, 102, 105)) == ("R18", "REV ")
    assert field(a4, 124, 125) == "DF"
    assert field(a4, 190, 197) == "00000000"  # a deleted record carries no DOFD


def test_trailer_totals_match_the_records() -> None:
    records, trailer = lines()[1:-1], lines()[-1]
    statuses = [field(r, 124, 125) for r in records]
    assert field(trailer, 5, 11) == "TRAILER"
    assert int(field(trailer, 12, 20)) == len(records)
    assert int(field(trailer, 30, 38)) == statuses.count("DF")
    assert int(field(trailer, 57, 65)) == len(records) + 2  # block count: every record
    positions = {"11": 84, "71": 147, "84": 192, "93": 219, "97": 255, "DA": 66}
    for status, start in positions.items():
        assert int(field(trailer, start, start + 8)) == statuses.count(status), status
    assert int(field(trailer, 282, 290)) == sum(len(r) == 460 for r in records)  # K1 segments


def test_parse_round_trips_exactly() -> None:
    text = written()
    parsed = parse_metro2(text)
    assert len(parsed.records) == 4
    assert parsed.header["record_identifier"] == "HEADER"
    assert parsed.trailer["total_base_records"] == 4
    base, k1 = parsed.records[1]
    assert (base["consumer_account_number"], base["account_status"]) == ("A2", "93")
    assert k1 is not None
    assert k1["original_creditor_name"] == "ACME BANK N.A."
    # Writing back what was parsed gives the same bytes, segment by segment.
    again = [write_segment("header", HEADER, parsed.header)]
    for base, k1 in parsed.records:
        again.append(write_segment("base", BASE, base)
                     + ("" if k1 is None else write_segment("k1", K1, k1)))  # fmt: skip
    again.append(write_segment("trailer", TRAILER, parsed.trailer))
    assert "\n".join(again) + "\n" == text


def test_a_damaged_record_is_named_by_line() -> None:
    text = written().split("\n")
    text[2] = text[2][:-1]
    with pytest.raises(ValueError, match="metro2 line 3: record descriptor word '0460'"):
        parse_metro2("\n".join(text))


def test_an_amount_wider_than_its_field_is_named() -> None:
    import dataclasses
    from decimal import Decimal

    record = dataclasses.replace(us_records()[0], current_balance=Decimal("1234567890"))
    with pytest.raises(ValueError, match=r"metro2 base.current_balance: 1234567890 does not fit"):
        write_metro2(io.StringIO(), [record], FURNISHER, "2026-11", date(2026, 11, 30))
