"""Supports in PrusaSlicer's grid style: columns carried down on a raster, snapped to the line grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import NDArray

from .infill import hatch_fill, lines_of
from .paths import SUPPORT, from_geoms, from_segments

if TYPE_CHECKING:
    from .toolpaths import ToolpathSettings


#: Cell of the raster the support columns are carried down on (mm); made to divide the support grid exactly.
SUPPORT_CELL_MM = 0.25


#: The support follows PrusaSlicer's "grid" style with its defaults: lines ``SUPPORT_GAP_MM`` apart (edge to
#: edge, PrusaSlicer's ``support_material_spacing``), the support area snapped to a grid of that pitch,
#: a sheath (one loop) around every support island, and the first support layer printed dense
#: (``SUPPORT_FIRST_LAYER_DENSITY``, PrusaSlicer's ``raft_first_layer_density``) so the columns hold on the bed.
SUPPORT_GAP_MM = 2.5


SUPPORT_FIRST_LAYER_DENSITY = 0.9


class SupportRaster:
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


def support_blocks(regions: list[shapely.Geometry], settings: ToolpathSettings,
                    raster: SupportRaster) -> list[NDArray[np.bool_] | None]:
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


def support_paths(blocks: NDArray[np.bool_], region: shapely.Geometry, raster: SupportRaster, settings: ToolpathSettings,
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
    rings = lines_of(inner)
    rings = rings[shapely.length(rings) >= 4 * w]
    pitch = raster.cell * raster.block
    if first_layer:
        spacing = w / SUPPORT_FIRST_LAYER_DENSITY
        segments = hatch_fill(inner, spacing, 0.0, min_length=w, offset=raster.y0 % spacing)
    else:
        # Through the middle of every grid row, so that lines stack from layer to layer.
        spacing = pitch
        segments = hatch_fill(inner, pitch, 0.0, min_length=w, offset=(raster.y0 + pitch / 2) % pitch)
    sheath = from_geoms(SUPPORT, rings)
    lines = from_segments(SUPPORT, segments, area=inner, spacing_mm=spacing, link_mm=1.5 * spacing,
                           tolerance_mm=w / 4)
    base = int(sheath[2][-1]) + 1 if sheath[2].size else 0
    return area, np.concatenate([sheath[1], lines[1]]), np.concatenate([sheath[2], lines[2] + base])
