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
from dataclasses import dataclass, field
from typing import Any

import cc3d
import edt
import igl
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import reconstruction

from ..errors import DesignError, InputError, MeshError, ParameterError
from ..geometry import Geometry
from ..mesh import assess_mesh, make_printable, split_bodies
from ..mesh.model import Mesh
from ..mesh.smooth import smooth_surface
from ..mesh.surface import extract_surface
from ..segment.checks import require_number
from ..segment.voxels import EDT_THREADS
from ..volume import Mask
from .fields import DistanceField, Grid, field_surface, mesh_distance, working_grid
from .fields import _voxelise as voxelise  # the foundation's scan conversion (asked to be made public)
from .hollow_centreline import Centreline, EndFace, SurfacePatches, find_end_face, lumen_centreline, surface_axis
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
#: Most drain holes made (more pockets than this is a sign of a wrong orientation).
MAX_DRAINS = 20
#: A --cut point may lie this far outside the lumen (a click on the wall), in voxels of the mask.
CUT_TOLERANCE_VOXELS = 1.0
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


@dataclass
class _Opening:
    """One place the vessel is opened."""

    kind: str                          # "scan border", "cut face", "cut"
    point: NDArray[np.float64]
    outward: NDArray[np.float64]       # from the part kept towards the part removed (fixed once split)
    given: NDArray[np.float64] | None = None
    facts: dict[str, Any] = field(default_factory=dict)


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
    openings = _auto_openings(settings, cropped, touches, centreline, surface, choices, closed)
    openings += _user_cuts(settings, cropped, inside_mm, centreline, surface)
    if not openings:
        choices.append("no end opened: the lumen ends nowhere at the scan's border or at a flat cut face, and no "
                       "--cut was given; the model is closed")

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
    else:
        values = np.maximum(d, -d - np.float32(wall))
        solid = d < 0
    values, kept = _open(values, solid, grid, openings)
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
        values, drains = _drill_drains(values, grid, up, settings.drain_mm, wall)
    values, note = _drop_fragments(values, h)
    if note:
        choices.append(note)
    field_ = DistanceField(values, grid.geometry)
    mesh = field_surface(field_, "hollow")
    wall_measured, lumen_moved = _measure_wall(mesh, surface, distance, settings, openings)
    openings_facts = [_describe_opening(o, distance, 1.5 * largest_radius + 2 * h) for o in openings]
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
    """The surface's inside on an axis-aligned grid (for its centreline and the checks of --cut points)."""
    low, high = surface.bounds_mm()
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


# --------------------------------------------------------------------------------------------------------------
# where to open
# --------------------------------------------------------------------------------------------------------------


def _auto_openings(settings: HollowSettings, lumen: Mask, touches: NDArray[np.bool_], centreline: Centreline,
                   surface: Mesh, choices: list[str],
                   closed: list[tuple[NDArray[np.float64], float, str]]) -> list[_Opening]:
    """Openings where the segmentation stops; ``closed`` collects the rounded ends left closed (dome, reach, note)."""
    if settings.open_ends != "auto":
        return []
    patches = SurfacePatches.of(surface)
    margin = max(lumen.geometry.spacing)
    on_border = _border_triangles(surface, lumen, touches)
    openings = []
    for end in centreline.end_points:
        face = find_end_face(centreline, int(end), patches, margin_mm=margin, border=on_border)
        at_border = _face_at_border(face, patches.centres[on_border])
        where = _fmt(face.point_lps)
        if face.flat or at_border:
            kind = "scan border" if at_border else "cut face"
            openings.append(_Opening(kind, face.point_lps, face.outward, facts={
                "face_area_mm2": round(face.area_mm2, 1), "face_coherence": round(face.coherence, 3)}))
        else:
            # said later unless a --cut near it (within two radii of the dome) takes the end away
            closed.append((face.point_lps + face.radius_mm * face.outward, 2 * face.radius_mm,
                           f"the lumen's end near {where} is rounded, not cut (no flat face as wide "
                           f"as the vessel: {face.area_mm2:.0f} mm2 facing along it, normals agreeing "
                           f"{face.coherence:.2f}): left closed; give --cut X,Y,Z to open it"))
    if touches.any() and not any(o.kind == "scan border" for o in openings):
        choices.append("the lumen touches the scan's border without ending there: its wall is closed (flat) at "
                       "the border")
    return openings


