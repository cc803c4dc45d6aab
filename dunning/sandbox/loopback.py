"""What the stand-ins share: a listening socket on loopback and ``async with`` over start/stop.

Port 0 lets the OS pick a free port; the socket is bound before the server starts, so the
stand-in knows its port at once (aiosmtpd's ``Controller(port=0)`` cannot do that).
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["LoopbackServer", "listening_socket"]

_BACKLOG = 512


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``host``:``port`` (0: a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit TCP_NODELAY: keep-alive requests otherwise stall ~40 ms
    # (Nagle against delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    sock.setblocking(False)
    return sock


class LoopbackServer(ABC):
    """A stand-in served on the caller's event loop; ``async with`` starts and stops it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port  # 0 until started: then the port the OS picked

    @abstractmethod
    async def start(self) -> None:
        """Listen on ``host``:``port``; port 0 picks a free one, read back from ``.port``."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening and close what is open; safe to call when not started."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
