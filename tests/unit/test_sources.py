"""Account sources: CSV, JSONL and SQL yield the same accounts; bad rows carry line numbers."""

from __future__ import annotations

import csv
import inspect
import json
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from dunning.errors import ConfigError
from dunning.producers.accounts import COLUMNS, Account
from dunning.producers.sources import (
    BadRow,
    BadRowLog,
    accounts_only,
    csv_accounts,
    jsonl_accounts,
    open_accounts,
    sql_accounts,
)

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "accounts.sample.csv"

GOOD = {
    "account_id": "A-1",
    "person_id": "P-1",
    "name": "张伟",
    "phone": "+8613800138000",
    "email": "zhang.wei@example.com",
    "address_line1": "浦东新区世纪大道100号",
    "city": "上海",
    "region": "上海市",
    "postal_code": "200120",
    "country": "CN",
    "timezone": "Asia/Shanghai",
    "locale": "zh-CN",
    "jurisdiction": "CN",
    "currency": "CNY",
    "amount_due": "1234.50",
    "due_date": "2026-11-20",
    "sms_opt_out": "yes",
    "paid": "0",
}


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    columns = header or list(GOOD)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_good_csv_row_becomes_an_account(tmp_path: Path) -> None:
    [account] = list(csv_accounts(write_csv(tmp_path / "a.csv", [GOOD])))
    assert isinstance(account, Account)
    assert account.amount_due == Decimal("1234.50")
    assert account.principal == Decimal("1234.50")  # defaults to the amount due
    assert account.sms_opt_out is True
    assert account.paid is False
    assert account.address is not None
    assert account.address.city == "上海"
    assert account.days_past_due(date(2026, 11, 28)) == 8
    assert account.days_past_due(date(2026, 11, 17)) == -3


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("phone", "13800138000", "E.164"),
        ("timezone", "Asia/Beijing", "IANA"),
        ("timezone", "../etc/passwd", "IANA"),
        ("due_date", "2026-02-30", "not a valid date"),
        ("due_date", "28/11/2026", "not a date"),
        ("amount_due", "12,50", "decimal"),
        ("amount_due", "-5", "non-negative"),
        ("paid", "maybe", "flag"),
        ("jurisdiction", "FR", "not one of"),
        ("email", "no-at-sign", "email"),
        ("account_id", "", "required"),
    ],
)
def test_bad_value_is_reported_with_its_line_and_the_run_goes_on(
    tmp_path: Path, column: str, value: str, fragment: str
) -> None:
    bad = {**GOOD, "account_id": "A-2", column: value}
    rows = list(
        csv_accounts(write_csv(tmp_path / "a.csv", [GOOD, bad, {**GOOD, "account_id": "A-3"}]))
    )
    assert [type(r).__name__ for r in rows] == ["Account", "BadRow", "Account"]
    assert isinstance(rows[1], BadRow)
    assert rows[1].line == 3  # header is line 1
    assert column in rows[1].reason
    assert fragment in rows[1].reason


def test_bad_phone_reason_does_not_echo_the_number(tmp_path: Path) -> None:
    rows = list(csv_accounts(write_csv(tmp_path / "a.csv", [{**GOOD, "phone": "13912345678"}])))
    assert isinstance(rows[0], BadRow)
    assert "13912345678" not in rows[0].reason


def test_line_numbers_are_physical_lines_across_quoted_newlines(tmp_path: Path) -> None:
    multi = {**GOOD, "address_line1": "Room 5\nBuilding 2"}
    bad = {**GOOD, "phone": "555"}
    path = write_csv(tmp_path / "a.csv", [multi, bad])
    rows = list(csv_accounts(path))
    assert isinstance(rows[0], Account)
    assert rows[0].address is not None
    assert rows[0].address.lines == ("Room 5\nBuilding 2",)
    assert rows[1] == BadRow(4, rows[1].reason)  # 1 header, 2-3 first row, 4 second


def test_short_row_is_a_bad_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [GOOD])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("A-9,P-9,Someone\n")
    rows = list(csv_accounts(path))
    assert isinstance(rows[1], BadRow)
    assert rows[1].line == 3
    assert "fields" in rows[1].reason


