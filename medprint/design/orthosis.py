"""Splints and orthoses: a shell at a given gap and thickness around the skin, over a region and an angle.

The part is one signed distance field on an isotropic working grid:

* ``d``: exact signed distance to the skin (:func:`_skin_distance`: as
  :func:`~medprint.design.fields.mesh_distance`, libigl distances at the two levels read, ``gap`` and
  ``gap + thickness``, but only where the region keeps the wall, the skin voxelised slab by slab and the
  libigl queries shared out over the CPU's cores);
* the wall ``{gap <= d <= gap + thickness}`` as its two faces ``gap - d`` (inner) and ``d - gap - thickness``
  (outer);
* the region: two planes across the limb axis (:mod:`.orthosis_axis`), and the opening: the wall kept over an
  angular range around the axis, bounded by two half-planes through the axis (their intersection for a range
  up to 180 degrees, their union beyond);
* rounded edges: every edge where a cut meets a face is a round intersection of two distance fields (the
  quarter circle of radius ``r`` that meets both surfaces tangentially), exact where they cross at right
  angles, as the cuts across a wall do;
* ventilation holes (:mod:`.orthosis_holes`): cylinders along the skin's normal, subtracted with the same
  rounding, placed at least their spacing apart and their margin from every edge.

Marching cubes of the field is watertight by construction and one body unless the region, the opening or
the holes cut a piece off (refused, saying where); loose crumbs smaller across than the wall is thick, which
a grid can leave where a cut meets the wall obliquely, are dropped and said in the report (:func:`_one_body`).
The report gives the gap, thickness, angle covered, holes and region measured on the result
(:func:`.orthosis_holes.measure_orthosis`).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import edt
import igl
import numpy as np
from numpy.typing import NDArray

from ..errors import DesignError, ParameterError
from ..mesh.model import Mesh
from ..mesh.quality import body_labels
from ..segment.checks import require_number
from ..segment.voxels import EDT_THREADS
from ..volume import Volume
from .fields import DistanceField, Grid, field_surface, voxelise, working_grid
from .orthosis_axis import LimbAxis, estimate_axis
from .orthosis_holes import Hole, apply_holes, measure_orthosis, place_holes
from .orthosis_skin import Skin, skin_from_mesh, skin_from_volume
from .part import Part

log = logging.getLogger("medprint")

#: Largest gap, thickness, margin and edge radius (mm): beyond them the part is no orthosis.
MAX_SIZE_MM = 50.0
#: Default distance (mm) of the cutting planes from the ends of the skin when no region is given.
DEFAULT_END_MARGIN_MM = 10.0
#: Default working resolution (mm), made finer for thin walls and small holes.
DEFAULT_RESOLUTION_MM = 0.5
OPEN_SIDES = ("anterior", "posterior", "left", "right")


@dataclass(frozen=True)
class OrthosisSettings:
    """What orthosis to make.

    Parameters
    ----------
    gap_mm : float
        Padding between the skin and the shell's inner face (>= 0).
    thickness_mm : float
        Shell thickness (> 0).
    from_mm, to_mm : float or 'start' / 'end', optional
        Cutting planes across the limb axis, as distances along it from its start; ``'start'`` (``'end'``)
        leaves that end uncut (the shell wraps round it, e.g. the top of a helmet).  Default: the whole extent
        minus :data:`DEFAULT_END_MARGIN_MM` at each end.
    start_point, end_point : (x, y, z), optional
        Cutting planes through these LPS points (across the axis), instead of ``from_mm`` / ``to_mm``.
    axis : (x, y, z), optional
        The limb's direction (LPS), when it is not to be estimated (a head: ``(0, 0, 1)``).
    keep_angle_deg : (float, float), optional
        The angular range kept, from FROM to TO degrees counter-clockwise about the axis, 0 at the reference
        (patient anterior projected on the cross-section; see :mod:`.orthosis_axis`).
    open_side : {'anterior', 'posterior', 'left', 'right'}, optional
        Open that side: keep the opposite half.
    hole_diameter_mm, hole_spacing_mm : float
        Ventilation holes (0: none): diameter and centre-to-centre spacing.
    hole_margin_mm : float
        Smallest distance from a hole's rim to any edge of the shell.
    edge_radius_mm : float
        Radius of the rounded edges (at most half the thickness; 0: sharp).
    resolution_mm : float, optional
        Working grid spacing; default 0.5 mm, finer for walls under 1.5 mm or holes under 3 mm.
    """

    gap_mm: float
    thickness_mm: float
    from_mm: float | str | None = None
    to_mm: float | str | None = None
    start_point: tuple[float, float, float] | None = None
    end_point: tuple[float, float, float] | None = None
    axis: tuple[float, float, float] | None = None
    keep_angle_deg: tuple[float, float] | None = None
    open_side: str | None = None
    hole_diameter_mm: float = 0.0
    hole_spacing_mm: float = 0.0
    hole_margin_mm: float = 3.0
    edge_radius_mm: float = 0.0
    resolution_mm: float | None = None

    def __post_init__(self) -> None:
        require_number(self.gap_mm, "--gap", low=0, high=MAX_SIZE_MM, unit="mm")
        require_number(self.thickness_mm, "--thickness", low=0, low_open=True, high=MAX_SIZE_MM, unit="mm")
        for option, value, word in (("--from", self.from_mm, "start"), ("--to", self.to_mm, "end")):
            if isinstance(value, str):
                if value != word:
                    raise ParameterError(f"{option}: {value!r} is neither a distance in mm nor {word!r}")
            elif value is not None:
                require_number(value, option, unit="mm")
        if self.from_mm is not None and self.start_point is not None:
            raise ParameterError("--from and --start both place the first cutting plane; give one of them")
        if self.to_mm is not None and self.end_point is not None:
            raise ParameterError("--to and --end both place the second cutting plane; give one of them")
        for option, point in (("--start", self.start_point), ("--end", self.end_point), ("--axis", self.axis)):
            if point is not None:
                if len(point) != 3:
                    raise ParameterError(f"{option}: give three numbers X,Y,Z (LPS mm)")
                for value in point:
                    require_number(value, option)
        if self.keep_angle_deg is not None and self.open_side is not None:
            raise ParameterError("--keep-angle and --open-side both choose the opening; give one of them")
        if self.keep_angle_deg is not None:
            low, high = self.keep_angle_deg
            require_number(low, "--keep-angle", low=-360, high=360, unit="degrees")
            require_number(high, "--keep-angle", low=-360, high=360, unit="degrees")
            width = (high - low) % 360.0
            if width < 1.0 or width > 359.0:
                raise ParameterError(f"--keep-angle {low:g}:{high:g} keeps {width:g} degrees; keep between 1 and "
                                     "359 degrees (FROM:TO counter-clockwise), or leave it out for a closed ring")
        if self.open_side is not None and self.open_side not in OPEN_SIDES:
            raise ParameterError(f"--open-side: {self.open_side!r} is not one of {', '.join(OPEN_SIDES)}")
        require_number(self.hole_diameter_mm, "--holes", low=0, high=MAX_SIZE_MM, unit="mm",
                       why="the hole diameter")
        require_number(self.hole_spacing_mm, "--holes", low=0, high=10 * MAX_SIZE_MM, unit="mm",
                       why="the hole spacing")
        require_number(self.hole_margin_mm, "--hole-margin", low=0, high=MAX_SIZE_MM, unit="mm")
        require_number(self.edge_radius_mm, "--edge-radius", low=0, high=MAX_SIZE_MM, unit="mm")
        if self.resolution_mm is not None:
            require_number(self.resolution_mm, "--resolution", low=0.05, high=2.0, unit="mm")
        if self.edge_radius_mm > self.thickness_mm / 2:
            raise ParameterError(f"--edge-radius {self.edge_radius_mm:g} mm is more than half the "
                                 f"{self.thickness_mm:g} mm thickness; give at most {self.thickness_mm / 2:g} mm")
        if self.hole_diameter_mm > 0:
            bridge = self.hole_spacing_mm - self.hole_diameter_mm - 2 * self.edge_radius_mm
            if bridge < 1.0:
                raise ParameterError(
                    f"--holes {self.hole_diameter_mm:g}:{self.hole_spacing_mm:g}: holes that close leave bridges of "
                    f"{bridge:.2g} mm between them (with rounded edges); give a spacing of at least "
                    f"{self.hole_diameter_mm + 2 * self.edge_radius_mm + 1.0:g} mm"
                )
        elif self.hole_spacing_mm > 0:
            raise ParameterError("--holes: a spacing without a diameter; give DIAMETER:SPACING")

    @property
    def outer_mm(self) -> float:
        return self.gap_mm + self.thickness_mm


@dataclass(frozen=True)
class Region:
    """Where the shell is kept: along the axis (None: uncut end) and around it (None: all around)."""

    low_mm: float | None
    high_mm: float | None
    angle_deg: tuple[float, float] | None

    def describe(self) -> dict[str, Any]:
        return {
            "from_mm": None if self.low_mm is None else round(self.low_mm, 3),
            "to_mm": None if self.high_mm is None else round(self.high_mm, 3),
            "keep_angle_deg": None if self.angle_deg is None else [round(a, 3) for a in self.angle_deg],
        }


def design_orthosis(surface: Volume | Mesh, settings: OrthosisSettings) -> Part:
    """Design a splint or orthosis around the skin of a CT or a scanner's surface mesh.

    Parameters
    ----------
    surface : Volume or Mesh
        A CT (the skin is found with the skin preset, see :mod:`.orthosis_skin`) or a closed surface in LPS mm.
    settings : OrthosisSettings

    Returns
    -------
    Part
        ``kind='orthosis'``, one body; ``extras['anatomy']`` is the skin surface used.

    Raises
    ------
    DesignError
        Cutting planes that miss the limb, a wall thicker than the limb, holes that do not fit, a region that
        reaches a surface that is not skin (the scan's edge, a filled hole of a mesh).
    InputError
        No usable skin in the input (not a CT, an open mesh that cannot be closed).
    """
    skin = skin_from_volume(surface) if isinstance(surface, Volume) else skin_from_mesh(surface)
    choices = list(skin.steps)
    direction = None if settings.axis is None else np.asarray(settings.axis, dtype=float)
    axis = estimate_axis(skin.mesh, direction)
    choices.append(("limb axis estimated (principal axis, line through the cross-sections' centres)"
                    if axis.estimated else "limb axis direction as given, line through the cross-sections' centres")
                   + f"; angles from patient {axis.reference_side} projected on the cross-section")
    region = _region(axis, settings, choices, skin.mesh)
    _check_region_on_skin(skin, axis, region, settings)
    across = _limb_across_mm(skin.mesh, axis, region)
    for option, value in (("--thickness", settings.thickness_mm), ("--gap", settings.gap_mm)):
        if value >= across:
            raise DesignError(f"{option} {value:g} mm is more than the limb itself ({across:.0f} mm across in the "
                              f"region); give a {option[2:]} below {across:.0f} mm")
    spacing = _resolution(settings, choices)
    grid = _grid(skin.mesh, axis, region, settings, spacing)
    distance = _skin_distance(skin.mesh, grid, axis, region, settings)
    values = _trimmed_shell(distance, axis, region, settings)
    holes: list[Hole] = []
    if settings.hole_diameter_mm > 0:
        holes = place_holes(distance, axis, region, settings, lambda p: cut_distance(p, axis, region,
                                                                                     settings.edge_radius_mm))
        values = apply_holes(values, distance, holes, settings)
    field = distance.replace(values)
    mesh, crumbs = _one_body(field_surface(field, "orthosis"), axis, settings, spacing)
    if crumbs["count"]:
        choices.append(f"dropped {crumbs['count']} loose crumb(s) of shell, {crumbs['volume_mm3']:.3g} mm3 in all, "
                       f"each smaller across than the {settings.thickness_mm:g} mm wall (left between grid points "
                       "where a cut or a hole meets the wall obliquely), not part of the one body")
    measurements = measure_orthosis(mesh, skin.mesh, axis, holes, settings,
                                    lambda p: cut_distance(p, axis, region, settings.edge_radius_mm), spacing)
    _check_extent(measurements["extent_along_axis_mm"], region, settings, spacing)
    measurements["axis"] = axis.describe()
    measurements["region"] = region.describe()
    measurements["working_resolution_mm"] = spacing
    measurements["crumbs_dropped"] = crumbs
    method = (f"a {settings.thickness_mm:g} mm shell at {settings.gap_mm:g} mm from the skin (signed distance "
              "field on a working grid), cut across the limb axis"
              + (", opened around it" if region.angle_deg is not None else "")
              + (f", {len(holes)} ventilation holes along the skin normal" if holes else "")
              + (f", edges rounded to {settings.edge_radius_mm:g} mm" if settings.edge_radius_mm > 0 else ""))
    return Part(mesh=mesh, kind="orthosis", method=method, measurements=measurements, choices=tuple(choices),
                extras={"anatomy": skin.mesh})


def _check_extent(extent: list[float], region: Region, settings: OrthosisSettings, spacing: float) -> None:
    """Refuse a part shorter along the axis than the region asked: each cutting plane must be met by the shell
    within a grid step and the edge radius (the rounding can pull a thin wall's edge back by at most that)."""
    tolerance = spacing + settings.edge_radius_mm + 1e-3
    for option, asked, got in (("--from", region.low_mm, extent[0]), ("--to", region.high_mm, extent[1])):
        if asked is not None and abs(got - asked) > tolerance:
            raise DesignError(
                f"{option}: the shell made reaches {got:.1f} mm along the limb's axis where {asked:.1f} mm was asked "
                f"(the part would be {extent[1] - extent[0]:.1f} mm long, not {_asked_length(region, extent):.1f}); "
                "the skin there may be too coarse or not closed: repair or remesh the input, or use a finer "
                "--resolution"
            )


def _asked_length(region: Region, extent: list[float]) -> float:
    low = extent[0] if region.low_mm is None else region.low_mm
    high = extent[1] if region.high_mm is None else region.high_mm
    return high - low


def _skin_reach_mm(skin: Mesh, axis: LimbAxis) -> float:
    """The farthest the skin gets from the axis line (mm)."""
    rel = skin.vertices - axis.start
    return float(np.linalg.norm(rel - np.outer(rel @ axis.direction, axis.direction), axis=1).max())


def _region(axis: LimbAxis, settings: OrthosisSettings, choices: list[str], skin: Mesh) -> Region:
    length = axis.length_mm
    margin = min(DEFAULT_END_MARGIN_MM, 0.1 * length)
    far_mm = _skin_reach_mm(skin, axis) + settings.outer_mm + 10.0
    ends: list[float | None] = []
    for option, value, point, default, word in (
        ("--from", settings.from_mm, settings.start_point, margin, "start"),
        ("--to", settings.to_mm, settings.end_point, length - margin, "end"),
    ):
        if isinstance(value, str):
            ends.append(None)
            continue
        if point is not None:
            option = "--start" if option == "--from" else "--end"
            position = float(axis.along(np.asarray(point, dtype=float)[None, :])[0])
            off_axis = float(np.linalg.norm(np.cross(np.asarray(point, dtype=float) - axis.start, axis.direction)))
            if off_axis > far_mm:
                raise DesignError(
                    f"{option}: the point is {off_axis:.0f} mm from the limb's axis, outside the limb (at most "
                    f"{far_mm:.0f} mm from it): a cutting plane is placed by a point on or near the limb, in LPS mm "
                    "(not RAS: x and y flip between them)"
                )
        elif value is None:
            position = default
            choices.append(f"{option} not given: cutting plane {margin:g} mm inside the {word} of the limb "
                           f"({position:.1f} mm along its axis)")
        else:
            position = float(value)
        if not 0.0 < position < length:
            raise DesignError(f"{option}: the cutting plane at {position:.1f} mm along the limb's axis misses the limb, "
                              f"which spans 0..{length:.1f} mm; give a plane inside it")
        ends.append(position)
    low, high = ends
    if low is not None and high is not None and high - low < settings.thickness_mm:
        raise DesignError(f"--from/--to: the region {low:.1f}..{high:.1f} mm along the axis is shorter than the "
                          f"{settings.thickness_mm:g} mm wall (or reversed); give --to beyond --from")
    if low is None and high is None and settings.keep_angle_deg is None and settings.open_side is None:
        raise DesignError("--from start --to end with no opening: the shell would enclose the limb whole and could "
                          "not be put on; cut one end or give --keep-angle / --open-side")
    angle = settings.keep_angle_deg
    if settings.open_side is not None:
        opposite = {"anterior": "posterior", "posterior": "anterior", "left": "right", "right": "left"}
        centre = axis.across(opposite[settings.open_side])
        centre_deg = float(axis.angle_deg((axis.start + centre)[None, :])[0])
        angle = (centre_deg - 90.0, centre_deg + 90.0)
        choices.append(f"--open-side {settings.open_side}: kept the {opposite[settings.open_side]} half, "
                       f"{angle[0] % 360:.1f}..{angle[1] % 360:.1f} degrees")
    return Region(low, high, None if angle is None else (float(angle[0]), float(angle[1])))


def _check_region_on_skin(skin: Skin, axis: LimbAxis, region: Region, settings: OrthosisSettings) -> None:
    """Refuse a region whose shell would rest on a surface that is not skin (a scan's edge, a filled hole)."""
    if len(skin.artificial) == 0:
        return
    t = axis.along(skin.artificial)
    reach = settings.outer_mm + settings.edge_radius_mm + 1.0
    low = -math.inf if region.low_mm is None else region.low_mm - reach
    high = math.inf if region.high_mm is None else region.high_mm + reach
    inside = (t >= low) & (t <= high)
    if inside.any():
        where = float(np.median(t[inside]))
        uncut = " (an uncut end cannot rest on it either)" if region.low_mm is None or region.high_mm is None else ""
        raise DesignError(
            f"the region reaches {skin.artificial_kind} at about {where:.0f} mm along the limb's axis "
            f"(0..{axis.length_mm:.0f} mm); keep --from/--to at least {reach:.0f} mm clear of it{uncut}"
        )


def _limb_across_mm(skin: Mesh, axis: LimbAxis, region: Region) -> float:
    """Typical width of the limb in the region: twice the median distance of its skin from the axis."""
    # The skin's points in the region, its long triangles split (a coarse mesh may have no vertex there).
    points, _ = _skin_points_near(skin, axis, Region(region.low_mm, region.high_mm, None), 0.0, 10.0)
    t = axis.along(points)
    low = -math.inf if region.low_mm is None else region.low_mm
    high = math.inf if region.high_mm is None else region.high_mm
    inside = (t >= low) & (t <= high)
    rel = (points[inside] if inside.any() else points) - axis.start
    radial = rel - np.outer(rel @ axis.direction, axis.direction)
    return 2.0 * float(np.median(np.linalg.norm(radial, axis=1)))


def _resolution(settings: OrthosisSettings, choices: list[str]) -> float:
    if settings.resolution_mm is not None:
        return float(settings.resolution_mm)
    spacing = DEFAULT_RESOLUTION_MM
    spacing = min(spacing, settings.thickness_mm / 3.0)
    if settings.hole_diameter_mm > 0:
        spacing = min(spacing, settings.hole_diameter_mm / 6.0)
    spacing = max(round(spacing, 3), 0.05)
    if spacing < DEFAULT_RESOLUTION_MM:
        choices.append(f"working resolution {spacing:g} mm (finer than {DEFAULT_RESOLUTION_MM:g} mm: at least three "
                       "grid steps across the wall and six across a hole)")
    else:
        choices.append(f"working resolution {spacing:g} mm")
    return spacing


def _grid(skin: Mesh, axis: LimbAxis, region: Region, settings: OrthosisSettings, spacing: float) -> Grid:
    """A working grid over the skin the kept region reaches (along the axis and around it) and the wall around it.

    Sized from the skin's triangles, not only its vertices: a coarse mesh (a scanner's or CAD export with
    triangles 60 mm long) may have no vertex in the region at all, its triangles crossing it
    (:func:`_skin_points_near`)."""
    reach = settings.outer_mm + 3 * spacing
    points, step = _skin_points_near(skin, axis, region, settings.edge_radius_mm, reach)
    return working_grid(points.min(axis=0), points.max(axis=0), spacing,
                        margin_mm=reach + max(0.0, step - reach / 2.0))


def _skin_points_near(skin: Mesh, axis: LimbAxis, region: Region, radius: float,
                      reach: float) -> tuple[NDArray[np.float64], float]:
    """Points of the skin within ``reach`` of the kept region and the largest distance ``step`` of any skin
    point there from them: the triangles whose span along the axis meets the region (widened by ``reach``) are
    split until no edge is longer than ``step`` (``reach / 2``, at least 2 mm: a huge triangle at a fine grid
    would otherwise give millions), and their vertices kept where the cuts' field is within ``reach``.  The
    cuts' field grows no faster than the distance, so every skin point within ``reach - step`` of the region
    has a kept point at most ``step`` away.  A finely meshed skin (edges under ``reach / 2``) is not split."""
    import trimesh

    faces = skin.faces
    t = axis.along(skin.vertices)[faces]
    low = -math.inf if region.low_mm is None else region.low_mm - reach
    high = math.inf if region.high_mm is None else region.high_mm + reach
    faces = faces[(t.max(axis=1) >= low) & (t.min(axis=1) <= high)]
    if len(faces) == 0:
        raise DesignError("--from/--to: no triangle of the skin reaches the region; give a region on the limb")
    max_edge = reach / 2.0
    corners = skin.vertices[faces]
    longest = float(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).max())
    vertices, faces = skin.vertices, faces
    if longest > max_edge:
        max_edge = max(max_edge, 2.0)
        used = np.unique(faces)
        remap = np.zeros(len(skin.vertices), dtype=np.int64)
        remap[used] = np.arange(len(used))
        iterations = int(math.ceil(math.log2(longest / max_edge))) + 2
        vertices, faces = trimesh.remesh.subdivide_to_size(skin.vertices[used], remap[faces], max_edge=max_edge,
                                                           max_iter=iterations)
    points = np.asarray(vertices, dtype=np.float64)[np.unique(faces)]
    near = cut_distance(points, axis, region, radius) <= max(reach, max_edge)
    if not near.any():
        raise DesignError("--from/--to/--keep-angle: no part of the skin lies in the region; give a region on the "
                          "limb")
    return points[near], max_edge


def _skin_distance(skin: Mesh, grid: Grid, axis: LimbAxis, region: Region,
                   settings: OrthosisSettings) -> DistanceField:
    """Signed distance to the skin on the working grid, exact where the shell's faces are read.

    As :func:`~medprint.design.fields.mesh_distance` (sign from voxelising the skin, the Euclidean distance
    transform of that, exact point-to-triangle distances in a band around the gap and gap + thickness wide
    enough for the transform's error), with less work where nothing is read: the exact distances only where the region keeps the wall
    (the cuts' field within the rounding and two steps; not in the opening, nor beyond the planes), and, when
    the inner face is farther from the skin than that band reaches, the distance transform of the outside only
    (the inside is then never read: every point there is "no material").
    """
    h = grid.spacing_mm
    inside = voxelise(skin, grid)
    if not inside.any():
        raise DesignError(f"the skin surface encloses no point of a {h:g} mm grid: it is thinner than the grid or "
                          "not closed; use a finer --resolution or repair the mesh")
    slack = settings.edge_radius_mm + 2 * h
    levels = (settings.gap_mm, settings.outer_mm)
    if settings.gap_mm - slack - 2 * h > 0:
        # Only positive distances are read; edt to the inside's grid points, half a step to the face between.
        rough = edt.edt(~inside, anisotropy=(h, h, h), black_border=False, parallel=EDT_THREADS).astype(np.float32)
        rough -= np.float32(h / 2)
        rough[inside] = np.float32(-h / 2)
        # Outside, the transform is never short of the distance by more than half a step (the segment to the
        # nearest inside point crosses the skin) and overshoots it by up to about 1.4 steps (measured on the
        # head: 0.67 mm at 0.5 mm): marching cubes reads the points within a step of a level, so the band is
        # asymmetric, 1.5 steps below and 2.5 above.
        below, above = 1.5 * h, 2.5 * h
    else:
        rough = -edt.sdf(inside, anisotropy=(h, h, h), parallel=EDT_THREADS).astype(np.float32)
        rough += np.where(inside, h / 2, -h / 2).astype(np.float32)
        below = above = 2.5 * h
    band = np.zeros(grid.shape, dtype=bool)
    for level in levels:
        offset = rough - np.float32(level)
        band |= (offset >= -below) & (offset <= above)
        del offset
    index = np.flatnonzero(band)
    del band
    k, j, i = np.unravel_index(index, grid.shape)
    x, y, z = grid.axes_lps()
    points = np.column_stack([x[i], y[j], z[k]])
    del k, j, i
    kept = cut_distance(points, axis, region, settings.edge_radius_mm) <= slack
    index, points = index[kept], points[kept]
    if len(index):
        exact = np.sqrt(squared_distances(points, skin)).astype(np.float32)
        flat = rough.reshape(-1)
        flat[index] = np.where(inside.reshape(-1)[index], -exact, exact)
    return DistanceField(rough, grid.geometry)


#: Fewest points worth sharing out between processes (below, a process costs more than it saves).
_PARALLEL_POINTS = 200_000
_shared: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]] | None = None


