"""Account validation gaps: amounts, unsafe text, duplicates, broken quotes, BOMs, deep JSON.

Each bad input becomes a bad row with its line and reason (or the file is refused); the rows
around it still become accounts.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from dunning.errors import ConfigError
from dunning.producers.accounts import Account
from dunning.producers.sources import BadRow, csv_accounts, jsonl_accounts, sql_accounts
from tests.unit.test_sources import GOOD, write_csv


def kinds(rows: list[Account | BadRow]) -> list[str]:
    return [type(r).__name__ for r in rows]


def bad_rows(rows: list[Account | BadRow]) -> list[BadRow]:
    return [r for r in rows if isinstance(r, BadRow)]


def around(tmp_path: Path, **changes: str) -> list[Account | BadRow]:
    """A good row, the changed row, a good row: the middle one is on line 3."""
    rows = [GOOD, {**GOOD, "account_id": "A-2", **changes}, {**GOOD, "account_id": "A-3"}]
    return list(csv_accounts(write_csv(tmp_path / "a.csv", rows)))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1e30", "decimal amount like 1234.50"),
        ("1E+3", "decimal amount like 1234.50"),
        ("1_000", "decimal amount like 1234.50"),
        ("1,000.00", "decimal amount like 1234.50"),
        ("١٢٣", "decimal amount like 1234.50"),  # Arabic-Indic digits
        ("１２３", "decimal amount like 1234.50"),  # full-width digits
        ("NaN", "decimal amount like 1234.50"),
        ("-5", "non-negative"),
        ("1" * 30, "30 digits before the point; at most 12"),
        ("1234.505", "3 decimals; CNY has at most 2"),
    ],
)
def test_amounts_outside_the_documented_format_are_bad_rows(
    tmp_path: Path, value: str, fragment: str
) -> None:
    rows = around(tmp_path, amount_due=value)
    assert kinds(rows) == ["Account", "BadRow", "Account"]
    assert rows[1] == BadRow(3, rows[1].reason)
    assert rows[1].reason.startswith("amount_due: ")
    assert fragment in rows[1].reason


def test_amount_decimals_follow_the_currency_and_principal_is_checked_too(tmp_path: Path) -> None:
    yen = {"currency": "JPY", "jurisdiction": "CN"}
    rows = [
        {**GOOD, **yen, "account_id": "Y-1", "amount_due": "1200"},
        {**GOOD, **yen, "account_id": "Y-2", "amount_due": "1200.5"},
        {**GOOD, "account_id": "P-2", "principal": "1e3"},
        {**GOOD, "account_id": "B-1", "amount_due": "999999999999.99"},
    ]
    out = list(csv_accounts(write_csv(tmp_path / "a.csv", rows, header=[*GOOD, "principal"])))
    assert kinds(out) == ["Account", "BadRow", "BadRow", "Account"]
    assert "JPY has at most 0" in out[1].reason  # type: ignore[union-attr]
    assert out[2].reason.startswith("principal: ")  # type: ignore[union-attr]
    assert isinstance(out[3], Account)
    assert out[3].amount_due == Decimal("999999999999.99")


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("name", "Jane\r\nBcc: someone@example.org", "control character U+000D"),
        ("name", "Jane\nDoe", "control character U+000A"),
        ("name", "Jane\x00Doe", "control character U+0000"),
        ("name", "Jane\u2028Doe", "control character U+2028"),
        ("name", "Jane\x85Doe", "control character U+0085"),
        ("name", "=?utf-8?q?x=0D=0ABcc=3A_x=40example.org?=", "encoded word"),
        ("name", "J" * 5000, "5,000 characters long; at most 200"),
        ("account_id", "A\r\n2", "control character U+000D"),
        ("account_id", "A" * 129, "129 characters long; at most 128"),
        ("person_id", "P\t2", "control character U+0009"),
        ("email", "=?utf-8?q?a=0D=0ABcc=3A_b?=@example.com", "encoded word"),
        ("email", "a\x01b@example.com", "control character U+0001"),
        ("city", "上\r\n海", "control character U+000D"),
    ],
)
def test_unsafe_text_is_a_bad_row_that_never_quotes_the_value(
    tmp_path: Path, column: str, value: str, fragment: str
) -> None:
    rows = around(tmp_path, **{column: value})
    assert kinds(rows) == ["Account", "BadRow", "Account"]
    bad = rows[1]
    assert isinstance(bad, BadRow)
    assert bad.line == 3
    assert bad.reason.startswith(f"{column}: ")
    assert fragment in bad.reason
    assert value.strip() not in bad.reason


def test_a_name_of_200_characters_and_a_multiline_address_are_fine(tmp_path: Path) -> None:
    rows = around(tmp_path, name="名" * 200, address_line1="Room 5\r\nBuilding 2")
    assert kinds(rows) == ["Account"] * 3


def test_a_duplicate_account_id_names_the_line_of_the_first(tmp_path: Path) -> None:
    first = {**GOOD, "account_id": "A-7", "person_id": "P-1"}
    second = {**GOOD, "account_id": "A-7", "person_id": "P-2", "name": "Someone Else"}
    path = write_csv(tmp_path / "a.csv", [GOOD, first, {**GOOD, "account_id": "A-8"}, second])
    rows = list(csv_accounts(path))
    assert kinds(rows) == ["Account", "Account", "Account", "BadRow"]
    assert rows[3] == BadRow(5, "account_id: 'A-7' was already on line 3; skipped")


def test_a_duplicate_account_id_in_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = [json.dumps(GOOD), json.dumps({**GOOD, "person_id": "P-9"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = list(jsonl_accounts(path))
    assert kinds(rows) == ["Account", "BadRow"]
    assert rows[1] == BadRow(2, "account_id: 'A-1' was already on line 1; skipped")


def _csv_text(rows: list[dict[str, str]]) -> list[str]:
    """The physical lines (with their line ends) of a CSV holding ``rows`` under GOOD's header."""
    path_lines: list[str] = [",".join(GOOD) + "\n"]
    for row in rows:
        path_lines.append(",".join(row[c] for c in GOOD) + "\n")
    return path_lines


