"""Hollow vessel and valve models: a wall of given thickness around (or inside) a lumen, open at its ends.

>>> from medprint.design.hollow import HollowSettings, design_hollow

The wall is a shell of the lumen's signed distance field (:mod:`.fields`): ``max(d - wall, -d)`` outside the
lumen (the lumen keeps its size: what a surgeon plans a stent or a valve against), ``max(d, -d - wall)``
inside it (the outside keeps its size).  The distance is exact near the lumen's surface and the wall's other
face (libigl point-to-triangle), so the wall is the thickness asked to a few hundredths of a millimetre on
any voxel size, not the voxel-snapped wall of a dilation.

Each end is opened by a plane square to the local centreline (:mod:`.hollow_centreline`): the solid is split
along the plane's section of the vessel, and the piece beyond it -- the end cap, and the wall wrapped around
it -- is removed (the part kept is the largest piece).  Ends are found where the segmentation stops: at the
scan's border or at a flat cut face of the mask ("auto"), and at points the user gives on the centreline.
Drain holes for resin printing go at the lowest point of every pocket that would hold liquid resin in the
print orientation given (a depression-filling of the air around and inside the part, seen from "up").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import Any

import cc3d
import edt
import igl
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import DesignError, InputError, MeshError, ParameterError
from ..geometry import Geometry
from ..mesh import assess_mesh, make_printable, split_bodies
from ..mesh.model import Mesh
from ..mesh.smooth import smooth_surface
from ..mesh.surface import extract_surface
from ..segment.checks import require_number
from ..segment.voxels import EDT_THREADS
from ..volume import Mask
from .fields import (
    DistanceField,
    Grid,
    field_surface,
    mesh_distance,
    voxelise,
    working_grid,
)
from .hollow_centreline import lumen_centreline
from .hollow_drains import drill_drains
from .hollow_ends import (
    Opening,
    auto_openings,
    describe_opening,
    open_ends,
    plane_values,
    user_cuts,
)
from .part import Part

log = logging.getLogger("medprint")

Point = tuple[float, float, float]

#: Thickest wall accepted, mm (a vessel model's wall is a few mm; beyond this it is a block, not a model).
MAX_WALL_MM = 20.0
#: Drain holes: the smallest diameter resin drains through (viscous resin bridges smaller holes), and the largest.
MIN_DRAIN_MM = 2.0
MAX_DRAIN_MM = 20.0
#: Working grid spacings accepted, mm.
MIN_RESOLUTION_MM = 0.1
MAX_RESOLUTION_MM = 2.0
#: Most voxels of the grid a surface's centreline is found on.
CENTRELINE_VOXELS = 1_500_000
#: Vertices of each face of the wall measured for the report.
WALL_SAMPLES = 20000


@dataclass(frozen=True)
class HollowSettings:
    """How to hollow a lumen into a printable vessel model.

    Parameters
    ----------
    wall_mm : float
        Wall thickness, mm (> 0, at least two working-grid steps, at most :data:`MAX_WALL_MM`).
    side : {'outside', 'inside'}
        ``'outside'``: the wall is added around the lumen, which keeps its size; ``'inside'``: the wall is
        taken from the lumen, whose outer surface keeps its size.
    open_ends : {'auto', 'none'}
        ``'auto'``: open the vessel where its segmentation stops (the scan's border, a flat cut face of the
        mask); ``'none'``: only at ``cuts_lps``.
    cuts_lps : tuple of (x, y, z)
        Points on the vessel (LPS mm) to cut it at, square to the local centreline; the smaller side goes.
    drain_mm : float, optional
        Diameter of drain holes for resin printing (>= :data:`MIN_DRAIN_MM`); none without it.
    up : (x, y, z), optional
        Print orientation: the direction (LPS) that points up on the printer; drains go at the lowest points
        of the pockets that hold resin.  Default with drains: superior (+z), said in the report.
    resolution_mm : float
        Working grid spacing, mm.
    smooth_iterations : int
        Smoothing of the lumen's surface before the wall is built (as ``convert --smooth``, each point moving
        at most half a voxel); 0 keeps the voxel staircase.
    """

    wall_mm: float = 1.5
    side: str = "outside"
    open_ends: str = "auto"
    cuts_lps: tuple[Point, ...] = ()
    drain_mm: float | None = None
    up: Point | None = None
    resolution_mm: float = 0.5
    smooth_iterations: int = 20

    def __post_init__(self) -> None:
        require_number(self.wall_mm, "--wall", low=0, low_open=True, high=MAX_WALL_MM, unit="mm")
        require_number(self.resolution_mm, "--resolution", low=MIN_RESOLUTION_MM, high=MAX_RESOLUTION_MM, unit="mm")
        if self.wall_mm < 2 * self.resolution_mm:
            raise ParameterError(
                f"--wall: {self.wall_mm:g} mm is less than two working-grid steps ({self.resolution_mm:g} mm): the "
                f"wall could not be resolved; use --resolution {math.floor(self.wall_mm / 2 * 100) / 100:g} or finer"
            )
        if self.side not in ("outside", "inside"):
            raise ParameterError(f"--side: {self.side!r} is not one of outside, inside")
        if self.open_ends not in ("auto", "none"):
            raise ParameterError(f"--ends: {self.open_ends!r} is not one of auto, none")
        for point in self.cuts_lps:
            if len(point) != 3:
                raise ParameterError(f"--cut: {point!r} is not a point X,Y,Z")
            for value in point:
                require_number(value, "--cut", unit="LPS mm")
        if self.drain_mm is not None:
            require_number(self.drain_mm, "--drain", low=MIN_DRAIN_MM, high=MAX_DRAIN_MM, unit="mm",
                           why="resin does not drain through smaller holes")
        if self.up is not None:
            if len(self.up) != 3:
                raise ParameterError(f"--up: {self.up!r} is not a direction X,Y,Z")
            for value in self.up:
                require_number(value, "--up")
            if float(np.linalg.norm(self.up)) < 1e-6:
                raise ParameterError("--up: the direction 0,0,0 has no length; give e.g. 0,0,1 (superior is up)")
            if self.drain_mm is None:
                raise ParameterError("--up: the print orientation is used for drain holes; add --drain DIAMETER")
        if not 0 <= self.smooth_iterations <= 500:
            raise ParameterError(f"--smooth: {self.smooth_iterations!r} must be 0..500")


def design_hollow(lumen: Mask | Mesh, settings: HollowSettings) -> Part:
    """A hollow model of a vessel (or a valve's root) from its lumen mask or closed lumen surface.

    Parameters
    ----------
    lumen : Mask or Mesh
        The blood-filled lumen: a mask on any (anisotropic, oblique) grid, or a closed surface (a valve root
        or vessel STL, LPS mm), whose flat cut ends are opened as a mask's are.
    settings : HollowSettings

    Returns
    -------
    Part
        ``kind='hollow'``; ``measurements`` holds the wall asked and measured, the openings (where, which
        way, their inner diameter) and the drain holes.

    Raises
    ------
    InputError
        The mask is empty or touches every border of its grid (the background, not a vessel); the surface is
        not closed and cannot be repaired.
    DesignError
        A wall larger than the vessel, a cut off the vessel or one that does not split it, no opening
        possible.
    """
    choices: list[str] = []
    if isinstance(lumen, Mesh):
        surface = _closed_lumen_surface(lumen, choices)
        cropped = _voxelise_surface(surface, settings.resolution_mm)
        touches = np.zeros(6, dtype=bool)
    else:
        cropped, touches = _prepare_mask(lumen, choices)
        surface = extract_surface(cropped)
        if settings.smooth_iterations > 0:
            # The true surface lies within half a voxel of the staircase along each axis: on an anisotropic grid
            # the smoothing may move it up to half the coarsest spacing (half the finest leaves the slices' steps).
            surface, _ = smooth_surface(surface, iterations=settings.smooth_iterations,
                                        max_deviation_mm=0.5 * max(cropped.geometry.spacing),
                                        sampling_grid=cropped.geometry)
    inside_mm = edt.edt(cropped.array, anisotropy=tuple(reversed(cropped.geometry.spacing)),
                        parallel=EDT_THREADS)
    largest_radius = float(inside_mm.max())
    _check_wall(settings, largest_radius)
    centreline = lumen_centreline(cropped, inside_mm)
    closed: list[tuple[NDArray[np.float64], float, str]] = []
    openings = auto_openings(cropped, touches, centreline, surface, choices, closed) \
        if settings.open_ends == "auto" else []
    if settings.side == "inside" and openings:
        # The end's cap is a face of the lumen too: an inside wall lines it.  The plane goes a wall further in,
        # so the cap's lining goes with the cap and the channel is open at the full section left.
        for opening in openings:
            opening.point = opening.point - settings.wall_mm * opening.outward
        choices.append(f"inside wall: each end found is opened {settings.wall_mm:g} mm further in than the "
                       "segmentation's end face, so the wall lining the end's cap goes with it")
    openings += user_cuts(settings.cuts_lps, cropped, centreline, surface)

    wall = settings.wall_mm
    h = settings.resolution_mm
    low, high = surface.bounds_mm()
    grid = working_grid(low, high, h, margin_mm=(wall if settings.side == "outside" else 0.0) + 3 * h)
    levels = (0.0, wall) if settings.side == "outside" else (0.0, -wall)
    distance = mesh_distance(surface, grid, exact_within_mm=levels)
    d = distance.values
    if settings.side == "outside":
        values = np.maximum(d - np.float32(wall), -d)
        solid = d < wall
        values, kept = open_ends(values, solid, grid, openings)
    else:
        # The solid (the lumen) does not depend on the wall, and opening only takes maxima: the ends are cut
        # off the lumen's own field once, and the wall taken from what is left (the same as cutting the shell).
        solid = d < 0
        opened, kept = open_ends(d, solid, grid, openings)
        _check_inside_channel(opened, d, kept, grid, [o for o in openings if "skipped" not in o.facts], settings)
        values = np.maximum(opened, -d - np.float32(wall))
        del opened
    for opening in [o for o in openings if "skipped" in o.facts]:
        choices.append(f"not opened at {','.join(f'{v:.1f}' for v in opening.point)} ({opening.kind}): "
                       f"{opening.facts['skipped']}")
    openings = [o for o in openings if "skipped" not in o.facts]
    if not openings:
        choices.append("no end opened: the lumen ends nowhere at the scan's border or at a flat cut face, and no "
                       "--cut was given; the model is closed")
    del solid
    cut_points = [o.point for o in openings if o.kind == "cut"]
    for point, reach, note in closed:  # said only of ends that no --cut near them took away
        index = np.round(grid.geometry.lps_to_index(point)[::-1]).astype(int)
        near_cut = any(float(np.linalg.norm(point - c)) <= reach for c in cut_points)
        if not near_cut and np.all((index >= 0) & (index < kept.shape)) and kept[tuple(index)]:
            choices.append(note)
    drains: list[dict[str, Any]] = []
    if settings.drain_mm is not None:
        up = np.asarray(settings.up if settings.up is not None else (0.0, 0.0, 1.0), dtype=float)
        if settings.up is None:
            choices.append("print orientation for the drains: superior (+z) up (give --up X,Y,Z for another)")
        up /= np.linalg.norm(up)
        values, drains = drill_drains(values, grid, up, settings.drain_mm, wall)
    values, note = _drop_fragments(values, h)
    if note:
        choices.append(note)
    field_ = DistanceField(values, grid.geometry)
    mesh = field_surface(field_, "hollow")
    wall_measured, lumen_moved = _measure_wall(mesh, surface, distance, settings, openings)
    # Each opening measured on the model itself: the hole is the air inside the model's outer face.
    hull = d - np.float32(wall) if settings.side == "outside" else d
    hole = DistanceField(np.maximum(-values, hull), grid.geometry)
    openings_facts = [describe_opening(o, hole, 1.5 * largest_radius + 2 * h) for o in openings]
    del hull, hole
    for facts in openings_facts:
        if facts["inner_diameter_mm"] < 2 * h:
            raise DesignError(
                f"the opening at {','.join(f'{v:.1f}' for v in facts['point_lps_mm'])} has no hole in the model "
                f"(the {wall:g} mm wall closes it): use a thinner --wall"
            )
    for facts in openings_facts:
        where = ",".join(f"{v:.1f}" for v in facts["point_lps_mm"])
        why = {"scan border": "where the lumen leaves the scan", "cut face": "at a flat cut face of the mask",
               "cut": "at the --cut point"}[facts["kind"]]
        choices.append(f"opened {why} at {where} square to the centreline (inner diameter "
                       f"{facts['inner_diameter_mm']:.1f} mm); the side away from the larger part "
                       f"({facts.get('removed_mm3', 0):.0f} mm3) removed")
    measurements = {
        "wall_requested_mm": wall,
        "side": settings.side,
        "wall_measured_mm": wall_measured,
        "lumen_face_deviation_mm": lumen_moved,
        "lumen_largest_radius_mm": round(largest_radius, 2),
        "openings": openings_facts,
        "drains": drains,
        "working_resolution_mm": h,
        "volume_mm3": round(mesh.volume_mm3(), 1),
        "area_mm2": round(mesh.area_mm2(), 1),
    }
    side_text = "around the lumen, which keeps its size" if settings.side == "outside" else \
        "inside the lumen's surface, which stays the outside"
    method = (f"a {wall:g} mm wall {side_text}, as a shell of the lumen's signed distance (exact near both faces) "
              f"on a {h:g} mm grid; {len(openings)} end(s) opened by planes square to the local centreline"
              + (f"; {len(drains)} drain hole(s) of {settings.drain_mm:g} mm" if settings.drain_mm else ""))
    return Part(mesh=mesh, kind="hollow", method=method, measurements=measurements, choices=tuple(choices))


# --------------------------------------------------------------------------------------------------------------
# checks and preparation
# --------------------------------------------------------------------------------------------------------------


def _prepare_mask(lumen: Mask, choices: list[str]) -> tuple[Mask, NDArray[np.bool_]]:
    """The lumen checked, as one body without enclosed holes, cropped; which crop faces are the scan's border."""
    _check_lumen(lumen)
    lumen, note = _largest_body(lumen)
    if note:
        choices.append(note)
    filled = ndimage.binary_fill_holes(lumen.array)
    holes = int(np.count_nonzero(filled)) - lumen.voxel_count
    if holes:
        lumen = lumen.replace(filled)
        choices.append(f"{holes} voxels enclosed in the lumen but not part of it filled (they would float inside)")
    return _crop(lumen)


def _closed_lumen_surface(mesh: Mesh, choices: list[str]) -> Mesh:
    """A closed, outward surface of one body: repaired as ``convert`` does, or refused with the reason."""
    if mesh.is_empty:
        raise InputError("MESH: the lumen surface has no triangles; give a closed STL/OBJ/PLY of the lumen")
    quality = assess_mesh(mesh)
    if not quality.is_printable:
        try:
            repaired = make_printable(mesh)
        except MeshError:
            repaired = None
        if repaired is None or not repaired.quality.watertight:
            raise InputError(
                f"MESH: the lumen surface is not closed ({quality.describe()}): a wall needs an inside and an "
                "outside; close its holes first (e.g. convert the mask it came from, or cap its open ends)"
            )
        mesh = repaired.mesh
        quality = repaired.quality
        choices.append("lumen surface repaired: " + "; ".join(repaired.actions))
    if quality.shells > 1:
        bodies = split_bodies(mesh)
        largest = max(bodies, key=lambda body: abs(body.volume_mm3()))
        choices.append(f"the lumen surface has {quality.shells} bodies: the largest is hollowed")
        mesh = largest
    return mesh


def _voxelise_surface(surface: Mesh, spacing_mm: float) -> Mask:
    """The surface's inside on an axis-aligned grid (for its centreline and the checks of --cut points).

    At ``spacing_mm``, or coarser where that grid would pass :data:`CENTRELINE_VOXELS` (the thinning's time).
    """
    low, high = surface.bounds_mm()
    extent = np.asarray(high) - np.asarray(low) + 4 * spacing_mm
    spacing_mm = max(spacing_mm, float(np.prod(extent) / CENTRELINE_VOXELS) ** (1 / 3))
    grid = working_grid(low, high, spacing_mm, margin_mm=2 * spacing_mm)
    inside = voxelise(surface, grid)
    if not inside.any():
        raise DesignError(f"the lumen surface encloses no point of a {spacing_mm:g} mm grid: it is thinner than "
                          "that; use a finer --resolution")
    return Mask(inside, grid.geometry, surface.name)


def _check_lumen(lumen: Mask) -> None:
    if lumen.voxel_count == 0:
        raise InputError(f"the lumen mask {lumen.label!r} is empty: nothing to hollow; check the label, threshold "
                         "or seed that made it")
    a = lumen.array
    faces = (a[0], a[-1], a[:, 0], a[:, -1], a[:, :, 0], a[:, :, -1])
    if all(face.any() for face in faces):
        raise InputError(
            f"the lumen mask {lumen.label!r} touches every border of its grid: it is not a vessel inside the "
            "region (an inverted mask, or the background?); select the vessel itself, e.g. a higher threshold "
            "or --label NAME"
        )


def _largest_body(lumen: Mask) -> tuple[Mask, str]:
    labels, count = cc3d.connected_components(lumen.array, connectivity=26, return_N=True)
    if count <= 1:
        return lumen, ""
    sizes = np.bincount(labels.ravel())[1:]
    biggest = int(np.argmax(sizes)) + 1
    kept = labels == biggest
    dropped = int(sizes.sum() - sizes[biggest - 1])
    return lumen.replace(kept), (f"the lumen has {count} separate bodies: the largest is hollowed, "
                                 f"{count - 1} smaller ({dropped} voxels) dropped")


def _crop(lumen: Mask) -> tuple[Mask, NDArray[np.bool_]]:
    """The lumen's bounding box plus one voxel (within the grid); which of its six faces are the grid's border.

    Faces, in order: k=0, k=last, j=0, j=last, i=0, i=last.
    """
    a = lumen.array
    nz = np.argwhere(a)
    lo = np.maximum(nz.min(axis=0) - 1, 0)
    hi = np.minimum(nz.max(axis=0) + 2, a.shape)
    touches = np.array([lo[0] == 0 and a[0].any(), hi[0] == a.shape[0] and a[-1].any(),
                        lo[1] == 0 and a[:, 0].any(), hi[1] == a.shape[1] and a[:, -1].any(),
                        lo[2] == 0 and a[:, :, 0].any(), hi[2] == a.shape[2] and a[:, :, -1].any()])
    sub = np.ascontiguousarray(a[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    g = lumen.geometry
    origin = g.index_to_lps([float(lo[2]), float(lo[1]), float(lo[0])])
    geometry = Geometry(spacing=g.spacing, origin=tuple(origin), direction=g.direction)  # type: ignore[arg-type]
    return Mask(sub, geometry, lumen.label), touches


def _check_wall(settings: HollowSettings, largest_radius_mm: float) -> None:
    diameter = 2 * largest_radius_mm
    if settings.side == "inside" and settings.wall_mm >= largest_radius_mm:
        raise DesignError(
            f"--wall: {settings.wall_mm:g} mm inside the lumen fills it (its widest radius is "
            f"{largest_radius_mm:.1f} mm); use a thinner wall or --side outside"
        )
    if settings.side == "outside" and settings.wall_mm > diameter:
        raise DesignError(
            f"--wall: {settings.wall_mm:g} mm is larger than the vessel (at most {diameter:.1f} mm across): that "
            "is a block, not a hollow model; use a wall under the vessel's diameter"
        )


def _channel_problem(opened: NDArray[np.float32], d: NDArray[np.float32], kept: NDArray[np.bool_], grid: Grid,
                     openings: list[Opening], wall_mm: float) -> str:
    """Why a wall of ``wall_mm`` inside the lumen leaves no one open channel ('' when it does).

    The channel is the air left inside the solid kept (``opened`` is the lumen's field with its ends cut off):
    it must be one piece (no sealed pocket, no stretch filled solid) and reach every opening.
    """
    h = grid.spacing_mm
    air = (np.maximum(opened, -d - np.float32(wall_mm)) >= 0) & kept
    labels, count = cc3d.connected_components(air, connectivity=26, return_N=True)
    if count == 0:
        return "no lumen is left: the model would be solid"
    main = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    for opening in openings:
        s = plane_values(grid, opening.point, opening.outward)
        band = np.argwhere((s > -3 * h) & (s <= h) & (labels > 0))
        x, y, z = grid.axes_lps()
        lps = np.column_stack([x[band[:, 2]], y[band[:, 1]], z[band[:, 0]]])
        reach = float(-d.min()) * 1.5 + 2 * h  # the lumen's section there, not the vessel passing elsewhere
        band = band[np.linalg.norm(lps - opening.point, axis=1) <= reach]
        at = labels[tuple(band.T)]
        point = ",".join(f"{v:.1f}" for v in opening.point)
        if at.size == 0:
            return f"the lumen left is closed at the opening at {point}"
        if not np.any(at == main):
            return f"the lumen left at the opening at {point} is cut off from the rest"
    if count > 1:
        return (f"the lumen left is {count} separate pieces (sealed pockets or a stretch filled solid), not one "
                "open channel")
    return ""


def _check_inside_channel(opened: NDArray[np.float32], d: NDArray[np.float32], kept: NDArray[np.bool_], grid: Grid,
                          openings: list[Opening], settings: HollowSettings) -> None:
    """Refuse an inside wall that fills the lumen anywhere it matters, naming the largest wall that works.

    The largest wall is searched for as the model would be made with it: the ends found are opened a wall in
    from their faces, so each wall tried opens them again.
    """
    wall = settings.wall_mm
    problem = _channel_problem(opened, d, kept, grid, openings, wall)
    if not problem:
        return
    solid = d < 0

    def fails(w: float) -> str:
        tried = [dc_replace(o, point=o.point if o.kind == "cut" else o.point + (wall - w) * o.outward,
                            facts={}) for o in openings]
        opened_w, kept_w = open_ends(d, solid, grid, tried)
        return _channel_problem(opened_w, d, kept_w, grid, tried, w)

    low, high = 2 * settings.resolution_mm, wall
    if fails(low):
        works = "no inside wall the grid resolves works"
    else:
        while high - low > 0.05:  # the largest wall that leaves one open channel, to 0.05 mm
            middle = 0.5 * (low + high)
            if fails(middle):
                high = middle
            else:
                low = middle
        works = f"use --wall {math.floor(low * 10) / 10:g} or less"
    raise DesignError(f"--wall: {wall:g} mm inside the lumen fills it: {problem}; {works}, or --side outside")


# --------------------------------------------------------------------------------------------------------------
# the model's last touches
# --------------------------------------------------------------------------------------------------------------


def _drop_fragments(values: NDArray[np.float32], h: float) -> tuple[NDArray[np.float32], str]:
    """Keep the largest body of material; slivers a plane shaves off a wall it grazes go (said in the report).

    Material is face-connected (6-connectivity), as marching cubes separates grid points that touch only
    along an edge or at a corner.
    """
    labels, count = cc3d.connected_components(values < 0, connectivity=6, return_N=True)
    if count <= 1:
        return values, ""
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    main = int(np.argmax(sizes))
    loose = (labels > 0) & (labels != main)
    dropped_mm3 = float(np.count_nonzero(loose)) * h**3
    values = values.copy()
    values[loose] = np.float32(min(h / 10, 0.01))
    return values, (f"{count - 1} loose fragment(s) of {dropped_mm3:.2f} mm3 in all (slivers where a cut grazes the "
                    "wall, specks inside the lumen) dropped: the model is one body")


# --------------------------------------------------------------------------------------------------------------
# measuring the result
# --------------------------------------------------------------------------------------------------------------


def _measure_wall(mesh: Mesh, lumen_surface: Mesh, distance: DistanceField, settings: HollowSettings,
                  openings: list[Opening]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The wall as built, and how far the lumen's face moved: measured on the mesh, not read from the field.

    The wall is each vertex of the wall's far face (outer for ``side='outside'``) measured to the lumen's
    surface (closest points on its triangles); the lumen's own face is measured the same way (its deviation).
    Vertices on the openings' cut faces (within two grid steps of their planes) and on drain holes' sides
    (between the two faces) are left out; at most :data:`WALL_SAMPLES` vertices of each face, a fixed sample.
    """
    wall = settings.wall_mm
    h = settings.resolution_mm
    d = distance.sample(mesh.vertices)
    near_level, far_level = (0.0, wall) if settings.side == "outside" else (0.0, -wall)
    on_cut = np.zeros(mesh.vertex_count, dtype=bool)
    for opening in openings:
        on_cut |= np.abs((mesh.vertices - opening.point) @ opening.outward) < 2 * h
    near = (np.abs(d - near_level) < 0.25 * wall) & ~on_cut
    far = (np.abs(d - far_level) < 0.25 * wall) & ~on_cut
    if not near.any() or not far.any():
        return {}, {}
    rng = np.random.default_rng(0)
    far_index = np.flatnonzero(far)
    near_index = np.flatnonzero(near)
    far_index = rng.choice(far_index, min(len(far_index), WALL_SAMPLES), replace=False)
    near_index = rng.choice(near_index, min(len(near_index), WALL_SAMPLES), replace=False)
    squared, _, _ = igl.point_mesh_squared_distance(mesh.vertices[np.r_[far_index, near_index]],
                                                    lumen_surface.vertices, lumen_surface.faces)
    measured = np.sqrt(squared)
    thickness, moved = measured[:len(far_index)], measured[len(far_index):]
    return {
        "median": round(float(np.median(thickness)), 3),
        "p5": round(float(np.percentile(thickness, 5)), 3),
        "p95": round(float(np.percentile(thickness, 95)), 3),
        "within_0_1_mm": round(float(np.mean(np.abs(thickness - wall) <= 0.1)), 4),
        "vertices": int(len(thickness)),
    }, {
        "median": round(float(np.median(moved)), 3),
        "p95": round(float(np.percentile(moved, 95)), 3),
        "max": round(float(moved.max()), 3),
    }
