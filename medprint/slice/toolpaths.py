"""Layers of polygons to extrusion paths: perimeters, solid and sparse infill, supports, skirt/brim.

All geometry is shapely 2 (GEOS) called on whole arrays per layer: offsets
with ``buffer``, solid areas as differences with the layers above and below,
infill as one precomputed pattern clipped by ``intersection``.  Python loops
run over layers and features, never over points.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from ..progress import ProgressCallback, no_progress

#: Feature codes, in the order they are printed within a layer.
SKIRT, SUPPORT, PERIMETER_INNER, PERIMETER_OUTER, THIN_WALL, GAP_FILL, SOLID, SPARSE = range(8)
FEATURE_NAMES = ("skirt", "support", "perimeter", "external perimeter", "thin wall", "gap fill", "solid infill",
                 "infill")
INFILL_PATTERNS = ("rectilinear", "grid", "gyroid")

#: Detail below this (mm) is removed from outlines before offsetting (the printer cannot show it).
RESOLUTION_MM = 0.02

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


@dataclass
class LayerPaths:
    """One layer's paths: ``xy[k]`` is the k-th point, ``path[k]`` its path number; paths in print order."""

    xy: NDArray[np.float64]
    path: NDArray[np.int64]
    feature: NDArray[np.int64]  # per path
    region: shapely.Geometry = field(repr=False)  # the part in this layer
    support: shapely.Geometry = field(repr=False)  # support area in this layer
    width: NDArray[np.float64] | None = None  # per point: width (mm) of the line ending there; None: the line width


def _lines(geometry: shapely.Geometry) -> NDArray[np.object_]:
    """Every line or ring of ``geometry`` as an array of LineStrings/LinearRings."""
    parts = shapely.get_parts(geometry)
    if parts.size == 0:
        return parts
    kinds = shapely.get_type_id(parts)
    polys = parts[(kinds == 3)]
    out = [parts[(kinds == 1) | (kinds == 2)]]
    if polys.size:
        out.append(shapely.get_exterior_ring(polys))
        counts = shapely.get_num_interior_rings(polys)
        if counts.sum():
            idx = np.repeat(np.arange(polys.size), counts)
            ring_no = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            out.append(shapely.get_interior_ring(polys[idx], ring_no))
    return np.concatenate(out)


def hatch_fill(area: shapely.Geometry, spacing: float, angle_deg: float, *, min_length: float,
               offset: float = 0.0) -> NDArray[np.float64]:
    """Parallel lines ``spacing`` apart at ``angle_deg`` clipped to ``area`` (even-odd), by scanlines.

    Every ring edge is intersected with the lines it crosses in one numpy batch (half-open in the
    across direction, so a vertex on a line counts once); sorted along each line, crossings pair up
    into inside segments.  Lines alternate direction (boustrophedon) to keep travel short.

    Returns
    -------
    ndarray of float64, shape (N, 2, 2)
        Segment start and end points, in print order.
    """
    if area.is_empty:
        return np.empty((0, 2, 2))
    rings = _lines(area)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    p0, p1 = xy[:-1][same], xy[1:][same]
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    u0, v0 = p0 @ (c, s), p0 @ (-s, c)
    u1, v1 = p1 @ (c, s), p1 @ (-s, c)
    vlo, vhi = np.minimum(v0, v1), np.maximum(v0, v1)
    k_first = np.ceil((vlo - offset) / spacing).astype(np.int64)
    k_end = np.ceil((vhi - offset) / spacing).astype(np.int64)
    counts = np.maximum(k_end - k_first, 0)
    total = int(counts.sum())
    if total == 0:
        return np.empty((0, 2, 2))
    edge = np.repeat(np.arange(counts.size), counts)
    k = k_first[edge] + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    v = offset + k * spacing
    t = (v - v0[edge]) / (v1[edge] - v0[edge])
    u = u0[edge] + t * (u1[edge] - u0[edge])
    order = np.lexsort((u, k))
    k, u, v = k[order], u[order], v[order]
    # Pair crossings along each line; a line with an odd count (numerical trouble) is dropped.
    line_start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    line_count = np.diff(np.r_[line_start, k.size])
    good = np.repeat(line_count % 2 == 0, line_count)
    k, u, v = k[good], u[good], v[good]
    ua, ub, vk, kk = u[0::2], u[1::2], v[0::2], k[0::2]
    keep = ub - ua >= min_length
    ua, ub, vk, kk = ua[keep], ub[keep], vk[keep], kk[keep]
    if ua.size == 0:
        return np.empty((0, 2, 2))
    odd = (kk % 2) == 1
    order = np.lexsort((np.where(odd, -ua, ua), kk))
    ua, ub, vk, odd = ua[order], ub[order], vk[order], odd[order]
    start_u = np.where(odd, ub, ua)
    end_u = np.where(odd, ua, ub)
    start = np.stack([start_u * c - vk * s, start_u * s + vk * c], axis=1)
    end = np.stack([end_u * c - vk * s, end_u * s + vk * c], axis=1)
    return np.stack([start, end], axis=1)


