"""People and intents: find a person, then read their timeline.

The search is a POST (a phone number or an email never appears in a URL or an access log) and
an exact match on a normalised value: a phone number in E.164 (spaces, dashes, dots and
brackets dropped; the country code is required), an email in lower case, an account or person
id as given. Results and timelines mask personal data for a role without SEE_PII.

A person's page lists every intent, newest first, with its attempts, receipts and gate
decisions (the ledger's timeline, as `dunning intent show` prints it), what it said (the
rendered text), the person's suppressions and inbound messages, promises to pay and disputes
(:mod:`dunning.console.pages.disputes`, where an operator also verifies a dispute), and a
letter's PDF.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from dunning.console.masking import mask_name
from dunning.console.pages.disputes import person_commitments, verify_dispute
from dunning.console.rendered import rendered_text
from dunning.console.roles import Permission
from dunning.console.sections import Section
from dunning.console.web import (
    ConsoleDeps,
    action,
    audit,
    deps,
    form_text,
    page,
    render,
    signed_in_user,
)
from dunning.errors import DunningError
from dunning.intents import Recipient, decode_intent
from dunning.ledger.console_store import SearchKind
from dunning.logs import mask_text

__all__ = ["normalise", "section"]

KINDS: dict[str, str] = {
    "phone": "Phone number",
    "email": "Email",
    "account": "Account id",
    "person": "Person id",
}
#: A person's page shows this many intents, newest first.
INTENT_LIMIT = 100
_PHONE_NOISE = re.compile(r"[\s().\-]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_INTENT_ID = re.compile(r"^[0-9a-f]{32}$")


def section() -> Section:
    return Section(
        "People",
        "/people",
        Permission.VIEW,
        [
            Route("/people", search_page, methods=["GET"]),
            Route("/people/search", search, methods=["POST"]),
            Route("/people/{person_id:str}", person_page, methods=["GET"]),
            Route("/people/{person_id:str}/disputes/verify", verify_dispute, methods=["POST"]),
            Route("/letters/{intent_id:str}.pdf", letter_pdf, methods=["GET"]),
        ],
    )


def normalise(kind: str, value: str) -> str:
    """The value as the ledger stores it; ValueError saying what is wrong with it."""
    value = value.strip()
    if not value:
        raise ValueError("type what to look for")
    if kind == "phone":
        phone = _PHONE_NOISE.sub("", value)
        if phone.startswith("00"):
            phone = "+" + phone[2:]
        if not _E164.match(phone):
            raise ValueError("a phone number needs its country code, like +14155550123")
        return phone
    if kind == "email":
        if "@" not in value:
            raise ValueError("an email address has an @")
        return value.lower()
    if kind in {"account", "person"}:
        return value
    raise ValueError(f"search by one of {', '.join(KINDS)}")


@page(Permission.VIEW)
async def search_page(request: Request) -> Response:
    return render(request, "people_search.html", kinds=KINDS, kind="phone", results=None)


@action(Permission.VIEW)
async def search(request: Request, form: FormData) -> Response:
    kind = form_text(form, "kind", "phone")
    try:
        value = normalise(kind, form_text(form, "value"))
    except ValueError as exc:
        return render(
            request, "people_search.html", 400, kinds=KINDS, kind=kind, results=None, error=str(exc)
        )
    store = deps(request).store
    kind_checked: SearchKind = kind  # type: ignore[assignment]  # normalise refused the others
    results = await run_in_threadpool(store.find_people, kind_checked, value)
    return render(request, "people_search.html", kinds=KINDS, kind=kind, results=results)


@page(Permission.VIEW)
async def person_page(request: Request) -> Response:
    console = deps(request)
    person_id = request.path_params["person_id"]
    show_pii = signed_in_user(request).can(Permission.SEE_PII)
    data = await run_in_threadpool(_person, console, person_id, show_pii)
    if not data["intents"]:
        return render(request, "not_found.html", 404, what="this person")
    return render(request, "person.html", person_id=person_id, **data)


def _person(console: ConsoleDeps, person_id: str, show_pii: bool) -> dict[str, Any]:
    rows = console.store.person_intents(person_id)[:INTENT_LIMIT]
    items = []
    timelines = []
    for row in rows:
        intent_id = row["intent_id"]
        try:
            intent = decode_intent(row["body"].encode())
            text = rendered_text(intent, console.settings.config_dir)
            recipient = intent.recipient
            if not show_pii:
                text = masked_text(text, recipient)
        except DunningError as exc:
            text, recipient = f"(the stored intent cannot be read: {exc})", None
        letter = row["channel"] == "letter" and _letter_file(console, intent_id).is_file()
        timelines.append(console.ledger.timeline(intent_id))
        items.append(
            {
                "row": row,
                "events": timelines[-1],
                "text": text,
                "recipient": recipient,
                "letter": letter,
            }
        )
    overview = console.ledger.intent_overview(rows[0]["intent_id"]) if rows else None
    suppressions = (overview or {}).get("suppressions", [])
    return {
        "intents": items,
        "suppressions": suppressions,
        "inbound": (overview or {}).get("inbound", []),
        **person_commitments(console, rows, timelines, suppressions),
    }


def masked_text(text: str, recipient: Recipient) -> str:
    """``text`` with the recipient's name and address masked, and anything that looks like a
    phone number or an email address."""
    hidden = [recipient.name] if recipient.name else []
    if recipient.postal_address is not None:
        address = recipient.postal_address
        hidden += [*address.lines, address.city, address.postal_code]
    for value in sorted((v for v in hidden if v), key=len, reverse=True):
        text = text.replace(value, mask_name(value))
    return mask_text(text)


def _letter_file(console: ConsoleDeps, intent_id: str) -> Path:
    return console.settings.letter_outbox / f"{intent_id}.pdf"


@page(Permission.SEE_PII)
async def letter_pdf(request: Request) -> Response:
    console = deps(request)
    intent_id = request.path_params["intent_id"]
    path = _letter_file(console, intent_id)
    if not _INTENT_ID.match(intent_id) or not path.is_file():
        return render(request, "not_found.html", 404, what=f"the letter of intent {intent_id}")
    audit(request, "letter_opened", intent_id)
    return FileResponse(path, media_type="application/pdf", headers={"Cache-Control": "no-store"})
