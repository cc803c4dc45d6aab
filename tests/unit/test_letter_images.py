"""Signature and seal images decoded once per process: same PDF bytes, same pixels, fresh."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image as PilImage
from pypdf import PdfReader
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, SimpleDocTemplate

from dunning.channels.letter.images import StampImage

ASSETS = Path(__file__).resolve().parents[2] / "config" / "assets"
SEAL = ASSETS / "seal.png"
SIGNATURE = ASSETS / "signature.png"


def _pdf(*flowables: Flowable) -> bytes:
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, invariant=1).build(list(flowables))
    return buffer.getvalue()


def _rgba(path: Path) -> PilImage.Image:
    with PilImage.open(path) as image:
        return image.convert("RGBA")


def _images(pdf: bytes) -> list[PilImage.Image]:
    return [img.image.convert("RGBA") for img in PdfReader(io.BytesIO(pdf)).pages[0].images]


@pytest.mark.parametrize("path", [SEAL, SIGNATURE], ids=["seal", "signature"])
def test_stamp_image_writes_the_bytes_reportlab_image_writes(path: Path) -> None:
    reference = _pdf(Image(str(path), width=30 * mm, height=30 * mm, mask="auto"))
    first = _pdf(StampImage(path, width=30 * mm, height=30 * mm))
    second = _pdf(StampImage(path, width=30 * mm, height=30 * mm))  # from the cache
    assert first == reference
    assert second == reference


def test_both_images_in_one_letter_decode_to_their_files() -> None:
    pdf = _pdf(StampImage(SIGNATURE, 40 * mm, 16 * mm), StampImage(SEAL, 30 * mm, 30 * mm))
    shown = sorted((img.tobytes() for img in _images(pdf)), key=len)
    expected = sorted((_rgba(p).tobytes() for p in (SIGNATURE, SEAL)), key=len)
    assert shown == expected


def test_the_same_image_twice_in_a_document_is_stored_once() -> None:
    pdf = _pdf(StampImage(SEAL, 30 * mm, 30 * mm), StampImage(SEAL, 20 * mm, 20 * mm))
    reader = PdfReader(io.BytesIO(pdf))
    xobjects = reader.pages[0]["/Resources"]["/XObject"]
    assert len(xobjects) == 1
    assert pdf.count(b"/Subtype /Image") == 2  # the image and its soft mask (alpha)


def test_a_replaced_image_file_is_read_again(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp.png"
    shutil.copyfile(SEAL, stamp)
    before = _images(_pdf(StampImage(stamp, 30 * mm, 30 * mm)))
    shutil.copyfile(SIGNATURE, stamp)
    stat = stamp.stat()
    os.utime(stamp, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = _images(_pdf(StampImage(stamp, 30 * mm, 30 * mm)))
    assert before[0].tobytes() == _rgba(SEAL).tobytes()
    assert after[0].tobytes() == _rgba(SIGNATURE).tobytes()


def test_a_missing_image_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-seal.png"
    with pytest.raises(OSError, match=r"no-such-seal\.png"):
        StampImage(missing, 30 * mm, 30 * mm)


def test_an_unreadable_image_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken-seal.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(OSError, match=r"broken-seal\.png"):
        StampImage(broken, 30 * mm, 30 * mm)
