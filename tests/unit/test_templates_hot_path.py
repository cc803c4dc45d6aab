"""What a worker's renders cost no longer repeats per message: templates are compiled once per
store, and amounts are formatted as Babel's ``format_currency`` formats them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from babel.numbers import format_currency

from dunning.templates import TemplateStore, format_amount


def test_a_template_is_compiled_once_per_store(tmp_path: Path) -> None:
    part = tmp_path / "en-US" / "sms" / "hello.txt.j2"
    part.parent.mkdir(parents=True)
    part.write_text("Hello {{ name }}", encoding="utf-8")
    store = TemplateStore(tmp_path)
    assert store.render("en-US", "sms", "hello", "txt", {"name": "A"}) == "Hello A"
    part.write_text("Changed {{ name }}", encoding="utf-8")
    # The store keeps what it compiled: a worker reads its templates once (restart to change).
    assert store.render("en-US", "sms", "hello", "txt", {"name": "B"}) == "Hello B"
    assert TemplateStore(tmp_path).render("en-US", "sms", "hello", "txt", {"name": "C"}) == (
        "Changed C"
    )


@pytest.mark.parametrize("locale", ["zh-CN", "en-US", "en-GB", "de-DE"])
@pytest.mark.parametrize("currency", ["CNY", "USD", "GBP", "JPY"])
@pytest.mark.parametrize("amount", ["0", "0.5", "1234.5", "1234567.891", "99999999.99"])
def test_amounts_format_as_babel_formats_them(locale: str, currency: str, amount: str) -> None:
    expected = format_currency(Decimal(amount), currency, locale=locale.replace("-", "_"))
    assert format_amount(Decimal(amount), currency, locale) == expected
