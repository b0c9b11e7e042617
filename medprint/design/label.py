"""Labels on a part: text embossed on or engraved into a closed surface.

``label_part(mesh, LabelSettings(text="ORD-1042 R"))`` puts an order id, a
side marker or a date on a printed part:

1. The input must be closed; a mesh with holes is repaired as ``convert``
   repairs (``make_printable``) when that moves its surface no more than
   ``max_repair_move_mm``, else refused.
2. The text is set in DejaVu Sans (shipped with matplotlib;
   :mod:`.label_text`), capitals ``size_mm`` high.  Its thinnest stroke and
   narrowest gap (a counter, the space between letters) are measured on the
   glyph polygons; a stroke thinner than ``min_stroke_mm`` (a printer's line
   width) is refused, or the glyphs are grown until it is not (``thicken``)
   -- unless that merges letters or narrows a gap below the line, which
   would fill in (a narrow gap is refused too).
3. Where: at the surface point closest to ``at_lps``, or at a flat spot
   found on the surface (area-uniform surface samples; the spot whose
   disc, of the label's half diagonal, is covered by surface facing one way
   and departs least from its mean plane, also on a disc 1.5 times larger,
   so that the label keeps away from edges).  The label's normal is the
   surface's mean normal there, its up direction ``up_lps`` or else the
   patient's superior axis (LPS +z) projected onto the surface (anterior
   when the surface faces up or down), its reading direction up x normal,
   so the text reads correctly seen from outside -- never mirrored.
4. The fit: the surface is sampled under the whole footprint (rays along
   the normal, every 0.25 mm); every sample must hit the outward surface
   within the flatness tolerance of the label's plane, else the label does
   not fit there (:class:`DesignError`).  For an engraving the material
   under the letters is measured along the normal, and a depth that would
   leave less than :data:`MIN_FLOOR_MM` is refused.
5. The glyphs are extruded (manifold3d), their vertices moved along the
   normal onto the sampled surface (so the relief has the same height
   everywhere, also on a curved part), sunk :data:`SINK_MM` into it for an
   emboss (so they fuse) or rising :data:`OVERCUT_MM` above it for an
   engraving (a clean cut), and joined to or cut from the part by
   manifold3d's exact boolean: sharp letter corners, a closed manifold.

What was done is measured on the result: the volume added or removed
against the glyphs' area times the relief, and the relief itself: at points
inside the letters (clear of their walls) the distance along the normal
from the original surface to the letter tops (emboss) or floors (engrave).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DesignError, InputError, MeshError, ParameterError
from ..mesh import assess_mesh, make_printable
from ..mesh.model import Mesh
from ..segment.checks import require_number
from .label_text import (
    FONTS,
    GlyphOutline,
    check_text,
    min_stroke_mm,
    narrowest_gap_mm,
    text_outline,
    thicken,
)
from .part import Part

logger = logging.getLogger("medprint")

MODES = ("emboss", "engrave")
DEFAULT_SIZE_MM = 5.0
DEFAULT_HEIGHT_MM = 1.0
DEFAULT_DEPTH_MM = 0.6
#: Tallest relief (mm): a label, not a handle.
MAX_RELIEF_MM = 10.0
MAX_SIZE_MM = 100.0
#: How deep an embossed letter's base goes into the part, so that it fuses (mm).
SINK_MM = 0.4
#: How far an engraving cutter rises above the surface, so that the cut is clean (mm).
OVERCUT_MM = 0.5
#: A mesh with holes is closed only when that moves its surface at most this far (mm), as ``slice`` does.
DEFAULT_MAX_REPAIR_MOVE_MM = 0.5
#: Farthest ``--at`` may be from the surface (mm).
AT_TOLERANCE_MM = 5.0
#: Least material left under an engraving (mm).
MIN_FLOOR_MM = 0.5
#: Largest move allowed when collapsing the boolean's zero-area slivers (mm).
SLIVER_TOLERANCE_MM = 1e-6
#: Flat-spot search: candidate spots ranked (flattest first), and how many of them get the full fit test.
MAX_SPOTS = 200
MAX_FITS = 24
#: Spacing of the surface samples under the label (mm).
SAMPLE_MM = 0.25
#: Margin of the footprint around the ink (mm): the surface must be there too.
MARGIN_MM = 0.5
#: The relief is measured this far inside the glyph outline (mm), clear of the letter walls.
RELIEF_INSET_MM = 0.05
#: At most this many rays measure the relief.
MAX_RELIEF_SAMPLES = 4000
#: Automatic flatness tolerance: this fraction of the footprint's half diagonal, at least FLATNESS_MIN_MM.
FLATNESS_FRACTION = 0.15
FLATNESS_MIN_MM = 1.0

SUPERIOR = np.array([0.0, 0.0, 1.0])
ANTERIOR = np.array([0.0, -1.0, 0.0])
#: The up direction must be at least this far (degrees) from the normal to be projected onto the surface.
MIN_UP_ANGLE_DEG = 15.0

Point = tuple[float, float, float]


@dataclass(frozen=True)
class LabelSettings:
    """What to write on the part, and how.

    Parameters
    ----------
    text : str
        Printable ASCII and a few symbols (:data:`~.label_text.EXTRA_SYMBOLS`), at most 64 characters.
    mode : {"emboss", "engrave"}
        Raised letters or letters cut into the part.
    relief_mm : float
        Height of embossed letters (``--height``) or depth of engraved ones (``--depth``), mm.
    size_mm : float
        Capital height (mm).
    at_lps : (x, y, z), optional
        A point on or near the surface (LPS mm, within 5 mm) where the label is centred; ``None``: find a
        flat spot.
    up_lps : (x, y, z), optional
        The text's up direction (LPS), projected onto the surface; ``None``: the patient's superior axis.
    min_stroke_mm : float
        Thinnest stroke allowed (a printer's line width); 0: no check.
    stroke_source : str
        Where ``min_stroke_mm`` comes from, for messages and the report (``"prusa-mk4 line width"``).
    thicken : bool
        Grow glyphs whose strokes are thinner than ``min_stroke_mm`` instead of refusing them.
    font : {"bold", "regular"}
        DejaVu Sans Bold (default: sturdier strokes) or DejaVu Sans.
    flatness_mm : float, optional
        How far the surface under the label may depart from its plane (mm); ``None``: 15 % of the
        footprint's half diagonal, at least 1 mm.
    max_repair_move_mm : float
        A mesh with holes is closed only when that moves its surface at most this far (mm).
    """

    text: str
    mode: str = "emboss"
    relief_mm: float = DEFAULT_HEIGHT_MM
    size_mm: float = DEFAULT_SIZE_MM
    at_lps: Point | None = None
    up_lps: Point | None = None
    min_stroke_mm: float = 0.0
    stroke_source: str = "minimum stroke"
    thicken: bool = False
    font: str = "bold"
    flatness_mm: float | None = None
    max_repair_move_mm: float = DEFAULT_MAX_REPAIR_MOVE_MM

    def __post_init__(self) -> None:
        check_text(self.text)
        if self.mode not in MODES:
            raise ParameterError(f"mode: {self.mode!r} is not a label mode; choose one of {', '.join(MODES)}")
        require_number(self.relief_mm, self.relief_option, low=0, high=MAX_RELIEF_MM, low_open=True, unit="mm")
        require_number(self.size_mm, "--size", low=0, high=MAX_SIZE_MM, low_open=True, unit="mm, capital height")
        for option, point in (("--at", self.at_lps), ("--up", self.up_lps)):
            if point is not None:
                if len(point) != 3:
                    raise ParameterError(f"{option}: give three numbers X,Y,Z (LPS mm), got {len(point)}")
                for value in point:
                    require_number(value, option, low=-1e5, high=1e5, unit="LPS mm")
        if self.up_lps is not None and float(np.linalg.norm(self.up_lps)) < 1e-9:
            raise ParameterError("--up: 0,0,0 is no direction; give the text's up direction, e.g. --up 0,0,1")
        require_number(self.min_stroke_mm, "--printer", low=0, high=5, unit="mm, minimum stroke")
        if self.font not in FONTS:
            raise ParameterError(f"--font: {self.font!r} is not a label font; choose one of {', '.join(FONTS)}")
        if self.flatness_mm is not None:
            require_number(self.flatness_mm, "--flatness", low=0, high=50, low_open=True, unit="mm")
        require_number(self.max_repair_move_mm, "--max-repair-move", low=0, high=100, unit="mm")

    @property
    def relief_option(self) -> str:
        return "--height" if self.mode == "emboss" else "--depth"


@dataclass(frozen=True)
class LabelPlacement:
    """Where the label sits: its centre on the surface, its frame, and the surface under it.

    ``heights[j, i]`` is the surface's height above the label plane (mm, along ``normal``) at
    ``centre + xs[i] * right + ys[j] * up``.
    """

    centre: NDArray[np.float64]
    normal: NDArray[np.float64]
    up: NDArray[np.float64]
    right: NDArray[np.float64]
    xs: NDArray[np.float64]
    ys: NDArray[np.float64]
    heights: NDArray[np.float64]
    tolerance_mm: float
    found: bool
    floor_mm: float | None = None

    @property
    def deviation_mm(self) -> float:
        """How far the surface under the footprint departs from the label's plane (mm)."""
        return float(np.abs(self.heights).max())

    def to_plane(self, lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """LPS points -> (right, up, normal) coordinates of the label (mm)."""
        offsets = np.asarray(lps, dtype=np.float64) - self.centre
        return np.stack([offsets @ self.right, offsets @ self.up, offsets @ self.normal], axis=-1)

    def facts(self) -> dict[str, Any]:
        return {
            "centre_lps": _rounded(self.centre, 4), "normal_lps": _rounded(self.normal, 6),
            "up_lps": _rounded(self.up, 6), "right_lps": _rounded(self.right, 6),
            "found_automatically": self.found,
            "surface_deviation_from_plane_mm": round(self.deviation_mm, 3),
            "flatness_tolerance_mm": round(self.tolerance_mm, 3),
            **({"material_under_engraving_mm": round(self.floor_mm, 3)} if self.floor_mm is not None else {}),
        }


class _Misfit(Exception):
    """Why the label does not fit at one spot (turned into a DesignError by the caller)."""


class _TooDeep(_Misfit):
    """The engraving would leave too little material under the letters at one spot."""


@dataclass
class _Solid:
    """The part as a manifold3d solid in coordinates relative to ``origin`` (float64 all the way)."""

    manifold: Any
    origin: NDArray[np.float64]
    diagonal_mm: float
    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]
    samples: _SurfaceSamples | None = field(default=None)


@dataclass(frozen=True)
class _SurfaceSamples:
    """Points spread uniformly by area over the surface, each with its face's normal and an area weight."""

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    weight_mm2: float


def label_part(mesh: Mesh, settings: LabelSettings) -> Part:
    """Emboss or engrave ``settings.text`` on the closed surface ``mesh``.

    Parameters
    ----------
    mesh : Mesh
        The part, LPS mm, closed and outward-facing (a mesh with small holes is repaired first).
    settings : LabelSettings

    Returns
    -------
    Part
        kind ``"label"``: the part with the text, one body with it; ``measurements`` hold the text, font,
        size, strokes, placement, volume change and measured relief.

    Raises
    ------
    DesignError
        Strokes thinner than the printer's line, a label that does not fit on the surface where asked (or
        no flat spot for it), a depth the wall cannot hold, ``--at`` far from the surface.
    InputError, MeshError
        An empty mesh, or one whose holes cannot be closed within ``max_repair_move_mm``.
    """
    choices: list[str] = []
    mesh, input_bodies = _closed_input(mesh, settings, choices)
    outline, stroke = _printable_outline(settings, choices)
    solid = _solid(mesh)
    placement = _place(solid, outline, settings, choices)
    glyphs = _glyph_solid(outline, placement, settings, solid.origin)
    labelled = solid.manifold + glyphs if settings.mode == "emboss" else solid.manifold - glyphs
    if labelled.status().name != "NoError" or labelled.is_empty():
        raise MeshError(f"the {settings.mode} boolean failed ({labelled.status().name}); "
                        "the input mesh may self-intersect: repair it in a mesh editor")
    result = _from_manifold(labelled, solid.origin, name=mesh.name)
    quality = assess_mesh(result)
    slivers = quality.degenerate_faces
    if slivers:
        # The boolean can leave zero-area slivers where the letters meet the part; make_printable would drop
        # them and rebuild the hole (moving the surface). manifold3d collapses them with no point moving more
        # than SLIVER_TOLERANCE_MM (and merges coplanar triangles on the way).
        simplified = labelled.simplify(SLIVER_TOLERANCE_MM)
        result = _from_manifold(simplified, solid.origin, name=mesh.name)
        choices.append(f"{slivers} zero-area sliver triangle{'s' if slivers != 1 else ''} left by the boolean "
                       f"collapsed (manifold3d simplify, every point within {SLIVER_TOLERANCE_MM:g} mm; "
                       f"{labelled.num_tri()} -> {simplified.num_tri()} triangles)")
        labelled = simplified
        quality = assess_mesh(result)
    if quality.shells != input_bodies:
        verb = "joins" if quality.shells < input_bodies else "splits"
        raise DesignError(
            f"--at: the label {verb} separate bodies of the part ({input_bodies} -> {quality.shells}); move it "
            "with --at, or use a smaller --size or --height/--depth"
        )
    for choice in choices:
        logger.info("label: %s", choice)
    measurements = _measure(result, solid, labelled, outline, stroke, placement, settings)
    verb = "embossed on" if settings.mode == "emboss" else "engraved into"
    method = (f"{outline.font} glyphs {verb} the surface ({settings.relief_mm:g} mm, following it along the "
              f"label normal) with a manifold3d boolean {'union' if settings.mode == 'emboss' else 'difference'}")
    return Part(mesh=result, kind="label", method=method, measurements=measurements, choices=tuple(choices),
                bodies=input_bodies)


# --- input -----------------------------------------------------------------------------------------------------

def _closed_input(mesh: Mesh, settings: LabelSettings, choices: list[str]) -> tuple[Mesh, int]:
    if mesh.is_empty:
        raise InputError("MESH: the mesh has no triangles; give the part to label")
    repaired = make_printable(mesh)
    if repaired.deviation_mm > settings.max_repair_move_mm:
        raise InputError(
            f"MESH: the mesh is not closed; closing it moves its surface up to {repaired.deviation_mm:.3g} mm, more "
            f"than --max-repair-move {settings.max_repair_move_mm:g} mm; export the part again whole or raise "
            "--max-repair-move"
        )
    if repaired.actions:
        choices.append("the input mesh was repaired before labelling: " + "; ".join(repaired.actions)
                       + (f" (surface moved up to {repaired.deviation_mm:.3g} mm)" if repaired.deviation_mm else ""))
    return repaired.mesh, int(repaired.quality.shells)


def _printable_outline(settings: LabelSettings, choices: list[str]) -> tuple[GlyphOutline, dict[str, Any]]:
    outline = text_outline(settings.text, settings.size_mm, font=settings.font)
    stroke = min_stroke_mm(outline.polygons)
    gap = narrowest_gap_mm(outline.polygons)
    facts: dict[str, Any] = {"thinnest_stroke_mm": round(stroke, 3), "narrowest_gap_mm": round(gap, 3),
                             "minimum_stroke_mm": settings.min_stroke_mm,
                             "minimum_stroke_from": settings.stroke_source if settings.min_stroke_mm else None}
    wanted = settings.min_stroke_mm
    if wanted <= 0 or min(stroke, gap) >= wanted:
        return outline, facts
    # Strokes and gaps scale with the size: the size at which the thinnest is as wide as the line.
    needed_size = math.ceil(settings.size_mm * wanted / max(min(stroke, gap), 1e-6) * 10) / 10
    if gap < wanted:
        # Widening the strokes would only narrow the gaps further.
        raise DesignError(
            f"--size: at {settings.size_mm:g} mm the narrowest gap in the text (a counter or the space between two "
            f"letters) is {gap:.2f} mm, narrower than the {settings.stroke_source} {wanted:.2f} mm: it would fill "
            f"in; use --size {needed_size:g} or more"
        )
    if not settings.thicken:
        raise DesignError(
            f"--size: at {settings.size_mm:g} mm the thinnest stroke of the text is {stroke:.2f} mm, thinner than "
            f"the {settings.stroke_source} {wanted:.2f} mm: it would not print; use --size {needed_size:g} or more, "
            "or --thicken to widen the strokes"
        )
    by_mm = (wanted - stroke) / 2 + 0.005
    grown = thicken(outline, by_mm)
    grown_stroke = min_stroke_mm(grown.polygons) if grown is not None else 0.0
    grown_gap = narrowest_gap_mm(grown.polygons) if grown is not None else 0.0
    if grown is None or grown_stroke < wanted or grown_gap < wanted:
        raise DesignError(
            f"--thicken: widening the {stroke:.2f} mm strokes to the {settings.stroke_source} {wanted:.2f} mm merges "
            f"letters or narrows their counters and gaps below it at --size {settings.size_mm:g} mm; use --size "
            f"{needed_size:g} or more"
        )
    choices.append(f"label strokes thickened by {by_mm:.3f} mm a side (thinnest {stroke:.2f} -> {grown_stroke:.2f} mm) "
                   f"to print with the {settings.stroke_source} {wanted:.2f} mm")
    facts.update(thinnest_stroke_mm=round(grown_stroke, 3), thinnest_stroke_before_thickening_mm=round(stroke, 3),
                 narrowest_gap_mm=round(grown_gap, 3), thickened_by_mm=round(by_mm, 4))
    return grown, facts


# --- manifold3d at the edge ------------------------------------------------------------------------------------

def _solid(mesh: Mesh) -> _Solid:
    import manifold3d

    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    origin = (low + high) / 2
    manifold = manifold3d.Manifold(manifold3d.Mesh64(
        vert_properties=np.ascontiguousarray(mesh.vertices - origin, dtype=np.float64),
        tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64),
    ))
    if manifold.status().name != "NoError" or manifold.is_empty():
        raise MeshError(f"MESH: manifold3d cannot use the mesh as a solid ({manifold.status().name}); "
                        "it must be closed and consistently wound: repair it in a mesh editor")
    out = manifold.to_mesh64()
    return _Solid(manifold=manifold, origin=origin, diagonal_mm=float(np.linalg.norm(high - low)),
                  vertices=np.array(out.vert_properties, dtype=np.float64)[:, :3],
                  faces=np.array(out.tri_verts, dtype=np.int64).reshape(-1, 3))


