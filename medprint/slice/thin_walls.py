"""Walls thinner than a line (and the gaps perimeters leave): one line along their middle, as wide as they are."""

from __future__ import annotations

import logging

import numpy as np
import shapely
from numpy.typing import NDArray

from .paths import RESOLUTION_MM

log = logging.getLogger("medprint")


class ThinWalls:
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
        segments = chordal_axis(wall, step=w / 2)
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


def chordal_axis(polygon: shapely.Geometry, *, step: float) -> NDArray[np.float64]:
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