def test_an_unterminated_quote_reports_every_swallowed_line(tmp_path: Path) -> None:
    ids = [f"A-{n}" for n in range(2, 7)]
    lines = _csv_text([{**GOOD, "account_id": i} for i in ids])
    lines[2] = lines[2].replace("浦东新区世纪大道100号", '"浦东新区世纪大道100号')  # line 3
    path = tmp_path / "a.csv"
    path.write_text("".join(lines), encoding="utf-8")
    rows = list(csv_accounts(path))
    assert [r.account_id for r in rows if isinstance(r, Account)] == ["A-2"]
    bad = bad_rows(rows)
    assert [b.line for b in bad] == [3, 4, 5, 6]
    assert "unterminated quote" in bad[0].reason
    assert "runs to line 6" in bad[0].reason
    assert all("swallowed by the quote opened on line 3" in b.reason for b in bad[1:])


def test_a_stray_quote_closed_further_down_reports_the_lines_between(tmp_path: Path) -> None:
    ids = [f"A-{n}" for n in range(2, 8)]
    lines = _csv_text([{**GOOD, "account_id": i} for i in ids])
    lines[2] = lines[2].replace("浦东新区世纪大道100号", '"浦东新区世纪大道100号')  # opens, line 3
    lines[4] = lines[4].replace("浦东新区世纪大道100号", '浦东新区世纪大道100号"')  # closes, line 5
    path = tmp_path / "a.csv"
    path.write_text("".join(lines), encoding="utf-8")
    rows = list(csv_accounts(path))
    # The record from line 3 to 5 has the header's field count: it must not pass as one account.
    assert [r.account_id for r in rows if isinstance(r, Account)] == ["A-2", "A-6", "A-7"]
    assert [b.line for b in bad_rows(rows)] == [3, 4, 5]


