"""The strategy's ``legal`` step as a channel adapter: its "send" is the legal handover.

The worker claims a legal intent with the compliance gate (suppressions only: the step
contacts nobody), then calls :meth:`LegalChannel.send`, which looks the account up in the
book, refuses it while no lawyer letter or final notice was sent (``CN.legal.no_demand``),
runs the handover rules of :func:`dunning.ops.handover.build_handover` on the ledger's
record as it stands and, when nothing refuses, builds the bag in the engagement's outbox and
records the ``litigation`` hold, exactly as ``dunning handover build`` does. A refusal
dead-letters the intent with its rule id (``CN.legal.time_barred.188``, ...), as the bureau
furnisher's write-time refusal does. Building the bag twice gives the same bytes, so a
redelivered intent changes nothing. Rules: docs/legal.md, "Legal handover".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from dunning.channels.base import SendResult
from dunning.channels.letter.fonts import CjkFont, find_cjk_font
from dunning.channels.letter.law_firms import LawFirms
from dunning.clock import Clock
from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ops.handover import build_handover, demand_sent
from dunning.producers.accounts import Account
from dunning.producers.sources import BadRowLog, accounts_only, open_accounts
from dunning.settings import Settings

__all__ = ["DOCUMENTS", "OUTBOX", "HandoverPaths", "LegalChannel", "book_lookup", "legal_channel"]

log = structlog.get_logger(__name__)

#: The lender's documents (one folder per account id) and the law firms' outbox, as for
#: ``dunning handover build``.
DOCUMENTS = Path("var/legal/documents")
OUTBOX = Path("var/legal/outbox")
#: Finds an account of the book by its id (None: not in the book).
AccountLookup = Callable[[str], Account | None]


@dataclass(frozen=True, slots=True)
class HandoverPaths:
    """Where the handover reads the lender's documents and the notices, and writes bags."""

    documents: Path
    letters: Path
    outbox: Path
    emails: Path | None = None


def book_lookup(source: str) -> AccountLookup:
    """Read the book at each look-up: a handover is rare, and the book changes between them."""

    def find(account_id: str) -> Account | None:
        rows = accounts_only(open_accounts(source), BadRowLog())
        return next((a for a in rows if a.account_id == account_id), None)

    return find


class LegalChannel:
    """A :class:`~dunning.channels.base.ChannelAdapter` for :attr:`Channel.LEGAL`."""

    channel = Channel.LEGAL

    def __init__(
        self,
        ledger: Ledger,
        firms: LawFirms,
        accounts: AccountLookup,
        paths: HandoverPaths,
        clock: Clock,
        font: CjkFont | None = None,
    ) -> None:
        self.ledger = ledger
        self.firms = firms
        self.accounts = accounts
        self.paths = paths
        self.clock = clock
        self.font = font

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        return await asyncio.to_thread(self._hand_over, intent)

    def _hand_over(self, intent: ContactIntent) -> SendResult:
        account = self.accounts(intent.account_id)
        if account is None:
            raise PermanentChannelError("account not in the book", provider_code="legal.no_account")
        engagement = self.firms.for_jurisdiction(account.jurisdiction)
        if not demand_sent(self.ledger.account_record(account.account_id)):
            raise PermanentChannelError(
                "no lawyer letter or final notice sent", provider_code=(
                    f"{account.jurisdiction}.legal.no_demand"),
            )  # fmt: skip
        now = self.clock.now()
        result = build_handover(
            self.ledger, account, engagement, documents=self.paths.documents,
            letters=self.paths.letters, outbox=self.paths.outbox,
            as_of=now.astimezone(intent.zone).date(), now=now, font=self.font,
            emails=self.paths.emails,
        )  # fmt: skip
        if result.refusals or result.bag is None:
            first = result.refusals[0]
            log.info("legal.refused", rule_ids=[r.rule_id for r in result.refusals])
            raise PermanentChannelError(
                f"handover refused: {first.reason}", provider_code=first.rule_id
            )
        log.info("legal.handed_over", engagement_id=engagement.engagement_id)
        return SendResult(
            provider_ref=f"legal:{engagement.engagement_id}:{account.account_id}",
            status="handed_over",
            detail={"bag": str(result.bag), "manifest_sha256": result.files["manifest.json"]},
        )

    async def aclose(self) -> None:
        return None


def legal_channel(settings: Settings, ledger: Ledger) -> LegalChannel:
    """The adapter ``dunning worker legal`` runs: the book of ``DUNNING_ACCOUNTS_SOURCE``, the
    engagements of ``law_firms.toml``, the print outbox and email archive of the settings."""
    if settings.accounts_source is None:
        raise ConfigError(
            "the legal worker reads the book: set DUNNING_ACCOUNTS_SOURCE (as for evaluate)"
        )
    paths = HandoverPaths(DOCUMENTS, settings.letter_outbox, OUTBOX, settings.email_archive)
    firms = LawFirms.load(settings.config_dir / "law_firms.toml")
    return LegalChannel(
        ledger, firms, book_lookup(settings.accounts_source), paths, settings.clock(),
        find_cjk_font(),
    )  # fmt: skip
