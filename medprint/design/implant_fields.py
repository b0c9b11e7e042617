"""The implant's distance fields on a working grid cropped to the defect.

The outer and inner tables (radius maps over the defect's chart of rays) become fields ``r - r_out`` and
``r_in - r`` divided by their gradient's length (a first-order distance to each surface), the defect's extent on
the outer table a lateral field, and the skull a signed distance to its iso-surface at the bone threshold (exact
point-to-triangle distances near it and near the rim gap).  The implant is their intersection minus the skull
grown by the gap, cleaned of slivers; everything is a min/max of fields, so its surface is watertight by
construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cc3d
import edt
import igl
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import DesignError
from ..geometry import Geometry
from ..segment.voxels import EDT_THREADS
from .fields import DistanceField, Grid, field_surface, mesh_distance, working_grid
from .implant_defect import RING_INNER_MM, ChartTrace, Tables
from .implant_rays import ScanSampler

if TYPE_CHECKING:
    from .implant import ImplantSettings

#: The opening's ball is this many working steps larger than half the minimum wall: the opened surface is
#: re-meshed on the working grid, whose facets cut a curved edge or a ball-sized bump by a fraction of a step
#: (on the real frontal defect a ball of 1.0 mm left 0.66 mm walls at a rim bump, one of 1.0 mm plus half a
#: step none under 1 mm).
OPENING_MARGIN_STEPS = 0.25
#: Fewest grid points a piece of the eroded implant must hold to be grown back (a 2 x 2 x 2 cell).
MIN_CORE_POINTS = 8
#: Lateral margin (mm) beyond the outermost ray without bone, within which the cut face of the rim is sought.
LATERAL_MARGIN_MM = RING_INNER_MM + 1.0


def build_fields(sampler: ScanSampler, chart: ChartTrace, tables: Tables,
            settings: ImplantSettings) -> tuple[Grid, dict[str, NDArray[np.float32]]]:
    """The fields the implant is made of, on a grid cropped to the defect."""
    h = settings.resolution_mm
    margin_mm = LATERAL_MARGIN_MM + max(0.0, -settings.rim_gap_mm)
    region = chart.hole_distance_mm(margin_mm + 2 * h) <= 0
    directions = chart.chart.directions()[region.ravel()]
    inner = tables.r_in[region] - 2.0
    outer = tables.r_out[region] + 2.0
    corners = np.vstack([chart.centre + directions * inner[:, None], chart.centre + directions * outer[:, None]])
    grid = working_grid(corners.min(axis=0), corners.max(axis=0), h, margin_mm=3 * h + abs(settings.rim_gap_mm))
    probe = DistanceField(np.zeros(grid.shape, np.float32), grid.geometry)
    points = probe.points_lps()
    vectors = points - chart.centre
    r = np.linalg.norm(vectors, axis=1)
    u, v = chart.chart.to_uv(vectors)
    far = np.float32(1e3)
    r_out = chart.chart.sample(tables.r_out, u, v)
    r_in = chart.chart.sample(tables.r_in, u, v)
    f_out = normalised(np.where(np.isfinite(r_out), r - r_out, far).reshape(grid.shape), h)
    if settings.thickness_mm is not None:
        f_in = -np.float32(settings.thickness_mm) - f_out
    else:
        f_in = normalised(np.where(np.isfinite(r_in), r_in - r, far).reshape(grid.shape), h)
    lateral = chart.chart.sample(chart.hole_distance_mm(margin_mm), u, v, cval=float(far)).reshape(grid.shape)
    if settings.thickness_mm is None and not settings.solid:
        gap_in = chart.chart.sample(tables.gap_in, u, v)
        gap_out = chart.chart.sample(tables.gap_out, u, v)
        cavity = np.where(np.isfinite(gap_in) & np.isfinite(gap_out), np.maximum(r - gap_out, gap_in - r), far)
        cavity = cavity.reshape(grid.shape).astype(np.float32)
        # The cavity is kept only where the solid between the tables holds it with a skin of at least the minimum
        # wall on every side (measured in 3-D, not only along the rays: a sinus tilted under the table).
        tables_only = np.maximum(f_out, f_in)
        cavity = np.maximum(cavity, tables_only + np.float32(skin_mm(settings)))
        if (cavity < 0).any():
            # Radial differences measure the skins over and under the cavity, not the distance to where it
            # ends sideways (its edge, where it meets the rim's bone): the exact distance to its surface does, so
            # that the opening also thickens the bone between the cavity's edge and the rim.
            surface = field_surface(DistanceField(cavity, grid.geometry), "cavity")
            cavity = mesh_distance(surface, grid, exact_within_mm=(0.0, opening_radius_mm(settings))).values
            f_in = np.maximum(f_in, -cavity)
    hole_edge = chart.chart.sample(chart.hole_distance_mm(0.0), u, v, cval=float(far)).reshape(grid.shape)
    bone = bone_distance(sampler, grid, points, settings)
    rim_half = np.float32(max(0.4, 0.75 * h))
    rim = np.maximum(np.abs(f_out) - rim_half, np.abs(hole_edge) - rim_half)
    return grid, {
        "outer": f_out.astype(np.float32), "inner": f_in.astype(np.float32), "lateral": lateral.astype(np.float32),
        "bone": bone, "rim": rim.astype(np.float32),
    }


def skin_mm(settings: ImplantSettings) -> float:
    """Thinnest wall the tables and a cavity's skins are built with: the minimum wall and a grid step, so that
    the opening by half the minimum wall (:func:`open_field`) keeps a core of at least a step everywhere."""
    return float(settings.min_wall_mm + settings.resolution_mm)


def opening_radius_mm(settings: ImplantSettings) -> float:
    """Radius of the ball the implant is opened by: half the minimum wall plus :data:`OPENING_MARGIN_STEPS` of a
    step; for an implant of a given thickness close to that, half the thickness less a step (an opening by half
    the thickness itself would leave no core to grow back from)."""
    radius = settings.min_wall_mm / 2 + OPENING_MARGIN_STEPS * settings.resolution_mm
    if settings.thickness_mm is not None:
        radius = min(radius, max(settings.thickness_mm - settings.resolution_mm, settings.resolution_mm) / 2)
    return float(radius)


def normalised(values: NDArray[np.float64], h: float) -> NDArray[np.float32]:
    """``f / |grad f|``: a radial difference turned into a first-order distance to its zero surface."""
    gradient = np.gradient(values.astype(np.float32), h)
    norm = np.sqrt(sum(g * g for g in gradient))
    return (values / np.maximum(norm, 0.2)).astype(np.float32)


def bone_distance(sampler: ScanSampler, grid: Grid, points: NDArray[np.float64],
                   settings: ImplantSettings) -> NDArray[np.float32]:
    """Signed distance (mm) to the skull's iso-surface at the bone threshold, exact near it and near the gap."""
    bone, values = sampler.bone_and_hu(points)
    zyx = sampler.index_zyx(points)
    gate = ndimage.map_coordinates(sampler.body, zyx, order=0, mode="constant", cval=False, prefilter=False)
    level = np.where(gate, sampler.low_hu - values, np.maximum(sampler.low_hu - values, 1.0) + 1.0)
    level = np.where(values > sampler.high_hu, values - sampler.high_hu, level)
    field = DistanceField(level.reshape(grid.shape).astype(np.float32), grid.geometry)
    if not bone.any():
        raise DesignError("the skull around the defect was lost on the working grid; use a finer --resolution")
    skull_here = field_surface(field, "skull")
    # Exact where the implant's faces are read off: the skull itself, the gap, and the gap deepened by half the
    # minimum wall (the eroded implant of the opening).
    levels = (0.0, abs(settings.rim_gap_mm), settings.rim_gap_mm + opening_radius_mm(settings))
    return mesh_distance(skull_here, grid, exact_within_mm=levels).values


