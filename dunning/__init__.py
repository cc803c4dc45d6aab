"""dunning: multichannel debt-collection contact.

The public surface: the message contract, the error tree and settings. Everything else is
reached through its package (``dunning.producers``, ``dunning.workers``, ...).
"""

from dunning.errors import (
    ChannelError,
    DecodeError,
    DunningError,
    PermanentChannelError,
    RateLimitedError,
    TransientChannelError,
)
from dunning.intents import (
    Channel,
    ContactIntent,
    PostalAddress,
    Recipient,
    Stage,
    TemplateRef,
    decode_intent,
    encode_intent,
    make_intent_id,
)
from dunning.settings import Settings

__all__ = [
    "Channel",
    "ChannelError",
    "ContactIntent",
    "DecodeError",
    "DunningError",
    "PermanentChannelError",
    "PostalAddress",
    "RateLimitedError",
    "Recipient",
    "Settings",
    "Stage",
    "TemplateRef",
    "TransientChannelError",
    "__version__",
    "decode_intent",
    "encode_intent",
    "make_intent_id",
]
__version__ = "0.1.0"
