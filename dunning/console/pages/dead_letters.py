"""Dead letters: grouped by reason, filtered, opened one at a time, replayed and purged.

The reading, replaying and purging are `dunning dlq`'s (``dunning.workers.dlq``): a read
hands every message back in order; a replay publishes with confirms before it removes the
dead copy, and never re-sends an intent the ledger shows as sent.

A replay is a dry run first: the dry run remembers its filter in the session, and only a
replay of that same filter by the same user is carried out. A purge asks for the count it
will remove to be typed back. Every dry run, replay and purge is in the audit log with the
operator's name.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dunning.console.masking import mask_recipient
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
from dunning.intents import Channel
from dunning.workers.dlq import (
    DeadLetter,
    DeadLetterFilter,
    describe,
    find_dead_letter,
    purge_dead_letters,
    replay_dead_letters,
    walk_dead_letters,
)

__all__ = ["section"]

#: At most this many dead letters are listed on the page (the groups count them all).
LIST_LIMIT = 200
_AGES_H = {"": None, "1": 1, "24": 24, "168": 168}


def section() -> Section:
    return Section(
        "Dead letters",
        "/dead-letters",
        Permission.VIEW,
        [
            Route("/dead-letters", list_page, methods=["GET"]),
            Route("/dead-letters/replay", replay, methods=["POST"]),
            Route("/dead-letters/purge", purge, methods=["POST"]),
            Route("/dead-letters/{key:str}", show_page, methods=["GET"]),
        ],
    )


def _filter(console: ConsoleDeps, values: dict[str, str]) -> DeadLetterFilter:
    channel = values.get("channel", "")
    channels = (Channel(channel),) if channel in {c.value for c in Channel} else tuple(Channel)
    hours = _AGES_H.get(values.get("age_h", ""))
    return DeadLetterFilter(
        channels=channels,
        reason=values.get("reason") or None,
        intent_id=values.get("intent_id") or None,
        since=None if hours is None else console.clock.now() - timedelta(hours=hours),
    )


def _filter_key(values: dict[str, str]) -> str:
    keep = {k: values.get(k, "") for k in ("channel", "reason", "intent_id", "age_h")}
    return json.dumps(keep, sort_keys=True)


def _form_values(form: FormData) -> dict[str, str]:
    return {k: form_text(form, k) for k in ("channel", "reason", "intent_id", "age_h")}


def _query_values(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in ("channel", "reason", "age_h")}


def _read(console: ConsoleDeps, flt: DeadLetterFilter) -> tuple[dict[str, Any], int]:
    letters: list[DeadLetter] = []

    def keep(_: Any, letter: DeadLetter) -> bool:
        letters.append(letter)
        return False

    with console.publisher() as publisher:
        walk_dead_letters(publisher, flt, None, keep)
    groups: dict[tuple[str, str, str], int] = {}
    for letter in letters:
        key = (letter.channel, letter.error_class, letter.reason)
        groups[key] = groups.get(key, 0) + 1
    rows = [
        {"channel": c, "error_class": e, "reason": r, "count": n}
        for (c, e, r), n in sorted(groups.items(), key=lambda kv: -kv[1])
    ]
    listed = [describe(letter) for letter in letters[:LIST_LIMIT]]
    return {"groups": rows, "letters": listed}, len(letters)


@page(Permission.VIEW)
async def list_page(request: Request) -> Response:
    console = deps(request)
    values = _query_values(request)
    problem = None
    data: dict[str, Any] = {"groups": [], "letters": []}
    total = 0
    try:
        data, total = await run_in_threadpool(_read, console, _filter(console, values))
    except DunningError as exc:
        problem = f"cannot read the dead-letter queues: {exc}"
    return render(
        request,
        "dead_letters.html",
        values=values,
        data=data,
        total=total,
        problem=problem,
        channels=[c.value for c in Channel],
        limit=LIST_LIMIT,
    )


@page(Permission.VIEW)
async def show_page(request: Request) -> Response:
    console = deps(request)
    key = request.path_params["key"]

    def find() -> DeadLetter | None:
        with console.publisher() as publisher:
            return find_dead_letter(publisher, key, DeadLetterFilter())

    letter = await run_in_threadpool(find)
    if letter is None:
        return render(request, "not_found.html", 404, what=f"dead letter {key}")
    data = describe(letter)
    user = signed_in_user(request)
    if not user.can(Permission.SEE_PII) and isinstance(data["body"], dict):
        data["body"] = {**data["body"], "recipient": mask_recipient(data["body"].get("recipient"))}
    return render(
        request,
        "dead_letter.html",
        letter=data,
        pretty_headers=json.dumps(data["headers"], indent=2, sort_keys=True, default=str),
        pretty_body=json.dumps(data["body"], indent=2, sort_keys=True, default=str),
    )


@action(Permission.ACT)
async def replay(request: Request, form: FormData) -> Response:
    console = deps(request)
    values = _form_values(form)
    key = _filter_key(values)
    dry_run = form_text(form, "mode") != "replay"
    if not dry_run and request.session.get("dry_run") != key:
        return render(
            request,
            "replay_result.html",
            409,
            values=values,
            report=None,
            dry_run=False,
            error="run the dry run of this filter first, then replay it",
        )
    flt = _filter(console, values)

    def run() -> Any:
        with console.publisher() as publisher:
            return replay_dead_letters(
                publisher, console.ledger, flt, clock=console.clock, dry_run=dry_run
            )

    try:
        report = await run_in_threadpool(run)
    except DunningError as exc:
        return render(
            request,
            "replay_result.html",
            502,
            values=values,
            report=None,
            dry_run=dry_run,
            error=str(exc),
        )
    filter_detail = {k: v for k, v in values.items() if v}
    if dry_run:
        request.session["dry_run"] = key
        audit(request, "replay_dry_run", None, filter=filter_detail, would_replay=report.replayed)
    else:
        request.session.pop("dry_run", None)
        for intent_id in report.ids:
            audit(request, "replay", intent_id if intent_id != "?" else None, filter=filter_detail)
        audit(
            request,
            "replay_run",
            None,
            filter=filter_detail,
            replayed=report.replayed,
            obsolete=report.obsolete,
            final=report.final,
            over_cap=report.over_cap,
        )
    return render(
        request, "replay_result.html", values=values, report=report, dry_run=dry_run, error=None
    )


@action(Permission.ACT)
async def purge(request: Request, form: FormData) -> Response:
    console = deps(request)
    values = _form_values(form)
    flt = _filter(console, values)
    confirm = form_text(form, "confirm")

    def count() -> int:
        return _read(console, flt)[1]

    expected = await run_in_threadpool(count)
    if confirm != str(expected) or expected == 0:
        return render(
            request, "purge_confirm.html", values=values, expected=expected, wrong=bool(confirm)
        )

    def run() -> int:
        with console.publisher() as publisher:
            return purge_dead_letters(publisher, console.ledger, flt, clock=console.clock)

    purged = await run_in_threadpool(run)
    audit(request, "purge", None, filter={k: v for k, v in values.items() if v}, purged=purged)
    return render(request, "purge_done.html", values=values, purged=purged)
