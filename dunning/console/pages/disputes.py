"""A person's promises to pay and disputes, and the operator's verification of a dispute.

Promises are the ledger's (``promises``: made by `dunning promise add`, an SMS reply, the
call's keypad or a collector's visit), each with what became of it: kept or broken, and
when. Dispute events are the ``dispute_opened`` and ``dispute_verified`` audit records of the
person's intents, with their rule ids.

Verifying a dispute is `dunning dispute verify` from the person's page: the operator uploads
the verification document and types the account id back to confirm; the same
:meth:`dunning.receipts.disputes.DisputeService.verify` copies it to the letter outbox, lifts
the debt's dispute holds and audits ``dispute_verified`` with the document's SHA-256; the
console adds ``console_dispute_verified`` with the operator's name.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from dunning.compliance.packs import load_packs
from dunning.console.roles import Permission
from dunning.console.web import ConsoleDeps, action, audit, deps, form_text, render
from dunning.errors import DunningError
from dunning.ledger.disputes import DISPUTE_REASON
from dunning.ledger.queries import TimelineEvent
from dunning.receipts.disputes import DisputeService

__all__ = ["DISPUTE_EVENTS", "MAX_DOCUMENT_BYTES", "person_commitments", "verify_dispute"]

DISPUTE_EVENTS = ("dispute_opened", "dispute_verified")
#: A verification is a statement or a copy of the contract, not an archive.
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
_UNSAFE_NAME = re.compile(r"[^\w.\-]+")


def person_commitments(
    console: ConsoleDeps,
    rows: list[dict[str, Any]],
    timelines: list[list[TimelineEvent]],
    suppressions: list[dict[str, Any]],
) -> dict[str, Any]:
    """The person's promises and dispute events, newest first, and the accounts whose debt
    has a live dispute hold (what the operator may verify)."""
    accounts = list(dict.fromkeys(row["account_id"] for row in rows))
    promises = []
    for account_id, made in console.ledger.promises_of(accounts).items():
        for p in made:
            amount = None if p.amount is None else f"{p.amount:.2f}"  # USD and CNY: cents
            base = {"account_id": account_id, "pay_by": p.pay_by, "amount": amount}
            promises.append({**base, "at": p.created_at, "event": "made", "source": p.source})
            if p.status in ("kept", "broken") and p.closed_at is not None:
                promises.append({**base, "at": p.closed_at, "event": p.status, "source": ""})
    disputes: dict[tuple[Any, ...], dict[str, Any]] = {}
    for events in timelines:
        for e in events:
            if e.kind not in DISPUTE_EVENTS:
                continue
            # A verification is written beside each dispute it answers: show it once.
            key = (e.at, e.kind, e.detail.get("debt_id"))
            disputes.setdefault(key, {"at": e.at, "event": e.kind, **e.detail})
    held_debts = {
        s["debt_id"]
        for s in suppressions
        if s["reason"] == DISPUTE_REASON and s["removed_at"] is None
    }
    verifiable = sorted({row["account_id"] for row in rows if row["debt_id"] in held_debts})
    return {
        "promises": sorted(promises, key=lambda p: p["at"], reverse=True),
        "disputes": sorted(disputes.values(), key=lambda d: d["at"], reverse=True),
        "verifiable": verifiable,
    }


@action(Permission.ACT)
async def verify_dispute(request: Request, form: FormData) -> Response:
    console = deps(request)
    person_id = request.path_params["person_id"]
    account_id = form_text(form, "account_id")
    rows = await run_in_threadpool(console.store.person_intents, person_id)
    if account_id not in {row["account_id"] for row in rows}:
        return render(request, "not_found.html", 404, what=f"account {account_id} of this person")
    upload = form.get("document")
    problem = _refusal(upload, account_id, form_text(form, "confirm"))
    if problem is not None or not isinstance(upload, UploadFile):
        return _answer(request, person_id, account_id, 400, error=problem)
    name = _safe_name(upload.filename or "")
    with tempfile.TemporaryDirectory(prefix="dunning-verification-") as folder:
        document = Path(folder) / name
        await run_in_threadpool(document.write_bytes, await upload.read())
        try:
            packs = load_packs(console.settings.config_dir / "compliance.toml")
            service = DisputeService(console.ledger, console.clock, packs)
            done = await service.verify(account_id, document, console.settings.letter_outbox)
        except DunningError as exc:
            return _answer(request, person_id, account_id, 400, error=str(exc))
    audit(
        request,
        "dispute_verified",
        done.intent_id,
        account_id=account_id,
        document=name,
        lifted=done.lifted,
    )
    return _answer(request, person_id, account_id, 200, lifted=done.lifted, document=name)


def _refusal(upload: object, account_id: str, confirm: str) -> str | None:
    """Why the form cannot be carried out (nothing is recorded), or None."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return "choose the verification document (PDF or image) to upload"
    if upload.size is not None and upload.size > MAX_DOCUMENT_BYTES:
        return f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB"
    if upload.size == 0:
        return f"the document {upload.filename!r} is empty"
    if confirm != account_id:
        return f"type the account id {account_id} to confirm"
    return None


def _safe_name(filename: str) -> str:
    """The upload's file name without folders or characters a file system may refuse."""
    name = _UNSAFE_NAME.sub("_", Path(filename.replace("\\", "/")).name).strip("._")
    return name[-100:] or "verification"


def _answer(
    request: Request, person_id: str, account_id: str, status: int, **context: Any
) -> Response:
    return render(
        request,
        "dispute_verified.html",
        status,
        person_id=person_id,
        account_id=account_id,
        **context,
    )
