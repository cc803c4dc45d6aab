"""The legal handover's gate: which accounts may go to a law firm, and the limitation date.

Pure rules over facts the caller gathers (the book's account, the ledger's delivered demands and
open disputes, the documents supplied). Each refusal carries a rule id; every one that applies
is reported, not only the first, so an operator fixes them all at once.

Limitation. CN (民法典 Art 188): three years from the day the creditor knew or should have known
of the default (the due date; counted from the next day, Art 201); interrupted (Art 195) by a
demand that reached the debtor (a delivered letter, email or text, a call answered) or by the
debtor's part payment, after which it runs afresh. The computation lists every step so a lawyer
can check it. US: the limitation period is state law; the book's ``statute_of_limitations``
decides, and without one the account is refused (fail closed): no suit or threat of suit on a
time-barred debt, 12 CFR 1006.26(b). Rules and sources: docs/legal.md, "Legal handover".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

__all__ = ["HandoverFacts", "Limitation", "Refusal", "check_handover", "limitation"]

CN_YEARS = 3


@dataclass(frozen=True, slots=True)
class Limitation:
    """When the debt becomes time-barred, and how that date was reached (one line a step)."""

    jurisdiction: str
    basis: str
    ends_on: date | None  # None: unknown
    barred: bool
    steps: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "jurisdiction": self.jurisdiction,
            "basis": self.basis,
            "ends_on": None if self.ends_on is None else self.ends_on.isoformat(),
            "barred": self.barred,
            "steps": list(self.steps),
        }


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one: the period ends on 28 February
        return day.replace(year=day.year + years, day=28)


def limitation(
    jurisdiction: str,
    *,
    due_date: date,
    as_of: date,
    demands: tuple[date, ...] = (),
    last_payment_date: date | None = None,
    statute_of_limitations: date | None = None,
) -> Limitation:
    """The limitation of a debt on ``as_of``; ``demands`` are the days demands reached the
    debtor (delivered receipts, answered calls)."""
    country = jurisdiction.split("-", 1)[0]
    if country == "CN":
        # Art 201: a period in years starts the day after the event and ends on the same day
        # of the month, three years on.
        steps = [f"{due_date}: due and unpaid, the period runs from the next day (Art 188)"]
        restarts = [(d, "a demand reached the debtor") for d in demands if due_date < d <= as_of]
        if last_payment_date is not None and due_date < last_payment_date <= as_of:
            restarts.append((last_payment_date, "the debtor paid part (agreed to perform)"))
        for day, why in sorted(restarts):
            steps.append(f"{day}: interrupted, runs afresh from the next day: {why} (Art 195)")
        latest = max([due_date, *(d for d, _ in restarts)])
        ends = _add_years(latest, CN_YEARS)
        steps.append(f"{ends}: last day, three years after {latest} (Art 188, 201)")
        barred = as_of > ends
        return Limitation("CN", "民法典 Art 188, 195, 201", ends, barred, tuple(steps))
    if statute_of_limitations is None:
        unknown = ("the book gives no statute_of_limitations: the limitation is unknown",)
        return Limitation(jurisdiction, "state law (book)", None, False, unknown)
    barred = as_of > statute_of_limitations
    given = (f"{statute_of_limitations}: last day, from the book's statute_of_limitations",)
    return Limitation(jurisdiction, "state law (book)", statute_of_limitations, barred, given)


@dataclass(frozen=True, slots=True)
class HandoverFacts:
    """What the gate looks at for one account."""

    jurisdiction: str
    limitation: Limitation
    dispute_open: bool = False
    bankrupt: bool = False
    attorney_represented: bool = False
    paid: bool = False
    required_documents: tuple[str, ...] = ()
    documents: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Refusal:
    rule_id: str
    reason: str


def check_handover(facts: HandoverFacts) -> list[Refusal]:
    """Every rule that forbids handing the account over; empty when it may go."""
    j = facts.jurisdiction
    found: list[Refusal] = []
    limit = facts.limitation
    if limit.barred:
        rule = f"{j}.legal.time_barred.188" if j == "CN" else f"{j}.legal.time_barred.1006.26b"
        found.append(Refusal(rule, f"time-barred since {limit.ends_on} ({limit.basis})"))
    elif limit.ends_on is None:
        found.append(Refusal(f"{j}.legal.limitation_unknown", "the limitation date is unknown"))
    if facts.dispute_open:
        found.append(Refusal(f"{j}.legal.dispute_open", "disputed and not verified (1006.38)"))
    if facts.bankrupt:
        found.append(Refusal(f"{j}.legal.bankrupt", "bankruptcy: automatic stay (11 USC 362)"))
    if facts.attorney_represented:
        found.append(
            Refusal(f"{j}.legal.attorney_represented", "represented by an attorney (1692c(a)(2))")
        )
    if facts.paid:
        found.append(Refusal(f"{j}.legal.paid", "paid or settled: nothing is owed"))
    missing = [d for d in facts.required_documents if d not in facts.documents]
    if missing:
        found.append(
            Refusal(f"{j}.legal.documents_missing", f"missing documents: {', '.join(missing)}")
        )
    return found