def _from_manifold(manifold: Any, origin: NDArray[np.float64], *, name: str) -> Mesh:
    out = manifold.to_mesh64()
    vertices = np.asarray(out.vert_properties, dtype=np.float64)[:, :3] + origin
    faces = np.asarray(out.tri_verts, dtype=np.int64).reshape(-1, 3)
    return Mesh(vertices=vertices, faces=faces, name=name)


# --- where -----------------------------------------------------------------------------------------------------

def _footprint(outline: GlyphOutline) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = outline.polygons.bounds
    return x0 - MARGIN_MM, y0 - MARGIN_MM, x1 + MARGIN_MM, y1 + MARGIN_MM


def _half_diagonal(outline: GlyphOutline) -> float:
    x0, y0, x1, y1 = _footprint(outline)
    return 0.5 * math.hypot(x1 - x0, y1 - y0)


def _place(solid: _Solid, outline: GlyphOutline, settings: LabelSettings, choices: list[str]) -> LabelPlacement:
    half_diagonal = _half_diagonal(outline)
    tolerance = settings.flatness_mm if settings.flatness_mm is not None else max(
        FLATNESS_MIN_MM, FLATNESS_FRACTION * half_diagonal)
    width, height = outline.size_mm
    size_text = f"{width:.1f} x {height:.1f} mm"
    if settings.at_lps is not None:
        centre, normal = _spot_at(solid, np.asarray(settings.at_lps, dtype=np.float64), settings, half_diagonal)
        up, right = _frame(normal, settings, choices)
        try:
            return _fit(solid, outline, settings, centre, normal, up, right, tolerance, found=False)
        except _TooDeep as why:
            raise DesignError(f"--depth: at {_point_text(settings.at_lps)}, {why}") from None
        except _Misfit as why:
            raise DesignError(
                f"--at: the {size_text} label does not fit at {_point_text(settings.at_lps)}: {why}; choose a flatter "
                f"spot with --at, a smaller --size or shorter text (or allow more with --flatness)"
            ) from None
    reasons: list[str] = []
    fits_tried = 0
    tried: list[NDArray[np.float64]] = []
    for spot in _flat_spots(solid, half_diagonal, keep=MAX_SPOTS):
        if fits_tried == MAX_FITS:
            break
        if spot is None or any(np.linalg.norm(spot[0] - seen) < half_diagonal / 2 for seen in tried):
            continue  # off the surface, or settled where another candidate already was
        centre, normal = spot
        tried.append(centre)
        if settings.mode == "engrave":
            # One ray first: the full fit only where the wall at the centre can hold the depth.
            floor = _material_under(solid, (centre - solid.origin)[None, :], normal)
            if floor < settings.relief_mm + MIN_FLOOR_MM:
                reasons.append(f"--depth {settings.relief_mm:g} mm is too deep: the part is {floor:.2f} mm thick "
                               f"there (at least {MIN_FLOOR_MM:g} mm must stay under the letters)")
                continue
        fits_tried += 1
        frame_choices: list[str] = []
        try:
            up, right = _frame(normal, settings, frame_choices)
        except DesignError as why:  # --up along this spot's normal: try the next spot
            reasons.append(str(why).split(": ", 1)[-1])
            continue
        try:
            placement = _fit(solid, outline, settings, centre, normal, up, right, tolerance, found=True)
        except _Misfit as why:  # a misfit or too thin a wall here: try the next spot
            reasons.append(str(why))
            continue
        choices.extend(frame_choices)
        choices.append(f"label placed at the flattest spot found, centre {_point_text(centre)} (LPS mm), facing "
                       f"{_point_text(normal, 3)}; the surface under it departs {placement.deviation_mm:.2f} mm from "
                       "its plane (give --at to choose)")
        return placement
    detail = f" (the best spot: {reasons[0]})" if reasons else ""
    if reasons and all(reason.startswith("--depth") for reason in reasons):
        raise DesignError(f"--depth: no flat spot is thick enough for the engraving{detail}")
    raise DesignError(
        f"--size: no spot on the part is flat enough for the {size_text} label{detail}; use a smaller --size or "
        "shorter text, or choose the spot with --at (and allow more with --flatness)"
    )