def _hatch(bounds: tuple[float, float, float, float], spacing: float, angle_deg: float,
           offset: float = 0.0) -> shapely.MultiLineString:
    """Parallel lines ``spacing`` apart at ``angle_deg`` covering ``bounds``, every other one reversed."""
    minx, miny, maxx, maxy = bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    radius = np.hypot(maxx - minx, maxy - miny) / 2 + spacing
    start = -radius + (offset % spacing)
    n = int(np.ceil(2 * radius / spacing)) + 1
    d = start + spacing * np.arange(n)
    a = np.radians(angle_deg)
    ux, uy = np.cos(a), np.sin(a)  # along the line
    px, py = -uy, ux  # across
    x0 = cx + d * px - radius * ux
    y0 = cy + d * py - radius * uy
    x1 = cx + d * px + radius * ux
    y1 = cy + d * py + radius * uy
    flip = np.arange(n) % 2 == 1
    x0[flip], x1[flip] = x1[flip].copy(), x0[flip].copy()
    y0[flip], y1[flip] = y1[flip].copy(), y0[flip].copy()
    coords = np.stack([np.stack([x0, y0], axis=1), np.stack([x1, y1], axis=1)], axis=1)
    return shapely.multilinestrings(shapely.linestrings(coords))


def _gyroid(bounds: tuple[float, float, float, float], spacing: float, z: float) -> shapely.MultiLineString:
    """Gyroid section at height ``z``: curves sin x cos y + sin y cos z + sin z cos x = 0 (scaled).

    The period is chosen so the curves' length per area matches parallel lines ``spacing`` apart.
    """
    period = 2.0 * np.pi
    scale = period / (spacing * _GYROID_LENGTH_PER_PERIOD)  # radians per mm
    minx, miny, maxx, maxy = bounds
    xs = np.arange(minx - 1, maxx + 1 + 0.25, 0.25)
    u = xs * scale
    w = z * scale
    a, b, c = np.sin(u), np.cos(w), np.sin(w) * np.cos(u)
    r = np.hypot(a, b)
    phi = np.arctan2(b, a)
    ratio = np.clip(-c / np.maximum(r, 1e-12), -1.0, 1.0)
    delta = np.arccos(ratio)
    lines = []
    k_lo = int(np.floor(miny * scale / period)) - 1
    k_hi = int(np.ceil(maxy * scale / period)) + 1
    for sign in (1.0, -1.0):
        base = (phi + sign * delta) / scale
        for k in range(k_lo, k_hi + 1):
            ys = base + k * period / scale
            lines.append(np.stack([xs, ys], axis=1))
    return shapely.multilinestrings(shapely.linestrings(np.array(lines)))


