"""Text to glyph outlines in mm: the font, the polygons, their stroke width.

The font is DejaVu Sans (regular or bold), the TrueType file that ships inside
matplotlib (``mpl-data/fonts/ttf``): no download, the same outlines on every
machine.  matplotlib's :class:`~matplotlib.textpath.TextPath` lays the string
out (advances, kerning) and gives its outline as lines and quadratic/cubic
Bezier curves; the curves are flattened here to a chord tolerance in mm, the
rings filled with the non-zero rule (TrueType's) by Clipper2 (manifold3d's
:class:`~manifold3d.CrossSection`), and the result is a shapely
``MultiPolygon`` (holes included: the counters of "O", "R", "4") in the
label's own plane: x to the right along the line, y up, in mm, centred on the
ink's bounding box.

The character size is the capital height (the height of "H"), the size a
lab means when it asks for "5 mm letters".

Stroke width (:func:`min_stroke_mm`): the widest line ``w`` such that eroding
every glyph piece by ``w / 2`` keeps it whole -- present, in one piece, with
the same holes.  A bar, neck or ring thinner than ``w`` vanishes or breaks
under that erosion, so a nozzle line of width ``w`` cannot print it as a
stroke; tapering tips (the end of a curve, a sharp corner) lose only their
point and do not count.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from ..errors import ParameterError

#: Fonts a label may use: name -> (family shown in reports, file in matplotlib's mpl-data/fonts/ttf).
FONTS = {
    "bold": ("DejaVu Sans Bold", "DejaVuSans-Bold.ttf"),
    "regular": ("DejaVu Sans", "DejaVuSans.ttf"),
}
#: Characters beyond printable ASCII that a label may carry (all in DejaVu Sans).
EXTRA_SYMBOLS = "°±µ×·–—→←↑↓"
#: Longest text (characters): a label is an order id, a side marker, a date.
MAX_TEXT_CHARS = 64
#: Chord tolerance when flattening glyph curves (mm): far below any nozzle's resolution.
CURVE_TOLERANCE_MM = 0.005


def check_text(text: object, option: str = "--text") -> str:
    """Return ``text`` if it can be a label; else :class:`ParameterError` naming ``option``.

    Printable ASCII and :data:`EXTRA_SYMBOLS`; no control or format characters (a newline, an escape
    sequence, a zero-width joiner), at most :data:`MAX_TEXT_CHARS` characters, not only spaces.

    >>> check_text("ORD-1042 R")
    'ORD-1042 R'
    >>> check_text("A\\x1b[31m")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    medprint.errors.ParameterError: --text: character 2 is a control character (U+001B); a label takes ...
    """
    allowed = f"printable letters, digits, spaces and {EXTRA_SYMBOLS}"
    if not isinstance(text, str):
        raise ParameterError(f"{option}: give the label's text as a string, e.g. {option} \"ORD-1042 R\"")
    if not text.strip():
        raise ParameterError(f"{option}: the text is empty; give the characters to print, e.g. {option} \"ORD-1042 R\"")
    for position, char in enumerate(text, start=1):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Zl", "Zp"):
            raise ParameterError(f"{option}: character {position} is a control character (U+{ord(char):04X}); "
                                 f"a label takes {allowed}")
        if not (" " <= char <= "~" or char in EXTRA_SYMBOLS):
            raise ParameterError(f"{option}: character {position} (U+{ord(char):04X}) is not in the label font's "
                                 f"set; a label takes {allowed}")
    if len(text) > MAX_TEXT_CHARS:
        raise ParameterError(f"{option}: {len(text)} characters is more than a label holds (at most "
                             f"{MAX_TEXT_CHARS}); shorten the text")
    return text


def font_file(font: str) -> Path:
    """The TrueType file of ``font`` (a key of :data:`FONTS`), inside matplotlib's own data."""
    import matplotlib

    if font not in FONTS:
        raise ParameterError(f"--font: {font!r} is not a label font; choose one of {', '.join(FONTS)}")
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[font][1]
    if not path.is_file():
        raise ParameterError(f"--font: the font file {FONTS[font][1]} is missing from matplotlib's data; "
                             "reinstall matplotlib")
    return path


