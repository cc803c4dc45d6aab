"""The lawyer letter as its recipient and a lawyer read it (docs/legal.md, "Lawyer letters"):
the rendered PDF's text, extracted with pypdf."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from decimal import Decimal

from dunning.channels.letter.addresses import recipient_lines
from dunning.channels.letter.fonts import CjkFont
from dunning.channels.letter.law_firms import LawFirms
from dunning.channels.letter.page_numbers import page_label
from dunning.channels.letter.pdf import render_letter
from dunning.intent_parts import Breakdown, Itemization
from dunning.intents import PostalAddress
from dunning.money_words import rmb_capitals
from dunning.templates import TemplateStore
from tests import pdfcheck
from tests.unit.test_letter_pdf import _compose, firms, font, letter_intent, store

__all__ = ["firms", "font", "store"]  # fixtures, imported for pytest

NANJING = PostalAddress(("鼓楼区中山路321号",), "南京", "210008", "CN", region="江苏省")
BREAKDOWN = Breakdown(
    Decimal("40000.00"), Decimal("3000.00"), Decimal("1500.00"), Decimal("500.00"),
    "HT-2025-100007", date(2025, 3, 18),
)  # fmt: skip


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_rmb_capitals_follow_the_payment_rules() -> None:
    assert rmb_capitals(Decimal("45000.00")) == "人民币肆万伍仟元整"
    assert rmb_capitals(Decimal("10005")) == "人民币壹万零伍元整"
    assert rmb_capitals(Decimal("100.05")) == "人民币壹佰元零伍分"
    assert rmb_capitals(Decimal("1010.50")) == "人民币壹仟零壹拾元伍角整"
    assert rmb_capitals(Decimal("100010000")) == "人民币壹亿零壹万元整"
    assert rmb_capitals(Decimal("0.05")) == "人民币伍分"


def test_a_domestic_chinese_address_runs_from_province_to_street_without_cn() -> None:
    assert recipient_lines("zh-CN", "赵丽", NANJING) == (
        "邮政编码：210008", "江苏省南京市鼓楼区中山路321号", "赵丽 收",
    )  # fmt: skip
    shanghai = PostalAddress(("浦东新区世纪大道100号",), "上海", "200120", "CN", region="上海市")
    assert recipient_lines("zh-CN", "张三", shanghai)[1] == "上海市浦东新区世纪大道100号"
    boston = PostalAddress(("12 Elm Street",), "Boston", "02108", "US", region="MA")
    assert recipient_lines("en-US", "Jane Doe", boston)[-1] == "US"


def test_the_zh_cn_letter_is_complete(firms: LawFirms, store: TemplateStore, font: CjkFont) -> None:
    intent = letter_intent("CN", amount_due=Decimal("45000.00"), breakdown=BREAKDOWN)
    recipient = dataclasses.replace(intent.recipient, name="赵丽", postal_address=NANJING)
    intent = dataclasses.replace(intent, recipient=recipient)
    letter = render_letter(_compose(intent, firms, store), font)
    text = pdfcheck.text(letter.pdf)
    flat = _flat(text)
    assert "江苏省南京市鼓楼区中山路321号" in flat
    assert "赵丽收" in flat
    assert not re.search(r"^\s*CN\s*$", text, re.M)  # no country line on domestic post
    assert "人民币肆万伍仟元整" in flat
    for label, figure in (("本金", "40,000.00"), ("利息", "3,000.00"), ("罚息", "1,500.00"),
                          ("费用", "500.00")):  # fmt: skip
        assert re.search(f"{label}¥{figure}", flat), label
    assert "HT-2025-100007" in flat
    assert "2025年3月18日" in flat
    for article in ("第五百零九条", "第五百七十七条", "第六百七十六条"):
        assert article in flat
    assert "2026年12月13日前" in flat  # 28 November + 15 days
    assert "本所案号：" in flat  # full-width colon in the Chinese meta block
    assert f"第{letter.pages}页/共{letter.pages}页" in flat
    assert _flat(page_label("zh-CN", 1, letter.pages)) in flat


def test_the_us_letter_has_the_itemization_and_a_dated_validation_end(
    firms: LawFirms, store: TemplateStore, font: CjkFont
) -> None:
    item = Itemization(date(2026, 9, 1), Decimal("1200.00"), Decimal("30.00"), Decimal("4.50"))
    intent = letter_intent("US", amount_due=Decimal("1234.50"), itemization=item)
    letter = render_letter(_compose(intent, firms, store), font)
    text = " ".join(pdfcheck.text(letter.pdf).split())
    assert "You owed on September 1, 2026 $1,200.00" in text
    assert "Interest charged since then + $30.00" in text
    assert "Fees charged since then + $4.50" in text
    # Latest send day Sunday 29 November (the intent expires then), receipt assumed Friday
    # 4 December (five business days), the period ends 30 days later.
    assert "at the address below by January 3, 2027." in text
    assert "within 30 days of receiving" not in text
    assert f"Page {letter.pages} of {letter.pages}" in text


def test_the_validation_notice_letter_renders_the_model_form(
    firms: LawFirms, store: TemplateStore, font: CjkFont
) -> None:
    item = Itemization(date(2026, 9, 1), Decimal("1200.00"), Decimal("30.00"), Decimal("4.50"))
    intent = letter_intent("US", amount_due=Decimal("1234.50"), itemization=item)
    intent = dataclasses.replace(
        intent, template=dataclasses.replace(intent.template, name="validation_notice")
    )
    letter = render_letter(_compose(intent, firms, store), font)
    text = " ".join(pdfcheck.text(letter.pdf).split())
    assert "Validation Notice" in text
    assert "You owed on September 1, 2026 $1,200.00" in text
    assert "Total amount of the debt now $1,234.50" in text
    assert "Call or write to us by January 3, 2027 to dispute all or part of the debt" in text
    assert "I want to dispute the debt because I think" in text
    assert "www.cfpb.gov/debt-collection" in text
