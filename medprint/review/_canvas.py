"""Drawing helpers shared by the pictures: a font, labels with a halo, the orientation letters, PNG bytes."""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

#: The image edges a picture's letters name, in the order Picture.letters lists them.
EDGES = ("left", "right", "top", "bottom")

Letters = tuple[tuple[str, str], ...]


def letters_of(left: str, right: str, top: str, bottom: str) -> Letters:
    """The ``Picture.letters`` tuple: each image edge and the patient direction it faces."""
    return (("left", left), ("right", right), ("top", top), ("bottom", bottom))


@lru_cache(maxsize=8)
def font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib) at ``size_px``; Pillow's own font if it cannot be found."""
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=True), size_px)
    except (OSError, ImportError):
        return ImageFont.load_default(size=size_px)


def label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, *, size_px: int,
          anchor: str = "la", fill: tuple[int, int, int] = (255, 255, 255)) -> None:
    """Text with a dark halo, readable over bone and over air."""
    draw.text(xy, text, font=font(size_px), fill=fill, anchor=anchor, stroke_width=max(1, size_px // 8),
              stroke_fill=(0, 0, 0))


def draw_letters(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], letters: Letters, *,
                 size_px: int, fill: tuple[int, int, int] = (255, 230, 80)) -> None:
    """Each edge's patient letter at the middle of that edge of ``box`` = (left, top, right, bottom)."""
    left, top, right, bottom = box
    margin = max(2, size_px // 4)
    places = {
        "left": ((left + margin, (top + bottom) / 2), "lm"),
        "right": ((right - margin, (top + bottom) / 2), "rm"),
        "top": (((left + right) / 2, top + margin), "ma"),
        "bottom": (((left + right) / 2, bottom - margin), "md"),
    }
    for edge, letter in letters:
        xy, anchor = places[edge]
        label(draw, xy, letter, size_px=size_px, anchor=anchor, fill=fill)


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG (fast compression: the report embeds several)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=4)
    return buffer.getvalue()
