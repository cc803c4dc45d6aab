"""Draw the sample signature.png and seal.png (placeholders for the images a firm supplies).

Run: .venv/bin/python config/assets/make_assets.py  (writes next to this file)
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
RED = (200, 16, 46, 255)
INK = (20, 30, 90, 255)


def seal(size_px: int = 400) -> Image.Image:
    """A round red seal: double ring and a five-pointed star, transparent background."""
    img = Image.new("RGBA", (size_px, size_px), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    c = size_px / 2
    draw.ellipse((8, 8, size_px - 8, size_px - 8), outline=RED, width=14)
    draw.ellipse((34, 34, size_px - 34, size_px - 34), outline=RED, width=3)
    outer, inner = size_px * 0.2, size_px * 0.08
    points = []
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        a = -math.pi / 2 + i * math.pi / 5
        points.append((c + r * math.cos(a), c + r * math.sin(a)))
    draw.polygon(points, fill=RED)
    # a band of short radial ticks where a real seal carries the firm's name
    for i in range(36):
        a = math.pi * 0.9 + i * (math.pi * 1.2 / 35)
        r1, r2 = size_px * 0.36, size_px * 0.42
        cos_a, sin_a = math.cos(a), math.sin(a)
        tick = (c + r1 * cos_a, c + r1 * sin_a, c + r2 * cos_a, c + r2 * sin_a)
        draw.line(tick, fill=RED, width=6)
    return img


def signature(width_px: int = 500, height_px: int = 200) -> Image.Image:
    """A handwritten-looking flourish in dark blue ink, transparent background."""
    img = Image.new("RGBA", (width_px, height_px), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    points = []
    for i in range(400):
        t = i / 399
        x = 20 + t * (width_px - 40)
        y = height_px / 2 + 45 * math.sin(t * 9 * math.pi) * (1 - t * 0.6) + 25 * math.sin(t * 2.3)
        points.append((x, y))
    draw.line(points, fill=INK, width=6, joint="curve")
    draw.line((40, height_px - 40, width_px - 60, height_px - 55), fill=INK, width=4)
    return img


if __name__ == "__main__":
    seal().save(HERE / "seal.png", optimize=True)
    signature().save(HERE / "signature.png", optimize=True)