def _gyroid_length_per_period() -> float:
    # Curve length per unit area of the unscaled gyroid section, averaged over z, in units of 1/period:
    # parallel lines spacing s apart have length 1/s per area; match that.
    u = np.linspace(0, 2 * np.pi, 2001)
    total = 0.0
    zs = np.linspace(0, 2 * np.pi, 9)[:-1]
    for w in zs:
        a, b, c = np.sin(u), np.cos(w), np.sin(w) * np.cos(u)
        r = np.hypot(a, b)
        phi = np.arctan2(b, a)
        delta = np.arccos(np.clip(-c / np.maximum(r, 1e-12), -1, 1))
        for sign in (1, -1):
            y = phi + sign * delta
            y = np.unwrap(y)
            total += np.sum(np.hypot(np.diff(u), np.diff(y)))
    length_per_area = total / len(zs) / (2 * np.pi) ** 2  # per rad^2 of one period cell
    return float(length_per_area * 2 * np.pi)


_GYROID_LENGTH_PER_PERIOD = _gyroid_length_per_period()


def _clip(area: shapely.Geometry, pattern: shapely.Geometry, min_length: float) -> NDArray[np.object_]:
    if area.is_empty:
        return np.empty(0, dtype=object)
    lines = shapely.get_parts(shapely.intersection(area, pattern))
    lines = lines[shapely.get_type_id(lines) == 1]
    return lines[shapely.length(lines) >= min_length]


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
    raster = _Raster(bounds_t, pitch / block, block)
    support_blocks = _support_blocks(regions, settings, raster) if settings.supports else [None] * count
    # Solid/sparse decisions need no fine detail: intersect coarse outlines.
    # Using the neighbours' infill areas (not their outlines) also makes solid the band a sloped wall
    # leaves beside the perimeters, keeping the shell as thick as the perimeters (like "ensure vertical
    # shell thickness").
    inset_infill = settings.perimeters * w - settings.infill_overlap * w
    coarse = [shapely.simplify(shapely.buffer(r, -inset_infill, quad_segs=2), 0.1) if not r.is_empty else r
              for r in regions]

    thin = _ThinWalls(w, settings.thin_wall_min_mm if settings.thin_wall_min_mm is not None else w / 3)
    for i in range(count):
        region = regions[i]
        groups: list[tuple[Any, ...]] = []
        support = shapely.Polygon()
        support_group = None
        blocks = support_blocks[i]
        if blocks is not None:
            support, xy, index = _support_paths(blocks, region, raster, settings, first_layer=i == 0)
            support_blocks[i] = None
            support_group = (SUPPORT, xy, index)
        if i == 0:
            groups.append(_from_geoms(SKIRT, _skirt_and_brim(region, support, settings)))
        if support_group is not None:
            groups.append(support_group)
        if not region.is_empty:
            centres = [shapely.buffer(region, -(w / 2 + k * w), quad_segs=2, join_style="mitre", mitre_limit=2.0)
                       for k in range(settings.perimeters)]
            for k in reversed(range(settings.perimeters)):
                if centres[k].is_empty:
                    continue
                rings = _lines(centres[k])
                groups.append(_from_geoms(PERIMETER_OUTER if k == 0 else PERIMETER_INNER,
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
                groups.append(_from_segments(SOLID, hatch_fill(solid, w, angle, min_length=w), area=solid,
                                             spacing_mm=w, link_mm=3 * w, tolerance_mm=w / 4))
                if density > 0 and not core.is_empty:
                    if settings.infill_pattern == "gyroid":
                        pattern = _gyroid(bounds_t, w / density, float(settings.layer_heights_mm[: i + 1].sum()))
                        groups.append(_from_geoms(SPARSE, _clip(core, pattern, w)))
                    else:
                        for angle in sparse_angles[i % len(sparse_angles)]:
                            # Joined where the connector stays inside, as real slicers anchor infill lines to
                            # each other: a spacing-long extra line costs less time than a travel and retraction.
                            groups.append(_from_segments(SPARSE, hatch_fill(core, sparse_spacing, angle,
                                                                            min_length=w),
                                                         area=core, spacing_mm=sparse_spacing,
                                                         link_mm=1.5 * sparse_spacing,
                                                         tolerance_mm=w / 4))
        yield _pack(groups, region, support)
        if i % 16 == 0:
            progress("toolpaths", i, count)
    progress("toolpaths", count, count)
    thin.report()


class _ThinWalls:
    """Walls narrower than one line: printed as one line along their middle, as wide as the wall.

    Like PrusaSlicer's "detect thin walls": what the outer perimeter cannot cover (the part less the
    perimeter's centre line grown by half a line) is opened by half the minimum width, so that slivers
    narrower than that (and the corner bits a round line cannot reach) drop out; the rest is triangulated
    (constrained Delaunay, on outlines resampled every half line) and its chordal axis - the midpoints of the
    triangle edges that cross the wall, joined - is the line's path.  Each segment is as wide as twice its
    midpoint's distance to the wall's outline (clipped to the minimum and the line width), so the volume
    put down follows the wall's.  Walls narrower than the minimum are not printed; they are reported once.

    The same, applied to the area inside each perimeter less what the next one covers, is PrusaSlicer's
    "gap fill": the strip left between the two outer perimeters of a wall one to two lines wide.
    """

    def __init__(self, line_width_mm: float, min_width_mm: float) -> None:
        self.width = line_width_mm
        self.min_width = min_width_mm
        self.area_mm2 = 0.0
        self.layers: list[int] = []

    def paths(self, region: shapely.Geometry, centre: shapely.Geometry, *, feature: int, layer: int | None = None,
              min_length_mm: float | None = None) -> tuple[int, NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
        """Lines (at least ``min_length_mm`` long, default a line width) for what a perimeter along ``centre``
        leaves uncovered of ``region``; ``layer``: report what is too thin to print as being in that layer
        (for the outer perimeter only)."""
        w = self.width
        none = (feature, np.empty((0, 2)), np.empty(0, dtype=np.int64), np.empty(0))
        if region.is_empty:
            return none
        covered = (shapely.buffer(centre, w / 2 + 0.01, quad_segs=2) if not centre.is_empty
                   else shapely.Polygon())
        lost = shapely.difference(region, covered)
        lost_area = float(shapely.area(lost))
        if lost_area <= 0.5 * w**2:  # a few corners of an ordinary outline
            return none
        half = self.min_width / 2
        wall = shapely.intersection(shapely.buffer(shapely.buffer(lost, -half, quad_segs=2), half, quad_segs=2), lost)
        wall = shapely.simplify(wall, RESOLUTION_MM)
        if layer is not None:
            self._lost(layer, lost_area - float(shapely.area(wall)))
        if wall.is_empty:
            return none
        segments = _chordal_axis(wall, step=w / 2)
        if segments.shape[0] == 0:
            return none
        lines = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(shapely.linestrings(segments))))
        lines = lines[shapely.length(lines) >= (min_length_mm if min_length_mm is not None else w)]
        if lines.size == 0:
            return none
        xy, index = shapely.get_coordinates(lines, return_index=True)
        first = np.r_[True, index[1:] != index[:-1]]
        mid = (xy + np.roll(xy, 1, axis=0)) / 2
        width = np.full(xy.shape[0], w)
        moving = ~first
        width[moving] = np.clip(2 * shapely.distance(shapely.points(mid[moving]), shapely.boundary(wall)),
                                self.min_width, w)
        return feature, xy, index.astype(np.int64), width

    def _lost(self, layer: int, area: float) -> None:
        if area > 4 * self.width**2:  # corner clipping of sharp outlines stays below this
            self.area_mm2 += area
            self.layers.append(layer)

    def report(self) -> None:
        if self.layers:
            log.warning(
                "%d layers (first %d) have %.0f mm2 of walls thinner than %.2f mm, too thin even for a thin-wall "
                "line; they are not printed: thicken the model (e.g. --close) or use a finer nozzle",
                len(self.layers), self.layers[0], self.area_mm2, self.min_width,
            )


def _chordal_axis(polygon: shapely.Geometry, *, step: float) -> NDArray[np.float64]:
    """Segments (N, 2, 2) along the middle of a thin polygon: its chordal axis.

    The polygon (resampled every ``step``) is cut into constrained Delaunay triangles; an edge shared by two
    triangles crosses the polygon.  A triangle with two such edges adds the segment between their midpoints;
    one with three (a junction) adds a spoke from each midpoint to its centroid.
    """
    triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(shapely.segmentize(polygon, step)))
    if triangles.size == 0:
        return np.empty((0, 2, 2))
    corner = shapely.get_coordinates(triangles).reshape(-1, 4, 2)[:, :3]
    nxt = np.roll(corner, -1, axis=1)
    edge = np.concatenate([corner, nxt], axis=2).reshape(-1, 4)
    swap = (edge[:, 0] > edge[:, 2]) | ((edge[:, 0] == edge[:, 2]) & (edge[:, 1] > edge[:, 3]))
    edge[swap] = edge[swap][:, [2, 3, 0, 1]]
    _, inverse, counts = np.unique(edge, axis=0, return_inverse=True, return_counts=True)
    crossing = (counts[inverse.ravel()] >= 2).reshape(-1, 3)
    mid = (corner + nxt) / 2
    n = crossing.sum(axis=1)
    sleeve = np.flatnonzero(n == 2)
    pick = np.argsort(~crossing[sleeve], axis=1, kind="stable")[:, :2]
    rows = sleeve[:, None]
    pairs = np.stack([mid[rows, pick[:, :1]][:, 0], mid[rows, pick[:, 1:]][:, 0]], axis=1)
    junction = np.flatnonzero(n == 3)
    spokes = np.stack([mid[junction].reshape(-1, 2), np.repeat(corner[junction].mean(axis=1), 3, axis=0)], axis=1)
    return np.concatenate([pairs, spokes])


