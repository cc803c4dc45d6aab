"""Message templates: ``config/templates/<locale>/<channel>/<name>.<part>.j2``.

Parts: ``txt`` (SMS text, voice script, email text body), ``subject`` and ``html`` (email),
``voicemail`` (voice, limited content). StrictUndefined everywhere so a missing variable is an
error at load/check time, never a blank in a message; autoescape for HTML only. Amounts are
formatted per locale with Babel.

A message (every part of one locale, channel and name) that threatens or implies legal action
is marked by a Jinja comment on the first line of any of its parts: ``{# legal: true #}``. The
comment renders as nothing; the compliance gate reads the marks (:func:`legal_marked`) to stop
such messages for a time-barred debt, and ``dunning templates check`` fails a message whose
wording is legal but that carries no mark.

This module sits below both channels/ (which render the messages) and compliance/ (which reads
the marks and checks the wording), so neither imports the other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern

from dunning.business_days import validation_period
from dunning.errors import ConfigError
from dunning.intents import ContactIntent
from dunning.money_words import rmb_capitals

__all__ = [
    "LEGAL_MARK",
    "TemplateStore",
    "breakdown_context",
    "format_amount",
    "itemization_context",
    "legal_marked",
    "template_context",
]

LEGAL_MARK = "{# legal: true #}"
_LEGAL_MARK = re.compile(r"^\{#-?\s*legal\s*:\s*true\s*-?#\}\s*$")


def legal_marked(root: Path) -> frozenset[tuple[str, str, str]]:
    """(locale, channel, name) of every message under ``root`` with a part whose first line is
    the legal mark; empty when ``root`` is not a folder. A part that cannot be read is skipped
    here (the template check reports it)."""
    if not root.is_dir():
        return frozenset()
    found = set()
    for file in root.glob("*/*/*.j2"):
        try:
            with file.open(encoding="utf-8") as handle:
                first = handle.readline()
        except (OSError, UnicodeDecodeError):
            continue
        if _LEGAL_MARK.match(first.lstrip("\ufeff")):
            name = file.name[: -len(".j2")].rsplit(".", 1)[0]
            found.add((file.parent.parent.name, file.parent.name, name))
    return frozenset(found)


def format_amount(amount: Decimal, currency: str, locale: str) -> str:
    """1234.5 CNY in zh-CN -> ¥1,234.50; in en-US USD -> $1,234.50.

    What Babel's ``format_currency`` gives, with the locale and its pattern looked up once per
    locale (the lookups were most of the cost of a render on a worker's hot path)."""
    parsed, pattern = _currency_format(locale)
    return str(
        pattern.apply(amount, parsed, currency=currency, currency_digits=True,
                      decimal_quantization=True)
    )  # fmt: skip


@functools.lru_cache(maxsize=64)
def _currency_format(locale: str) -> tuple[Locale, NumberPattern]:
    parsed = Locale.parse(locale.replace("-", "_"))
    return parsed, parsed.currency_formats["standard"]


def template_context(
    intent: ContactIntent, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The variables every template sees."""
    context: dict[str, Any] = {
        "name": intent.recipient.name,
        "amount": format_amount(intent.amount_due, intent.currency, intent.template.locale),
        "amount_raw": str(intent.amount_due),
        "currency": intent.currency,
        "days_past_due": intent.days_past_due,
        "account_ref": intent.account_id[-4:],
        "stage": intent.stage.value,
        "intent_id": intent.intent_id,
    }
    if intent.currency == "CNY":
        context["amount_capitals"] = rmb_capitals(intent.amount_due)
    if intent.itemization is not None:
        context.update(itemization_context(intent))
    if intent.breakdown is not None:
        context.update(breakdown_context(intent))
    if extra:
        context.update(extra)
    return context


def breakdown_context(intent: ContactIntent) -> dict[str, Any]:
    """What the amount due is made of (本金, 利息, 罚息, 费用) and the contract, for letters;
    the contract number falls back to the account id, an unknown contract date to nothing."""
    parts = intent.breakdown
    if parts is None:
        return {}
    locale = intent.template.locale

    def money(value: Decimal) -> str:
        return format_amount(value, intent.currency, locale)

    signed = parts.contract_date
    return {
        "principal": money(parts.principal),
        "interest": money(parts.interest),
        "penalty": money(parts.penalty),
        "fees": money(parts.fees),
        "contract_number": parts.contract_number or intent.account_id,
        "contract_date": ""
        if signed is None
        else format_date(signed, "long", locale=locale.replace("-", "_")),
    }


def itemization_context(intent: ContactIntent) -> dict[str, Any]:
    """The validation notice's itemization (12 CFR 1006.34(c)(2)) and its validation end date.

    The end date is computed as if the notice went out on the last day the intent may be sent
    (its ``expires_at`` in the debtor's zone): sent earlier, the consumer gets a day or two more
    than the 30 days after assumed receipt, never less (dunning/business_days.py).
    """
    item = intent.itemization
    if item is None:
        return {}
    locale = intent.template.locale
    babel_locale = locale.replace("-", "_")

    def money(value: Decimal) -> str:
        return format_amount(value, intent.currency, locale)

    latest_send = (intent.expires_at - timedelta(microseconds=1)).astimezone(intent.zone).date()
    ends = validation_period(latest_send).ends_on
    return {
        "itemization_date": format_date(item.on, "long", locale=babel_locale),
        "itemization_amount": money(item.amount),
        "interest_since_itemization": money(item.interest),
        "fees_since_itemization": money(item.fees),
        "payments_since_itemization": money(item.payments),
        "validation_end_date": format_date(ends, "long", locale=babel_locale),
        "validation_end_iso": ends.isoformat(),
    }


@dataclass(frozen=True)
class TemplateStore:
    """Loads and renders templates from one folder; two environments (text and HTML)."""

    root: Path

    def __post_init__(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(f"template folder {self.root} does not exist")
        loader = jinja2.FileSystemLoader(str(self.root))
        text = jinja2.Environment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701  SMS, voice and text bodies are plain text, never HTML
            keep_trailing_newline=False,
        )
        html = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=True)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_html", html)

    def path(self, locale: str, channel: str, name: str, part: str) -> str:
        return f"{locale}/{channel}/{name}.{part}.j2"

    def exists(self, locale: str, channel: str, name: str, part: str) -> bool:
        return (self.root / self.path(locale, channel, name, part)).is_file()

    def _compiled(self, env: jinja2.Environment, rel: str) -> jinja2.Template:
        """Each template compiled once per store: jinja's own cache checks the file's mtime
        on every render; a worker reads its templates once (a change needs a restart)."""
        cache: dict[tuple[int, str], jinja2.Template] = self.__dict__.setdefault("_cache", {})
        key = (id(env), rel)
        template = cache.get(key)
        if template is None:
            template = cache[key] = env.get_template(rel)
        return template

    def render(
        self, locale: str, channel: str, name: str, part: str, context: Mapping[str, Any]
    ) -> str:
        """Render one part; raises ConfigError naming the template on any template fault."""
        rel = self.path(locale, channel, name, part)
        env: jinja2.Environment = getattr(self, "_html" if part == "html" else "_text")
        try:
            return self._compiled(env, rel).render(**context).strip()
        except jinja2.TemplateNotFound as exc:
            if exc.name not in (None, rel):  # an include or extends of this template
                raise ConfigError(
                    f"template {rel}: it includes {exc.name}, not found under {self.root}"
                ) from None
            raise ConfigError(f"template {rel} not found under {self.root}") from None
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"template {rel}: {exc.message}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template {rel} line {exc.lineno}: {exc.message}") from exc

    def names(self) -> list[tuple[str, str, str, str]]:
        """Every (locale, channel, name, part) under the root, sorted."""
        found = []
        for file in sorted(self.root.glob("*/*/*.j2")):
            locale, channel = file.parent.parent.name, file.parent.name
            name, part = file.name[: -len(".j2")].rsplit(".", 1)
            found.append((locale, channel, name, part))
        return found