def _point_text(point: Sequence[float] | NDArray[np.float64], digits: int = 1) -> str:
    return ",".join(f"{float(v):.{digits}f}" for v in point)


def _rounded(vector: NDArray[np.float64], digits: int) -> list[float]:
    return [round(float(v), digits) for v in vector]


def _surface_samples(mesh_vertices: NDArray[np.float64], faces: NDArray[np.int64],
                     spacing_mm: float) -> _SurfaceSamples:
    """About one sample per ``spacing_mm`` squared of surface (at most 300 000), seeded: the same every run."""
    corners = mesh_vertices[faces]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    twice_area = np.linalg.norm(cross, axis=1)
    good = twice_area > 0
    corners, cross, twice_area = corners[good], cross[good], twice_area[good]
    total = float(twice_area.sum() / 2)
    count = int(np.clip(total / spacing_mm ** 2, 2000, 300_000))
    rng = np.random.default_rng(20261201)
    face = np.minimum(np.searchsorted(np.cumsum(twice_area) / twice_area.sum(), rng.random(count)),
                      len(twice_area) - 1)
    a, b = rng.random((2, count))
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    chosen = corners[face]
    points = chosen[:, 0] + a[:, None] * (chosen[:, 1] - chosen[:, 0]) + b[:, None] * (chosen[:, 2] - chosen[:, 0])
    normals = cross[face] / twice_area[face, None]
    return _SurfaceSamples(points=points, normals=normals, weight_mm2=total / count)


