"""Path pieces: feature codes, one layer's paths, and lines chained into zig-zags."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray

#: Feature codes, in the order they are printed within a layer.
SKIRT, SUPPORT, PERIMETER_INNER, PERIMETER_OUTER, THIN_WALL, GAP_FILL, SOLID, SPARSE = range(8)


FEATURE_NAMES = ("skirt", "support", "perimeter", "external perimeter", "thin wall", "gap fill", "solid infill",
                 "infill")


#: Detail below this (mm) is removed from outlines before offsetting (the printer cannot show it).
RESOLUTION_MM = 0.02


@dataclass
class LayerPaths:
    """One layer's paths: ``xy[k]`` is the k-th point, ``path[k]`` its path number; paths in print order."""

    xy: NDArray[np.float64]
    path: NDArray[np.int64]
    feature: NDArray[np.int64]  # per path
    region: shapely.Geometry = field(repr=False)  # the part in this layer
    support: shapely.Geometry = field(repr=False)  # support area in this layer
    width: NDArray[np.float64] | None = None  # per point: width (mm) of the line ending there; None: the line width


def from_geoms(feature: int, geoms: NDArray[np.object_]) -> tuple[int, NDArray[np.float64], NDArray[np.int64]]:
    if geoms.size == 0:
        return feature, np.empty((0, 2)), np.empty(0, dtype=np.int64)
    xy, index = shapely.get_coordinates(geoms, return_index=True)
    return feature, xy, index.astype(np.int64)


def from_segments(feature: int, segments: NDArray[np.float64], *, area: shapely.Geometry | None = None,
                   spacing_mm: float = 0.0, link_mm: float = 0.0,
                   tolerance_mm: float = 0.0) -> tuple[int, NDArray[np.float64], NDArray[np.int64]]:
    """Segments as paths; with ``area``, joined into zig-zags (no travel, no retraction): see :func:`chain_segments`."""
    n = segments.shape[0]
    if area is None or n < 2 or link_mm <= 0:
        return feature, segments.reshape(-1, 2), np.repeat(np.arange(n, dtype=np.int64), 2)
    segments, path_id = chain_segments(segments, area, spacing_mm=spacing_mm, link_mm=link_mm, tolerance_mm=tolerance_mm)
    return feature, segments.reshape(-1, 2), np.repeat(path_id, 2)


#: Above this many chains in one group, they are taken in scanline order instead of a nearest-first tour.
MAX_TOUR_CHAINS = 400


def chain_segments(segments: NDArray[np.float64], area: shapely.Geometry, *, spacing_mm: float, link_mm: float,
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
    head, rank = follow_pointers(pred, (pred != np.arange(n)).astype(np.int64))
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


def follow_pointers(
    pointer: NDArray[np.int64], steps: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Where each element's chain of pointers ends, and the summed ``steps`` on the way (pointer jumping).

    ``pointer[k] == k`` ends a chain.  log2(chain length) vectorised rounds instead of a walk per element.

    >>> follow_pointers(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]))
    (array([0, 0, 0, 0]), array([0, 1, 2, 3]))
    """
    end, total = pointer.copy(), steps.copy()
    while True:
        further = end[end]
        if np.array_equal(further, end):
            return end, total
        total = total + total[end]
        end = further
