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

import numpy as np
import shapely
from numpy.typing import NDArray

from ..progress import ProgressCallback, no_progress

#: Feature codes, in the order they are printed within a layer.
SKIRT, SUPPORT, PERIMETER_INNER, PERIMETER_OUTER, SOLID, SPARSE = range(6)
FEATURE_NAMES = ("skirt", "support", "perimeter", "external perimeter", "solid infill", "infill")
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
    support_spacing_mm: float = 2.5
    infill_overlap: float = 0.15


@dataclass
class LayerPaths:
    """One layer's paths: ``xy[k]`` is the k-th point, ``path[k]`` its path number; paths in print order."""

    xy: NDArray[np.float64]
    path: NDArray[np.int64]
    feature: NDArray[np.int64]  # per path
    region: shapely.Geometry = field(repr=False)  # the part in this layer
    support: shapely.Geometry = field(repr=False)  # support area in this layer


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
    if settings.supports:
        support_lines, _ = _support_lines(regions, settings, bounds_t)
    else:
        support_lines = [np.empty((0, 2, 2))] * count
    # Solid/sparse decisions need no fine detail: intersect coarse outlines.
    # Using the neighbours' infill areas (not their outlines) also makes solid the band a sloped wall
    # leaves beside the perimeters, keeping the shell as thick as the perimeters (like "ensure vertical
    # shell thickness").
    inset_infill = settings.perimeters * w - settings.infill_overlap * w
    coarse = [shapely.simplify(shapely.buffer(r, -inset_infill, quad_segs=2), 0.1) if not r.is_empty else r
              for r in regions]

    thin = _ThinWalls(w)
    for i in range(count):
        region = regions[i]
        groups: list[tuple[int, NDArray[np.float64], NDArray[np.int64]]] = []
        support_here = support_lines[i]
        # Travel over support needs no retraction: thin strips along its lines stand for the support area.
        support = (shapely.buffer(shapely.multilinestrings(shapely.linestrings(support_here)), 0.5 * w, quad_segs=1)
                   if support_here.shape[0] else shapely.Polygon())
        if i == 0:
            groups.append(_from_geoms(SKIRT, _skirt_and_brim(region, support, settings)))
        if support_here.shape[0]:
            groups.append(_from_segments(SUPPORT, support_here))
        if not region.is_empty:
            for k in reversed(range(settings.perimeters)):
                offset = shapely.buffer(region, -(w / 2 + k * w), quad_segs=2, join_style="mitre", mitre_limit=2.0)
                if offset.is_empty:
                    continue
                rings = _lines(offset)
                groups.append(_from_geoms(PERIMETER_OUTER if k == 0 else PERIMETER_INNER,
                                          rings[shapely.length(rings) >= 2 * w]))
            thin.measure(i, region)
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
                                             link_mm=3 * w))
                if density > 0 and not core.is_empty:
                    if settings.infill_pattern == "gyroid":
                        pattern = _gyroid(bounds_t, w / density, float(settings.layer_heights_mm[: i + 1].sum()))
                        groups.append(_from_geoms(SPARSE, _clip(core, pattern, w)))
                    else:
                        for angle in sparse_angles[i % len(sparse_angles)]:
                            # Sparse lines are not joined: a connector would be a spacing-long extra line.
                            groups.append(_from_segments(SPARSE, hatch_fill(core, sparse_spacing, angle,
                                                                            min_length=w)))
        yield _pack(groups, region, support)
        if i % 16 == 0:
            progress("toolpaths", i, count)
    progress("toolpaths", count, count)
    thin.report()


class _ThinWalls:
    """Material narrower than one line width gets no perimeter; say so instead of dropping it silently."""

    def __init__(self, line_width_mm: float) -> None:
        self.width = line_width_mm
        self.area_mm2 = 0.0
        self.layers: list[int] = []

    def measure(self, layer: int, region: shapely.Geometry) -> None:
        # What survives shrinking by half a line and growing back is printable; the rest is too thin.
        printable = shapely.buffer(shapely.buffer(region, -self.width / 2, quad_segs=2), self.width / 2 + 0.01,
                                   quad_segs=2)
        lost = float(shapely.area(shapely.difference(region, printable)))
        if lost > 4 * self.width**2:  # corner clipping of sharp outlines stays below this
            self.area_mm2 += lost
            self.layers.append(layer)

    def report(self) -> None:
        if self.layers:
            log.warning(
                "%d layers (first %d) have %.0f mm2 of walls thinner than the %.2f mm line width; they are not "
                "printed: thicken the model (e.g. --close), use a finer nozzle, or the prusaslicer engine",
                len(self.layers), self.layers[0], self.area_mm2, self.width,
            )