def squared_distances(points: NDArray[np.float64], mesh: Mesh) -> NDArray[np.float64]:
    """Squared exact distances from points to a mesh's triangles (libigl), shared out over the CPU's cores.

    libigl's query holds Python's lock and runs on one core; on Linux the points are split between forked
    processes (each inherits the arrays, none is pickled but its share of the result), elsewhere or for few
    points it runs here.
    """
    global _shared
    workers = min(EDT_THREADS, 8)
    if workers < 2 or len(points) < _PARALLEL_POINTS or "fork" not in multiprocessing.get_all_start_methods():
        return np.asarray(igl.point_mesh_squared_distance(points, mesh.vertices, mesh.faces)[0]).reshape(-1)
    bounds = np.linspace(0, len(points), workers + 1).astype(np.int64)
    _shared = (points, mesh.vertices, mesh.faces)
    try:
        pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_worker_signals)
        try:
            others = [pool.submit(_squared_distance_share, int(a), int(b)) for a, b in zip(bounds[1:-1], bounds[2:])]
            first = _squared_distance_in_chunks(int(bounds[0]), int(bounds[1]))
            result = np.concatenate([first] + [future.result() for future in others])
        except BaseException:
            # Stopped (SIGTERM, Ctrl-C) or failed: end the workers now rather than wait for their shares.
            _end_workers(pool)
            raise
        pool.shutdown(wait=True)
        return result
    except (OSError, BrokenProcessPool) as error:  # no process to be had (memory, limits): all of it here
        log.info("exact distances in one process (%s)", error)
        return _squared_distance_in_chunks(0, len(points))
    finally:
        _shared = None