def open_field(values: NDArray[np.float32], radius_mm: float, geometry: Geometry) -> NDArray[np.float32]:
    """Morphological opening of the solid ``{values < 0}`` by a ball of ``radius_mm``, with true re-distancing.

    Erosion is the level set ``values < -radius`` (exact where ``values`` is a distance inside, as a max of
    distances is); the dilation back is the exact point-to-triangle distance to that eroded surface minus the
    radius, computed in the band where the result's surface can lie.  What is left is the union of the balls of
    that radius that fit inside: no wall, edge or skin of it is thinner than the ball's diameter.  The result is
    intersected with the input, so nothing grows (the rim gap stays where it was).
    """
    eroded = values < -radius_mm
    if not eroded.any():
        raise DesignError(f"the implant is thinner than --min-wall {2 * radius_mm:g} mm everywhere; give a smaller "
                          "--min-wall or a finer --resolution")
    h = float(geometry.spacing[0])
    # A piece of the eroded solid smaller than a grid cell would grow back into a lone ball the grid cannot
    # mesh (a nub on the surface that measures thinner than its ball): dropped with what it would grow.
    labels, count = cc3d.connected_components(eroded, connectivity=26, return_N=True)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    small = (sizes < MIN_CORE_POINTS)[labels] & eroded
    if small.any():
        eroded = eroded & ~small
        if not eroded.any():
            raise DesignError(f"the implant is thinner than --min-wall {2 * radius_mm:g} mm everywhere; give a "
                              "smaller --min-wall or a finer --resolution")
    core_values = np.where(small, np.float32(-radius_mm + h), values).astype(np.float32)
    core = field_surface(DistanceField(core_values, geometry), "core", level=-radius_mm)
    band = (values < 2 * h) & (values > -radius_mm - 2 * h)
    index = np.flatnonzero(band)
    points = _points_lps(geometry, values.shape, index)
    squared, _, _ = igl.point_mesh_squared_distance(points, core.vertices, core.faces)
    distance = np.sqrt(squared).astype(np.float32)
    inside = eroded.reshape(-1)[index]
    dilated = np.where(inside, -distance - radius_mm, distance - radius_mm).astype(np.float32)
    result = values.copy().reshape(-1)
    result[index] = np.maximum(result[index], dilated)
    return result.reshape(values.shape)


