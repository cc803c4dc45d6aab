"""The legal handover: gate an account, build its evidence bundle, record that it went.

One BagIt bag (RFC 8493, built and checked with the ``bagit`` package) per account in the law
firm's outbox, ``<outbox>/<engagement_id>/<account_id>/``, its payload:

    account.json/.pdf  principal, interest, fees, payments, balance, contract, creditor
    statement.csv      the statement of account
    documents/         what the lender supplied (the engagement's ``handover_documents``)
    notices/           every letter and email as sent (the PDF from the print outbox, the .eml
                       from the email archive), each checked against the SHA-256 recorded at
                       send time
    notices.json       every notice: channel, template, sent at, provider receipt id, SHA-256
    history.json/.csv  every intent, attempt, receipt, gate decision and suppression, UTC and local
    limitation.json    the limitation date and how it was computed
    manifest.json      ``dunning.handover/1``: what is in the bag and where it came from

Nothing in the bag depends on when it is built: the same ledger state gives the same bytes
(``Bagging-Date`` is the day of the account's last ledger record). After the bag is in place the
ledger records a ``litigation`` suppression of the debt, so no SMS, call or letter about it goes
out any more. Rules and sources: docs/legal.md, "Legal handover".
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bagit

from dunning.channels.letter.fonts import CjkFont
from dunning.channels.letter.law_firms import LawFirmEngagement
from dunning.compliance.legal import HandoverFacts, Limitation, Refusal, check_handover, limitation
from dunning.errors import ConfigError
from dunning.ledger import Ledger
from dunning.ledger.handover import AccountRecord
from dunning.ops.handover_files import (
    account_summary,
    dumps,
    history_csv,
    history_json,
    statement_csv,
)
from dunning.ops.handover_pdf import summary_pdf
from dunning.producers.accounts import Account

__all__ = ["DEMAND_TEMPLATES", "SCHEMA", "Handover", "build_handover", "demand_sent", "verify_bag"]

SCHEMA = "dunning.handover/1"
_NOTICE_CHANNELS = ("letter", "email")
_REACHED = ("delivered", "read")
#: Letters after which an account may go to the firm (the strategy's lawyer letter or final
#: notice, sent).
DEMAND_TEMPLATES = frozenset({"lawyer_letter", "final_notice"})


@dataclass(frozen=True, slots=True)
class Handover:
    """One account's handover: the bag, or the refusals that stopped it."""

    account_id: str
    refusals: tuple[Refusal, ...] = ()
    bag: Path | None = None
    limitation: Limitation | None = None
    files: dict[str, str] = field(default_factory=dict)


def demand_sent(record: AccountRecord) -> bool:
    """Whether the lawyer letter or the final notice went out for the account."""
    sent = ("sent", "delivered")
    return any(i["template"] in DEMAND_TEMPLATES and i["state"] in sent for i in record.intents)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _demands(record: AccountRecord, zone: ZoneInfo) -> tuple[date, ...]:
    """Local days a demand reached the debtor: delivered receipts and answered calls."""
    days = {r["received_at"].astimezone(zone).date() for r in record.receipts
            if r["status"] in _REACHED}  # fmt: skip
    days |= {a["started_at"].astimezone(zone).date() for a in record.attempts
             if a["dial_outcome"] == "conversation"}  # fmt: skip
    return tuple(sorted(days))


def _live(record: AccountRecord, reason: str) -> bool:
    return any(
        s["reason"] == reason and s["removed_at"] is None and s["debt_id"] in (None, record.debt_id)
        for s in record.suppressions
    )


def _supplied(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}


