"""Which rate limits a channel's sends obey: ``[rate_limits.<channel>]`` in channels.toml.

    [rate_limits.sms]
    account_per_s = 100.0      # every SMS on the provider account (Twilio's account queue)
    sender_per_s = 1.0         # each sender unless overridden (a long code sends ~1 segment/s)
    recipient_per_s = 0.1      # the same phone at most once per 10 s (a burst guard; caps are
                               # the compliance gate's job)
    burst = 1                  # sends allowed back to back on a key before the rate applies
    [rate_limits.sms.senders]  # short codes and Messaging Services take more
    "MG00000000000000000000000000000001" = 100.0

A missing table or key means no limit on that level. Keys name the provider account by its
SID and the recipient by a digest (:func:`recipient_token`): Redis never stores a phone number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dunning.channels_toml import CHANNELS_TOML, RateLimitSection, load_channels_toml
from dunning.intents import Channel, ContactIntent
from dunning.workers.ratelimit.limiter import recipient_token

__all__ = ["ChannelLimits", "load_channel_limits"]

SenderOf = Callable[[ContactIntent], str | None]


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """The limits of one channel, and the keys one intent's send acquires."""

    channel: Channel
    account: str
    account_per_s: float | None = None
    sender_per_s: float | None = None
    recipient_per_s: float | None = None
    burst: int = 1
    senders_per_s: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, channel: Channel, section: RateLimitSection, *, account: str) -> ChannelLimits:
        """The limits ``section`` sets for ``channel``'s sends on ``account``."""
        return cls(
            channel=channel,
            account=account,
            account_per_s=section.account_per_s,
            sender_per_s=section.sender_per_s,
            recipient_per_s=section.recipient_per_s,
            burst=section.burst,
            senders_per_s=section.senders_per_s,
        )

    @property
    def account_key(self) -> str:
        """The key a provider 429 pauses: every send of this channel on this account."""
        return f"{self.channel.value}:account:{self.account}"

    def keys(self, intent: ContactIntent, sender: str | None) -> tuple[str, ...]:
        keys = [self.account_key]
        if sender is not None:
            keys.append(f"{self.channel.value}:sender:{sender}")
        address = intent.recipient.phone or intent.recipient.email
        if address is not None and self.recipient_per_s is not None:
            keys.append(f"{self.channel.value}:recipient:{recipient_token(address)}")
        return tuple(keys)

    def rate_for(self, key: str) -> float | None:
        """The rate of ``key`` (one of :meth:`keys`), or None when it is not limited."""
        parts = key.split(":", 2)
        if len(parts) != 3 or parts[0] != self.channel.value:
            return None
        _, kind, name = parts
        if kind == "account":
            return self.account_per_s
        if kind == "sender":
            specific: float | None = self.senders_per_s.get(name)
            return self.sender_per_s if specific is None else specific
        return self.recipient_per_s


def load_channel_limits(config_dir: Path, channel: Channel, *, account: str) -> ChannelLimits:
    """``[rate_limits.<channel>]`` of ``<config_dir>/channels.toml`` (a missing file means no
    limits), keyed by the provider ``account``."""
    channels = load_channels_toml(config_dir / CHANNELS_TOML, missing_ok=True)
    return ChannelLimits.of(channel, channels.rate_limits(channel), account=account)