#: Points per libigl query in this process: a signal (a stop) is handled between queries, not after all of them.
_CHUNK_POINTS = 250_000


def _squared_distance_in_chunks(start: int, stop: int) -> NDArray[np.float64]:
    cuts = list(range(start, stop, _CHUNK_POINTS)) + [stop]
    return np.concatenate([_squared_distance_share(a, b) for a, b in zip(cuts[:-1], cuts[1:])])


def _worker_signals() -> None:
    """In a forked worker: end at SIGTERM/SIGHUP (the default), leave Ctrl-C to the parent, which ends the workers
    itself; never run the parent's stop handler, which would clean up the parent's run from here."""
    import signal

    for name, action in (("SIGTERM", signal.SIG_DFL), ("SIGHUP", signal.SIG_DFL), ("SIGINT", signal.SIG_IGN)):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), action)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    processes = list(getattr(pool, "_processes", None) or {})
    workers = [pool._processes[pid] for pid in processes]  # type: ignore[index]
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=5)


def _squared_distance_share(start: int, stop: int) -> NDArray[np.float64]:
    assert _shared is not None
    points, vertices, faces = _shared
    return np.asarray(igl.point_mesh_squared_distance(points[start:stop], vertices, faces)[0]).reshape(-1)


def _one_body(mesh: Mesh, axis: LimbAxis, settings: OrthosisSettings,
              spacing: float) -> tuple[Mesh, dict[str, Any]]:
    """Keep the shell one body: drop separate pieces only when they are crumbs, refuse when one is real.

    A piece of the surface smaller across (bounding box) than the wall is thick cannot be a part of the wall: it
    is a crumb of a face left between grid points where a cut or a hole meets the wall obliquely, and is
    dropped (said in the report, with its volume).  A larger separate piece is a real part of the shell cut off
    by the region, the opening or the holes: the design is refused, saying where it is.
    """
    # Bodies as the part's check counts them: marching cubes may put two vertices at one grid point (a value at
    # the level), which the check merges, so pieces touching there are one body.
    if body_labels(mesh)[0] <= 1:
        return mesh, {"count": 0, "volume_mm3": 0.0}
    _, merged = np.unique(mesh.vertices, axis=0, return_inverse=True)
    count, face_body = body_labels(Mesh(vertices=mesh.vertices, faces=merged.reshape(-1)[mesh.faces], name=mesh.name))
    if count <= 1:
        return mesh, {"count": 0, "volume_mm3": 0.0}
    bodies = [_faces_subset(mesh, face_body == body) for body in range(count)]
    main = max(bodies, key=lambda body: abs(body.volume_mm3()))
    steps = settings.thickness_mm / spacing
    volume = 0.0
    for body in bodies:
        if body is main:
            continue
        low, high = body.bounds_mm()
        across = float(np.max(np.subtract(high, low)))
        if across >= settings.thickness_mm:
            where = body.vertices.mean(axis=0)[None, :]
            raise DesignError(
                f"the orthosis falls apart: a piece of {abs(body.volume_mm3()):.0f} mm3 ({across:.0f} mm across) at "
                f"{float(axis.along(where)[0]):.0f} mm along the limb's axis, {float(axis.angle_deg(where)[0]):.0f} "
                "degrees around it, is cut off from the rest of the shell by the region's planes, the opening or "
                f"the holes, or by a wall only {steps:.1f} grid steps thick; move --from/--to or --keep-angle, use "
                "fewer or smaller --holes, or a finer --resolution"
            )
        volume += abs(body.volume_mm3())
    log.info("dropped %d crumbs of shell (%.3g mm3)", count - 1, volume)
    return main.with_name(mesh.name), {"count": count - 1, "volume_mm3": round(volume, 4)}


