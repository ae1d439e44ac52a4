"""Draws assets/icon.png, the app's favicon: a clapperboard in the app's red.

The favicon is served by the app itself, so a room without internet access still gets it
(Streamlit fetches ``:material/...:`` favicons from a font CDN). Run from the project root
to redraw it: ``python assets/make_icon.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

RED, WHITE, INK = (229, 9, 20, 255), (255, 255, 255, 255), (34, 34, 34, 255)
SIZE = 128


def draw(size: int = SIZE) -> Image.Image:
    scale = size / 128
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)

    def box(x0, y0, x1, y1):
        return [round(v * scale) for v in (x0, y0, x1, y1)]

    pen.rounded_rectangle(box(4, 4, 124, 124), radius=round(24 * scale), fill=RED)
    # the board
    pen.rounded_rectangle(box(22, 56, 106, 104), radius=round(6 * scale), fill=WHITE)
    # the clapper, tilted open, with its stripes
    clapper = [(22, 50), (100, 30), (103, 42), (25, 62)]
    pen.polygon([(x * scale, y * scale) for x, y in clapper], fill=WHITE)
    for start in (34, 56, 78):
        stripe = [(start, 47), (start + 10, 44.5), (start + 3, 56.5), (start - 7, 59)]
        pen.polygon([(x * scale, y * scale) for x, y in stripe], fill=INK)
    # a play mark on the board
    pen.polygon([(x * scale, y * scale) for x, y in ((56, 66), (56, 94), (78, 80))], fill=RED)
    return image


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "icon.png"
    draw().save(target, optimize=True)
    print(f"wrote {target.name}")
