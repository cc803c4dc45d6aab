"""The CN report CSV: the column contract, the values, and generate -> parse round trips."""

from __future__ import annotations

import io

import pytest

from dunning.bureau.cn_csv import COLUMNS, CnCsvWriter, cn_row, parse_cn_csv
from tests.bureau_samples import cn_records


def written() -> str:
    out = io.StringIO()
    writer = CnCsvWriter(out)
    for record in cn_records():
        writer.add(record)
    return out.getvalue()


def test_the_header_is_the_documented_contract() -> None:
    assert written().split("\n")[0] == ",".join(COLUMNS)
    assert COLUMNS[:6] == ("account_id", "person_id", "name", "cycle", "report_date",
                           "account_type")  # fmt: skip


def test_rows_carry_the_pboc_fields() -> None:
    loan, card = parse_cn_csv(io.StringIO(written()))
    assert loan["account_type"] == "D1"
    assert loan["name"] == "张三"
    assert loan["overdue_periods"] == "4"  # 95 days: four monthly periods
    assert loan["overdue_amount"] == "2345.99"
    assert loan["repayment_status_24"] == "*" * 23 + "4"
    assert loan["first_overdue_date"] == "2026-08-13"
    assert loan["date_opened"] == "2025-08-13"
    assert card["account_type"] == "R2"
    assert (card["balance"], card["overdue_periods"], card["overdue_amount"]) == (
        "0.00", "0", "0.00",
    )  # fmt: skip
    assert card["repayment_status_24"].endswith("C")
    assert card["credit_limit"] == "20000.00"
    assert card["date_closed"] == "2026-11-16"


def test_parse_round_trips_exactly() -> None:
    text = written()
    rows = list(parse_cn_csv(io.StringIO(text)))
    assert rows == [cn_row(r) for r in cn_records()]
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    import csv

    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
    writer.writerows(rows)
    assert out.getvalue() == text


def test_a_bad_repayment_string_is_named_by_line() -> None:
    text = written().replace("*" * 23 + "4", "*" * 23 + "X", 1)
    with pytest.raises(ValueError, match="cn-csv line 2: repayment_status_24"):
        list(parse_cn_csv(io.StringIO(text)))


def test_a_foreign_header_is_refused() -> None:
    with pytest.raises(ValueError, match="cn-csv line 1"):
        list(parse_cn_csv(io.StringIO("account_id,cycle\nA,2026-11\n")))