def test_a_quote_that_swallows_past_the_field_limit_reports_every_line(tmp_path: Path) -> None:
    ids = [f"A-{n}" for n in range(2, 2002)]
    lines = _csv_text([{**GOOD, "account_id": i} for i in ids])
    lines[2] = lines[2].replace("浦东新区世纪大道100号", '"浦东新区世纪大道100号')  # line 3
    path = tmp_path / "a.csv"
    path.write_text("".join(lines), encoding="utf-8")
    rows = list(csv_accounts(path))
    bad = bad_rows(rows)
    # csv gives up at its 128 KiB field limit; every line up to there is reported, the rows
    # after it are read again as rows.
    assert "field larger than field limit" in bad[0].reason
    assert "quote left open" in bad[0].reason
    assert [b.line for b in bad] == list(range(3, 3 + len(bad)))
    assert len(bad) > 100
    assert len(rows) == len(ids)  # one outcome per line: nothing vanished
    accounts = [r for r in rows if isinstance(r, Account)]
    assert accounts[0].account_id == "A-2"
    assert accounts[1].account_id == f"A-{3 + len(bad)}"  # A-n is on line n


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_byte_order_mark_is_stripped(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"a{suffix}"
    if suffix == ".csv":
        write_csv(path, [GOOD])
        text = path.read_text(encoding="utf-8")
    else:
        text = json.dumps(GOOD) + "\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    source = csv_accounts(path) if suffix == ".csv" else jsonl_accounts(path)
    assert kinds(list(source)) == ["Account"]


def test_deeply_nested_or_huge_json_is_a_bad_row_and_the_file_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    deep = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    huge = json.dumps({**GOOD, "account_id": "A-3"}).replace('"1234.50"', "9" * 5000)
    lines = [json.dumps(GOOD), deep, huge, json.dumps({**GOOD, "account_id": "A-4"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = list(jsonl_accounts(path))
    assert kinds(rows) == ["Account", "BadRow", "BadRow", "Account"]
    assert rows[1] == BadRow(2, "not a flat object: values nested too deeply to read")
    assert rows[2].line == 3  # type: ignore[union-attr]
    assert "digits" in rows[2].reason  # type: ignore[union-attr]


def test_an_unterminated_quote_on_the_last_row_is_reported_there(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [GOOD])
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow({**GOOD, "account_id": "A-2"}.values())
        handle.write('A-3,P-3,"Unfinished\n')
    rows = list(csv_accounts(path))
    assert kinds(rows) == ["Account", "Account", "BadRow"]
    assert rows[2].line == 4  # type: ignore[union-attr]


def _sqlite_book(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    engine = sa.create_engine(url)
    columns = ", ".join(f"{c} TEXT" for c in GOOD)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE accounts ({columns})"))
        insert = sa.text(f"INSERT INTO accounts VALUES ({', '.join(':' + c for c in GOOD)})")
        connection.execute(insert, [GOOD])
    engine.dispose()
    return url


def _sqlite_rows(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT account_id, name FROM accounts")
            return [(str(a), str(n)) for a, n in connection.execute(query)]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "query",
    [
        "UPDATE accounts SET name = 'x' RETURNING *",
        "DELETE FROM accounts RETURNING *",
        "DROP TABLE accounts",
        "  -- a comment first\n/* and another */ drop table accounts",
    ],
)
def test_sqlite_source_refuses_a_query_that_is_not_a_select(tmp_path: Path, query: str) -> None:
    url = _sqlite_book(tmp_path)
    with pytest.raises(ConfigError, match=r"must only read \(SELECT, WITH, VALUES or TABLE\)"):
        list(sql_accounts(url, query))
    assert _sqlite_rows(url) == [("A-1", GOOD["name"])]


def test_sqlite_source_runs_read_only_so_a_writing_select_changes_nothing(tmp_path: Path) -> None:
    url = _sqlite_book(tmp_path)
    sneaky = "WITH gone AS (SELECT 1) DELETE FROM accounts RETURNING *"
    with pytest.raises(ConfigError, match="tried to write; it runs read-only"):
        list(sql_accounts(url, sneaky))
    assert _sqlite_rows(url) == [("A-1", GOOD["name"])]
    assert [type(r).__name__ for r in sql_accounts(url)] == ["Account"]