def _from_geoms(feature: int, geoms: NDArray[np.object_]) -> tuple[int, NDArray[np.float64], NDArray[np.int64]]:
    if geoms.size == 0:
        return feature, np.empty((0, 2)), np.empty(0, dtype=np.int64)
    xy, index = shapely.get_coordinates(geoms, return_index=True)
    return feature, xy, index.astype(np.int64)


def _from_segments(feature: int, segments: NDArray[np.float64], *, area: shapely.Geometry | None = None,
                   spacing_mm: float = 0.0, link_mm: float = 0.0,
                   tolerance_mm: float = 0.0) -> tuple[int, NDArray[np.float64], NDArray[np.int64]]:
    """Segments as paths; with ``area``, joined into zig-zags (no travel, no retraction): see :func:`_chains`."""
    n = segments.shape[0]
    if area is None or n < 2 or link_mm <= 0:
        return feature, segments.reshape(-1, 2), np.repeat(np.arange(n, dtype=np.int64), 2)
    segments, path_id = _chains(segments, area, spacing_mm=spacing_mm, link_mm=link_mm, tolerance_mm=tolerance_mm)
    return feature, segments.reshape(-1, 2), np.repeat(path_id, 2)


#: Above this many chains in one group, they are taken in scanline order instead of a nearest-first tour.
MAX_TOUR_CHAINS = 400


