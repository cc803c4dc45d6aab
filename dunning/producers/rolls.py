"""Roll rates: how accounts move between delinquency buckets from one day to another.

Each evaluation records every account's bucket (``bucket_history`` in the ledger). The roll
matrix of ``FROM`` → ``TO`` counts, for each account recorded on both days, its bucket on
``FROM`` (row) against its bucket on ``TO`` (column); a row's percentages are of the accounts
that started in that bucket. Grouping is by the segment or variant the account had on ``FROM``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dunning.producers.accounts import Account

__all__ = ["BUCKETS", "RollMatrix", "bucket_of", "roll_matrices"]

BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "90+", "paid", "charged_off")


def bucket_of(account: Account, days_past_due: int) -> str:
    """The account's bucket: paid and charged off first, then by days past due."""
    if account.paid:
        return "paid"
    if account.charged_off:
        return "charged_off"
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


@dataclass
class RollMatrix:
    """Counts of accounts by (bucket on FROM, bucket on TO)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, start: str, end: str) -> None:
        self.counts[(start, end)] = self.counts.get((start, end), 0) + 1

    def row_total(self, start: str) -> int:
        return sum(n for (s, _), n in self.counts.items() if s == start)

    def share(self, start: str, end: str) -> float | None:
        total = self.row_total(start)
        return None if total == 0 else self.counts.get((start, end), 0) / total

    def as_dict(self) -> dict[str, Any]:
        rows = {}
        for start in BUCKETS:
            total = self.row_total(start)
            if total == 0:
                continue
            rows[start] = {
                "accounts": total,
                "to": {
                    end: {"count": n, "share": round(n / total, 4)}
                    for end in BUCKETS
                    if (n := self.counts.get((start, end), 0))
                },
            }
        return rows


def roll_matrices(
    start: Mapping[str, Any], end: Mapping[str, Any], *, by: str | None = None
) -> tuple[dict[str, RollMatrix], int]:
    """The matrices by group (``""`` when not grouped) and how many accounts of ``start`` have
    no row on the end day (left the book or not evaluated)."""
    if by not in (None, "segment", "variant"):
        raise ValueError(f"--by {by!r}: expected segment or variant")
    matrices: dict[str, RollMatrix] = {}
    missing = 0
    for account_id in sorted(start):
        before = start[account_id]
        after = end.get(account_id)
        if after is None:
            missing += 1
            continue
        group = "" if by is None else str(getattr(before, by))
        matrices.setdefault(group, RollMatrix()).add(before.bucket, after.bucket)
    return dict(sorted(matrices.items())), missing