@dataclass(frozen=True)
class GlyphOutline:
    """A text's outline in its own plane (mm), and how it was made.

    Attributes
    ----------
    polygons : MultiPolygon
        The ink, x right along the line, y up, centred on its bounding box, in mm.
    text, font : str
        What was set and in which font (family name).
    cap_height_mm : float
        Height of a capital letter ("H"), the asked character size.
    """

    polygons: MultiPolygon
    text: str
    font: str
    cap_height_mm: float

    @property
    def area_mm2(self) -> float:
        return float(self.polygons.area)

    @property
    def size_mm(self) -> tuple[float, float]:
        """Width and height of the ink's bounding box (mm)."""
        x0, y0, x1, y1 = self.polygons.bounds
        return float(x1 - x0), float(y1 - y0)


def _flatten_rings(vertices: NDArray[np.float64], codes: NDArray[np.uint8],
                   tolerance: float) -> list[NDArray[np.float64]]:
    """The path's closed rings with its Bezier curves flattened to ``tolerance`` (path units)."""
    from matplotlib.path import Path as MplPath

    rings: list[NDArray[np.float64]] = []
    current: list[NDArray[np.float64]] = []
    index = 0
    count = len(codes)
    while index < count:
        code = codes[index]
        if code == MplPath.MOVETO:
            if len(current) >= 3:
                rings.append(np.vstack(current))
            current = [vertices[index:index + 1]]
            index += 1
        elif code == MplPath.LINETO:
            current.append(vertices[index:index + 1])
            index += 1
        elif code in (MplPath.CURVE3, MplPath.CURVE4):
            degree = 2 if code == MplPath.CURVE3 else 3
            control = np.vstack([current[-1][-1:], vertices[index:index + degree]])
            # Bound on a flattened Bezier's chord error: n^2 >= degree (degree - 1) max|second difference| / (8 tol).
            second = np.abs(np.diff(control, n=2, axis=0)).max()
            steps = max(1, min(64, math.ceil(math.sqrt(degree * (degree - 1) * second / (8 * tolerance)))))
            t = np.linspace(0.0, 1.0, steps + 1)[1:, None]
            if degree == 2:
                points = (1 - t) ** 2 * control[0] + 2 * (1 - t) * t * control[1] + t ** 2 * control[2]
            else:
                points = ((1 - t) ** 3 * control[0] + 3 * (1 - t) ** 2 * t * control[1]
                          + 3 * (1 - t) * t ** 2 * control[2] + t ** 3 * control[3])
            current.append(points)
            index += degree
        else:  # CLOSEPOLY or STOP
            if len(current) >= 1 and sum(len(part) for part in current) >= 3:
                rings.append(np.vstack(current))
            current = []
            index += 1
    if sum(len(part) for part in current) >= 3:
        rings.append(np.vstack(current))
    return rings


def _fill_nonzero(rings: list[NDArray[np.float64]]) -> MultiPolygon:
    """Rings filled by the non-zero rule (Clipper2), as shapely polygons with holes."""
    import manifold3d

    section = manifold3d.CrossSection([np.ascontiguousarray(ring) for ring in rings], manifold3d.FillRule.NonZero)
    # Clipper's output contours neither cross nor overlap: a contour inside an even number of others is an
    # outline, one inside an odd number a hole of the smallest outline around it.
    contours = [Polygon(contour) for contour in section.to_polygons() if len(contour) >= 3]
    contours = [c for c in contours if c.is_valid and c.area > 0]
    probes = [c.exterior.coords[0] for c in contours]
    inside = [[j for j, other in enumerate(contours) if j != i and other.contains(shapely.Point(probes[i]))]
              for i in range(len(contours))]
    holes: dict[int, list[Polygon]] = {i: [] for i in range(len(contours)) if len(inside[i]) % 2 == 0}
    for i, around in enumerate(inside):
        if len(around) % 2 == 1:
            owner = min((j for j in around if j in holes), key=lambda j: contours[j].area)
            holes[owner].append(contours[i])
    polygons = [Polygon(contours[i].exterior.coords, [h.exterior.coords for h in inner])
                for i, inner in holes.items()]
    return MultiPolygon([p if p.is_valid else shapely.make_valid(p) for p in polygons])


@lru_cache(maxsize=4)
def _cap_height_per_unit(font: str) -> float:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    extents = TextPath((0, 0), "H", size=1.0, prop=FontProperties(fname=str(font_file(font)))).get_extents()
    return float(extents.y1 - extents.y0)


