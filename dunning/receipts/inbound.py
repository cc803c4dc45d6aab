"""Inbound SMS: which replies are opt-out keywords, which re-subscribe, which go to an agent.

A reply is a keyword only when the whole message is the keyword, after NFKC folding (full-width
letters), case folding, and trimming whitespace and punctuation at both ends; inner hyphens,
underscores and runs of spaces count as one space (``opt-out`` is ``OPT OUT``). Anything longer
is a sentence, and a sentence is stored for an agent: "stop calling me at work" asks to stop
calls at one place and time (US 12 CFR 1006.6(b)), not to stop texts, so acting on the word
"stop" alone would both over-suppress and lose the real request. Sentences that look like an
opt-out request are flagged ``possible_opt_out`` so the agent queue shows them first.

A whole-message dispute keyword (DISPUTE, 异议, ...) is a dispute of the debt the reply answers
(:mod:`dunning.receipts.disputes`); a sentence that mentions a dispute goes to an agent, since a
consumer may dispute in any words and an agent records it (12 CFR 1006.38 takes any dispute).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DISPUTE_KEYWORDS",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "InboundDecision",
    "classify_inbound",
    "confirmation_text",
    "is_dispute_reply",
]

#: Whole-message opt-out keywords (docs/compliance.md, "Suppressions"); STOPALL and OPTOUT are
#: Twilio's own spellings.
OPT_OUT_KEYWORDS = frozenset(
    {
        "STOP",
        "STOPALL",
        "QUIT",
        "END",
        "REVOKE",
        "OPT OUT",
        "OPTOUT",
        "CANCEL",
        "UNSUBSCRIBE",
        "退订",
        "TD",
        "T",
    }
)
#: Whole-message re-subscribe keywords. Twilio's YES is left out: it answers too many questions.
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
_CHINESE_KEYWORDS = frozenset({"退订", "TD", "T"})
#: Whole-message dispute keywords, English and Chinese (docs/legal.md, "Disputes").
DISPUTE_KEYWORDS = frozenset(
    {
        "DISPUTE",
        "I DISPUTE",
        "DISPUTE DEBT",
        "DISPUTE THIS DEBT",
        "I DISPUTE THIS DEBT",
        "I DISPUTE THE DEBT",
        "NOT MY DEBT",
        "异议",
        "有异议",
        "我有异议",
        "提出异议",
        "我要提出异议",
        "对欠款有异议",
    }
)
_CHINESE_DISPUTES = frozenset(k for k in DISPUTE_KEYWORDS if not k.isascii())

_INNER_GAP = re.compile(r"[\s\-_]+")
#: Words that make a sentence worth an agent's early look as a possible opt-out request.
_OPT_OUT_HINTS = re.compile(
    r"\b(stop|unsubscribe|opt[\s-]?out|cease|remove me|do not (call|text|contact)|"
    r"don'?t (call|text|contact)|leave me alone|no more)\b|退订|不要再|别再|停止|拒绝|投诉",
    re.IGNORECASE,
)

InboundKind = Literal["opt_out", "opt_in", "dispute", "agent"]


@dataclass(frozen=True, slots=True)
class InboundDecision:
    """What to do with one inbound message.

    ``keyword`` is the normalised keyword matched (None for ``agent``); ``locale_hint`` is
    ``zh-CN`` for the Chinese keywords (退订, TD, T), so the confirmation is in Chinese even
    when the sender is unknown.
    """

    kind: InboundKind
    keyword: str | None = None
    possible_opt_out: bool = False
    locale_hint: str | None = None


def _strip_edges(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_edge(char: str) -> bool:
    # P*: punctuation (。！, quotes), S*: symbols (emoji, ~), Z*/C*: spaces and control characters.
    return char.isspace() or unicodedata.category(char)[0] in {"P", "S", "Z", "C"}


def normalise_reply(body: str) -> str:
    """The reply as compared against the keyword lists (upper case, edges trimmed)."""
    folded = unicodedata.normalize("NFKC", body)
    return _INNER_GAP.sub(" ", _strip_edges(folded)).upper()


def classify_inbound(body: str) -> InboundDecision:
    """Decide what an inbound SMS body asks for (see the module docstring for the rules)."""
    reply = normalise_reply(body)
    if reply in OPT_OUT_KEYWORDS:
        hint = "zh-CN" if reply in _CHINESE_KEYWORDS else None
        return InboundDecision("opt_out", reply, locale_hint=hint)
    if reply in OPT_IN_KEYWORDS:
        return InboundDecision("opt_in", reply)
    if reply in DISPUTE_KEYWORDS:
        hint = "zh-CN" if reply in _CHINESE_DISPUTES else None
        return InboundDecision("dispute", reply, locale_hint=hint)
    return InboundDecision("agent", possible_opt_out=bool(_OPT_OUT_HINTS.search(body)))


def is_dispute_reply(text: str) -> bool:
    """Whether an email reply disputes: a line of the new text (quoted lines, ``>``, and what
    follows an ``On ... wrote:`` line are the earlier message) that is a dispute keyword."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">") or (stripped.startswith("On ") and stripped.endswith(":")):
            break
        if stripped and normalise_reply(stripped) in DISPUTE_KEYWORDS:
            return True
    return False


_CONFIRMATIONS = {
    "zh-CN": "您已成功退订，我们将不再向此号码发送短信。",
    "en-US": "You have been unsubscribed and will receive no more text messages from us.",
}


def confirmation_text(locale: str, prefix: str) -> str:
    """The one opt-out confirmation: the institution prefix and the confirmation, nothing else.

    The prefix (``【XX消费金融】``) is the registered sender name every SMS must carry; no
    amount, no reminder, no link rides along with the confirmation.
    """
    return prefix + _CONFIRMATIONS.get(locale, _CONFIRMATIONS["en-US"])
