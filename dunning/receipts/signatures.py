"""Request signatures: Twilio's ``X-Twilio-Signature`` and our HMAC header for other sources.

Twilio signs the exact URL it requested plus every posted parameter, so the URL is rebuilt from
``DUNNING_WEBHOOK_PUBLIC_URL`` and the request path and raw query, never from the Host header
(behind a reverse proxy the Host and scheme the app sees are not the ones Twilio used).

Email-provider and print-vendor events carry ``X-Dunning-Signature: sha256=<hex>``, the
HMAC-SHA256 of the raw request body under ``DUNNING_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence

from twilio.request_validator import RequestValidator, get_signature_algorithm

__all__ = [
    "HMAC_HEADER",
    "FormParams",
    "public_url",
    "sign_body",
    "verify_body",
    "verify_twilio",
]

HMAC_HEADER = "X-Dunning-Signature"
_PREFIX = "sha256="


class FormParams:
    """Posted form fields with repeats kept, in the shape RequestValidator reads (``getlist``)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self.pairs))

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]

    def first(self, name: str, default: str = "") -> str:
        """The first value of ``name``, or ``default``."""
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def as_dict(self) -> dict[str, str]:
        """First value per name: what gets stored as the receipt's raw payload."""
        out: dict[str, str] = {}
        for key, value in self.pairs:
            out.setdefault(key, value)
        return out


def public_url(base_url: str, path: str, query: str) -> str:
    """The URL Twilio requested: public base + path + the raw query string (when there is one)."""
    url = base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def verify_twilio(
    auth_token: str,
    url: str,
    params: FormParams,
    signature: str | None,
    settings_header: str | None = None,
) -> bool:
    """True when ``signature`` is Twilio's over ``url`` and all ``params``; missing is False.

    ``settings_header`` is ``X-Twilio-Webhooks-Signature-Settings`` (absent: HMAC-SHA1 with the
    auth token, the classic scheme).
    """
    if not signature:
        return False
    validator = RequestValidator(auth_token)
    algorithm = get_signature_algorithm(settings_header)
    return bool(validator.validate(url, params, signature, algorithm))


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Dunning-Signature`` value for ``body``: ``sha256=<hex digest>``."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_body(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of an ``X-Dunning-Signature`` header; missing or malformed is False."""
    if not header or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign_body(secret, body), header.strip())
