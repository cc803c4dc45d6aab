"""The stand-in's Twilio-shaped JSON: error bodies, Message and Call resources, the list page.

Resources carry every field of Twilio's OpenAPI schema (:mod:`dunning.sandbox.twilio_spec`), so
the twilio SDK parses them as it parses Twilio's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from dunning.clock import Clock
from dunning.sandbox.twilio_callbacks import rfc2822
from dunning.sandbox.twilio_spec import response_fields

__all__ = [
    "API",
    "CreateRecord",
    "ResourceKind",
    "intent_id_of",
    "message_page",
    "new_resource",
    "twilio_error",
]

#: The account-scoped prefix of every REST path, as aiohttp routes it.
API = "/2010-04-01/Accounts/{AccountSid}"

ResourceKind = Literal["message", "call"]

_FOLDERS: dict[ResourceKind, str] = {"message": "Messages", "call": "Calls"}
_SCHEMAS: dict[ResourceKind, str] = {
    "message": "api.v2010.account.message",
    "call": "api.v2010.account.call",
}


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """One accepted create request, as the stand-in received it."""

    kind: str  # "message" or "call"
    sid: str
    intent_id: str | None
    form: dict[str, list[str]]


def twilio_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Twilio's error body (``code``, ``message``, ``more_info``, ``status``)."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


def intent_id_of(callback_url: str | None) -> str | None:
    """The ``intent_id`` query parameter of a StatusCallback URL, when there is one."""
    if not callback_url:
        return None
    values = parse_qs(urlsplit(callback_url).query).get("intent_id")
    return values[0] if values else None


def new_resource(
    kind: ResourceKind,
    sid: str,
    account_sid: str,
    clock: Clock,
    *,
    to: str,
    status: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """A resource with every schema field (None unless set), stamped now by ``clock``."""
    resource: dict[str, Any] = dict.fromkeys(response_fields(_SCHEMAS[kind]))
    now = rfc2822(clock)
    resource.update(
        sid=sid,
        account_sid=account_sid,
        api_version="2010-04-01",
        date_created=now,
        date_updated=now,
        direction="outbound-api",
        uri=f"/2010-04-01/Accounts/{account_sid}/{_FOLDERS[kind]}/{sid}.json",
        subresource_uris={},
        to=to,
        status=status,
        price_unit="USD",
    )
    resource.update(fields)
    return resource


def message_page(
    messages: Iterable[dict[str, Any]], query: Mapping[str, str], account_sid: str
) -> dict[str, Any]:
    """Messages filtered by To and by sent date (``DateSent``, ``DateSent>``, ``DateSent<``
    with day granularity, as Twilio does); one page, newest first."""
    to = query.get("To")
    after = _day(query.get("DateSent>"))
    before = _day(query.get("DateSent<"))
    on = _day(query.get("DateSent"))
    found = []
    for resource in messages:
        day = parsedate_to_datetime(str(resource["date_created"])).date()
        if to is not None and resource.get("to") != to:
            continue
        if (after and day < after) or (before and day > before) or (on and day != on):
            continue
        found.append(resource)
    found.reverse()
    page_size = int(query.get("PageSize", "50"))
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
    return {
        "messages": found[:page_size],
        "end": min(len(found), page_size) - 1,
        "first_page_uri": uri,
        "next_page_uri": None,
        "page": 0,
        "page_size": page_size,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri,
    }


def _day(value: str | None) -> date | None:
    """``YYYY-MM-DD`` or an ISO datetime, as the SDK sends it; the day part is what counts."""
    return None if not value else date.fromisoformat(value[:10])