def _faces_subset(mesh: Mesh, keep: NDArray[np.bool_]) -> Mesh:
    used, faces = np.unique(mesh.faces[keep], return_inverse=True)
    return Mesh(vertices=mesh.vertices[used], faces=faces.reshape(-1, 3).astype(np.int64), name=mesh.name)


def round_intersection(a: NDArray[np.floating], b: NDArray[np.floating], radius: float) -> NDArray[np.float32]:
    """Intersection of two distance fields with the edge between them rounded to ``radius`` (mm).

    Inside both, deeper than the radius, it is ``max(a, b)``; near the edge it is the distance to a quarter circle
    tangent to both surfaces (exact when they cross at right angles), so the surface there is that circle.
    """
    r = np.float32(radius)
    ua = np.maximum(a + r, 0)
    ub = np.maximum(b + r, 0)
    return (np.minimum(-r, np.maximum(a, b)) + np.sqrt(ua * ua + ub * ub)).astype(np.float32)


def cut_distance(points: NDArray[np.float64], axis: LimbAxis, region: Region, radius: float) -> NDArray[np.float64]:
    """Signed distance (negative inside) of LPS points to the region kept by the cuts (planes and opening)."""
    rel = np.asarray(points, dtype=float) - axis.start
    field = _cuts(rel @ axis.direction, rel @ axis.reference, rel @ axis.normal, region, radius)
    return np.full(len(rel), -np.inf) if field is None else np.asarray(field, dtype=float)


