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
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import DesignError
from ..segment.voxels import EDT_THREADS
from .fields import DistanceField, Grid, field_surface, mesh_distance, working_grid
from .implant_defect import RING_INNER_MM, ChartTrace, Tables
from .implant_rays import ScanSampler

if TYPE_CHECKING:
    from .implant import ImplantSettings

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
    if settings.thickness_mm is None and not settings.solid:
        gap_in = chart.chart.sample(tables.gap_in, u, v)
        gap_out = chart.chart.sample(tables.gap_out, u, v)
        cavity = np.where(np.isfinite(gap_in) & np.isfinite(gap_out), np.maximum(r - gap_out, gap_in - r), far)
        f_in = np.maximum(f_in, -cavity.reshape(grid.shape).astype(np.float32))
    lateral = chart.chart.sample(chart.hole_distance_mm(margin_mm), u, v, cval=float(far)).reshape(grid.shape)
    hole_edge = chart.chart.sample(chart.hole_distance_mm(0.0), u, v, cval=float(far)).reshape(grid.shape)
    bone = bone_distance(sampler, grid, points, settings)
    rim_half = np.float32(max(0.4, 0.75 * h))
    rim = np.maximum(np.abs(f_out) - rim_half, np.abs(hole_edge) - rim_half)
    return grid, {
        "outer": f_out.astype(np.float32), "inner": f_in.astype(np.float32), "lateral": lateral.astype(np.float32),
        "bone": bone, "rim": rim.astype(np.float32),
    }


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
    levels = (0.0, abs(settings.rim_gap_mm))
    return mesh_distance(skull_here, grid, exact_within_mm=levels).values


def implant_field(fields: dict[str, NDArray[np.float32]], settings: ImplantSettings) -> tuple[
        NDArray[np.float32], int, float]:
    """The implant: the shell between the tables, in the defect, off the bone by the gap; slivers removed.

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
    inside = values < 0
    if not inside.any():
        raise DesignError("the implant is empty: the reconstructed tables leave no room in the defect; try "
                          "--method rim or a smaller --gap")
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
