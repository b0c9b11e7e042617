"""Layers of polygons to extrusion paths: perimeters, solid and sparse infill, supports, skirt/brim.

All geometry is shapely 2 (GEOS) called on whole arrays per layer: offsets
with ``buffer``, solid areas as differences with the layers above and below,
infill as one precomputed pattern clipped by ``intersection``.  Python loops
run over layers and features, never over points.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from ..progress import ProgressCallback, no_progress
from .infill import clip_pattern, gyroid, hatch_fill, lines_of
from .paths import (
    FEATURE_NAMES,
    GAP_FILL,
    PERIMETER_INNER,
    PERIMETER_OUTER,
    RESOLUTION_MM,
    SKIRT,
    SOLID,
    SPARSE,
    SUPPORT,
    THIN_WALL,
    LayerPaths,
    from_geoms,
    from_segments,
)
from .supports import (
    SUPPORT_CELL_MM,
    SUPPORT_GAP_MM,
    SupportRaster,
    support_blocks,
    support_paths,
)
from .thin_walls import ThinWalls

__all__ = [
    "FEATURE_NAMES", "GAP_FILL", "INFILL_PATTERNS", "PERIMETER_INNER", "PERIMETER_OUTER", "SKIRT", "SOLID", "SPARSE",
    "SUPPORT", "SUPPORT_GAP_MM", "THIN_WALL", "LayerPaths", "PathChoices", "ToolpathSettings", "build_toolpaths",
]


INFILL_PATTERNS = ("rectilinear", "grid", "gyroid")


log = logging.getLogger("medprint")


@dataclass(frozen=True, kw_only=True)
class PathChoices:
    """What the user chooses about the paths (lengths mm); shared by the job settings and the toolpath builder."""

    perimeters: int = 2
    top_layers: int = 4
    bottom_layers: int = 3
    infill_density: float = 0.15
    infill_pattern: str = "grid"
    supports: bool = False
    support_angle_deg: float = 45.0
    support_xy_gap_mm: float = 0.6
    support_z_gap_layers: int = 1
    brim_width_mm: float = 0.0
    skirt_loops: int = 1
    skirt_distance_mm: float = 3.0

    def path_choices(self) -> dict[str, object]:
        """Just the :class:`PathChoices` fields, to hand on to :class:`ToolpathSettings`."""
        return {f.name: getattr(self, f.name) for f in fields(PathChoices)}


@dataclass(frozen=True, kw_only=True)
class ToolpathSettings(PathChoices):
    """Geometry of the paths (all lengths mm): the user's choices plus what the printer and layers fix."""

    line_width_mm: float
    layer_heights_mm: NDArray[np.float64]
    infill_overlap: float = 0.15
    #: Walls narrower than a line but at least this wide get one line of their own width (``None``: a third of
    #: the line width; the engine passes a third of the nozzle, PrusaSlicer's limit for thin walls).
    thin_wall_min_mm: float | None = None


