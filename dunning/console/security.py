"""Passwords, CSRF tokens, the login rate limit and where the console may listen.

- Passwords are hashed with argon2id (argon2-cffi's defaults); a hash made with older
  parameters is still accepted and :func:`needs_rehash` says so.
- Every state-changing request carries the session's CSRF token (a form field or the
  ``X-CSRF-Token`` header), compared in constant time.
- Failed logins are counted per user name and per client address in sliding windows; past
  a limit the login answers 429 until the oldest failure leaves the window.
- The console listens on a loopback address unless TLS is configured or the operator says
  explicitly that a proxy in front of it terminates TLS.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dunning.errors import ConfigError

__all__ = [
    "LoginLimiter",
    "check_bind",
    "csrf_matches",
    "fingerprint",
    "hash_password",
    "is_loopback",
    "new_token",
    "unknown_user_hash",
    "verify_password",
]

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``; ValueError when it is shorter than 12 characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a console password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def unknown_user_hash() -> str:
    """A hash to verify against when the user does not exist: the answer takes as long as
    for a real user, so timing does not tell which names exist."""
    return _HASHER.hash(secrets.token_hex(16))


def fingerprint(password_hash: str) -> str:
    """A short digest of the stored hash, kept in the session: a new password or a replaced
    user ends every session opened before."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass
class LoginLimiter:
    """At most ``max_failures`` failed logins per key within ``window_s`` seconds."""

    max_failures: int = 5
    window_s: float = 300.0
    now: Callable[[], float] = field(default=lambda: __import__("time").monotonic())
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after_s(self, key: str) -> float:
        """Seconds until one more attempt is allowed for ``key`` (0: allowed now)."""
        with self._lock:
            now = self.now()
            times = self._trimmed(key, now)
            if len(times) < self.max_failures:
                return 0.0
            return times[0] + self.window_s - now

    def failed(self, key: str) -> None:
        with self._lock:
            now = self.now()
            self._trimmed(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _trimmed(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(
    host: str,
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    behind_tls_proxy: bool,
    insecure_http: bool = False,
) -> None:
    """Raise ConfigError when the console would serve logins in clear text beyond this host,
    unless ``insecure_http`` says so explicitly (a container whose port is published on the
    host's loopback only)."""
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise ConfigError(f"TLS file {path} does not exist")
    if is_loopback(host) or tls_cert is not None or behind_tls_proxy or insecure_http:
        return
    raise ConfigError(
        f"refusing to listen on {host} without TLS: give --tls-cert and --tls-key, "
        "--behind-tls-proxy when a proxy in front terminates TLS (and sends only HTTPS), or "
        "--insecure-http to serve plain HTTP knowingly"
    )
