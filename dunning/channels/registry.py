"""The explicit list of channel adapters: one constructor per delivery channel."""

from __future__ import annotations

from dunning.channels.base import ChannelAdapter
from dunning.errors import ConfigError
from dunning.intents import Channel
from dunning.settings import Settings

__all__ = ["build_adapter"]


def build_adapter(channel: Channel, settings: Settings) -> ChannelAdapter:
    """Build the production adapter for ``channel``; raises ConfigError when it cannot start.

    The bureau step has no provider: its adapter writes to the ledger and is built with it
    (``dunning.bureau.furnisher.Furnisher``, by ``dunning worker bureau`` and the demo).
    """
    if channel is Channel.BUREAU:
        raise ConfigError("the bureau adapter is built with the ledger, not from settings")
    if channel is Channel.LEGAL:
        raise ConfigError(
            "the legal adapter is built with the ledger and the book, not from settings"
        )
    if channel is Channel.SMS:
        from dunning.channels.twilio.sms import SmsChannel

        return SmsChannel.from_settings(settings)
    if channel is Channel.VOICE:
        from dunning.channels.twilio.voice import VoiceChannel

        return VoiceChannel.from_settings(settings)
    if channel is Channel.VISIT:
        raise ConfigError(
            "the visit channel creates field tasks in the ledger: its adapter is built with "
            "the ledger (dunning.visits.channel.VisitChannel), not from settings alone"
        )
    from dunning.channels.email import EmailChannel

    if channel is Channel.EMAIL:
        return EmailChannel.from_settings(settings)
    from dunning.channels.letter.channel import LetterChannel
    from dunning.channels.letter.mail import EmailLetterMailer

    mailer = EmailLetterMailer(EmailChannel.from_settings(settings))
    return LetterChannel.from_settings(settings, mailer=mailer)
