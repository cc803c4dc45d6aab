"""Request signatures: Twilio's ``X-Twilio-Signature`` and our HMAC header for other sources.

Twilio signs the exact URL it requested plus every posted parameter, so the URL is rebuilt from
``DUNNING_WEBHOOK_PUBLIC_URL`` and the request path and raw query, never from the Host header
(behind a reverse proxy the Host and scheme the app sees are not the ones Twilio used). Only
the classic scheme is taken: HMAC-SHA1 under the account auth token. Twilio's shared-key
signatures (``X-Twilio-Webhooks-Signature-Settings``) are refused by the webhook by name.

Email-provider and print-vendor events carry ``X-Dunning-Signature: sha256=<hex>``, the
HMAC-SHA256 of the raw request body under ``DUNNING_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator, Sequence
from urllib.parse import urlparse

from twilio.request_validator import add_port, remove_port

__all__ = [
    "HMAC_HEADER",
    "FormParams",
    "public_url",
    "sign_body",
    "twilio_payload",
    "verify_body",
    "verify_twilio",
]

HMAC_HEADER = "X-Dunning-Signature"
_PREFIX = "sha256="


class FormParams:
    """Posted form fields with repeats kept, indexed once by name (``getlist`` is a lookup)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        self._values: dict[str, list[str]] = {}
        for key, value in self.pairs:
            self._values.setdefault(key, []).append(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))

    def first(self, name: str, default: str = "") -> str:
        """The first value of ``name``, or ``default``."""
        values = self._values.get(name)
        return values[0] if values else default

    def as_dict(self) -> dict[str, str]:
        """First value per name: what gets stored as the receipt's raw payload."""
        return {key: values[0] for key, values in self._values.items()}


def public_url(base_url: str, path: str, query: str) -> str:
    """The URL Twilio requested: public base + path + the raw query string (when there is one)."""
    url = base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def twilio_payload(params: FormParams) -> str:
    """The parameter half of what Twilio signs: names sorted, each followed by its distinct
    values sorted (``RequestValidator.compute_signature``), built once per request."""
    return "".join(
        name + value for name in sorted(params) for value in sorted(set(params.getlist(name)))
    )


def _twilio_digest(auth_token: str, url: str, payload: str) -> bytes:
    mac = hmac.new(auth_token.encode(), (url + payload).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest())


def verify_twilio(auth_token: str, url: str, params: FormParams, signature: str | None) -> bool:
    """True when ``signature`` is Twilio's HMAC-SHA1 under the auth token over ``url`` and all
    ``params``; missing or non-ASCII is False.

    Like Twilio's own validator, the URL is tried without and with its default port (Twilio
    has signed both spellings). Comparison is constant-time.
    """
    if not signature or not signature.isascii():
        return False
    payload = twilio_payload(params)
    parsed = urlparse(url)
    given = signature.encode()
    return any(
        hmac.compare_digest(_twilio_digest(auth_token, candidate, payload), given)
        for candidate in dict.fromkeys((remove_port(parsed), add_port(parsed)))
    )


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Dunning-Signature`` value for ``body``: ``sha256=<hex digest>``."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_body(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of an ``X-Dunning-Signature`` header; missing, malformed or
    non-ASCII is False."""
    if not header or not header.isascii() or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign_body(secret, body).encode(), header.strip().encode())
