"""The account summary of an evidence bundle as a PDF, for the reader who opens no JSON.

Set in the letters' embedded CJK font (Chinese names and amounts survive any viewer) and laid
out with reportlab in ``invariant`` mode: the same summary renders to the same bytes, so the
bag stays byte-identical when built twice.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from dunning.channels.letter.fonts import CjkFont, register_font

__all__ = ["summary_pdf"]

#: (key in account.json, label): what a lawyer looks for first, in that order.
_ROWS = (
    ("account_id", "Account / 账户"),
    ("debtor", "Debtor / 债务人"),
    ("creditor", "Creditor / 债权人"),
    ("contract_number", "Contract / 合同编号"),
    ("contract_date", "Contract date / 签订日期"),
    ("due_date", "Due date / 到期日"),
    ("currency", "Currency / 币种"),
    ("principal", "Principal / 本金"),
    ("interest", "Interest / 利息"),
    ("penalty_interest", "Penalty interest / 罚息"),
    ("fees", "Fees / 费用"),
    ("payments_since_itemization", "Payments since itemization / 已还款"),
    ("balance", "Balance / 欠款合计"),
    ("last_payment_date", "Last payment / 最后还款日"),
    ("law_firm", "Law firm / 律师事务所"),
    ("engagement_id", "Engagement / 委托记录"),
)


def summary_pdf(summary: Mapping[str, Any], font: CjkFont, *, title: str) -> bytes:
    """The summary's key facts as a one-page table."""
    name = register_font(font)
    cell = ParagraphStyle("cell", fontName=name, fontSize=10, leading=14, wordWrap="CJK")
    head = ParagraphStyle("head", parent=cell, fontSize=14, leading=20)
    rows = [
        [Paragraph(escape(label), cell), Paragraph(escape(str(summary.get(key) or "—")), cell)]
        for key, label in _ROWS
    ]
    table = Table(rows, colWidths=[70 * mm, None], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), name),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2")),
            ]
        )
    )
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, title=title, invariant=1, initialFontName=name,
        leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm, bottomMargin=18 * mm,
    )  # fmt: skip
    doc.build([Paragraph(escape(title), head), Spacer(1, 4 * mm), table])
    return buffer.getvalue()