def text_outline(text: str, size_mm: float, *, font: str = "bold") -> GlyphOutline:
    """The outline of ``text`` with capitals ``size_mm`` high, centred on its ink.

    Parameters
    ----------
    text : str
        Checked with :func:`check_text`.
    size_mm : float
        Capital height in mm.
    font : {"bold", "regular"}
        DejaVu Sans Bold or DejaVu Sans.

    Returns
    -------
    GlyphOutline
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    check_text(text)
    scale = size_mm / _cap_height_per_unit(font)
    # "$" pairs would switch matplotlib to mathtext; escaped, they are set as dollar signs.
    path = TextPath((0, 0), text.replace("$", r"\$"), size=1.0, prop=FontProperties(fname=str(font_file(font))))
    rings = _flatten_rings(np.asarray(path.vertices, dtype=np.float64) * scale, np.asarray(path.codes),
                           CURVE_TOLERANCE_MM)
    polygons = _fill_nonzero(rings)
    if polygons.is_empty:
        raise ParameterError(f"--text: {text!r} has no visible characters; give letters or digits")
    x0, y0, x1, y1 = polygons.bounds
    polygons = shapely.affinity.translate(polygons, -(x0 + x1) / 2, -(y0 + y1) / 2)
    if not isinstance(polygons, MultiPolygon):
        polygons = MultiPolygon([polygons])
    return GlyphOutline(polygons=polygons, text=text, font=FONTS[font][0], cap_height_mm=float(size_mm))


def _pieces(geometry: shapely.Geometry) -> list[Polygon]:
    return [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, Polygon) and not g.is_empty]


def _keeps_shape(piece: Polygon, radius_mm: float) -> bool:
    """Whether eroding ``piece`` by ``radius_mm`` leaves it present, in one piece, with all its holes."""
    eroded = _pieces(piece.buffer(-radius_mm, quad_segs=16))
    return len(eroded) == 1 and len(eroded[0].interiors) == len(piece.interiors)


def min_stroke_mm(polygons: MultiPolygon, *, resolution_mm: float = 0.002) -> float:
    """The thinnest stroke of ``polygons`` (mm): the widest line every piece survives eroding by half of.

    Found by bisection to ``resolution_mm``.

    >>> from shapely.geometry import box
    >>> round(min_stroke_mm(MultiPolygon([box(0, 0, 10, 0.6), box(0, 2, 1, 3)])), 2)
    0.6
    """
    pieces = _pieces(polygons)
    if not pieces:
        return 0.0
    low, high = 0.0, 2.0 * max(math.sqrt(p.area) for p in pieces)
    while high - low > resolution_mm:
        middle = (low + high) / 2
        if all(_keeps_shape(p, middle / 2) for p in pieces):
            low = middle
        else:
            high = middle
    return low


def narrowest_gap_mm(polygons: MultiPolygon, *, resolution_mm: float = 0.002) -> float:
    """The narrowest gap between strokes (mm): a counter or the space between two letters.

    The thinnest "stroke" (:func:`min_stroke_mm`) of the background -- the ink's bounding box, grown by a
    margin, minus the ink: a gap narrower than ``w`` closes (two letters' holes in it merge) or vanishes (a
    counter) when the background is eroded by ``w / 2``.

    >>> from shapely.geometry import box
    >>> round(narrowest_gap_mm(MultiPolygon([box(0, 0, 1, 5), box(1.3, 0, 3, 5)])), 2)
    0.3
    """
    if polygons.is_empty:
        return 0.0
    x0, y0, x1, y1 = polygons.bounds
    margin = max(x1 - x0, y1 - y0)
    background = shapely.box(x0 - margin, y0 - margin, x1 + margin, y1 + margin).difference(polygons)
    return min_stroke_mm(MultiPolygon(_pieces(background)), resolution_mm=resolution_mm)


def thicken(outline: GlyphOutline, by_mm: float) -> GlyphOutline | None:
    """The outline grown by ``by_mm`` on every side (strokes ``2 by_mm`` wider), or ``None`` if growing
    it merges letters or closes a counter (the text would no longer read)."""
    grown = outline.polygons.buffer(by_mm, join_style="mitre", mitre_limit=2.0)
    pieces = _pieces(grown)
    before = _pieces(outline.polygons)
    if len(pieces) != len(before) or sum(len(p.interiors) for p in pieces) != sum(len(p.interiors) for p in before):
        return None
    return GlyphOutline(polygons=MultiPolygon(pieces), text=outline.text, font=outline.font,
                        cap_height_mm=outline.cap_height_mm)
