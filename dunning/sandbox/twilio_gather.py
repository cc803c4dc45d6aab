"""The stand-in's keypad: a scripted callee presses digits on a call, as Twilio's ``<Gather>``.

Twilio runs a call's TwiML verb by verb; at a ``<Gather>`` it waits for digits and POSTs them
(``Digits``, ``CallSid``, ``From``, ``To``, ``AccountSid``), signed, to the Gather's ``action``;
the TwiML it answers with becomes the call's script. When no digit comes before the timeout it
goes on to the next verb, here a ``<Redirect>``, and POSTs without ``Digits``. This module does
the same for calls placed on the stand-in, one step per :meth:`Keypad.press`:

    POST /_sandbox/calls/{Sid}/digits   Digits=1210 (empty: let the Gather time out)
                                        -> {"twiml": the answer, "said": [its <Say> texts]}

A ``<Gather>`` whose attributes Twilio would refuse (numDigits not a positive number, an action
that is not an absolute http(s) URL, a method other than GET or POST) fails the press.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from dunning.sandbox.twilio_api import TwilioStandIn

__all__ = ["Keypad", "said"]

_TIMEOUT_S = 10.0


def said(twiml: str) -> list[str]:
    """The texts of every ``<Say>`` in ``twiml``, in order."""
    root = ET.fromstring(twiml)  # noqa: S314
    return [(node.text or "") for node in root.iter("Say")]


def _target(twiml: str, digits: str) -> tuple[str, str] | None:
    """(url, method) the call posts to: the Gather's action with digits, else its Redirect."""
    root = ET.fromstring(twiml)  # noqa: S314
    if root.tag != "Response":
        raise ValueError(f"TwiML root is <{root.tag}>, not <Response>")
    gather = root.find("Gather")
    if gather is not None and digits:
        wanted = gather.get("numDigits")
        if wanted is not None and (not wanted.isdigit() or int(wanted) < 1):
            raise ValueError(f"<Gather numDigits={wanted!r}> is not a positive number")
        return _checked(gather.get("action", ""), gather.get("method", "POST"))
    redirect = root.find("Redirect")
    if redirect is None:
        return None  # the call hangs up
    return _checked((redirect.text or "").strip(), redirect.get("method", "POST"))


def _checked(url: str, method: str) -> tuple[str, str]:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"action {url!r} is not an absolute http(s) URL")
    if method.upper() not in ("GET", "POST"):
        raise ValueError(f"method {method!r} is not GET or POST")
    return url, method.upper()


class Keypad:
    """The digits callees press on the stand-in's calls, and the TwiML each call is at."""

    def __init__(self, standin: TwilioStandIn) -> None:
        self._standin = standin
        self.scripts: dict[str, str] = {}  # call sid -> its current TwiML

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/_sandbox/calls/{Sid}/digits", self._digits)

    def _current(self, sid: str) -> str:
        if sid not in self.scripts:
            created = [r for r in self._standin.requests if r.kind == "call" and r.sid == sid]
            if not created or "Twiml" not in created[0].form:
                raise KeyError(f"no call {sid} with inline TwiML")
            self.scripts[sid] = created[0].form["Twiml"][0]
        return self.scripts[sid]

    async def press(self, sid: str, digits: str) -> str:
        """Press ``digits`` (empty: stay silent) on call ``sid``; returns the TwiML answered."""
        target = _target(self._current(sid), digits)
        if target is None:
            raise ValueError(f"call {sid} has no <Gather> or <Redirect> left")
        url, method = target
        call = self._standin.calls[sid]
        params = {
            "AccountSid": self._standin.account_sid,
            "CallSid": sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "From": call["from"],
            "To": call["to"],
        }
        if digits:
            params["Digits"] = digits
        headers = {"X-Twilio-Signature": self._standin.callbacks.sign(url, params)}
        timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, data=params, headers=headers) as response,
        ):
            body = await response.text()
            if response.status != 200:
                raise ValueError(f"{url} answered {response.status}")
        said(body)  # the answer must be TwiML
        self.scripts[sid] = body
        return body

    async def _digits(self, request: web.Request) -> web.Response:
        form = await request.post()
        digits = str(form.get("Digits", ""))
        try:
            twiml = await self.press(request.match_info["Sid"], digits)
        except KeyError as exc:
            return web.json_response({"message": str(exc.args[0])}, status=404)
        except ValueError as exc:
            return web.json_response({"message": str(exc)}, status=400)
        return web.json_response({"twiml": twiml, "said": said(twiml)})
