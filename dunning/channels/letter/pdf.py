"""Lawyer-letter PDFs: compose the text from templates, lay it out with reportlab platypus.

Two steps so the costly one can run in another thread or process: :func:`compose_letter` turns an
intent, its law-firm engagement and the ``letter`` templates into a :class:`LetterDocument` (plain,
picklable data); :func:`render_letter` lays that out and returns the PDF bytes. Everything is set
in one embedded CJK TrueType font (subset), so the Chinese and the English text both survive any
viewer and ``pdftotext``. Output is byte-for-byte reproducible (reportlab ``invariant``): the same
document renders to the same SHA-256, the evidence kept with the receipt.

Templates, under ``<locale>/letter/<name>.<part>.j2``: ``title``; ``meta`` and ``facts`` (one
``label | value`` per line: the file-number block and the claim table); ``body`` (paragraphs
separated by blank lines; a paragraph ``[[facts]]`` places the claim table); ``review``
(attorney-review statement or disclaimer, may be empty);
``signoff`` (one line each).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from babel.dates import format_date
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from dunning.channels.letter.addresses import recipient_lines
from dunning.channels.letter.fonts import CjkFont, register_font
from dunning.channels.letter.images import StampImage
from dunning.channels.letter.law_firms import LawFirmEngagement, file_number
from dunning.channels.letter.page_numbers import numbered_canvas
from dunning.errors import ConfigError
from dunning.intents import ContactIntent
from dunning.templates import TemplateStore, template_context

__all__ = [
    "PAGE_SIZES_PT",
    "LetterDocument",
    "RenderedLetter",
    "compose_letter",
    "page_size_for",
    "render_letter",
]

PAGE_SIZES_PT: dict[str, tuple[float, float]] = {"A4": A4, "LETTER": LETTER}
_LETTER_JURISDICTIONS = {"US"}  # US Letter; everyone else (CN, UK, ...) prints on A4
FACTS_MARKER = "[[facts]]"  # a body paragraph that is only this places the claim table
# Binary (Flate) image streams instead of ASCII85 text: smaller files, and reportlab's pure-Python
# ASCII85 encoder was a fifth of the render time. Process-global, harmless for other PDFs.
rl_config.useA85 = 0
_PARTS = ("title", "meta", "facts", "body", "review", "signoff")
#: Days from the letter's date to the absolute deadline it names (``deadline_date``).
DEADLINE_DAYS = 15


def page_size_for(jurisdiction: str) -> str:
    """``LETTER`` for the US (and its states, ``US-MA``), ``A4`` everywhere else."""
    return "LETTER" if jurisdiction.split("-", 1)[0] in _LETTER_JURISDICTIONS else "A4"


@dataclass(frozen=True, slots=True)
class LetterDocument:
    """The words and images of one letter, ready to lay out (picklable for a process pool)."""

    locale: str
    page_size: str
    file_number: str
    title: str
    letterhead: tuple[str, ...]
    recipient: tuple[str, ...]
    meta: tuple[tuple[str, str], ...]
    facts: tuple[tuple[str, str], ...]
    paragraphs: tuple[str, ...]
    review: str
    signoff: tuple[str, ...]
    signature_image: Path
    seal_image: Path
    author: str


@dataclass(frozen=True, slots=True)
class RenderedLetter:
    pdf: bytes
    pages: int
    page_size: str
    sha256: str


def _pairs(text: str, where: str) -> tuple[tuple[str, str], ...]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        label, sep, value = line.partition("|")
        if not sep:
            raise ConfigError(f"{where}: line {line!r} is not 'label | value'")
        rows.append((label.strip(), value.strip()))
    return tuple(rows)


def _paragraphs(text: str) -> tuple[str, ...]:
    blocks = [" ".join(b.split("\n")).strip() for b in text.replace("\r", "").split("\n\n")]
    return tuple(b for b in blocks if b)


def compose_letter(
    intent: ContactIntent,
    engagement: LawFirmEngagement,
    templates: TemplateStore,
    *,
    letter_date: date,
    extra: Mapping[str, Any] | None = None,
) -> LetterDocument:
    """Render the letter's text blocks for ``intent`` under ``engagement``.

    The recipient is the intent's recipient, the debtor (intents never address third parties).
    ``extra`` adds variables a template needs beyond the intent's (e.g. the itemization of a
    validation notice). Raises ConfigError when a template part is missing or broken.
    """
    address = intent.recipient.postal_address
    locale, name = intent.template.locale, intent.template.name
    number = file_number(engagement, intent)
    context = template_context(
        intent,
        {
            "firm": engagement.firm_name,
            "firm_address": engagement.firm_address,
            "lawyer": engagement.lawyer_name,
            "licence_number": engagement.licence_number,
            "file_number": number,
            "engagement_id": engagement.engagement_id,
            "creditor": engagement.creditor_name,
            "creditor_service": engagement.creditor_service,
            "basis_of_claim": engagement.basis_of_claim,
            "contact_phone": engagement.contact_phone,
            "contact_email": engagement.contact_email,
            "attorney_reviewed": engagement.attorney_reviewed,
            "review_record": engagement.review_record,
            "letter_date": format_date(letter_date, "long", locale=locale.replace("-", "_")),
            # An absolute date beside "within 15 days": the debtor need not count.
            "deadline_date": format_date(
                letter_date + timedelta(days=DEADLINE_DAYS), "long", locale=locale.replace("-", "_")
            ),
            "debt_ref": intent.debt_id,
            "account_id": intent.account_id,
            **(extra or {}),
        },
    )
    part = {p: templates.render(locale, "letter", name, p, context) for p in _PARTS}
    where = f"{locale}/letter/{name}"
    recipient = recipient_lines(locale, intent.recipient.name, address)
    contact = " · ".join(x for x in (engagement.contact_phone, engagement.contact_email) if x)
    return LetterDocument(
        locale=locale,
        page_size=page_size_for(intent.jurisdiction),
        file_number=number,
        title=part["title"],
        letterhead=tuple(x for x in (engagement.firm_name, engagement.firm_address, contact) if x),
        recipient=recipient,
        meta=_pairs(part["meta"], f"{where}.meta"),
        facts=_pairs(part["facts"], f"{where}.facts"),
        paragraphs=_paragraphs(part["body"]),
        review=" ".join(part["review"].split("\n")).strip(),
        signoff=tuple(line.strip() for line in part["signoff"].splitlines() if line.strip()),
        signature_image=engagement.signature_image,
        seal_image=engagement.seal_image,
        author=engagement.firm_name,
    )


def _styles(font_name: str, locale: str) -> dict[str, ParagraphStyle]:
    # CJK wrapping breaks between any two Han characters; Latin text wraps at spaces.
    wrap = "CJK" if locale.startswith(("zh", "ja", "ko")) else None
    base = ParagraphStyle("base", fontName=font_name, fontSize=10, leading=15, wordWrap=wrap)

    def style(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=base, **kw)

    return {
        "body": style("body", spaceAfter=6),
        "firm": style("firm", fontSize=16, leading=22, alignment=TA_CENTER),
        "head": style("head", fontSize=9, leading=12, alignment=TA_CENTER, textColor=colors.grey),
        "title": style("title", fontSize=18, leading=26, alignment=TA_CENTER, spaceBefore=6),
        "meta": style("meta", fontSize=9, leading=12, alignment=TA_RIGHT),
        "cell": style("cell", fontSize=10, leading=14),
        "review": style(
            "review",
            fontSize=9.5,
            leading=14,
            borderPadding=4,
            borderColor=colors.grey,
            borderWidth=0.5,
        ),
        "sign": style("sign", leading=15),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _facts_table(rows: Sequence[tuple[str, str]], st: dict[str, ParagraphStyle]) -> Table:
    data = [[_p(label, st["cell"]), _p(value, st["cell"])] for label, value in rows]
    table = Table(data, colWidths=[45 * mm, None], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                # Tables set their cell font even around Paragraphs: name ours so no
                # non-embedded Helvetica reference lands in the PDF.
                ("FONT", (0, 0), (-1, -1), st["cell"].fontName),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _signature_block(doc: LetterDocument, st: dict[str, ParagraphStyle]) -> Flowable:
    signature = StampImage(doc.signature_image, width=40 * mm, height=16 * mm)
    seal = StampImage(doc.seal_image, width=30 * mm, height=30 * mm)
    lines = [_p(line, st["sign"]) for line in doc.signoff]
    table = Table([[lines, signature, seal]], colWidths=[None, 45 * mm, 34 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), st["sign"].fontName),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    # The review statement travels with the signature: a signature never stands alone on a page.
    review = [Spacer(1, 2 * mm), _p(doc.review, st["review"])] if doc.review else []
    return KeepTogether([*review, Spacer(1, 3 * mm), table])


def _address_block(doc: LetterDocument, st: dict[str, ParagraphStyle]) -> Table:
    """Recipient (left, where an envelope window shows it) beside file number and date."""
    recipient = [_p(line, st["cell"]) for line in doc.recipient]
    colon = "：" if doc.locale.startswith("zh") else ": "  # full-width in Chinese text
    meta = [_p(f"{label}{colon}{value}", st["meta"]) for label, value in doc.meta]
    table = Table([[recipient, meta]], colWidths=["55%", "45%"])
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), st["cell"].fontName),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _story(doc: LetterDocument, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    story: list[Flowable] = [_p(doc.letterhead[0], st["firm"])]
    story += [_p(line, st["head"]) for line in doc.letterhead[1:]]
    story += [HRFlowable(width="100%", thickness=1, color=colors.black, spaceBefore=4)]
    story += [Spacer(1, 3 * mm), _address_block(doc, st)]
    story += [_p(doc.title, st["title"]), Spacer(1, 4 * mm)]
    facts: list[Flowable] = [_facts_table(doc.facts, st), Spacer(1, 4 * mm)] if doc.facts else []
    for text in doc.paragraphs:
        if text == FACTS_MARKER:
            story += facts
            facts = []
        else:
            story.append(_p(text, st["body"]))
    story += facts  # the body named no place for the claim table: it follows the text
    story.append(_signature_block(doc, st))
    return story


def render_letter(doc: LetterDocument, font: CjkFont) -> RenderedLetter:
    """Lay out ``doc`` as a PDF with ``font`` embedded; CPU-bound (run it off the event loop).

    Raises ConfigError when the font cannot be loaded.
    """
    font_name = register_font(font)
    st = _styles(font_name, doc.locale)
    buffer = io.BytesIO()
    page_size = PAGE_SIZES_PT[doc.page_size]
    pdf = SimpleDocTemplate(
        buffer,
        pagesize=page_size,
        leftMargin=22 * mm,
        rightMargin=22 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=doc.title,
        author=doc.author,
        lang=doc.locale,
        invariant=1,
        initialFontName=font_name,
    )

    # The footer (file number, "page 1 of N") is drawn when the page count is known.
    canvas = numbered_canvas(font_name, doc.locale, doc.file_number)
    pdf.build(_story(doc, st), canvasmaker=canvas)
    data = buffer.getvalue()
    return RenderedLetter(
        pdf=data,
        pages=int(pdf.page),
        page_size=doc.page_size,
        sha256=hashlib.sha256(data).hexdigest(),
    )
