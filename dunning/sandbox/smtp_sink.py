"""An SMTP sink on loopback (aiosmtpd): keeps every message and fails on demand.

The server runs on the caller's event loop (``loop.create_server`` on a socket from
:func:`dunning.sandbox.loopback.listening_socket`). Scripted failures:

- :meth:`SmtpSink.fail_recipient`: RCPT TO for one address answers 451/550 until cleared;
  like real servers, a refused RCPT quotes the address in its reply text;
- :meth:`SmtpSink.fail_next`: the next N messages are refused at RCPT or at the end of DATA;
- :meth:`SmtpSink.drop_next`: the next N messages lose the connection at the end of DATA;
- :meth:`SmtpSink.close_connections`: every open session is closed, as an idle timeout does.

``connections`` counts accepted TCP connections, so tests can prove a client reuses one.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cached_property
from typing import Any, Literal

import structlog
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from dunning.sandbox.loopback import LoopbackServer, listening_socket

__all__ = ["ReceivedMessage", "SmtpSink"]

log = structlog.get_logger(__name__)

FailStage = Literal["rcpt", "data"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the envelope, the bytes as received, and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    login: str | None = None

    @cached_property
    def message(self) -> EmailMessage:
        """``raw`` parsed with the default policy, on first access (parsing costs ~3 ms)."""
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class _Script:
    failing_recipients: dict[str, int] = field(default_factory=dict)
    fail_count: int = 0
    fail_code: int = 451
    fail_stage: FailStage = "data"
    drop_count: int = 0


def _reply(code: int, address: str | None = None) -> str:
    """A reply in the style of common servers (Postfix): enhanced status code, then text that
    quotes the recipient when one is refused."""
    if address is not None and code >= 500:
        return f"{code} 5.1.1 <{address}>: Recipient address rejected: User unknown"
    if address is not None:
        return f"{code} 4.2.0 <{address}>: Recipient address rejected: try again later"
    if code >= 500:
        return f"{code} 5.7.1 Message rejected"
    return f"{code} 4.3.0 Requested action aborted: try again later"


class _Handler:
    """aiosmtpd handler hooks; state lives on the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # noqa: N802  aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self.sink.script
        code = script.failing_recipients.get(address.lower())
        if code is not None:
            return _reply(code, address)
        if script.fail_stage == "rcpt" and script.fail_count > 0:
            script.fail_count -= 1
            return _reply(script.fail_code, address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        script = self.sink.script
        if script.drop_count > 0:
            script.drop_count -= 1
            if isinstance(server.transport, asyncio.Transport):
                server.transport.abort()
            return "421 connection dropped"  # never reaches the client
        if script.fail_stage == "data" and script.fail_count > 0:
            script.fail_count -= 1
            return _reply(script.fail_code)
        content = envelope.original_content or envelope.content or b""
        raw = content.encode() if isinstance(content, str) else bytes(content)
        login = session.auth_data  # what _authenticate put in AuthResult: the user name
        await self.sink._record(
            ReceivedMessage(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                login=login.decode() if isinstance(login, bytes) else None,
            )
        )
        return "250 Message accepted for delivery"


class _CountingSMTP(SMTP):
    """aiosmtpd's protocol, counting and tracking connections for the sink."""

    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(_Handler(sink), **kwargs)
        self._sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS re-entry
            self._sink.connections += 1
            self._sink._open.add(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self.transport is not None:
            self._sink._open.discard(self.transport)
        super().connection_lost(error)


class SmtpSink(LoopbackServer):
    """Async context manager: an SMTP server on ``host``:``port`` keeping what it receives.

    With ``username`` and ``password`` AUTH (PLAIN/LOGIN) is required before MAIL; over
    loopback only, so TLS is not demanded.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.username = username
        self.password = password
        super().__init__(host, port)
        self.messages: list[ReceivedMessage] = []
        self.connections = 0
        self.script = _Script()
        self._open: set[asyncio.BaseTransport] = set()
        self._changed: asyncio.Condition | None = None
        self._server: asyncio.Server | None = None

    # --- scripting -------------------------------------------------------------------------

    def fail_recipient(self, address: str, *, code: int = 550) -> None:
        """Answer ``code`` to RCPT TO ``address`` (case-insensitive) until :meth:`reset`."""
        self.script.failing_recipients[address.lower()] = code

    def fail_next(self, count: int, *, code: int = 451, at: FailStage = "data") -> None:
        """Refuse the next ``count`` messages with ``code`` at RCPT or at the end of DATA."""
        self.script.fail_count, self.script.fail_code, self.script.fail_stage = count, code, at

    def drop_next(self, count: int = 1) -> None:
        """Cut the connection (TCP reset) when the next ``count`` messages end their DATA."""
        self.script.drop_count = count

    def reset(self) -> None:
        """Forget every scripted failure (received messages are kept)."""
        self.script = _Script()

    def close_connections(self) -> int:
        """Close every open client connection, as a server's idle timeout does; returns how many."""
        open_now = list(self._open)
        for transport in open_now:
            transport.close()
        return len(open_now)

    # --- observing -------------------------------------------------------------------------

    async def _record(self, message: ReceivedMessage) -> None:
        if self._changed is None:
            raise RuntimeError("SmtpSink is not running")
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        log.debug("smtp_sink.received", count=len(self.messages), bytes=len(message.raw))

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedMessage]:
        """Wait until ``count`` messages have arrived; TimeoutError after ``timeout_s``."""
        if self._changed is None:
            raise RuntimeError("SmtpSink is not running")
        changed = self._changed
        async with asyncio.timeout(timeout_s), changed:
            await changed.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)

    # --- lifecycle -------------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        # handled=False: aiosmtpd then answers 535 itself (True means "I already replied").
        return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)

    def _protocol(self) -> _CountingSMTP:
        auth = self.username is not None
        with warnings.catch_warnings():
            # aiosmtpd warns about AUTH without TLS; this sink only listens on loopback.
            warnings.simplefilter("ignore")
            return _CountingSMTP(
                self,
                hostname="dunning-smtp-sink",
                auth_required=auth,
                auth_require_tls=False,
                authenticator=self._authenticate if auth else None,
            )

    async def start(self) -> None:
        """Listen on ``host``:``port``; port 0 picks a free one, read back from ``.port``."""
        self._changed = asyncio.Condition()
        loop = asyncio.get_running_loop()
        sock = listening_socket(self.host, self.port)
        self._server = await loop.create_server(self._protocol, sock=sock)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("smtp_sink.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self.close_connections()
        await self._server.wait_closed()
        self._server = None
