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
from typing import Protocol

from dunning.intents import Channel, ContactIntent

__all__ = ["CallbackChannel", "ChannelAdapter", "SendResult"]


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


class CallbackChannel:
    """An adapter that hands each send to a function: the stand-in for unit tests."""

    def __init__(
        self, channel: Channel, handler: Callable[[ContactIntent, int], Awaitable[SendResult]]
    ) -> None:
        self.channel = channel
        self._handler = handler
        self.closed = False

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        return await self._handler(intent, attempt)

    async def aclose(self) -> None:
        self.closed = True
