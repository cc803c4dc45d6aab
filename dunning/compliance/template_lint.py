"""Template lint: render every template with sample data and check the content rules.

Templates live at ``<root>/<locale>/<channel>/<name>.<part>.j2`` (see
:mod:`dunning.templates`); one *message* is every part of one (locale, channel, name).
Rules (docs/compliance.md, "Content rules"):

* ``render``: every part renders with sample data (variables the sample lacks get a placeholder);
* ``opt_out``: SMS and email bodies carry a simple opt-out (1006.6(e); MIIT);
* ``us_disclosure``: every US message says it is from a debt collector / an attempt to collect a
  debt (1006.18(e)), except pre-due reminders, which must carry no collection wording at all;
* ``banned_wording``: no court/police/government impersonation, arrest, blacklists or "borrow to
  repay" (1692e; CBA 2026; CN Criminal Law Art 280); a letter may mention court or legal action
  factually;
* ``voicemail_limited_content``: the ``voicemail`` part mentions no debt, amount or account
  (1006.2(j));
* ``legal_wording_marked``: a message whose text threatens or implies legal action (the words of
  :data:`LEGAL_ACTION_WORDING` for its language) carries the legal mark ``{# legal: true #}`` on
  the first line of one of its parts, so the gate stops it for a time-barred debt (1006.26(b)).
  The mark without such words is allowed: marking is the cautious side.

The jurisdiction of a message comes from its locale (en-US -> US, zh-CN -> CN, en-GB -> UK).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from dunning.channels_toml import load_channels_toml
from dunning.errors import ConfigError
from dunning.intents import (
    Channel,
    ContactIntent,
    PostalAddress,
    Recipient,
    Stage,
    TemplateRef,
    make_intent_id,
)
from dunning.templates import LEGAL_MARK, TemplateStore, legal_marked, template_context

__all__ = [
    "LEGAL_ACTION_WORDING",
    "LOCALE_JURISDICTIONS",
    "LintResult",
    "institution_samples",
    "lint_templates",
]

LOCALE_JURISDICTIONS = {"en-US": "US", "zh-CN": "CN", "en-GB": "UK"}
_BODY_PARTS = {"sms": ("txt",), "email": ("txt", "html")}

_OPT_OUT = re.compile(r"\bstop\b|unsubscribe|opt[ -]?out|退订|回复?\s*TD", re.IGNORECASE)
_DISCLOSURE = re.compile(r"debt collector|attempt to collect a debt", re.IGNORECASE)
_COLLECTION = re.compile(r"debt collector|collect a debt|催收", re.IGNORECASE)
_BANNED = [
    (re.compile(r"\bpolice\b|公安|警察|警方", re.I), "police"),
    (re.compile(r"\barrest|\bjail\b|\bprison\b|\bwarrant\b|拘留|逮捕|坐牢|判刑", re.I), "arrest"),
    (re.compile(r"\bgovernment\b|\bsheriff\b|政府", re.I), "government"),
    (re.compile(r"black\s*-?\s*list|黑名单|失信名单", re.I), "blacklist"),
    (re.compile(r"borrow(ing)?\s+(money\s+)?to\s+(re)?pay|借钱还|以贷养贷|以贷还贷", re.I),
     "borrow to repay"),
]  # fmt: skip
# Factual in a lawyer letter, intimidation anywhere else.
_LEGAL = (re.compile(r"\bcourts?\b|\blawsuit\b|\bsue\b|legal action|法院|起诉|诉讼", re.I), "court")
#: Words that threaten or imply legal action, per language of the locale (en-US, en-GB: "en").
LEGAL_ACTION_WORDING: dict[str, tuple[str, ...]] = {
    "en": (
        "lawsuit", "legal action", "legal proceedings", "attorney", "lawyer", "law firm",
        "court", "sue", "litigation", "judgment", "the law allows", "legal remedies",
    ),
    "zh": ("律师函", "律师", "律所", "诉讼", "起诉", "法院", "仲裁", "法律程序"),
}  # fmt: skip
_LEGAL_ACTION = {
    language: re.compile("|".join(rf"\b{re.escape(w)}s?\b" if language == "en" else re.escape(w)
                                  for w in words), re.IGNORECASE)
    for language, words in LEGAL_ACTION_WORDING.items()
}  # fmt: skip
_PLACEHOLDER = re.compile(r"\[[a-z_]+\]")  # a variable the samples lack: "[lawyer]" says nothing
_VOICEMAIL_DEBT = re.compile(
    r"\bdebts?\b|\bowe|collect|overdue|past due|payment|balance|amount|account|\bloan"
    r"|欠款|债务|逾期|催收|还款|金额|账户|借款|贷款",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class LintResult:
    """One rule's verdict on one message (``template`` is ``locale/channel/name``)."""

    template: str
    rule: str
    ok: bool
    detail: str = ""


def institution_samples(channels_toml: Path) -> dict[str, dict[str, Any]]:
    """Per-locale sample variables from ``[institution.<J>]`` tables of channels.toml.

    Returns {} when the file does not exist; raises ConfigError when it is not valid TOML.
    """
    return load_channels_toml(channels_toml, missing_ok=True).institution_samples()


