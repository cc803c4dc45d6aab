"""The one exception tree of dunning.

Every failure that crosses a package boundary is one of these; foreign exceptions (pika, kombu,
twilio, aiosmtplib, SQLAlchemy) are translated where they are caught, with ``raise ... from``.

    DunningError
    ├── ConfigError                 settings or config files are wrong; fix and restart
    ├── DecodeError                 a message breaks the intent contract (dead-letter at once)
    ├── BrokerError
    │   ├── BrokerConnectionError   connection lost or refused (reconnect with backoff)
    │   ├── BrokerAccessRefusedError  credentials or vhost refused (never retried: fix the URL)
    │   ├── PublishError            the broker nacked or returned a message (nothing was dropped
    │   │                           silently: the caller decides)
    │   └── TopologyMismatchError   a queue or exchange exists with other arguments
    ├── LedgerError                 the ledger database failed
    └── ChannelError                raised by channel adapters around one send
        ├── TransientChannelError   retry later with backoff (timeouts, 5xx, 429, SMTP 4xx)
        │   └── RateLimitedError    the provider asked us to slow down: pause, never spends a retry
        └── PermanentChannelError   never retry (invalid number, rejected recipient, bad template)

The worker's retry policy branches on Transient vs Permanent; that split is the reason the tree
exists.
"""

from __future__ import annotations

__all__ = [
    "BrokerAccessRefusedError",
    "BrokerConnectionError",
    "BrokerError",
    "ChannelError",
    "ConfigError",
    "DecodeError",
    "DunningError",
    "LedgerError",
    "PermanentChannelError",
    "PublishError",
    "RateLimitedError",
    "TopologyMismatchError",
    "TransientChannelError",
    "failed_before_provider",
]


class DunningError(Exception):
    """Root of every error dunning raises on purpose."""


class ConfigError(DunningError):
    """Settings or a configuration file are invalid; the message says which and why."""


class DecodeError(DunningError):
    """A message does not satisfy the ContactIntent contract.

    ``field`` names the offending field (dotted path) when one is to blame.
    """

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


class BrokerError(DunningError):
    """The message broker failed."""


class BrokerConnectionError(BrokerError):
    """The broker connection was refused or lost; safe to retry after reconnecting."""


class BrokerAccessRefusedError(BrokerError):
    """The broker refused the login or the virtual host: retrying cannot help, fix the URL."""


class PublishError(BrokerError):
    """The broker did not confirm a publish (nack, unroutable return, or connection loss)."""


class TopologyMismatchError(BrokerError):
    """A queue or exchange exists with arguments that differ from the declared topology."""

    def __init__(
        self,
        name: str,
        argument: str,
        existing: object,
        wanted: object,
        *,
        fix: str = "delete it (after draining) or change the topology to match",
    ) -> None:
        self.name = name
        self.argument = argument
        self.existing = existing
        self.wanted = wanted
        super().__init__(
            f"{name!r} already exists with {argument}={existing!r}, topology wants {wanted!r}; "
            f"{fix}"
        )


class LedgerError(DunningError):
    """The ledger database failed."""


class ChannelError(DunningError):
    """A channel adapter failed to send one intent.

    ``provider_code`` is the provider's own error code (Twilio 21211, SMTP 550, ...) when known.
    ``before_provider`` says the request was never written to the provider (DNS failure,
    connection refused, TLS handshake failed): the person cannot have been reached, so the
    attempt does not count against the contact caps.
    """

    def __init__(
        self, reason: str, *, provider_code: str | None = None, before_provider: bool = False
    ) -> None:
        self.reason = reason
        self.provider_code = provider_code
        self.before_provider = before_provider
        super().__init__(reason if provider_code is None else f"{reason} (code {provider_code})")


class TransientChannelError(ChannelError):
    """Retry later. ``retry_after_s`` carries the provider's Retry-After when it sent one.

    ``ambiguous`` means the request may have reached the provider (a timeout or a connection
    dropped after the request was written): the worker must not retry blindly, it holds the
    intent in ``sending`` until receipts settle it or the reconcile window passes.
    """

    def __init__(
        self,
        reason: str,
        *,
        provider_code: str | None = None,
        retry_after_s: float | None = None,
        ambiguous: bool = False,
        before_provider: bool = False,
    ) -> None:
        super().__init__(reason, provider_code=provider_code, before_provider=before_provider)
        self.retry_after_s = retry_after_s
        self.ambiguous = ambiguous


class RateLimitedError(TransientChannelError):
    """The provider throttled us (HTTP 429, Twilio 20429): pause the channel; not a failed try."""


def failed_before_provider(exc: BaseException) -> bool:
    """True when ``exc`` ended a send before any request was written to the provider.

    A ``ConfigError`` from an adapter is a template or sender that could not be resolved or
    rendered; a ``ChannelError`` says so itself. Anything else may have reached the provider.
    """
    if isinstance(exc, ConfigError):
        return True
    return isinstance(exc, ChannelError) and exc.before_provider


class PermanentChannelError(ChannelError):
    """Never retry; the intent is dead-lettered with this reason.

    ``suppress`` asks the worker to record an opt-out suppression (Twilio 21610).
    """

    def __init__(
        self, reason: str, *, provider_code: str | None = None, suppress: bool = False
    ) -> None:
        super().__init__(reason, provider_code=provider_code)
        self.suppress = suppress