def _points_lps(geometry: Geometry, shape: tuple[int, ...], flat_index: NDArray[np.intp]) -> NDArray[np.float64]:
    k, j, i = np.unravel_index(flat_index, shape)
    (sx, sy, sz), (ox, oy, oz) = geometry.spacing, geometry.origin
    return np.column_stack([ox + sx * i, oy + sy * j, oz + sz * k]).astype(np.float64)


def implant_field(fields: dict[str, NDArray[np.float32]], settings: ImplantSettings, geometry: Geometry) -> tuple[
        NDArray[np.float32], int, float]:
    """The implant: the shell between the tables, in the defect, off the bone by the gap, opened by half the
    minimum wall (no knife edge at the rim, no sliver where the fitted tables graze the bone); pieces removed.

    Returns the field, how many pieces apart from the main body were dropped, and their share of the material.
    """
    shell = np.maximum(np.maximum(fields["outer"], fields["inner"]), fields["lateral"])
    gap = np.float32(settings.rim_gap_mm)
    h = settings.resolution_mm
    if gap >= 0:
        values = np.maximum(shell, gap - fields["bone"])
    else:
        exact = np.maximum(shell, -fields["bone"])
        inside = exact < 0
        grown = -edt.sdf(inside, anisotropy=(h, h, h), parallel=EDT_THREADS).astype(np.float32)
        grown += np.where(inside, h / 2, -h / 2).astype(np.float32)
        values = np.maximum(shell, np.minimum(exact, grown + gap))
    if not (values < 0).any():
        raise DesignError("the implant is empty: the reconstructed tables leave no room in the defect; try "
                          "--method rim or a smaller --gap")
    values = open_field(values, opening_radius_mm(settings), geometry)
    inside = values < 0
    # Slivers where the fitted tables graze the rim's bone are thinner than the grid: an opening by a little
    # more than one step removes them and leaves the body (kept exactly where it is) alone.
    radius = 1.01 * h
    core = edt.edt(inside, anisotropy=(h, h, h), parallel=EDT_THREADS) > radius
    opened = edt.edt(~core, anisotropy=(h, h, h), parallel=EDT_THREADS) <= radius
    labels, count = cc3d.connected_components(opened, connectivity=26, return_N=True)
    if count == 0:
        raise DesignError("the implant is thinner than the working grid everywhere; use a finer --resolution")
    sizes = np.bincount(labels.ravel())[1:]
    body = labels == int(np.argmax(sizes)) + 1
    # What survives the opening but lies apart from the main body is not a sliver: a piece of the implant.
    lost = 1.0 - float(sizes.max()) / float(sizes.sum())
    keep = edt.edt(~body, anisotropy=(h, h, h), parallel=EDT_THREADS) <= 2.0 * h
    values = np.where(keep, values, np.maximum(values, np.float32(h)))
    # One body, solid: the largest face-connected part, its enclosed cavities (diploe below threshold) filled.
    solid = values < 0
    labels, count = cc3d.connected_components(solid, connectivity=6, return_N=True)
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == int(np.argmax(sizes)) + 1
    filled = ndimage.binary_fill_holes(largest)
    values = np.where(solid & ~largest, np.float32(h), values)
    values = np.where(filled & ~largest, np.float32(-h), values)
    return values.astype(np.float32), int(count - 1), lost
