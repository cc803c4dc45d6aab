"""The Channel protocol: one method to send one intent, one to release resources.

An adapter renders the intent's template, calls its provider once, and returns a
:class:`SendResult`. It raises :class:`~dunning.errors.TransientChannelError` (retry later),
:class:`~dunning.errors.RateLimitedError` (slow down) or
:class:`~dunning.errors.PermanentChannelError` (never retry); every foreign exception is
translated at this boundary with ``raise ... from``. Adapters never touch the broker or ledger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from dunning.intents import Channel, ContactIntent

__all__ = ["CallbackChannel", "ChannelAdapter", "ProviderLookup", "SendResult"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider accepted.

    ``provider_ref`` is the provider's id (Twilio SID, Message-ID, letter file); ``status`` the
    first receipt status (queued, accepted, dispatched); ``detail`` adapter facts recorded with
    the attempt (segments, sha256, pages, bytes).
    """

    provider_ref: str
    status: str
    detail: Mapping[str, str | int] = field(default_factory=dict)


class ChannelAdapter(Protocol):
    channel: Channel

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        """Send ``intent`` once (``attempt`` counts from 1)."""
        ...

    async def aclose(self) -> None:
        """Close connections and sessions; the adapter is not used afterwards."""
        ...


@runtime_checkable
class ProviderLookup(Protocol):
    """An adapter that can ask its provider whether an intent was already accepted.

    Used before an intent left in ``sending`` (a worker died mid-send, or the answer was lost)
    is sent again: a hit is recorded as the send, so the person is not contacted twice.
    """

    async def find_sent(self, intent: ContactIntent, *, since: datetime) -> SendResult | None:
        """The provider's record of ``intent`` accepted at or after ``since``, or None."""
        ...


class CallbackChannel:
    """An adapter that hands each send to a function: the stand-in for unit tests."""

    def __init__(
        self,
        channel: Channel,
        handler: Callable[[ContactIntent, int], Awaitable[SendResult]],
        lookup: Callable[[ContactIntent, datetime], Awaitable[SendResult | None]] | None = None,
    ) -> None:
        self.channel = channel
        self._handler = handler
        self._lookup = lookup
        self.closed = False

    async def find_sent(self, intent: ContactIntent, *, since: datetime) -> SendResult | None:
        return None if self._lookup is None else await self._lookup(intent, since)

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        return await self._handler(intent, attempt)

    async def aclose(self) -> None:
        self.closed = True
