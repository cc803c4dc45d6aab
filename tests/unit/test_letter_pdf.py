"""Lawyer-letter PDFs read back with pypdf: text, embedded fonts, page size."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from dunning.channels.letter.fonts import CjkFont, find_cjk_font, font_search_paths
from dunning.channels.letter.law_firms import LawFirms, file_number
from dunning.channels.letter.pdf import (
    LetterDocument,
    compose_letter,
    page_size_for,
    render_letter,
)
from dunning.channels_toml import ChannelsToml
from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import Channel, ContactIntent, PostalAddress, Recipient, TemplateRef
from dunning.templates import TemplateStore
from tests import pdfcheck
from tests.factories import make_intent

CONFIG = Path(__file__).resolve().parents[2] / "config"
LETTER_DAY = date(2026, 11, 28)


@pytest.fixture(scope="module")
def font() -> CjkFont:
    try:
        return find_cjk_font()
    except ConfigError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def firms() -> LawFirms:
    return LawFirms.load(CONFIG / "law_firms.toml")


@pytest.fixture(scope="module")
def store() -> TemplateStore:
    return TemplateStore(CONFIG / "templates")


def letter_intent(jurisdiction: str, **overrides: object) -> ContactIntent:
    intent = make_intent(Channel.LETTER, jurisdiction=jurisdiction)
    intent = dataclasses.replace(
        intent, template=TemplateRef("lawyer_letter", intent.template.locale)
    )
    if jurisdiction.startswith("US"):
        address = PostalAddress(("12 Elm Street",), "Boston", "02108", "US", region="MA")
        intent = dataclasses.replace(
            intent, recipient=Recipient(name="Jane Doe", postal_address=address)
        )
    return dataclasses.replace(intent, **overrides)


def _compose(
    intent: ContactIntent, firms: LawFirms, store: TemplateStore, **extra: str
) -> LetterDocument:
    engagement = firms.for_jurisdiction(intent.jurisdiction)
    return compose_letter(intent, engagement, store, letter_date=LETTER_DAY, extra=extra)


def test_chinese_letter_text_is_extractable(
    font: CjkFont, firms: LawFirms, store: TemplateStore
) -> None:
    intent = letter_intent("CN")
    letter = render_letter(_compose(intent, firms, store), font)
    text = pdfcheck.text(letter.pdf)
    flat = "".join(text.split())  # CJK wrapping may break a phrase across lines
    engagement = firms.for_jurisdiction("CN")
    for expected in (
        "律师函",
        "张三",
        engagement.firm_name,
        engagement.lawyer_name,
        engagement.licence_number,
        engagement.creditor_name,
        engagement.engagement_id,
        "¥1,234.50",
        "核对账户",
        "提出异议",
        file_number(engagement, intent),
        "上海",
    ):
        assert expected in flat, expected


def test_english_letter_text_and_disclaimer(
    font: CjkFont, firms: LawFirms, store: TemplateStore
) -> None:
    letter = render_letter(_compose(letter_intent("US"), firms, store), font)
    text = " ".join(pdfcheck.text(letter.pdf).split())
    for expected in (
        "Jane Doe",
        "Example & Partners LLP",
        "$1,234.50",
        "This communication is from a debt collector",
        "no attorney with this firm has personally reviewed",
        "How to dispute",
        "12 Elm Street",
    ):
        assert expected in text, expected


def test_reviewed_engagement_prints_the_review_record(
    font: CjkFont, firms: LawFirms, store: TemplateStore
) -> None:
    reviewed = dataclasses.replace(
        firms.for_jurisdiction("US"), attorney_reviewed=True, review_record="REV-2026-0042"
    )
    doc = compose_letter(letter_intent("US"), reviewed, store, letter_date=LETTER_DAY)
    text = " ".join(pdfcheck.text(render_letter(doc, font).pdf).split())
    assert "REV-2026-0042" in text
    assert "no attorney" not in text


@pytest.mark.parametrize("jurisdiction", ["CN", "US"])
def test_every_font_is_embedded_and_cjk(
    jurisdiction: str, font: CjkFont, firms: LawFirms, store: TemplateStore
) -> None:
    letter = render_letter(_compose(letter_intent(jurisdiction), firms, store), font)
    used = pdfcheck.fonts(letter.pdf)
    assert used, "no fonts listed"
    for pdf_font in used:
        assert pdf_font.embedded, pdf_font
        assert pdf_font.subtype in {"TrueType", "Type0"}, pdf_font  # never a base-14 font
    assert pdfcheck.text(letter.pdf).strip()


@pytest.mark.parametrize(
    ("jurisdiction", "size_name", "size_pt"),
    [("CN", "A4", (595, 842)), ("US", "LETTER", (612, 792))],
)
def test_page_size_follows_jurisdiction(
    jurisdiction: str,
    size_name: str,
    size_pt: tuple[int, int],
    font: CjkFont,
    firms: LawFirms,
    store: TemplateStore,
) -> None:
    letter = render_letter(_compose(letter_intent(jurisdiction), firms, store), font)
    assert pdfcheck.page_size_pt(letter.pdf) == size_pt
    assert pdfcheck.page_count(letter.pdf) == letter.pages
    assert letter.page_size == size_name


def test_page_size_for_jurisdictions() -> None:
    assert page_size_for("US") == "LETTER"
    assert page_size_for("US-MA") == "LETTER"
    assert page_size_for("CN") == "A4"
    assert page_size_for("UK") == "A4"


def test_rendering_is_reproducible(font: CjkFont, firms: LawFirms, store: TemplateStore) -> None:
    doc = _compose(letter_intent("CN"), firms, store)
    first, second = render_letter(doc, font), render_letter(doc, font)
    assert first.sha256 == second.sha256 == hashlib.sha256(first.pdf).hexdigest()


def test_file_number_is_deterministic_per_intent(firms: LawFirms) -> None:
    engagement = firms.for_jurisdiction("CN")
    one, other = letter_intent("CN"), letter_intent("CN")
    assert file_number(engagement, one) == file_number(engagement, one)
    assert file_number(engagement, one) != file_number(engagement, other)
    assert file_number(engagement, one).startswith(f"{engagement.file_prefix}-2026-")


def test_empty_font_folder_refuses_with_install_advice(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no CJK TrueType font found"):
        find_cjk_font([tmp_path])


def test_latin_only_font_is_not_taken_for_cjk() -> None:
    dejavu = Path("/usr/share/fonts/truetype/dejavu")
    if not dejavu.is_dir():
        pytest.skip("DejaVu fonts are not installed")
    with pytest.raises(ConfigError):
        find_cjk_font([dejavu])


def test_missing_engagement_is_permanent(firms: LawFirms) -> None:
    with pytest.raises(PermanentChannelError) as caught:
        firms.for_jurisdiction("UK")
    assert caught.value.reason == "no_law_firm_engagement"
    assert caught.value.provider_code == "no_law_firm_engagement"
    assert firms.for_jurisdiction("US-MA").jurisdiction == "US"


def test_engagement_without_licence_number_is_a_config_error(tmp_path: Path) -> None:
    text = (CONFIG / "law_firms.toml").read_text(encoding="utf-8")
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("licence_number"))
    (tmp_path / "law_firms.toml").write_text(broken, encoding="utf-8")
    shutil.copytree(CONFIG / "assets", tmp_path / "assets")
    with pytest.raises(ConfigError, match="licence_number"):
        LawFirms.load(tmp_path / "law_firms.toml")


@pytest.mark.parametrize(
    ("jurisdiction", "name", "title"),
    [
        ("CN", "lawyer_letter", "律师函"),
        ("CN", "final_notice", "律师函（最后通知）"),
        ("US", "lawyer_letter", "Notice of Overdue Account"),
        ("US", "final_notice", "Final Notice of Overdue Account"),
    ],
)
def test_every_letter_template_renders_on_one_page(
    jurisdiction: str,
    name: str,
    title: str,
    font: CjkFont,
    firms: LawFirms,
    store: TemplateStore,
) -> None:
    intent = letter_intent(jurisdiction)
    intent = dataclasses.replace(intent, template=TemplateRef(name, intent.template.locale))
    letter = render_letter(_compose(intent, firms, store), font)
    text = pdfcheck.text(letter.pdf)
    assert title in text
    assert firms.for_jurisdiction(jurisdiction).licence_number in text
    assert letter.pages == 1


def test_bundled_font_needs_nothing_from_the_system(font: CjkFont) -> None:
    # The default font comes from the Python environment, converted into the user's cache.
    bundled = find_cjk_font()
    assert bundled.path.suffix == ".ttf"
    assert "dunning" in bundled.path.parts
    assert not str(bundled.path).startswith("/usr/share/fonts")


def test_system_fonts_stay_an_option(tmp_path: Path) -> None:
    def font_paths(font_path: str) -> list[Path] | None:
        channels = ChannelsToml(tmp_path / "channels.toml", {"letter": {"font_path": font_path}})
        return font_search_paths(channels.letter().font_path)

    assert font_paths("") is None
    system = font_paths("system")
    assert system is not None
    assert Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc") in system
    assert font_paths("/x/y.ttf") == [Path("/x/y.ttf")]


@pytest.mark.parametrize("source", ["bundled", "dejavu"])
def test_shared_glyph_table_writes_the_same_font_subset(source: str, font: CjkFont) -> None:
    # register_font hands reportlab a view of the glyph table; the embedded subset must be
    # byte-for-byte what reportlab writes from its own copy (DejaVu has composite glyphs).
    import io

    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen.canvas import Canvas

    from dunning.channels.letter.fonts import register_font

    path = (
        font.path
        if source == "bundled"
        else Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    )
    if not path.is_file():
        pytest.skip(f"{path} is not installed")

    def render(name: str) -> bytes:
        out = io.BytesIO()
        canvas = Canvas(out, invariant=True)
        canvas.setFont(name, 12)
        canvas.drawString(72, 720, "律师函 Zoë, façade, ǅ, Å 第 1 页")
        canvas.save()
        return out.getvalue().replace(name.encode(), b"F")

    plain = f"plain-{source}"
    pdfmetrics.registerFont(TTFont(plain, str(path)))
    shared = register_font(CjkFont(path=path, name=f"shared-{source}"))
    assert render(shared) == render(plain)


def test_the_us_validation_notice_itemizes_the_debt(
    font: CjkFont, firms: LawFirms, store: TemplateStore
) -> None:
    """Regulation F's model validation notice: itemization, dispute deadline, response form."""
    intent = letter_intent("US", template=TemplateRef("validation_notice", "en-US"))
    itemization = {
        "itemization_date": "August 1, 2026",
        "itemization_amount": "$1,180.00",
        "interest_since_itemization": "$42.50",
        "fees_since_itemization": "$25.00",
        "payments_since_itemization": "$0.00",
        "validation_end_date": "January 4, 2027",
    }
    doc = _compose(intent, firms, store, **itemization)
    assert doc.title == "Validation Notice"
    facts = dict(doc.facts)
    assert facts["You owed on August 1, 2026"] == "$1,180.00"
    assert facts["Interest charged since then"] == "+ $42.50"
    assert facts["Total amount of the debt now"] == "$1,234.50"
    letter = render_letter(doc, font)
    text = " ".join(pdfcheck.text(letter.pdf).split())
    assert "Call or write to us by January 4, 2027 to dispute all or part of the debt" in text
    assert "This is an attempt to collect a debt" in text
    assert "How do you want to respond?" in text
    assert letter.pages <= 2
    with pytest.raises(ConfigError, match="itemization"):
        _compose(intent, firms, store)  # never printed with blanks