def _cuts(t: NDArray[np.floating], u: NDArray[np.floating], v: NDArray[np.floating], region: Region,
          radius: float) -> NDArray[np.float32] | None:
    """The cuts' field on arrays of ``t, u, v``: planes across the axis and the opening's half-planes."""
    slab = None
    if region.low_mm is not None:
        slab = np.float32(region.low_mm) - t
    if region.high_mm is not None:
        upper = t - np.float32(region.high_mm)
        slab = upper if slab is None else np.maximum(slab, upper)
    if region.angle_deg is None:
        return None if slab is None else np.asarray(slab, dtype=np.float32)
    first, last = (math.radians(a) for a in region.angle_deg)
    width = (region.angle_deg[1] - region.angle_deg[0]) % 360.0
    # Half-plane through the axis at angle a: the kept side is counter-clockwise of FROM and clockwise of TO.
    after_first = -(-u * np.float32(math.sin(first)) + v * np.float32(math.cos(first)))
    before_last = -u * np.float32(math.sin(last)) + v * np.float32(math.cos(last))
    wedge = np.maximum(after_first, before_last) if width <= 180.0 else np.minimum(after_first, before_last)
    if slab is None:
        return np.asarray(wedge, dtype=np.float32)
    return round_intersection(slab, wedge, radius)