def _border_triangles(surface: Mesh, lumen: Mask, touches: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Which surface triangles lie on the caps the border of the scan put on the lumen."""
    if not touches.any():
        return np.zeros(surface.face_count, dtype=bool)
    ijk = lumen.geometry.lps_to_index(surface.vertices)
    zyx = ijk[:, ::-1]
    shape = np.asarray(lumen.array.shape)
    on = np.zeros(len(zyx), dtype=bool)
    for face, touching in enumerate(touches):
        if not touching:
            continue
        axis, last = divmod(face, 2)
        edge = shape[axis] - 1 + 0.5 if last else -0.5
        on |= np.abs(zyx[:, axis] - edge) < 0.3
    return np.all(on[surface.faces], axis=1)


def _face_at_border(face: EndFace, border_points: NDArray[np.float64]) -> bool:
    if len(border_points) == 0:
        return False
    rel = border_points - face.point_lps
    t = rel @ face.outward
    radial = np.linalg.norm(rel - np.outer(t, face.outward), axis=1)
    r = face.radius_mm
    return bool(np.any((t > -r) & (t < 4 * r) & (radial < 2 * r)))


def _user_cuts(settings: HollowSettings, lumen: Mask, inside_mm: NDArray[np.floating],
               centreline: Centreline, surface: Mesh) -> list[_Opening]:
    if not settings.cuts_lps:
        return []
    patches = SurfacePatches.of(surface)
    outside_mm = edt.edt(~lumen.array, anisotropy=tuple(reversed(lumen.geometry.spacing)), parallel=EDT_THREADS)
    tolerance = CUT_TOLERANCE_VOXELS * max(lumen.geometry.spacing)
    openings = []
    for point in settings.cuts_lps:
        p = np.asarray(point, dtype=float)
        ijk = lumen.geometry.lps_to_index(p)
        zyx = np.round(ijk[::-1]).astype(int)
        inside_grid = bool(np.all((zyx >= 0) & (zyx < lumen.array.shape)))
        off = float(outside_mm[tuple(zyx)]) if inside_grid else math.inf
        if off > tolerance:
            nearest = centreline.points_lps[centreline.nearest(p)]
            far = "outside the vessel's box" if not inside_grid else f"{off:.1f} mm outside the lumen"
            raise DesignError(
                f"--cut {_fmt(p)}: the point is off the vessel ({far}); give a point on the vessel, e.g. on its "
                f"centreline near {_fmt(nearest)}"
            )
        s = centreline.nearest(p)
        radius = max(float(centreline.radius_mm[s]), 1e-3)
        guess = centreline.direction_at(s, max(2.0 * radius, 4.0 * max(lumen.geometry.spacing)))
        axis = surface_axis(patches, p, guess, 2 * radius)
        openings.append(_Opening("cut", p, axis, given=p))
    return openings


# --------------------------------------------------------------------------------------------------------------
# opening: split the solid along each plane's section, keep the largest piece
# --------------------------------------------------------------------------------------------------------------


def _plane_values(grid: Grid, point: NDArray[np.float64], normal: NDArray[np.float64]) -> NDArray[np.float32]:
    x, y, z = grid.axes_lps()
    values = ((z - point[2]) * normal[2])[:, None, None] + ((y - point[1]) * normal[1])[None, :, None] \
        + ((x - point[0]) * normal[0])[None, None, :]
    return values.astype(np.float32)


def _dilated(mask: NDArray[np.bool_], voxels: int) -> NDArray[np.bool_]:
    """``mask`` grown by ``voxels`` face steps (scipy's default cross), computed in its bounding box only."""
    out = np.zeros_like(mask)
    spans = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if len(present) == 0:
            return out
        spans.append(slice(max(int(present[0]) - voxels, 0), min(int(present[-1]) + voxels + 1, mask.shape[axis])))
    box = tuple(spans)
    out[box] = ndimage.binary_dilation(mask[box], iterations=voxels)
    return out


def _open(values: NDArray[np.float32], solid: NDArray[np.bool_], grid: Grid,
          openings: list[_Opening]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Remove what lies beyond each opening's plane on the vessel's far side; the mask of the solid kept."""
    if not openings:
        return values, solid
    h = grid.spacing_mm
    sections = np.zeros(solid.shape, dtype=bool)
    section_of: list[NDArray[np.bool_]] = []
    signed: list[NDArray[np.float32]] = []
    for opening in openings:
        s = _plane_values(grid, opening.point, opening.outward)
        slab = solid & (np.abs(s) <= h)
        labels = cc3d.connected_components(slab, connectivity=26)
        centre = tuple(np.clip(np.round(grid.geometry.lps_to_index(opening.point)[::-1]).astype(int), 0,
                               np.asarray(solid.shape) - 1))
        label = int(labels[centre])
        if label == 0:  # the centre point is in no solid (a bend's inner side): take the section nearest to it
            found = np.argwhere(labels > 0)
            if len(found) == 0:
                raise DesignError(f"the opening at {_fmt(opening.point)} crosses no wall; give a point on the vessel")
            label = int(labels[tuple(found[np.argmin(np.linalg.norm(found - centre, axis=1))])])
        section = labels == label
        section_of.append(section)
        signed.append(s)
        sections |= section
    pieces, count = cc3d.connected_components(solid & ~sections, connectivity=6, return_N=True)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    sizes[0] = 0
    main = int(np.argmax(sizes))
    result = values.copy()
    removed = np.zeros(solid.shape, dtype=bool)
    for opening, section, s in zip(openings, section_of, signed):
        around = _dilated(section, 1)
        ahead = set(np.unique(pieces[around & (s > 0)])) - {0}
        behind = set(np.unique(pieces[around & (s < 0)])) - {0}
        if main in ahead and main in behind:
            raise DesignError(
                f"the opening at {_fmt(opening.point)} does not cut an end off: the vessel goes on on both sides "
                "of it (it joins up again); cut nearer an end"
            )
        if main in ahead:  # the part kept is on the plane's positive side: remove the other
            opening.outward = -opening.outward
            s = -s
            ahead, behind = behind, ahead
        if main not in behind:
            opening.facts["note"] = "in a part already removed by another opening"
        gone = np.isin(pieces, sorted(ahead)) | section
        gone = _dilated(gone, 2)
        removed |= gone
        result[gone] = np.maximum(result[gone], s[gone])
        opening.facts["removed_mm3"] = round(float(np.count_nonzero(gone & solid & (s > 0))) * h**3, 1)
    # Pieces reached from no opening's kept side (beyond two openings) go whole.
    stray = (pieces > 0) & (pieces != main) & ~removed
    if stray.any():
        stray = _dilated(stray, 2) & ~_dilated(pieces == main, 2)
        result[stray] = np.maximum(result[stray], np.float32(h))
    kept = (pieces == main) | (sections & ~removed)
    return result, kept


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


def _describe_opening(opening: _Opening, distance: DistanceField, reach_mm: float) -> dict[str, Any]:
    """Where the opening is and the lumen's inner diameter there (area-equivalent).

    The lumen's distance is sampled on a 0.1 mm grid in the plane, half a grid step inside the part kept;
    the section is the lumen's region there that holds the opening's point (or is nearest to it).
    """
    n = opening.outward / np.linalg.norm(opening.outward)
    u = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    cell = 0.1
    steps = np.arange(-reach_mm, reach_mm + cell / 2, cell)
    a, b = np.meshgrid(steps, steps, indexing="ij")
    origin = opening.point - 0.5 * distance.geometry.spacing[0] * n
    points = origin + a.reshape(-1, 1) * u + b.reshape(-1, 1) * v
    inside = (distance.sample(points) < 0).reshape(a.shape)
    labels, count = ndimage.label(inside)
    area = 0.0
    if count:
        middle = len(steps) // 2
        label = int(labels[middle, middle])
        if label == 0:
            found = np.argwhere(labels > 0)
            label = int(labels[tuple(found[np.argmin(np.linalg.norm(found - middle, axis=1))])])
        area = float(np.count_nonzero(labels == label)) * cell**2
    facts = {
        "kind": opening.kind,
        "point_lps_mm": [round(float(v), 2) for v in opening.point],
        "outward": [round(float(v), 4) for v in opening.outward],
        "inner_diameter_mm": round(2 * math.sqrt(area / math.pi), 2),
        **opening.facts,
    }
    if opening.given is not None:
        facts["given_lps_mm"] = [round(float(v), 2) for v in opening.given]
    return facts


# --------------------------------------------------------------------------------------------------------------
# drains
# --------------------------------------------------------------------------------------------------------------


def _drill_drains(values: NDArray[np.float32], grid: Grid, up: NDArray[np.float64], diameter_mm: float,
                  wall_mm: float) -> tuple[NDArray[np.float32], list[dict[str, Any]]]:
    """Holes at the lowest point of each pocket of air that would hold resin with ``up`` pointing up."""
    h = grid.spacing_mm
    step = max(1, int(round(1.0 / h)))  # the pockets are found on a ~1 mm grid of blocks
    material = values < 0
    padded = np.pad(material, [(0, (-n) % step) for n in material.shape])
    nz, ny, nx = (n // step for n in padded.shape)
    # a block with any material in it is a dam: a wall thinner than a block can never leak between samples
    air = ~padded.reshape(nz, step, ny, step, nx, step).any(axis=(1, 3, 5))
    x, y, z = grid.axes_lps()
    height = ((z[::step][:nz] * up[2])[:, None, None] + (y[::step][:ny] * up[1])[None, :, None]
              + (x[::step][:nx] * up[0])[None, None, :]).astype(np.float64)
    top = float(height.max()) + 1.0
    level = np.where(air, height, top + 1.0)  # the part's material is a dam resin cannot pass
    marker = np.full(level.shape, top + 1.0)
    border = np.zeros(level.shape, dtype=bool)
    border[[0, -1]] = True
    border[:, [0, -1]] = True
    border[:, :, [0, -1]] = True
    marker[border] = level[border]
    filled = reconstruction(marker, level, method="erosion", footprint=ndimage.generate_binary_structure(3, 1))
    pocket = air & (filled > height + step * h)
    labels, count = cc3d.connected_components(pocket, connectivity=6, return_N=True)
    drains: list[dict[str, Any]] = []
    if count == 0:
        return values, drains
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes)
    radius = diameter_mm / 2
    result = values.copy()
    smallest = (radius**3)  # pockets smaller than a drop the size of the hole hold no resin worth draining
    for index in order[:MAX_DRAINS]:
        if sizes[index] * (step * h) ** 3 < smallest:
            continue
        q = _lowest_point(labels == index + 1, step, values, grid, up)
        depth = _material_below(result, grid, q, up, 4 * wall_mm + 4 * h)
        if depth is None:
            continue
        _subtract_cylinder(result, grid, q, up, radius, top_mm=radius, bottom_mm=depth + 2 * h)
        drains.append({"point_lps_mm": [round(float(v), 2) for v in q], "diameter_mm": diameter_mm,
                       "through_mm": round(depth, 2),
                       "pocket_mm3": round(float(sizes[index]) * (step * h) ** 3, 1)})
    if len(order) > MAX_DRAINS:
        log.warning("%d resin pockets; drains made at the %d largest: check the print orientation (--up)",
                    len(order), MAX_DRAINS)
    return result, drains


def _lowest_point(member: NDArray[np.bool_], step: int, values: NDArray[np.float32], grid: Grid,
                  up: NDArray[np.float64]) -> NDArray[np.float64]:
    """The lowest grid point of air in a pocket (found in blocks of ``step``), at the working grid's resolution."""
    spans = []
    for axis in range(3):
        present = np.flatnonzero(member.any(axis=tuple(a for a in range(3) if a != axis)))
        spans.append((max(int(present[0]) - 1, 0), min(int(present[-1]) + 2, member.shape[axis])))
    block = member[tuple(slice(a, b) for a, b in spans)]
    block = ndimage.binary_dilation(block, iterations=1)  # the air between the blocks and the wall
    fine = block.repeat(step, axis=0).repeat(step, axis=1).repeat(step, axis=2)
    lo = [a * step for a, _ in spans]
    hi = [min(lo[k] + fine.shape[k], values.shape[k]) for k in range(3)]
    fine = fine[: hi[0] - lo[0], : hi[1] - lo[1], : hi[2] - lo[2]]
    air = fine & (values[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] >= 0)
    x, y, z = grid.axes_lps()
    height = ((z[lo[0]:hi[0]] * up[2])[:, None, None] + (y[lo[1]:hi[1]] * up[1])[None, :, None]
              + (x[lo[2]:hi[2]] * up[0])[None, None, :])
    height = np.where(air, height, np.inf)
    k, j, i = np.unravel_index(int(np.argmin(height)), height.shape)
    return np.array([x[lo[2] + i], y[lo[1] + j], z[lo[0] + k]])


def _material_below(values: NDArray[np.float32], grid: Grid, q: NDArray[np.float64], up: NDArray[np.float64],
                    reach_mm: float) -> float | None:
    """How far down from ``q`` the material ends (the far side of the floor under the pocket), or None."""
    field_ = DistanceField(values, grid.geometry)
    steps = np.arange(0.0, reach_mm, grid.spacing_mm / 4)
    samples = field_.sample(q[None, :] - np.outer(steps, up))
    inside = samples < 0
    if not inside.any():
        return None
    first = int(np.argmax(inside))
    after = np.flatnonzero(~inside[first:])
    if len(after) == 0:
        return None
    return float(steps[first + after[0]])


def _subtract_cylinder(values: NDArray[np.float32], grid: Grid, q: NDArray[np.float64], up: NDArray[np.float64],
                       radius: float, *, top_mm: float, bottom_mm: float) -> None:
    """Cut a cylinder (axis along ``up`` through ``q``, from ``bottom_mm`` below to ``top_mm`` above) in place."""
    reach = max(radius, top_mm, bottom_mm) + 2 * grid.spacing_mm
    lo = np.floor(grid.geometry.lps_to_index(q - reach)).astype(int)
    hi = np.ceil(grid.geometry.lps_to_index(q + reach)).astype(int) + 1
    nz, ny, nx = values.shape
    i0, j0, k0 = np.maximum(lo, 0)
    i1, j1, k1 = np.minimum(hi, (nx, ny, nz))
    x, y, z = grid.axes_lps()
    zz, yy, xx = np.meshgrid(z[k0:k1], y[j0:j1], x[i0:i1], indexing="ij")
    rel = np.stack([xx - q[0], yy - q[1], zz - q[2]], axis=-1)
    along = rel @ up
    radial = np.linalg.norm(rel - along[..., None] * up, axis=-1)
    cylinder = np.maximum(radial - radius, np.maximum(along - top_mm, -bottom_mm - along))
    block = values[k0:k1, j0:j1, i0:i1]
    np.maximum(block, -cylinder.astype(np.float32), out=block)


# --------------------------------------------------------------------------------------------------------------
# measuring the result
# --------------------------------------------------------------------------------------------------------------


def _measure_wall(mesh: Mesh, lumen_surface: Mesh, distance: DistanceField, settings: HollowSettings,
                  openings: list[_Opening]) -> tuple[dict[str, Any], dict[str, Any]]:
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


def _fmt(point: NDArray[np.float64] | Point) -> str:
    return ",".join(f"{float(v):.1f}" for v in point)
