"""The image's Python is pinned to an exact patch release that has the email header fix."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# CVE-2024-6923 (email headers with encoded words hiding CR LF) was fixed in these releases.
FIXED_IN = {(3, 11): 10, (3, 12): 5}


def test_base_image_is_an_exact_python_release_with_the_header_fix() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    [image] = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    match = re.fullmatch(
        r"python:(\d+)\.(\d+)\.(\d+)-slim(?:-\w+)?(?:@sha256:[0-9a-f]{64})?", image
    )
    assert match is not None, f"{image}: pin python:X.Y.Z-slim, not a floating tag"
    major, minor, patch = (int(part) for part in match.groups())
    assert (major, minor) >= (3, 11)
    assert patch >= FIXED_IN.get((major, minor), 0), f"{image} predates the CVE-2024-6923 fix"