def _trimmed_shell(distance: DistanceField, axis: LimbAxis, region: Region,
                   settings: OrthosisSettings) -> NDArray[np.float32]:
    """The wall cut by the region, edges rounded; computed only in the band around the wall (elsewhere there is
    no material, and the field is a positive constant: no surface can arise there)."""
    d = distance.values
    h = distance.grid.spacing_mm
    slack = settings.edge_radius_mm + 2 * h
    band = np.flatnonzero((d > settings.gap_mm - slack) & (d < settings.outer_mm + slack))
    values = np.full(d.shape, np.float32(slack), dtype=np.float32)
    if len(band) == 0:
        return values
    k, j, i = np.unravel_index(band, d.shape)
    x, y, z = distance.grid.axes_lps()
    rel = np.column_stack([x[i], y[j], z[k]]) - axis.start
    del k, j, i
    near = d.reshape(-1)[band]
    inner = np.float32(settings.gap_mm) - near
    outer = near - np.float32(settings.outer_mm)
    cuts = _cuts((rel @ axis.direction).astype(np.float32), (rel @ axis.reference).astype(np.float32),
                 (rel @ axis.normal).astype(np.float32), region, settings.edge_radius_mm)
    r = settings.edge_radius_mm
    if cuts is None:
        wall = np.maximum(inner, outer)
    else:
        wall = round_intersection(round_intersection(inner, cuts, r), outer, r)
    values.reshape(-1)[band] = wall
    return values