def test_header_without_a_required_column_is_a_config_error(tmp_path: Path) -> None:
    header = [c for c in GOOD if c != "timezone"]
    path = write_csv(tmp_path / "a.csv", [GOOD], header=header)
    with pytest.raises(ConfigError, match="timezone"):
        list(csv_accounts(path))


def test_misspelt_flag_column_is_refused_not_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [GOOD], header=[*GOOD, "sms_optout"])
    with pytest.raises(ConfigError, match="sms_optout"):
        list(csv_accounts(path))


def test_lender_columns_prefixed_x_are_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [{**GOOD, "x_branch": "7"}], header=[*GOOD, "x_branch"])
    assert isinstance(next(csv_accounts(path)), Account)


def test_jsonl_source(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = [
        json.dumps({**GOOD, "amount_due": 0.1, "paid": True, "sms_opt_out": False}),
        "",
        "{not json",
        json.dumps({**GOOD, "surprise": 1}),
        json.dumps([1, 2]),
        json.dumps({**GOOD, "timezone": "Mars/Olympus"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = list(jsonl_accounts(path))
    first = rows[0]
    assert isinstance(first, Account)
    assert first.amount_due == Decimal("0.1")  # exact, not a binary float
    assert first.paid is True
    bad = [r for r in rows if isinstance(r, BadRow)]
    assert [b.line for b in bad] == [3, 4, 5, 6]
    assert "surprise" in bad[1].reason
    assert "timezone" in bad[3].reason


def test_sql_source_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    engine = sa.create_engine(url)
    columns = ", ".join(f"{c} TEXT" for c in GOOD)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE accounts ({columns})"))
        insert = sa.text(f"INSERT INTO accounts VALUES ({', '.join(':' + c for c in GOOD)})")
        connection.execute(insert, [GOOD, {**GOOD, "account_id": "A-2", "due_date": "soon"}])
    engine.dispose()
    rows = list(sql_accounts(url))
    assert isinstance(rows[0], Account)
    assert rows[0].account_id == "A-1"
    assert rows[1] == BadRow(2, rows[1].reason)
    assert "due_date" in rows[1].reason
    filtered = list(open_accounts(url, query="SELECT * FROM accounts WHERE account_id = 'A-1'"))
    assert len(filtered) == 1


def test_sql_source_failing_query_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="query failed"):
        list(sql_accounts(f"sqlite:///{tmp_path / 'empty.db'}", "SELECT * FROM nothing"))


def test_sources_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = 20_000
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(GOOD))
        writer.writeheader()
        for index in range(rows):
            writer.writerow({**GOOD, "account_id": f"A-{index}"})
    source = csv_accounts(path)
    assert inspect.isgenerator(source)
    tracemalloc.start()
    try:
        count = sum(1 for row in source if isinstance(row, Account))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    # Holding 20,000 accounts takes tens of MB; streaming holds one row at a time.
    assert peak_bytes < 2_000_000


def test_accounts_only_counts_bad_rows_and_keeps_the_first(tmp_path: Path) -> None:
    bad = [{**GOOD, "account_id": f"B-{i}", "phone": "x"} for i in range(25)]
    path = write_csv(tmp_path / "a.csv", [GOOD, *bad])
    log = BadRowLog(keep=20)
    accounts = list(accounts_only(csv_accounts(path), log))
    assert [a.account_id for a in accounts] == ["A-1"]
    assert log.count == 25
    assert [b.line for b in log.first] == list(range(3, 23))


def test_sample_file_is_valid_and_uses_every_column() -> None:
    with SAMPLE.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert set(header) == set(COLUMNS)
    rows = list(open_accounts(SAMPLE))
    assert rows
    assert all(isinstance(r, Account) for r in rows), [r for r in rows if isinstance(r, BadRow)]
    assert {r.jurisdiction for r in rows if isinstance(r, Account)} >= {"CN", "US"}


def test_unknown_format_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format"):
        open_accounts(tmp_path / "book.xlsx")
