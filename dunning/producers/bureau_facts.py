"""The facts a bureau intent carries, from the book's account (docs/accounts.md, docs/bureau.md)."""

from __future__ import annotations

from dunning.account_facts import AccountFacts
from dunning.producers.accounts import Account

__all__ = ["facts_for"]


def facts_for(account: Account) -> AccountFacts:
    """The account as a credit bureau sees it; the product defaults by collector role."""
    b = account.bureau
    third = account.collector_role == "third_party"
    return AccountFacts(
        collector_role=account.collector_role,
        account_type=b.account_type or ("collection" if third else "installment"),
        principal=account.principal,
        due_date=account.due_date,
        date_opened=b.date_opened,
        credit_limit=b.credit_limit,
        terms=b.terms,
        original_creditor=b.original_creditor,
        last_payment_date=account.last_payment_date,
        charged_off=b.charged_off,
        paid=account.paid,
        disputed=account.disputed,
        delete_reason=b.delete_reason,
    )