def _from_geoms(feature: int, geoms: NDArray[np.object_]) -> tuple[int, NDArray[np.float64], NDArray[np.int64]]:
    if geoms.size == 0:
        return feature, np.empty((0, 2)), np.empty(0, dtype=np.int64)
    xy, index = shapely.get_coordinates(geoms, return_index=True)
    return feature, xy, index.astype(np.int64)


def _from_segments(feature: int, segments: NDArray[np.float64], *, area: shapely.Geometry | None = None,
                   link_mm: float = 0.0) -> tuple[int, NDArray[np.float64], NDArray[np.int64]]:
    """Segments as paths; with ``area``, each segment joins the previous one into a zig-zag when the
    connector is at most ``link_mm`` long and stays inside ``area`` (no travel, no retraction)."""
    n = segments.shape[0]
    linked = np.zeros(n, dtype=bool)
    if area is not None and n > 1 and link_mm > 0:
        gap = segments[1:, 0] - segments[:-1, 1]
        near = np.flatnonzero(np.hypot(gap[:, 0], gap[:, 1]) <= link_mm)
        if near.size:
            connectors = shapely.linestrings(np.stack([segments[near, 1], segments[near + 1, 0]], axis=1))
            shapely.prepare(area)
            linked[near + 1] = shapely.covered_by(connectors, area)
    path_id = np.cumsum(~linked) - 1
    return feature, segments.reshape(-1, 2), np.repeat(path_id.astype(np.int64), 2)


def _pack(groups: list[tuple[int, NDArray[np.float64], NDArray[np.int64]]], region: shapely.Geometry,
          support: shapely.Geometry) -> LayerPaths:
    xys, paths, features = [], [], []
    base = 0
    for feature, xy, index in groups:
        if xy.shape[0] == 0:
            continue
        n_paths = int(index[-1]) + 1
        xys.append(xy)
        paths.append(index + base)
        features.append(np.full(n_paths, feature, dtype=np.int64))
        base += n_paths
    if not xys:
        return LayerPaths(np.empty((0, 2)), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), region, support)
    return LayerPaths(xy=np.concatenate(xys), path=np.concatenate(paths), feature=np.concatenate(features),
                      region=region, support=support)


def _skirt_and_brim(region: shapely.Geometry, support: shapely.Geometry,
                    settings: ToolpathSettings) -> NDArray[np.object_]:
    w = settings.line_width_mm
    base = shapely.union_all([region, support])
    if base.is_empty:
        return np.empty(0, dtype=object)
    loops = []
    brim_loops = int(round(settings.brim_width_mm / w))
    for k in reversed(range(brim_loops)):
        loops.append(shapely.get_exterior_ring(shapely.get_parts(shapely.buffer(base, w / 2 + k * w, quad_segs=4))))
    hull = shapely.convex_hull(base)
    outer = settings.skirt_distance_mm + brim_loops * w
    for k in range(settings.skirt_loops):
        loops.append(np.array([shapely.get_exterior_ring(shapely.buffer(hull, outer + w / 2 + k * w, quad_segs=4))]))
    return np.concatenate(loops) if loops else np.empty(0, dtype=object)


SUPPORT_CELL_MM = 0.25


def _disk(radius_cells: int) -> NDArray[np.bool_]:
    r = max(int(radius_cells), 1)
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y) <= r * r + 1e-9


