"""``POST /visits/outcomes``: visit reports from a field-service system, HMAC-signed JSON.

The body is signed as the other JSON sources are (``X-Dunning-Signature``, docs/receipts.md)
and checked before anything is read from it; the report is then recorded exactly as
``dunning visit record`` records one (:func:`dunning.visits.record_outcome`). The answer
lists the incidents the report raised; a repeated ``event_id`` gets the same answer and
stores nothing. A report that is incomplete or contradicts itself is 422 with the fields at
fault, and nothing is stored.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dunning.clock import Clock
from dunning.compliance import load_packs
from dunning.compliance.packs import PackSet
from dunning.ledger import Ledger
from dunning.receipts.limits import MAX_JSON_BYTES, RefusedError, read_body
from dunning.receipts.signatures import HMAC_HEADER, verify_body
from dunning.settings import Settings
from dunning.visits import VisitInputError, record_outcome
from dunning.visits.report_json import parse_report

__all__ = ["VisitOutcomes"]


class VisitOutcomes:
    """The endpoint; the rule packs are read on first use (a webhook for receipts alone
    needs no visit rules to start)."""

    def __init__(self, settings: Settings, ledger: Ledger, clock: Clock) -> None:
        self._settings, self._ledger, self._clock = settings, ledger, clock
        self._packs: PackSet | None = None

    async def __call__(self, request: Request) -> Response:
        body = await read_body(request, MAX_JSON_BYTES)
        if not verify_body(self._settings.webhook_secret, body, request.headers.get(HMAC_HEADER)):
            raise RefusedError(403, "invalid signature")
        try:
            report = parse_report(body)
            if self._packs is None:
                self._packs = load_packs(self._settings.config_dir / "compliance.toml")
            packs, now = self._packs, self._clock.now()
            incidents = await asyncio.to_thread(
                record_outcome, self._ledger, packs, report, now=now
            )
        except VisitInputError as exc:
            raise RefusedError(422, str(exc)) from None
        found = [{"rule_id": i.rule_id, "reason": i.reason} for i in incidents]
        return JSONResponse({"task_id": report.task_id, "outcome": report.outcome,
                             "incidents": found})  # fmt: skip