def build_toolpaths(layers: list[shapely.MultiPolygon], settings: ToolpathSettings, *,
                    progress: ProgressCallback = no_progress) -> Iterator[LayerPaths]:
    """Extrusion paths for every layer, yielded layer by layer (so G-code can be written as they come).

    Parameters
    ----------
    layers : list of shapely.MultiPolygon
        The material in each layer (from :func:`medprint.slice.planar.section`).
    settings : ToolpathSettings

    Yields
    ------
    LayerPaths, one per layer
    """
    w = settings.line_width_mm
    count = len(layers)
    regions = [shapely.simplify(layer, RESOLUTION_MM) if not layer.is_empty else layer for layer in layers]
    del layers  # the simplified copies are all that is needed from here on
    nonempty = [r for r in regions if not r.is_empty]
    if not nonempty:
        return
    bounds = shapely.total_bounds(np.array(nonempty, dtype=object))
    bounds_t = (float(bounds[0]) - 5, float(bounds[1]) - 5, float(bounds[2]) + 5, float(bounds[3]) + 5)
    density = settings.infill_density
    # (spacing, angles per layer parity) of the sparse pattern; grid prints both directions every layer.
    sparse_spacing = 0.0
    sparse_angles: list[tuple[float, ...]] = []
    if density > 0 and settings.infill_pattern == "rectilinear":
        sparse_spacing, sparse_angles = w / density, [(45.0,), (-45.0,)]
    elif density > 0 and settings.infill_pattern == "grid":
        sparse_spacing, sparse_angles = 2 * w / density, [(45.0, -45.0)]
    pitch = SUPPORT_GAP_MM + w  # PrusaSlicer's support grid: the gap between lines plus one line
    block = max(round(pitch / SUPPORT_CELL_MM), 1)
    raster = SupportRaster(bounds_t, pitch / block, block)
    blocks_per_layer = support_blocks(regions, settings, raster) if settings.supports else [None] * count
    # Solid/sparse decisions need no fine detail: intersect coarse outlines.
    # Using the neighbours' infill areas (not their outlines) also makes solid the band a sloped wall
    # leaves beside the perimeters, keeping the shell as thick as the perimeters (like "ensure vertical
    # shell thickness").
    inset_infill = settings.perimeters * w - settings.infill_overlap * w
    coarse = [shapely.simplify(shapely.buffer(r, -inset_infill, quad_segs=2), 0.1) if not r.is_empty else r
              for r in regions]

    thin = ThinWalls(w, settings.thin_wall_min_mm if settings.thin_wall_min_mm is not None else w / 3)
    for i in range(count):
        region = regions[i]
        groups: list[tuple[Any, ...]] = []
        support = shapely.Polygon()
        support_group = None
        blocks = blocks_per_layer[i]
        if blocks is not None:
            support, xy, index = support_paths(blocks, region, raster, settings, first_layer=i == 0)
            blocks_per_layer[i] = None
            support_group = (SUPPORT, xy, index)
        if i == 0:
            groups.append(from_geoms(SKIRT, _skirt_and_brim(region, support, settings)))
        if support_group is not None:
            groups.append(support_group)
        if not region.is_empty:
            centres = [shapely.buffer(region, -(w / 2 + k * w), quad_segs=2, join_style="mitre", mitre_limit=2.0)
                       for k in range(settings.perimeters)]
            for k in reversed(range(settings.perimeters)):
                if centres[k].is_empty:
                    continue
                rings = lines_of(centres[k])
                groups.append(from_geoms(PERIMETER_OUTER if k == 0 else PERIMETER_INNER,
                                          rings[shapely.length(rings) >= 2 * w]))
            # What the outer perimeter leaves out is a wall too thin for it; what an inner one leaves out of the
            # area inside the one before is a gap between perimeters (a wall between one and two lines wide).
            groups.append(thin.paths(region, centres[0], feature=THIN_WALL, layer=i))
            for k in range(1, settings.perimeters):
                if centres[k - 1].is_empty:
                    break
                inside = shapely.buffer(centres[k - 1], -w / 2, quad_segs=2, join_style="mitre", mitre_limit=2.0)
                # (a gap shorter than a few lines is a corner's worth, not worth a travel to it)
                groups.append(thin.paths(inside, centres[k], feature=GAP_FILL, min_length_mm=4 * w))
            infill_area = shapely.buffer(region, -inset_infill, quad_segs=2, join_style="mitre", mitre_limit=2.0)
            if not infill_area.is_empty:
                core = shapely.simplify(infill_area, 0.1)
                below = range(i - settings.bottom_layers, i)
                above = range(i + 1, i + 1 + settings.top_layers)
                for j in (*above, *below):
                    if j < 0 or j >= count or coarse[j].is_empty:
                        core = shapely.Polygon()
                        break
                    core = shapely.intersection(core, coarse[j])
                    if core.is_empty:
                        break
                if not core.is_empty:
                    core = shapely.intersection(core, infill_area)
                solid = shapely.difference(infill_area, core) if not core.is_empty else infill_area
                angle = 45.0 if i % 2 == 0 else -45.0
                groups.append(from_segments(SOLID, hatch_fill(solid, w, angle, min_length=w), area=solid,
                                             spacing_mm=w, link_mm=3 * w, tolerance_mm=w / 4))
                if density > 0 and not core.is_empty:
                    if settings.infill_pattern == "gyroid":
                        pattern = gyroid(bounds_t, w / density, float(settings.layer_heights_mm[: i + 1].sum()))
                        groups.append(from_geoms(SPARSE, clip_pattern(core, pattern, w)))
                    else:
                        for angle in sparse_angles[i % len(sparse_angles)]:
                            # Joined where the connector stays inside, as real slicers anchor infill lines to
                            # each other: a spacing-long extra line costs less time than a travel and retraction.
                            groups.append(from_segments(SPARSE, hatch_fill(core, sparse_spacing, angle,
                                                                            min_length=w),
                                                         area=core, spacing_mm=sparse_spacing,
                                                         link_mm=1.5 * sparse_spacing,
                                                         tolerance_mm=w / 4))
        yield _pack(groups, region, support)
        if i % 16 == 0:
            progress("toolpaths", i, count)
    progress("toolpaths", count, count)
    thin.report()


def _pack(groups: list[tuple[Any, ...]], region: shapely.Geometry, support: shapely.Geometry) -> LayerPaths:
    """Groups ``(feature, xy, path index[, width per point])`` into one layer, paths numbered in order."""
    xys, paths, features, widths = [], [], [], []
    base = 0
    varied = False
    for group in groups:
        feature, xy, index = group[:3]
        if xy.shape[0] == 0:
            continue
        n_paths = int(index[-1]) + 1
        xys.append(xy)
        paths.append(index + base)
        features.append(np.full(n_paths, feature, dtype=np.int64))
        widths.append(group[3] if len(group) > 3 else None)
        varied |= len(group) > 3
        base += n_paths
    if not xys:
        return LayerPaths(np.empty((0, 2)), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), region, support)
    width = None
    if varied:
        width = np.concatenate([np.full(xy.shape[0], np.nan) if v is None else v for xy, v in zip(xys, widths)])
    return LayerPaths(xy=np.concatenate(xys), path=np.concatenate(paths), feature=np.concatenate(features),
                      region=region, support=support, width=width)


def _skirt_and_brim(region: shapely.Geometry, support: shapely.Geometry,
                    settings: ToolpathSettings) -> NDArray[np.object_]:
    w = settings.line_width_mm
    base = shapely.union_all([region, support])
    if base.is_empty:
        return np.empty(0, dtype=object)
    loops = []
    brim_loops = round(settings.brim_width_mm / w)
    for k in reversed(range(brim_loops)):
        loops.append(shapely.get_exterior_ring(shapely.get_parts(shapely.buffer(base, w / 2 + k * w, quad_segs=4))))
    hull = shapely.convex_hull(base)
    outer = settings.skirt_distance_mm + brim_loops * w
    for k in range(settings.skirt_loops):
        loops.append(np.array([shapely.get_exterior_ring(shapely.buffer(hull, outer + w / 2 + k * w, quad_segs=4))]))
    return np.concatenate(loops) if loops else np.empty(0, dtype=object)


