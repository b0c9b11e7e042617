"""Infill patterns: rectilinear/grid hatching and gyroid, made once per layer and clipped to an area."""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray


def lines_of(geometry: shapely.Geometry) -> NDArray[np.object_]:
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
    rings = lines_of(area)
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


def gyroid(bounds: tuple[float, float, float, float], spacing: float, z: float) -> shapely.MultiLineString:
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


def clip_pattern(area: shapely.Geometry, pattern: shapely.Geometry, min_length: float) -> NDArray[np.object_]:
    if area.is_empty:
        return np.empty(0, dtype=object)
    lines = shapely.get_parts(shapely.intersection(area, pattern))
    lines = lines[shapely.get_type_id(lines) == 1]
    return lines[shapely.length(lines) >= min_length]