class _Raster:
    """Boolean pictures of layers on a fixed xy grid (``SUPPORT_CELL_MM`` cells), made by scanlines."""

    def __init__(self, bounds: tuple[float, float, float, float], cell: float) -> None:
        self.cell = cell
        self.x0, self.y0 = bounds[0], bounds[1]
        self.nx = int(np.ceil((bounds[2] - bounds[0]) / cell)) + 1
        self.ny = int(np.ceil((bounds[3] - bounds[1]) / cell)) + 1

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

    def lines(self, mask: NDArray[np.bool_], spacing: float, min_length: float, flip: bool) -> NDArray[np.float64]:
        """Runs of set cells along every ``spacing``-th row, as segments (boustrophedon)."""
        step = max(int(round(spacing / self.cell)), 1)
        rows = np.arange(step // 2, self.ny, step)
        picked = mask[rows].astype(np.int8)
        edges = np.diff(np.pad(picked, ((0, 0), (1, 1))), axis=1)
        r_start, c_start = np.nonzero(edges == 1)
        r_end, c_end = np.nonzero(edges == -1)
        x_a = self.x0 + c_start * self.cell
        x_b = self.x0 + c_end * self.cell
        y = self.y0 + (rows[r_start] + 0.5) * self.cell
        keep = x_b - x_a >= min_length
        x_a, x_b, y, r = x_a[keep], x_b[keep], y[keep], r_start[keep]
        backwards = (r % 2 == 1) != flip
        order = np.lexsort((np.where(backwards, -x_a, x_a), r))
        x_a, x_b, y, backwards = x_a[order], x_b[order], y[order], backwards[order]
        start = np.stack([np.where(backwards, x_b, x_a), y], axis=1)
        end = np.stack([np.where(backwards, x_a, x_b), y], axis=1)
        return np.stack([start, end], axis=1)


def _support_lines(regions: list[shapely.Geometry], settings: ToolpathSettings,
                   bounds: tuple[float, float, float, float]) -> tuple[list[NDArray[np.float64]], list[NDArray[np.bool_]]]:
    """Support lines per layer under overhangs flatter than ``support_angle_deg`` from horizontal.

    Worked on a raster (``SUPPORT_CELL_MM``), top down: a layer overhangs where it reaches further
    than ``h / tan(angle)`` beyond the layer below (found on the outlines); overhangs are carried down to the bed or until they
    land on the part, ``support_z_gap_layers`` below the overhang and ``support_xy_gap_mm`` away from the part.
    Slivers are added up as they are carried and only the carried footprint is cleaned of parts narrower
    than about two cells.  Binary morphology on a fixed grid keeps this linear in layers x cells.
    """
    from scipy import ndimage

    count = len(regions)
    heights = settings.layer_heights_mm
    tan = np.tan(np.radians(settings.support_angle_deg))
    w = settings.line_width_mm
    raster = _Raster(bounds, SUPPORT_CELL_MM)
    gap = settings.support_z_gap_layers
    xy_gap = _disk(int(np.ceil(settings.support_xy_gap_mm / SUPPORT_CELL_MM)))
    clean = _disk(1)
    cache: dict[int, NDArray[np.bool_]] = {}

    def picture(i: int) -> NDArray[np.bool_]:
        if i not in cache:
            cache[i] = raster.paint(regions[i])
        return cache[i]

    lines: list[NDArray[np.float64]] = [np.empty((0, 2, 2))] * count
    masks: list[NDArray[np.bool_]] = [np.zeros((0, 0), dtype=bool)] * count
    carried = np.zeros((raster.ny, raster.nx), dtype=bool)
    for j in range(count - 1, -1, -1):
        source = j + 1 + gap
        if 1 <= source < count and not regions[source].is_empty:
            # The overhang is found on the exact outlines (a slope's sliver per layer is often thinner than a
            # cell) and painted a little wider, so that every cell it touches is carried down.
            reach = heights[source] / tan
            below = regions[source - 1]
            over = (shapely.difference(regions[source], shapely.buffer(below, reach, quad_segs=2))
                    if not below.is_empty else regions[source])
            if not over.is_empty:
                carried |= raster.paint(shapely.buffer(over, 0.75 * SUPPORT_CELL_MM, quad_segs=1))
        for stale in [k for k in cache if k > j + gap + 2]:
            del cache[stale]
        if not carried.any():
            continue
        support = carried
        if not regions[j].is_empty:
            # A column stops where it lands on the part; the xy gap only trims this layer's lines (trimming
            # the carried area itself would erase every sliver of a slope within two layers).
            carried &= ~picture(j)
            support = carried & ~ndimage.binary_dilation(picture(j), structure=xy_gap)
        support = ndimage.binary_opening(support, structure=clean)
        if support.any():
            lines[j] = raster.lines(support, settings.support_spacing_mm, w, flip=bool(j % 2))
            if j == 0:
                masks[j] = support
    return lines, masks
