"""What an account's flags in the book stand for: standing suppressions, and the one reason
(if any) that blocks its collection steps today.

A flag that stops all collection contact blocks every contact step of the evaluation; the same
flags are written to the ledger as suppressions (source ``account_flag``) so that an intent
already queued is stopped at send time as well (docs/accounts.md, "Flags").
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dunning.clock import utc
from dunning.compliance.suppressions import TIME_BARRED
from dunning.intents import Channel
from dunning.producers.accounts import Account
from dunning.records import Suppression

__all__ = ["blocked_by", "end_of_day_after", "flag_suppressions"]

#: Account flags that stop all collection contact, in the order their reason is reported.
_BLOCKING: tuple[tuple[str, str], ...] = (
    ("deceased", "deceased"),
    ("bankrupt", "bankrupt"),
    ("attorney_represented", "attorney"),
    ("cease", "cease"),
    ("disputed", "dispute"),
    ("paid", "paid"),
    ("litigation", "litigation"),
)
_DEBT_LEVEL = frozenset({"dispute", "paid", "litigation"})  # the others are about the person


def flag_suppressions(
    account: Account, as_of: date, now: datetime, *, lifetime_days: int = 0
) -> tuple[Suppression, ...]:
    """The suppressions an account's flags stand for (source ``account_flag``).

    Hardship and an open promise to pay stop collection contact about the debt, the promise
    until its day ends in the debtor's zone. A statute of limitations becomes a ``time_barred``
    suppression of the debt (it stops legal wording only) from the day after it, written as
    soon as an intent published today could still be waiting then (``lifetime_days``: how many
    days after the evaluation day an intent may be sent, the strategy's expiry; plus a day of
    margin for the debtor's zone), so a letter queued before the debt became time-barred is
    stopped at send time even if no evaluation ran in between.
    """
    person, debt = account.person_id, account.account_id
    out: list[Suppression] = []
    if account.sms_opt_out:
        out.append(Suppression(person, Channel.SMS, "opt_out", "account_flag", now))
    if account.email_opt_out:
        out.append(Suppression(person, Channel.EMAIL, "opt_out", "account_flag", now))
    for flag, reason in _BLOCKING:
        if getattr(account, flag):
            on = debt if reason in _DEBT_LEVEL else None
            out.append(Suppression(person, None, reason, "account_flag", now, on))
    if account.hardship:
        out.append(Suppression(person, None, "hardship", "account_flag", now, debt))
    promised = account.promise_to_pay_until
    if promised is not None and account.promise_open(as_of):
        until = end_of_day_after(account, promised, 0)  # the end of that day
        out.append(Suppression(person, None, "promise_to_pay", "account_flag", now, debt, until))
    barred_after = account.statute_of_limitations
    if barred_after is not None and (barred_after - as_of).days < lifetime_days + 1:
        out.append(
            Suppression(
                person, None, TIME_BARRED, "account_flag", now, debt,
                starts_at=end_of_day_after(account, barred_after, 0),
            )
        )  # fmt: skip
    return tuple(out)


def blocked_by(account: Account, promise: str | None) -> str | None:
    for flag, reason in _BLOCKING:
        if getattr(account, flag):
            return reason
    if promise == "open":
        return "promise_to_pay"
    if account.hardship:
        return "hardship"
    return None


def end_of_day_after(account: Account, as_of: date, after_days: int) -> datetime:
    """End of the ``after_days``-th day after ``as_of`` in the debtor's zone, in UTC."""
    zone = ZoneInfo(account.timezone)
    return utc(datetime.combine(as_of + timedelta(days=after_days + 1), time(0), tzinfo=zone))