def _chains(segments: NDArray[np.float64], area: shapely.Geometry, *, spacing_mm: float, link_mm: float,
            tolerance_mm: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Parallel segments (boustrophedon scanline order) linked into zig-zag chains, and the chains ordered.

    Each segment's end is linked to the nearest start, at most ``link_mm`` away, of a segment on the next
    line (``spacing_mm`` further across), when the connector stays inside ``area``; every start takes
    at most one link (the shortest).  Chains follow the links (ranked by pointer jumping, no loop over
    segments); they are then visited nearest first, each entered from whichever end is nearer.  A ring-shaped
    band thus becomes two zig-zags, one per side, instead of a travel across the ring on every line.

    Returns the reordered segments (N, 2, 2) and each one's path number.
    """
    from scipy.spatial import cKDTree

    n = segments.shape[0]
    start, end = segments[:, 0], segments[:, 1]
    along = end - start
    along = along / np.maximum(np.hypot(along[:, 0], along[:, 1]), 1e-12)[:, None]
    # One normal for all lines (they alternate direction), pointing the way the scanlines advance, so that a
    # link always goes to the next line: links never go back, chains never close on themselves.
    along *= np.where(along @ along[0] < 0, -1.0, 1.0)[:, None]
    normal = np.stack([-along[:, 1], along[:, 0]], axis=1)
    if (start[-1] - start[0]) @ normal[0] < 0:
        normal = -normal
    dist, cand = cKDTree(start).query(end, k=min(4, n), distance_upper_bound=link_mm)
    dist, cand = dist.reshape(n, -1), cand.reshape(n, -1)
    found = cand < n
    safe = np.where(found, cand, 0)
    across = np.einsum("ikj,ij->ik", start[safe] - end[:, None, :], normal)
    ok = found & (np.abs(across - spacing_mm) <= 0.25 * spacing_mm)
    first = np.argmax(ok, axis=1)
    has = ok[np.arange(n), first]
    i = np.flatnonzero(has)
    j = safe[i, first[i]]
    d = dist[i, first[i]]
    keep = np.lexsort((d, j))  # by target, nearest first: each start keeps its shortest link
    i, j = i[keep], j[keep]
    if i.size:
        unique = np.r_[True, j[1:] != j[:-1]]
        i, j = i[unique], j[unique]
        # Inside, or within ``tolerance_mm`` of it all along: a chord of a concave edge between two line ends
        # leaves the area by microns, and the line it prints overlaps the perimeters anyway.
        shapely.prepare(area)
        a, b = end[i], start[j]
        inside = shapely.covered_by(shapely.linestrings(np.stack([a, b], axis=1)), area)
        near = ~inside
        for t in (0.25, 0.5, 0.75):
            if not near.any():
                break
            p = a[near] + t * (b[near] - a[near])
            near[near] = shapely.dwithin(shapely.points(p), area, tolerance_mm)
        inside |= near
        i, j = i[inside], j[inside]
    pred = np.arange(n)
    pred[j] = i
    # Rank along each chain: distance to its head by pointer jumping over predecessors.
    head, rank = pred.copy(), (pred != np.arange(n)).astype(np.int64)
    while True:
        nxt = head[head]
        if np.array_equal(nxt, head):
            break
        rank = rank + rank[head]
        head = nxt
    order = np.lexsort((rank, head))
    segments, head = segments[order], head[order]
    cuts = np.flatnonzero(np.r_[True, head[1:] != head[:-1], True])
    lo, hi = cuts[:-1], cuts[1:]
    count = lo.size
    sizes = hi - lo
    if 1 < count <= MAX_TOUR_CHAINS:
        heads, tails = segments[lo, 0], segments[hi - 1, 1]
        todo = np.ones(count, dtype=bool)
        here = heads[int(np.argmin(heads[:, 0] + heads[:, 1]))]
        pieces, visit = [], []
        for _ in range(count):  # a loop over chains, not segments
            d_head = np.where(todo, np.hypot(*(heads - here).T), np.inf)
            d_tail = np.where(todo, np.hypot(*(tails - here).T), np.inf)
            k = int(np.argmin(np.minimum(d_head, d_tail)))
            todo[k] = False
            piece = segments[lo[k]:hi[k]]
            if d_tail[k] < d_head[k]:
                piece = piece[::-1, ::-1]  # the chain backwards: the same lines, in reverse
            pieces.append(piece)
            visit.append(k)
            here = piece[-1, 1]
        segments, sizes = np.concatenate(pieces), sizes[visit]
    path_id = np.repeat(np.arange(count, dtype=np.int64), sizes)
    return segments, path_id


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


#: Cell of the raster the support columns are carried down on (mm); made to divide the support grid exactly.
SUPPORT_CELL_MM = 0.25
#: The support follows PrusaSlicer's "grid" style with its defaults: lines ``SUPPORT_GAP_MM`` apart (edge to
#: edge, PrusaSlicer's ``support_material_spacing``), the support area snapped to a grid of that pitch,
#: a sheath (one loop) around every support island, and the first support layer printed dense
#: (``SUPPORT_FIRST_LAYER_DENSITY``, PrusaSlicer's ``raft_first_layer_density``) so the columns hold on the bed.
SUPPORT_GAP_MM = 2.5
SUPPORT_FIRST_LAYER_DENSITY = 0.9


class _Raster:
    """Boolean pictures of layers on a fixed xy grid of ``cell`` mm, made by scanlines; the grid is a whole
    number of ``block`` x ``block`` cell blocks (the support grid)."""

    def __init__(self, bounds: tuple[float, float, float, float], cell: float, block: int) -> None:
        self.cell = cell
        self.block = block
        self.x0, self.y0 = bounds[0], bounds[1]
        self.nx = block * (int(np.ceil((bounds[2] - bounds[0]) / (cell * block))) + 1)
        self.ny = block * (int(np.ceil((bounds[3] - bounds[1]) / (cell * block))) + 1)

    def paint(self, geometry: shapely.Geometry) -> NDArray[np.bool_]:
        mask = np.zeros((self.ny, self.nx + 1), dtype=np.int32)
        if geometry.is_empty:
            return mask[:, :-1].astype(bool)
        c = self.cell
        spans = hatch_fill(geometry, c, 0.0, min_length=0.0, offset=(self.y0 + 0.5 * c) % c)
        if spans.shape[0]:
            row = np.rint((spans[:, 0, 1] - self.y0) / c - 0.5).astype(np.int64)
            lo = np.minimum(spans[:, 0, 0], spans[:, 1, 0])
            hi = np.maximum(spans[:, 0, 0], spans[:, 1, 0])
            c0 = np.clip(np.ceil((lo - self.x0) / c - 0.5).astype(np.int64), 0, self.nx)
            c1 = np.clip(np.floor((hi - self.x0) / c - 0.5).astype(np.int64) + 1, 0, self.nx)
            ok = (c1 > c0) & (row >= 0) & (row < self.ny)
            np.add.at(mask, (row[ok], c0[ok]), 1)
            np.add.at(mask, (row[ok], c1[ok]), -1)
        return np.cumsum(mask, axis=1)[:, :-1] > 0

    def blocks(self, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Blocks touched by ``mask``, holes one block wide filled (PrusaSlicer's grid projection)."""
        b = self.block
        hit = mask.reshape(self.ny // b, b, self.nx // b, b).any(axis=(1, 3))
        pad = np.pad(hit, 1)
        return hit | (pad[1:-1, :-2] & pad[1:-1, 2:]) | (pad[:-2, 1:-1] & pad[2:, 1:-1])

    def expand(self, blocks: NDArray[np.bool_]) -> NDArray[np.bool_]:
        b = self.block
        return np.repeat(np.repeat(blocks, b, axis=0), b, axis=1)

    def block_area(self, blocks: NDArray[np.bool_]) -> shapely.Geometry:
        """The blocks as one polygon (runs of blocks along each row become boxes, merged as a coverage)."""
        edges = np.diff(np.pad(blocks.astype(np.int8), ((0, 0), (1, 1))), axis=1)
        row, c_start = np.nonzero(edges == 1)
        c_end = np.nonzero(edges == -1)[1]
        if row.size == 0:
            return shapely.Polygon()
        size = self.cell * self.block
        boxes = shapely.box(self.x0 + c_start * size, self.y0 + row * size, self.x0 + c_end * size,
                            self.y0 + (row + 1) * size)
        return shapely.coverage_union_all(boxes)


def _support_blocks(regions: list[shapely.Geometry], settings: ToolpathSettings,
                    raster: _Raster) -> list[NDArray[np.bool_] | None]:
    """Per layer, the support grid blocks holding support (``None``: no support), under overhangs flatter
    than ``support_angle_deg`` from horizontal.

    Top down on the raster: a layer overhangs where it reaches further than ``h / tan(angle)`` beyond the
    layer below (found on the exact outlines, like PrusaSlicer's contact areas); the overhang is painted
    ``support_z_gap_layers`` lower and carried down to the bed, or until it lands on the part.  As in
    PrusaSlicer's grid style, the carried area is snapped to the support grid every layer (every block it
    touches is support, one-block holes are filled): columns under neighbouring overhangs merge into one
    block that prints and holds better than a scatter of slivers.  The xy gap to the part is cut from each
    layer's support area later, on exact outlines.
    """
    count = len(regions)
    heights = settings.layer_heights_mm
    tan = np.tan(np.radians(settings.support_angle_deg))
    gap = settings.support_z_gap_layers
    out: list[NDArray[np.bool_] | None] = [None] * count
    carried = np.zeros((raster.ny, raster.nx), dtype=bool)
    for j in range(count - 1, -1, -1):
        source = j + 1 + gap
        if 1 <= source < count and not regions[source].is_empty:
            # A slope's sliver per layer is often thinner than a cell: paint it a little wider, so that every
            # cell it touches is carried down.
            reach = heights[source] / tan
            below = regions[source - 1]
            over = (shapely.difference(regions[source], shapely.buffer(below, reach, quad_segs=2))
                    if not below.is_empty else regions[source])
            if not over.is_empty:
                carried |= raster.paint(shapely.buffer(over, 0.75 * raster.cell, quad_segs=1))
        if not carried.any():
            continue
        part = raster.paint(regions[j]) if not regions[j].is_empty else None
        if part is not None:
            carried &= ~part  # a column stops where it lands on the part
        blocks = raster.blocks(carried)
        if not blocks.any():
            continue
        out[j] = blocks
        carried = raster.expand(blocks)
        if part is not None:
            carried &= ~part
    return out


def _support_paths(blocks: NDArray[np.bool_], region: shapely.Geometry, raster: _Raster, settings: ToolpathSettings,
                   *, first_layer: bool) -> tuple[shapely.Geometry, NDArray[np.float64], NDArray[np.int64]]:
    """One layer's support: its area (blocks less the part grown by the xy gap), a sheath around each
    island and lines along the grid rows (dense on the first layer), joined into zig-zags inside the area.

    Returns ``(area, xy, path index)``.
    """
    w = settings.line_width_mm
    area = raster.block_area(blocks)
    if not region.is_empty:
        area = shapely.difference(area, shapely.buffer(region, settings.support_xy_gap_mm, quad_segs=2))
    inner = shapely.buffer(area, -w / 2, quad_segs=2, join_style="mitre", mitre_limit=2.0)
    if inner.is_empty:
        return shapely.Polygon(), np.empty((0, 2)), np.empty(0, dtype=np.int64)
    rings = _lines(inner)
    rings = rings[shapely.length(rings) >= 4 * w]
    pitch = raster.cell * raster.block
    if first_layer:
        spacing = w / SUPPORT_FIRST_LAYER_DENSITY
        segments = hatch_fill(inner, spacing, 0.0, min_length=w, offset=raster.y0 % spacing)
    else:
        # Through the middle of every grid row, so that lines stack from layer to layer.
        spacing = pitch
        segments = hatch_fill(inner, pitch, 0.0, min_length=w, offset=(raster.y0 + pitch / 2) % pitch)
    sheath = _from_geoms(SUPPORT, rings)
    lines = _from_segments(SUPPORT, segments, area=inner, spacing_mm=spacing, link_mm=1.5 * spacing,
                           tolerance_mm=w / 4)
    base = int(sheath[2][-1]) + 1 if sheath[2].size else 0
    return area, np.concatenate([sheath[1], lines[1]]), np.concatenate([sheath[2], lines[2] + base])
