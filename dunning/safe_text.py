"""Rules for text from the lender's book that ends up in messages, headers and the ledger.

A debtor's name reaches an email's ``To`` header, an SMS, a call's script and a letter; an
account id reaches the ledger and the templates. Such text must be printable (no control
characters, no Unicode line or paragraph separators), of bounded length, and never hold an
RFC 2047 encoded word (``=?charset?q?...?=``): Python's ``email`` package before 3.11.10 and
3.12.5 (CVE-2024-6923) decodes one while writing a header and emits the CR LF it hides, so a
name could add a ``Bcc:`` or replace the body. These rules hold whatever the interpreter.

The problems named here never quote the text: it may be personal data.
"""

from __future__ import annotations

import re

__all__ = ["ENCODED_WORD", "NAME_MAX_CHARS", "text_problem"]

#: A name longer than this is refused: it has to fit a To header, an SMS and a letter's window.
NAME_MAX_CHARS = 200

#: Anything that may read as an encoded word to a lenient parser: "=?" and later "?=".
ENCODED_WORD = re.compile(r"=\?.*\?=", re.DOTALL)
# C0 and C1 controls, DEL, line/paragraph separators, lone surrogates (JSON "\ud800").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# The same, but tab, LF and CR allowed: an address line may span lines on a letter.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def text_problem(value: str, *, max_chars: int, multiline: bool = False) -> str | None:
    """Why ``value`` may not go into a message or header, or None when it may.

    ``multiline`` allows tab, LF and CR (postal address lines); everything else is one line.
    """
    if len(value) > max_chars:
        return f"is {len(value):,} characters long; at most {max_chars} are allowed"
    control = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if control is not None:
        return f"contains the control character U+{ord(control.group()):04X}"
    if ENCODED_WORD.search(value):
        return "contains an RFC 2047 encoded word (=?...?=), which is not allowed"
    return None