def _sample_intent(locale: str, channel: Channel, name: str) -> ContactIntent:
    jurisdiction = LOCALE_JURISDICTIONS.get(locale, "CN")
    chinese = locale.startswith("zh")
    created = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    return ContactIntent(
        intent_id=make_intent_id("sample-0001", name, created.date()),
        account_id="sample-0001",
        person_id="person-sample",
        debt_id="debt-sample",
        jurisdiction=jurisdiction,
        stage=Stage.PRE_DUE if name.startswith("pre_due") else Stage.EARLY,
        channel=channel,
        step=name,
        template=TemplateRef(name=name, locale=locale),
        recipient=Recipient(
            name="张三" if chinese else "Jane Doe",
            phone="+8613800138000" if chinese else "+12025550143",
            email="sample@example.com",
            postal_address=PostalAddress(("1 Sample Street",), "Sample City", "00000", "US"),
        ),
        timezone="Asia/Shanghai" if chinese else "America/New_York",
        amount_due=Decimal("1234.56"),
        currency="CNY" if chinese else "USD",
        days_past_due=12,
        expires_at=created + timedelta(days=2),
        strategy="lint",
        variant="champion",
        created_at=created,
        trace_id="lint",
    )


def _all_variables(root: Path) -> set[str]:
    """Every variable any file under ``root`` reads (includes and layouts too)."""
    env = jinja2.Environment(autoescape=True)
    names: set[str] = set()
    for file in root.rglob("*"):
        if file.is_file():
            try:
                names |= meta.find_undeclared_variables(env.parse(file.read_text(encoding="utf-8")))
            except (jinja2.TemplateSyntaxError, UnicodeDecodeError):
                continue  # reported by the render rule of the message that uses it
    return names


def _check(template: str, rule: str, problems: list[str]) -> LintResult:
    return LintResult(template, rule, not problems, "; ".join(problems))


def _legal_wording_marked(key: str, locale: str, text: str, marked: bool) -> LintResult:
    pattern = _LEGAL_ACTION.get(locale.split("-", maxsplit=1)[0].lower())
    found = None if pattern is None or marked else pattern.search(_PLACEHOLDER.sub(" ", text))
    said = [] if found is None else [f"says {found.group(0)!r} but has no {LEGAL_MARK} mark"]
    return _check(key, "legal_wording_marked", said)


def _lint_message(
    key: str,
    locale: str,
    channel: str,
    name: str,
    parts: dict[str, str],
    amount: str,
    *,
    marked: bool = False,
) -> list[LintResult]:
    jurisdiction = LOCALE_JURISDICTIONS.get(locale, "")
    bodies = [p for p in _BODY_PARTS.get(channel, ()) if p in parts]
    spoken = "\n".join(text for part, text in parts.items() if part not in ("voicemail",))
    results = []
    if channel in _BODY_PARTS:
        missing = [p for p in bodies if not _OPT_OUT.search(parts[p])]
        results.append(_check(key, "opt_out", [f"{p} part has no opt-out line" for p in missing]))
    if jurisdiction == "US" and name.startswith("pre_due"):
        found = _COLLECTION.search(spoken)
        said = [f"pre-due reminder says {found.group(0)!r}"] if found else []
        results.append(_check(key, "pre_due_no_collection_wording", said))
    elif jurisdiction == "US":
        # Each email body stands alone (a reader sees one); a call or letter is read as a whole.
        texts = {p: parts[p] for p in bodies} or {"all parts": spoken}
        missing = [f"{p}: no debt-collector disclosure" for p, t in texts.items()
                   if not _DISCLOSURE.search(t)]  # fmt: skip
        results.append(_check(key, "us_disclosure", missing))
    banned = list(_BANNED) if channel == "letter" else [*_BANNED, _LEGAL]
    hits = []
    for part, text in parts.items():
        hits += [f"{part}: {what} ({m.group(0)!r})" for pattern, what in banned
                 if (m := pattern.search(text))]  # fmt: skip
    results.append(_check(key, "banned_wording", hits))
    if "voicemail" in parts:
        m = _VOICEMAIL_DEBT.search(parts["voicemail"])
        said = [f"voicemail mentions {m.group(0)!r}"] if m else []
        if amount in parts["voicemail"]:
            said.append("voicemail states the amount due")
        results.append(_check(key, "voicemail_limited_content", said))
    # A letter's review part is the attorney-review statement (or the disclaimer that no
    # attorney reviewed the account): required wording, not a threat of legal action.
    worded = "\n".join(text for part, text in parts.items() if part != "review")
    results.append(_legal_wording_marked(key, locale, worded, marked))
    return results


def lint_templates(
    root: Path, samples: Mapping[str, Mapping[str, Any]] | None = None
) -> list[LintResult]:
    """Render and check every message under ``root``; one LintResult per (message, rule).

    ``samples`` maps a locale to extra variables (e.g. :func:`institution_samples`); variables
    still missing are filled with ``[name]`` placeholders so the content rules can run.
    Raises ConfigError when ``root`` is not a folder.
    """
    store = TemplateStore(root)
    marked = legal_marked(root)
    placeholders = {v: f"[{v}]" for v in _all_variables(root)}
    messages: dict[tuple[str, str, str], list[str]] = {}
    for locale, channel, name, part in store.names():
        messages.setdefault((locale, channel, name), []).append(part)
    results: list[LintResult] = []
    for (locale, channel, name), part_names in sorted(messages.items()):
        key = f"{locale}/{channel}/{name}"
        try:
            intent = _sample_intent(locale, Channel(channel), name)
        except ValueError:
            results.append(LintResult(key, "render", False, f"unknown channel folder {channel!r}"))
            continue
        context = {**placeholders, **template_context(intent, (samples or {}).get(locale))}
        parts: dict[str, str] = {}
        errors = []
        for part in part_names:
            try:
                parts[part] = store.render(locale, channel, name, part, context)
            except ConfigError as exc:
                errors.append(str(exc))
        results.append(_check(key, "render", errors))
        if not errors:
            amount = str(context["amount"])
            legal = (locale, channel, name) in marked
            results.extend(_lint_message(key, locale, channel, name, parts, amount, marked=legal))
    return results
