"""``bureau_records``: the account's snapshot per reporting cycle, as the bureau step wrote it.

One row per (account, cycle), ``cycle`` being ``YYYY-MM``. Writing the same account in the same
cycle again replaces the snapshot (the latest furnishing of the cycle is the one reported).
Amounts are decimal text, as the intents carry them; ``detail`` is the rest of the snapshot as
JSON (names, address, account terms), which only the export reads. What goes into a row is
the bureau package's business (dunning/bureau/); this module only stores and reads rows.

The export streams a cycle in account order (:meth:`BureauStore.cycle_rows`), so its memory
does not grow with the book. Accounts the gate kept out of a cycle are read from the bureau
intents of that cycle and their last gate verdict (:meth:`BureauStore.cycle_exclusions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    delete,
    insert,
    or_,
    select,
    tuple_,
)  # fmt: skip

from dunning.intents import Channel
from dunning.ledger.core import LedgerCore
from dunning.ledger.schema import UTCDateTime, audit, intents, metadata

__all__ = ["BUREAU_COLUMNS", "BureauStore", "bureau_records"]

bureau_records = Table(
    "bureau_records",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("cycle", String(7), primary_key=True),  # YYYY-MM
    Column("person_id", String(128), nullable=False),
    Column("intent_id", String(64), nullable=False),
    Column("jurisdiction", String(8), nullable=False),
    Column("status_code", String(2), nullable=False),  # Metro 2 account status
    Column("days_past_due", Integer, nullable=False),
    Column("current_balance", String(32), nullable=False),
    Column("amount_past_due", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("as_of", Date, nullable=False),  # the date of account information
    Column("first_delinquency", Date),  # null: never delinquent, or brought current since
    Column("payment_history", String(24), nullable=False),  # Metro 2 profile, newest first
    Column("compliance_condition", String(2), nullable=False),  # XB, XH or empty
    Column("delete_reason", String(16)),  # identity_theft | error: the delete indicator
    Column("notice_due_by", UTCDateTime()),  # FCRA 623(a)(7): a notice still owed
    Column("furnished_at", UTCDateTime(), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_bureau_records_cycle", "cycle", "account_id"),
)

#: The row keys :meth:`BureauStore.write_bureau_record` takes (``detail`` as a mapping).
BUREAU_COLUMNS = tuple(c.name for c in bureau_records.columns)
_DECISIONS = ("refuse", "suppress", "defer")


def _cycle_bounds(cycle: str) -> tuple[datetime, datetime]:
    year, month = (int(part) for part in cycle.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _row(row: Row[Any]) -> dict[str, Any]:
    out = row._asdict()
    out["detail"] = json.loads(out["detail"])
    return out


def _replace(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    values = []
    for row in rows:
        value = {name: row[name] for name in BUREAU_COLUMNS if name != "detail"}
        value["detail"] = json.dumps(row["detail"], sort_keys=True, ensure_ascii=False)
        values.append(value)
    keys = [(v["account_id"], v["cycle"]) for v in values]
    key = tuple_(bureau_records.c.account_id, bureau_records.c.cycle)
    for start in range(0, len(keys), 400):  # bounded: SQLite caps bound parameters
        conn.execute(delete(bureau_records).where(key.in_(keys[start : start + 400])))
    conn.execute(insert(bureau_records), values)


class BureauStore(LedgerCore):
    """Reads and writes ``bureau_records`` (see the module docstring)."""

    def write_bureau_record(self, row: Mapping[str, Any]) -> None:
        """Store the snapshot of ``row['account_id']`` for ``row['cycle']``, replacing one
        already written for that cycle."""
        with self._tx(str(row["person_id"]), what="bureau record write") as conn:
            _replace(conn, [row])

    def write_bureau_records(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store many snapshots in one transaction (imports, benchmarks); same replacing rule."""
        if rows:
            with self._tx(what="bureau records write") as conn:
                _replace(conn, rows)

    def bureau_history(
        self, account_id: str, *, before: str, limit: int = 24
    ) -> list[dict[str, Any]]:
        """The account's snapshots of cycles before ``before`` (YYYY-MM), newest first."""
        query = (
            select(bureau_records)
            .where(bureau_records.c.account_id == account_id, bureau_records.c.cycle < before)
            .order_by(bureau_records.c.cycle.desc())
            .limit(limit)
        )
        with self._tx(read=True, what="bureau history read") as conn:
            return [_row(r) for r in conn.execute(query)]

    def bureau_record(self, account_id: str, cycle: str) -> dict[str, Any] | None:
        """The snapshot of one account for one cycle, or None."""
        query = select(bureau_records).where(
            bureau_records.c.account_id == account_id, bureau_records.c.cycle == cycle
        )
        with self._tx(read=True, what="bureau record read") as conn:
            found = conn.execute(query).first()
        return None if found is None else _row(found)

    def cycle_rows(
        self, cycle: str, *, jurisdiction: str | None = None, batch: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every snapshot of ``cycle`` in account order, read ``batch`` rows at a time; with
        ``jurisdiction``, only that one and its subdivisions (``US`` takes ``US-MA``)."""
        last = ""
        where = [bureau_records.c.cycle == cycle]
        if jurisdiction is not None:
            column = bureau_records.c.jurisdiction
            where.append(or_(column == jurisdiction, column.like(f"{jurisdiction}-%")))
        while True:
            query = (
                select(bureau_records)
                .where(*where, bureau_records.c.account_id > last)
                .order_by(bureau_records.c.account_id)
                .limit(batch)
            )
            with self._tx(read=True, what="bureau cycle read") as conn:
                rows = [_row(r) for r in conn.execute(query)]
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1]["account_id"]

    def cycle_exclusions(self, cycle: str) -> list[tuple[str, str, str, str]]:
        """(account, jurisdiction, rule id, reason) of bureau intents created in ``cycle`` whose
        account has no snapshot for it, by the last verdict the gate gave them; account order."""
        start, end = _cycle_bounds(cycle)
        furnished = select(bureau_records.c.account_id).where(bureau_records.c.cycle == cycle)
        query = (
            select(
                intents.c.account_id,
                intents.c.jurisdiction,
                audit.c.rule_id,
                audit.c.detail,
            )
            .join(audit, audit.c.intent_id == intents.c.intent_id)
            .where(
                intents.c.channel == Channel.BUREAU.value,
                intents.c.created_at >= start,
                intents.c.created_at < end,
                audit.c.event.in_(_DECISIONS),
                intents.c.account_id.not_in(furnished),
            )
            .order_by(intents.c.account_id, audit.c.id)
        )
        last: dict[str, tuple[str, str, str]] = {}
        with self._tx(read=True, what="bureau exclusions read") as conn:
            for account, jurisdiction, rule, detail in conn.execute(query):
                reason = str(json.loads(detail or "{}").get("reason", ""))
                last[account] = (jurisdiction, rule or "", reason)
        return [(account, *last[account]) for account in sorted(last)]