def _notices(
    record: AccountRecord, letters: Path, emails: Path | None
) -> tuple[list[dict[str, Any]], dict[str, bytes], list[Refusal]]:
    """Every letter and email that went out: its entry, the files as sent (letters from the
    print outbox, emails from the archive when one is kept), and a refusal for a file that is
    gone (a letter) or differs from the hash recorded when it was sent."""
    templates = {i["intent_id"]: i["template"] for i in record.intents}
    entries, files, problems = [], {}, []
    for a in record.attempts:
        if a["channel"] not in _NOTICE_CHANNELS or a["outcome"] != "sent":
            continue
        recorded = a["detail"].get("sha256")
        entry = {
            "intent_id": a["intent_id"], "channel": a["channel"],
            "template": templates.get(a["intent_id"]), "sent_at": a["started_at"].isoformat(),
            "provider_ref": a["provider_ref"], "sha256": recorded, "file": None,
        }  # fmt: skip
        letter = a["channel"] == "letter"
        folder, name = (letters, f"{a['intent_id']}.pdf") if letter else (
            emails, f"{a['intent_id']}.eml")  # fmt: skip
        data = _read(folder / name) if folder is not None else None
        if data is None and not letter:
            entries.append(entry)  # no archive kept: the recorded hash stands alone
            continue
        if data is None or _sha256(data) != recorded:
            problems.append(Refusal("legal.notice_mismatch", f"{name}: missing or not as sent"))
        else:
            files[f"notices/{name}"] = data
            entry["file"] = f"notices/{name}"
        entries.append(entry)
    return entries, files, problems


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def build_handover(
    ledger: Ledger,
    account: Account,
    engagement: LawFirmEngagement,
    *,
    documents: Path,
    letters: Path,
    outbox: Path,
    as_of: date,
    now: datetime,
    font: CjkFont | None = None,
    emails: Path | None = None,
) -> Handover:
    """Gate ``account`` and, when nothing refuses it, build its bag and record the handover.
    With ``font`` the account summary is in the bag as a PDF too."""
    record = ledger.account_record(account.account_id)
    if not record.intents or record.debt_id is None or record.person_id is None:
        no_history = Refusal(f"{account.jurisdiction}.legal.no_history", "no contact recorded")
        return Handover(account.account_id, (no_history,))
    zone = ZoneInfo(account.timezone)
    limit = limitation(
        account.jurisdiction, due_date=account.due_date, as_of=as_of,
        demands=_demands(record, zone), last_payment_date=account.last_payment_date,
        statute_of_limitations=account.statute_of_limitations,
    )  # fmt: skip
    supplied = _supplied(documents / account.account_id)
    kinds = {kind for kind in engagement.handover_documents for name in supplied
             if name.startswith(kind)}  # fmt: skip
    facts = HandoverFacts(
        jurisdiction=account.jurisdiction, limitation=limit,
        dispute_open=account.disputed or _live(record, "dispute"),
        bankrupt=account.bankrupt or _live(record, "bankrupt"),
        attorney_represented=account.attorney_represented or _live(record, "attorney"),
        paid=account.paid or _live(record, "paid"),
        required_documents=engagement.handover_documents, documents=frozenset(kinds),
    )  # fmt: skip
    notices, letter_files, problems = _notices(record, letters, emails)
    refusals = [*check_handover(facts), *problems]
    if refusals:
        return Handover(account.account_id, tuple(refusals), limitation=limit)
    summary = account_summary(account, engagement)
    payload: dict[str, bytes] = {
        "account.json": dumps(summary),
        "statement.csv": statement_csv(summary),
        "notices.json": dumps(notices),
        "history.json": history_json(record, zone),
        "history.csv": history_csv(record, zone),
        "limitation.json": dumps(limit.as_dict()),
        **letter_files,
        **{f"documents/{name}": path.read_bytes() for name, path in supplied.items()},
    }
    if font is not None:
        title = f"{SCHEMA} · {account.account_id}"
        payload["account.pdf"] = summary_pdf(summary, font, title=title)
    latest = record.latest()
    assert latest is not None  # there are intents
    payload["manifest.json"] = dumps({
        "schema": SCHEMA, "account_id": account.account_id, "debt_id": record.debt_id,
        "jurisdiction": account.jurisdiction, "engagement_id": engagement.engagement_id,
        "ledger_state_at": latest.isoformat(),
        "files": {name: _sha256(data) for name, data in sorted(payload.items())},
        "notices": [{"intent_id": n["intent_id"], "sha256": n["sha256"]} for n in notices],
    })  # fmt: skip
    bag = _write_bag(payload, outbox / engagement.engagement_id / account.account_id, {
        "Source-Organization": engagement.creditor_name, "External-Identifier": account.account_id,
        "External-Description": SCHEMA, "Bagging-Date": latest.date().isoformat(),
        "Bag-Software-Agent": "dunning",
    })  # fmt: skip
    files = {name: _sha256(data) for name, data in payload.items()}
    ledger.record_handover(
        person_id=record.person_id, debt_id=record.debt_id, now=now,
        detail={"bag": bag.name, "manifest_sha256": files["manifest.json"],
                "engagement_id": engagement.engagement_id},
    )  # fmt: skip
    return Handover(account.account_id, (), bag, limit, files)


def _write_bag(payload: dict[str, bytes], target: Path, info: dict[str, str]) -> Path:
    """Write ``payload`` as a bag beside ``target``, then swap it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    for name, data in payload.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    bagit.make_bag(str(work), bag_info=info, checksums=["sha256"])
    for tag in work.glob("tagmanifest-*.txt"):  # bagit lists tag files in directory order
        lines = sorted(tag.read_text("utf-8").splitlines())
        tag.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    work.rename(target)
    return target


def verify_bag(path: Path, ledger: Ledger | None = None) -> list[str]:
    """Problems with the bag at ``path`` (empty: valid): BagIt fixity, and each notice's file
    against its hash, and, given the ledger, against the hash recorded when it was sent."""
    try:
        bag = bagit.Bag(str(path))
        bag.validate()
    except (bagit.BagError, bagit.BagValidationError) as exc:
        return [f"not a valid bag: {exc}"]
    try:
        notices = json.loads((path / "data" / "notices.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: data/notices.json unreadable: {exc}") from exc
    problems = []
    sent: dict[str, str] = {}
    if ledger is not None:
        manifest = json.loads((path / "data" / "manifest.json").read_text("utf-8"))
        record = ledger.account_record(manifest["account_id"])
        sent = {a["intent_id"]: a["detail"].get("sha256") for a in record.attempts
                if a["outcome"] == "sent"}  # fmt: skip
    for notice in notices:
        if notice["file"] is not None:
            actual = _sha256((path / "data" / notice["file"]).read_bytes())
            if actual != notice["sha256"]:
                problems.append(f"{notice['file']}: SHA-256 differs from the one recorded")
        if ledger is not None and sent.get(notice["intent_id"]) != notice["sha256"]:
            problems.append(f"{notice['intent_id']}: not the hash the ledger recorded at send")
    return problems
