"""Service URLs in output and errors: passwords masked wherever they sit, broker URLs checked.

A password can sit in the user part (``amqp://user:secret@host``) or in the query
(``postgresql://user@host/db?password=secret``, ``?sslpassword=``, ``?token=``). Both are
masked by the URL's shape, without parsing it, so a malformed URL is masked as well as a good
one (an error message about a malformed URL is exactly where it would otherwise leak).
"""

from __future__ import annotations

import re
import urllib.parse

from dunning.errors import ConfigError

__all__ = ["BETWEEN_URLS", "check_broker_url", "mask_url", "mask_url_list"]

MASK = "***"
# Query parameter names that hold secrets: password, sslpassword, passwd, pwd, secret, token,
# api_key, sslkey, auth, credentials... (a false positive only hides a harmless value).
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|cred", re.IGNORECASE)
_QUERY_PAIR = re.compile(r"([^&;=]*)=([^&;#]*)")


def _mask_query(query: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        secret = _SECRET_PARAM.search(urllib.parse.unquote_plus(name))
        return f"{name}={MASK}" if secret and match.group(2) else match.group(0)

    return _QUERY_PAIR.sub(one, query)


def mask_url(url: str) -> str:
    """``url`` with the user-part password and secret query parameters shown as ``***``.

    Never raises. Text that is not a URL at all (no ``://``) is masked as far as it looks like
    one: anything before an ``@`` after the first ``:`` is taken for a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    head, tail = rest[:query_at], rest[query_at:]
    at = head.rfind("@")
    if at >= 0:
        user, colon, _password = head[:at].partition(":")
        head = f"{user}:{MASK}{head[at:]}" if colon else head
    if tail.startswith("?"):
        query, hash_sign, fragment = tail[1:].partition("#")
        tail = f"?{_mask_query(query)}{hash_sign}{fragment}"
    return f"{scheme}{sep}{head}{tail}"


def check_broker_url(url: str) -> None:
    """Raise ConfigError when an ``amqp://``/``amqps://`` URL cannot be parsed (bad port,
    unbalanced IPv6 brackets); the message shows the URL masked and never echoes its parts."""
    shown = mask_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise ConfigError(
            f"broker URL {shown!r} is not valid: unbalanced [ ] around an IPv6 host"
        ) from None
    try:
        parts.port  # noqa: B018  # parsing the port is the check
    except ValueError:
        # urllib's message quotes the port text, which is the password when the user part
        # holds an unescaped '/', '?' or '#'.
        raise ConfigError(
            f"broker URL {shown!r} is not valid: the port is not a number from 0 to 65535"
            " (a '/', '?', '#' or '@' in the password must be percent-encoded)"
        ) from None


# A list of URLs (a RabbitMQ cluster's nodes) is split only where the next URL's scheme starts,
# so a comma inside a password neither splits the list nor escapes masking.
BETWEEN_URLS = re.compile(r"[,;]\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def mask_url_list(text: str) -> str:
    """:func:`mask_url` for each URL of a comma-separated list (one URL is a list of one)."""
    return ",".join(mask_url(part.strip()) for part in BETWEEN_URLS.split(text))