def _samples(solid: _Solid, half_diagonal: float) -> _SurfaceSamples:
    if solid.samples is None:
        # About 200 samples on the label's disc, enough for its mean normal and plane.
        spacing = max(0.05, half_diagonal * math.sqrt(math.pi / 200))
        solid.samples = _surface_samples(solid.vertices, solid.faces, spacing)
    return solid.samples


def _spot_at(solid: _Solid, at_lps: NDArray[np.float64], settings: LabelSettings,
             half_diagonal: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The surface point closest to ``--at`` and the surface's mean normal around it."""
    import igl

    vertices, faces = solid.vertices, solid.faces
    local = (at_lps - solid.origin)[None, :]
    squared, face, closest = igl.point_mesh_squared_distance(local, vertices, faces)
    distance = float(math.sqrt(float(np.asarray(squared).ravel()[0])))
    closest = np.asarray(closest, dtype=np.float64).reshape(3)
    if distance > AT_TOLERANCE_MM:
        raise DesignError(
            f"--at: {_point_text(settings.at_lps or (0, 0, 0))} is {distance:.1f} mm from the part's surface (its "
            f"closest point is {_point_text(closest + solid.origin)}); give a point on the surface, within "
            f"{AT_TOLERANCE_MM:g} mm of it"
        )
    corner = vertices[faces[int(np.asarray(face).ravel()[0])]]
    face_normal = np.cross(corner[1] - corner[0], corner[2] - corner[0])
    face_normal /= max(float(np.linalg.norm(face_normal)), 1e-300)
    samples = _samples(solid, half_diagonal)
    # The mean normal over the middle of the footprint: on a curved part, the normal at the point itself.
    radius = max(half_diagonal / 2, 2.0)
    near = np.linalg.norm(samples.points - closest, axis=1) <= radius
    normal = face_normal
    for _ in range(2):  # the face's own normal is noisy on a marching-cubes surface: average, then again
        facing = near & (samples.normals @ normal > 0.3)
        if not facing.any():
            break
        mean = samples.normals[facing].sum(axis=0)
        normal = mean / float(np.linalg.norm(mean))
    return closest + solid.origin, normal


def _flat_spots(solid: _Solid, half_diagonal: float,
                keep: int = 12) -> Iterator[tuple[NDArray[np.float64], NDArray[np.float64]] | None]:
    """Candidate spots (centre on the surface, mean normal), flattest first, at least a radius apart
    (``None`` for one that could not be put on the surface)."""
    from scipy.spatial import cKDTree

    samples = _samples(solid, half_diagonal)
    points, normals = samples.points, samples.normals
    radius, wide = half_diagonal, 1.5 * half_diagonal
    # One candidate per occupied cell; a surface crosses about area / cell^2 cells: at most ~800 candidates.
    cell = max(radius / 1.5, math.sqrt(samples.weight_mm2 * len(points) / 800))
    keys = np.floor((points - points.min(axis=0)) / cell).astype(np.int64)
    span = keys.max(axis=0) + 1
    _, candidates = np.unique((keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2], return_index=True)
    count = len(candidates)
    pairs = cKDTree(points[candidates]).sparse_distance_matrix(cKDTree(points), wide, output_type="ndarray")
    by_owner = np.argsort(pairs["i"], kind="stable")
    owner = pairs["i"][by_owner].astype(np.int64)
    distance = pairs["v"][by_owner]
    member = pairs["j"][by_owner].astype(np.int64)
    member_points, member_normals = points[member], normals[member]
    del pairs, by_owner, member
    # Every candidate is its own neighbour: no owner's run of pairs is empty.
    starts = np.searchsorted(owner, np.arange(count))

    def summed(values: NDArray[np.float64], select: NDArray[np.bool_]) -> NDArray[np.float64]:
        return np.stack([np.bincount(owner, weights=np.where(select, values[:, axis], 0.0), minlength=count)
                         for axis in range(values.shape[1])], axis=1)

    def unit(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
        lengths: NDArray[np.float64] = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
        return vectors / lengths

    # A first mean normal from the inner disc (samples facing the candidate's own face), then the facing
    # samples of each disc: the far wall of a thin part (facing the other way) does not count.
    own = np.einsum("ij,ij->i", member_normals, normals[candidates][owner]) > 0
    mean_normal = unit(summed(member_normals, own & (distance <= radius / 2)))
    facing = np.einsum("ij,ij->i", member_normals, mean_normal[owner]) > 0.3
    stats = {}
    for name, reach in (("disc", radius), ("wide", wide)):
        select = facing & (distance <= reach)
        total = summed(member_normals, select)
        normal = unit(total)
        coverage = np.linalg.norm(total, axis=1) * samples.weight_mm2 / (math.pi * reach ** 2)
        counts = np.bincount(owner, weights=select.astype(np.float64), minlength=count)
        centre = summed(member_points, select) / np.maximum(counts, 1)[:, None]
        height = np.abs(np.einsum("ij,ij->i", member_points - centre[owner], normal[owner]))
        deviation = np.maximum.reduceat(np.where(select, height, 0.0), starts)
        stats[name] = (normal, coverage, centre, deviation)
    normal, coverage, centre, deviation = stats["disc"]
    _, wide_coverage, _, wide_deviation = stats["wide"]
    # Edges: the wide disc only partly covered (a curved surface alone leaves it above ~0.95 covered).
    scores = deviation + 0.5 * wide_deviation + 2 * radius * np.clip(0.9 - wide_coverage, 0.0, 1.0)
    order = [int(i) for i in np.argsort(scores, kind="stable") if coverage[i] >= 0.8]
    chosen: list[int] = []
    for index in order:
        if all(np.linalg.norm(centre[index] - centre[other]) >= radius for other in chosen):
            chosen.append(index)
        if len(chosen) == keep:
            break
    tree = cKDTree(points)
    for index in chosen:
        # Near an edge (the wide disc partly uncovered) the spot moves to the middle of its patch.
        yield _settled(solid, tree, samples, centre[index], normal[index], radius, wide,
                       steps=3 if wide_coverage[index] < 0.9 else 0)


def _settled(solid: _Solid, tree: Any, samples: _SurfaceSamples, centre: NDArray[np.float64],
             normal: NDArray[np.float64], radius: float, wide: float,
             steps: int) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """A candidate moved to the middle of its flat patch, then onto the surface: (centre LPS, normal).

    ``steps`` mean-shift steps: the centre goes to the mean of the samples facing its way within ``wide`` (so a
    spot near an edge moves away from it), the normal is their mean over ``radius``; a step that makes the
    disc less flat (on a curved part) is not taken.
    """

    def disc(point: NDArray[np.float64],
             direction: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64], float]:
        near = np.asarray(tree.query_ball_point(point, radius), dtype=np.int64)
        near = near[samples.normals[near] @ direction > 0.3]
        if len(near) == 0:
            return near, direction, math.inf
        mean = samples.normals[near].sum(axis=0)
        direction = mean / max(float(np.linalg.norm(mean)), 1e-300)
        middle = samples.points[near].mean(axis=0)
        return near, direction, float(np.abs((samples.points[near] - middle) @ direction).max())

    _, normal, flatness = disc(centre, normal)
    for _ in range(steps):
        near = np.asarray(tree.query_ball_point(centre, wide), dtype=np.int64)
        facing = near[samples.normals[near] @ normal > 0.3]
        if len(facing) == 0:
            break
        moved = samples.points[facing].mean(axis=0)
        _, moved_normal, moved_flatness = disc(moved, normal)
        if moved_flatness > flatness + 0.05:
            break
        centre, normal, flatness = moved, moved_normal, moved_flatness
    # The patch's mean point lies off a curved surface: put it on the surface along the normal.
    hits = [hit for hit in solid.manifold.ray_cast(centre + radius * normal, centre - radius * normal)
            if float(np.dot(hit.normal, normal)) > 0]
    if not hits:
        return None
    nearest = min(hits, key=lambda hit: abs(hit.distance - 0.5))
    return np.asarray(nearest.position, dtype=np.float64) + solid.origin, normal


def _frame(normal: NDArray[np.float64], settings: LabelSettings,
           choices: list[str]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Up and right directions of the text on the plane of ``normal``: right = up x normal (reads from outside)."""
    limit = math.sin(math.radians(MIN_UP_ANGLE_DEG))

    def projected(direction: NDArray[np.float64]) -> NDArray[np.float64] | None:
        direction = direction / float(np.linalg.norm(direction))
        onto = direction - float(direction @ normal) * normal
        length = float(np.linalg.norm(onto))
        return onto / length if length >= limit else None

    if settings.up_lps is not None:
        up = projected(np.asarray(settings.up_lps, dtype=np.float64))
        if up is None:
            raise DesignError(
                f"--up: {_point_text(settings.up_lps)} is within {MIN_UP_ANGLE_DEG:g} degrees of the surface normal "
                f"{_point_text(normal, 3)} at the label; give an up direction along the surface"
            )
    else:
        up = projected(SUPERIOR)
        if up is None:
            up = projected(ANTERIOR)
            assert up is not None  # superior and anterior cannot both be along one normal
            choices.append("the surface at the label faces up or down, so the text's up is the patient's anterior "
                           "(give --up to choose)")
        else:
            choices.append("the text's up is the patient's superior direction projected onto the surface "
                           "(give --up to choose)")
    right = np.cross(up, normal)
    return up, right / float(np.linalg.norm(right))


def _fit(solid: _Solid, outline: GlyphOutline, settings: LabelSettings, centre: NDArray[np.float64],
         normal: NDArray[np.float64], up: NDArray[np.float64], right: NDArray[np.float64], tolerance: float, *,
         found: bool) -> LabelPlacement:
    """Sample the surface under the footprint; raise :class:`_Misfit` when the label cannot lie there."""
    x0, y0, x1, y1 = _footprint(outline)
    xs = np.linspace(x0, x1, max(2, math.ceil((x1 - x0) / SAMPLE_MM) + 1))
    ys = np.linspace(y0, y1, max(2, math.ceil((y1 - y0) / SAMPLE_MM) + 1))
    grid_x, grid_y = np.meshgrid(xs, ys)
    local_centre = centre - solid.origin
    reach = tolerance + settings.relief_mm + 1.0
    starts = local_centre + grid_x.reshape(-1, 1) * right + grid_y.reshape(-1, 1) * up + reach * normal
    ends = starts - 2 * reach * normal
    heights = np.full(len(starts), np.nan)
    hit_points = np.zeros_like(starts)
    cast = solid.manifold.ray_cast
    for index in range(len(starts)):
        best = math.inf
        for hit in cast(starts[index], ends[index]):
            # Outward surface met going in (its normal towards the label side), nearest the label plane.
            if float(np.dot(hit.normal, normal)) > 0:
                height = reach * (1 - 2 * hit.distance)
                if abs(height) < abs(best):
                    best = height
        if math.isfinite(best):
            heights[index] = best
            hit_points[index] = starts[index] - (reach - best) * normal
    missing = ~np.isfinite(heights)
    worst = float(np.abs(heights[~missing]).max()) if not missing.all() else math.inf
    if math.isfinite(worst) and worst > tolerance:
        raise _Misfit(f"the surface under it departs {worst:.2f} mm from its plane, more than the {tolerance:.2f} mm "
                      "allowed")
    if missing.any():
        share = f"{100 * missing.mean():.0f} %" if missing.mean() >= 0.01 else "part"
        raise _Misfit(f"{share} of it would hang over no surface within {reach:.1f} mm of its plane (past an "
                      "edge, over a hole or round a curve)")
    floor = None
    if settings.mode == "engrave":
        import shapely

        inside = shapely.contains_xy(outline.polygons, grid_x.ravel(), grid_y.ravel())
        floor = _material_under(solid, hit_points[inside], normal)
        if floor < settings.relief_mm + MIN_FLOOR_MM:
            deepest = math.floor(max(0.0, floor - MIN_FLOOR_MM) * 10) / 10
            raise _TooDeep(
                f"--depth {settings.relief_mm:g} mm is too deep: the part is {floor:.2f} mm thick under the label "
                f"(at least {MIN_FLOOR_MM:g} mm must stay under the letters); use --depth {deepest:.1f} or less, "
                "or emboss with --height"
            )
    return LabelPlacement(centre=centre, normal=normal, up=up, right=right, xs=xs, ys=ys,
                          heights=heights.reshape(len(ys), len(xs)), tolerance_mm=tolerance, found=found,
                          floor_mm=floor)


def _material_under(solid: _Solid, local_points: NDArray[np.float64], normal: NDArray[np.float64]) -> float:
    """Thinnest material under surface points, along ``-normal`` (mm)."""
    length = solid.diagonal_mm + 1.0
    thinnest = math.inf
    cast = solid.manifold.ray_cast
    for point in local_points:
        start = point - 1e-4 * normal
        for hit in cast(start, start - length * normal):
            if float(np.dot(hit.normal, normal)) < 0:  # leaving the material
                thinnest = min(thinnest, hit.distance * length + 1e-4)
                break
    return thinnest


# --- the letters -----------------------------------------------------------------------------------------------

def _glyph_solid(outline: GlyphOutline, placement: LabelPlacement, settings: LabelSettings,
                 origin: NDArray[np.float64]) -> Any:
    """The letters as a manifold3d solid standing on (emboss) or cut into (engrave) the sampled surface."""
    import manifold3d
    from scipy.interpolate import RegularGridInterpolator

    contours = []
    for polygon in outline.polygons.geoms:
        contours.append(np.asarray(polygon.exterior.coords, dtype=np.float64)[:-1])
        contours.extend(np.asarray(ring.coords, dtype=np.float64)[:-1] for ring in polygon.interiors)
    section = manifold3d.CrossSection(contours, manifold3d.FillRule.EvenOdd)
    bottom, top = (-SINK_MM, settings.relief_mm) if settings.mode == "emboss" else (-settings.relief_mm, OVERCUT_MM)
    letters = manifold3d.Manifold.extrude(section, top - bottom).translate((0.0, 0.0, bottom))
    letters = letters.refine_to_length(SAMPLE_MM)
    surface = RegularGridInterpolator((placement.ys, placement.xs), placement.heights, method="linear",
                                      bounds_error=False, fill_value=None)
    local_centre = placement.centre - origin
    frame = np.stack([placement.right, placement.up, placement.normal])

    def onto_surface(points: NDArray[np.float64]) -> NDArray[np.float64]:
        points = np.asarray(points, dtype=np.float64)
        lifted = points.copy()
        lifted[:, 2] += surface(np.stack([points[:, 1], points[:, 0]], axis=1))
        return np.ascontiguousarray(local_centre + lifted @ frame)

    placed = letters.warp_batch(onto_surface)
    if placed.status().name != "NoError" or placed.is_empty():
        raise MeshError(f"the label's letters could not be placed on the surface ({placed.status().name})")
    return placed


# --- what was made ---------------------------------------------------------------------------------------------

def _measure(after: Mesh, solid: _Solid, labelled: Any, outline: GlyphOutline,
             stroke: dict[str, Any], placement: LabelPlacement, settings: LabelSettings) -> dict[str, Any]:
    relief = _relief_mm(labelled, solid, placement, outline, settings)
    volume_before = float(solid.manifold.volume())
    volume_after = float(labelled.volume())
    change = volume_after - volume_before
    expected = outline.area_mm2 * settings.relief_mm * (1 if settings.mode == "emboss" else -1)
    width, height = outline.size_mm
    return {
        "text": settings.text,
        "font": outline.font,
        "mode": settings.mode,
        "character_height_mm": settings.size_mm,
        "footprint_mm": [round(width, 2), round(height, 2)],
        "glyph_area_mm2": round(outline.area_mm2, 3),
        **stroke,
        "relief_asked_mm": settings.relief_mm,
        "relief_measured_mm": round(float(np.median(relief)), 4) if relief.size else 0.0,
        "relief_min_mm": round(float(relief.min()), 4) if relief.size else 0.0,
        "relief_max_mm": round(float(relief.max()), 4) if relief.size else 0.0,
        "relief_samples": int(relief.size),
        "relief_from_volume_mm": round(abs(change) / outline.area_mm2, 4) if outline.area_mm2 else 0.0,
        "volume_before_mm3": round(volume_before, 3),
        "volume_after_mm3": round(volume_after, 3),
        "volume_change_mm3": round(change, 3),
        "volume_change_expected_mm3": round(expected, 3),
        "volume_change_ratio": round(change / expected, 4) if expected else None,
        "placement": placement.facts(),
    }


def _relief_mm(labelled: Any, solid: _Solid, placement: LabelPlacement, outline: GlyphOutline,
               settings: LabelSettings) -> NDArray[np.float64]:
    """The relief of the letters' tops (emboss) or floors (engrave), mm, measured on the result alone.

    At the footprint's sample points inside the glyphs shrunk by :data:`RELIEF_INSET_MM` (clear of the letter
    walls, which stand along the normal on the glyph outline), and at one point inside every glyph piece, a ray
    along the label normal finds the original surface (the outward surface nearest the label plane, as the fit
    does) and the result's surface first met from outside; the relief is their distance along the normal.
    The walls' vertices (which made a median of vertex heights read low) are never counted.
    """
    import shapely

    inner = outline.polygons.buffer(-RELIEF_INSET_MM)
    grid_x, grid_y = (axis.ravel() for axis in np.meshgrid(placement.xs, placement.ys))
    inside = shapely.contains_xy(inner, grid_x, grid_y)
    points = np.stack([grid_x[inside], grid_y[inside]], axis=1)
    if len(points) > MAX_RELIEF_SAMPLES:
        points = points[np.linspace(0, len(points) - 1, MAX_RELIEF_SAMPLES).round().astype(np.int64)]
    pieces = [piece for piece in shapely.get_parts(inner) if not piece.is_empty]
    if pieces:
        points = np.concatenate([points, [piece.representative_point().coords[0] for piece in pieces]])
    normal = placement.normal
    reach = placement.tolerance_mm + settings.relief_mm + OVERCUT_MM + 1.0
    starts = (placement.centre - solid.origin + points[:, :1] * placement.right + points[:, 1:2] * placement.up
              + reach * normal)
    sign = 1.0 if settings.mode == "emboss" else -1.0
    cast_before, cast_after = solid.manifold.ray_cast, labelled.ray_cast
    relief = []
    for start in starts:
        end = start - 2 * reach * normal
        before = [reach * (1 - 2 * hit.distance) for hit in cast_before(start, end)
                  if float(np.dot(hit.normal, normal)) > 0]
        after = [hit.distance for hit in cast_after(start, end)]
        if before and after:
            original = min(before, key=abs)
            relief.append(sign * (reach * (1 - 2 * min(after)) - original))
    return np.asarray(relief, dtype=np.float64)
