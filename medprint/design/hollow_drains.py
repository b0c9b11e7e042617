"""Drain holes for resin printing: at the lowest point of every pocket that would hold liquid resin.

With the part in its print orientation (``up``), resin left in the part runs down and out wherever it can.
The air around and inside the part is depression-filled from the grid's border (a morphological
reconstruction by erosion of the height ``x . up``, the material being a dam): wherever the filled level is
above the floor, resin stays.  Each such pocket gets a hole of the diameter asked, drilled straight down
through the floor under its lowest point.
"""

from __future__ import annotations

import logging
from typing import Any

import cc3d
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import reconstruction

from .fields import DistanceField, Grid

log = logging.getLogger("medprint")

#: Most drain holes made (more pockets than this is a sign of a wrong orientation).
MAX_DRAINS = 20


def drill_drains(values: NDArray[np.float32], grid: Grid, up: NDArray[np.float64], diameter_mm: float,
                  wall_mm: float) -> tuple[NDArray[np.float32], list[dict[str, Any]]]:
    """Holes at the lowest point of each pocket of air that would hold resin with ``up`` pointing up."""
    h = grid.spacing_mm
    step = max(1, int(round(1.0 / h)))  # the pockets are found on a ~1 mm grid of blocks
    material = values < 0
    padded = np.pad(material, [(0, (-n) % step) for n in material.shape])
    nz, ny, nx = (n // step for n in padded.shape)
    # a block with any material in it is a dam: a wall thinner than a block can never leak between samples
    air = ~padded.reshape(nz, step, ny, step, nx, step).any(axis=(1, 3, 5))
    x, y, z = grid.axes_lps()
    height = ((z[::step][:nz] * up[2])[:, None, None] + (y[::step][:ny] * up[1])[None, :, None]
              + (x[::step][:nx] * up[0])[None, None, :]).astype(np.float64)
    top = float(height.max()) + 1.0
    level = np.where(air, height, top + 1.0)  # the part's material is a dam resin cannot pass
    marker = np.full(level.shape, top + 1.0)
    border = np.zeros(level.shape, dtype=bool)
    border[[0, -1]] = True
    border[:, [0, -1]] = True
    border[:, :, [0, -1]] = True
    marker[border] = level[border]
    filled = reconstruction(marker, level, method="erosion", footprint=ndimage.generate_binary_structure(3, 1))
    pocket = air & (filled > height + step * h)
    labels, count = cc3d.connected_components(pocket, connectivity=6, return_N=True)
    drains: list[dict[str, Any]] = []
    if count == 0:
        return values, drains
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes)
    radius = diameter_mm / 2
    result = values.copy()
    smallest = (radius**3)  # pockets smaller than a drop the size of the hole hold no resin worth draining
    for index in order[:MAX_DRAINS]:
        if sizes[index] * (step * h) ** 3 < smallest:
            continue
        q = _lowest_point(labels == index + 1, step, values, grid, up)
        depth = _material_below(result, grid, q, up, 4 * wall_mm + 4 * h)
        if depth is None:
            continue
        _subtract_cylinder(result, grid, q, up, radius, top_mm=radius, bottom_mm=depth + 2 * h)
        drains.append({"point_lps_mm": [round(float(v), 2) for v in q], "diameter_mm": diameter_mm,
                       "through_mm": round(depth, 2),
                       "pocket_mm3": round(float(sizes[index]) * (step * h) ** 3, 1)})
    if len(order) > MAX_DRAINS:
        log.warning("%d resin pockets; drains made at the %d largest: check the print orientation (--up)",
                    len(order), MAX_DRAINS)
    return result, drains


def _lowest_point(member: NDArray[np.bool_], step: int, values: NDArray[np.float32], grid: Grid,
                  up: NDArray[np.float64]) -> NDArray[np.float64]:
    """The lowest grid point of air in a pocket (found in blocks of ``step``), at the working grid's resolution."""
    spans = []
    for axis in range(3):
        present = np.flatnonzero(member.any(axis=tuple(a for a in range(3) if a != axis)))
        spans.append((max(int(present[0]) - 1, 0), min(int(present[-1]) + 2, member.shape[axis])))
    block = member[tuple(slice(a, b) for a, b in spans)]
    block = ndimage.binary_dilation(block, iterations=1)  # the air between the blocks and the wall
    fine = block.repeat(step, axis=0).repeat(step, axis=1).repeat(step, axis=2)
    lo = [a * step for a, _ in spans]
    hi = [min(lo[k] + fine.shape[k], values.shape[k]) for k in range(3)]
    fine = fine[: hi[0] - lo[0], : hi[1] - lo[1], : hi[2] - lo[2]]
    air = fine & (values[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] >= 0)
    x, y, z = grid.axes_lps()
    height = ((z[lo[0]:hi[0]] * up[2])[:, None, None] + (y[lo[1]:hi[1]] * up[1])[None, :, None]
              + (x[lo[2]:hi[2]] * up[0])[None, None, :])
    height = np.where(air, height, np.inf)
    k, j, i = np.unravel_index(int(np.argmin(height)), height.shape)
    return np.array([x[lo[2] + i], y[lo[1] + j], z[lo[0] + k]])


def _material_below(values: NDArray[np.float32], grid: Grid, q: NDArray[np.float64], up: NDArray[np.float64],
                    reach_mm: float) -> float | None:
    """How far down from ``q`` the material ends (the far side of the floor under the pocket), or None."""
    field_ = DistanceField(values, grid.geometry)
    steps = np.arange(0.0, reach_mm, grid.spacing_mm / 4)
    samples = field_.sample(q[None, :] - np.outer(steps, up))
    inside = samples < 0
    if not inside.any():
        return None
    first = int(np.argmax(inside))
    after = np.flatnonzero(~inside[first:])
    if len(after) == 0:
        return None
    return float(steps[first + after[0]])


def _subtract_cylinder(values: NDArray[np.float32], grid: Grid, q: NDArray[np.float64], up: NDArray[np.float64],
                       radius: float, *, top_mm: float, bottom_mm: float) -> None:
    """Cut a cylinder (axis along ``up`` through ``q``, from ``bottom_mm`` below to ``top_mm`` above) in place."""
    reach = max(radius, top_mm, bottom_mm) + 2 * grid.spacing_mm
    lo = np.floor(grid.geometry.lps_to_index(q - reach)).astype(int)
    hi = np.ceil(grid.geometry.lps_to_index(q + reach)).astype(int) + 1
    nz, ny, nx = values.shape
    i0, j0, k0 = np.maximum(lo, 0)
    i1, j1, k1 = np.minimum(hi, (nx, ny, nz))
    x, y, z = grid.axes_lps()
    zz, yy, xx = np.meshgrid(z[k0:k1], y[j0:j1], x[i0:i1], indexing="ij")
    rel = np.stack([xx - q[0], yy - q[1], zz - q[2]], axis=-1)
    along = rel @ up
    radial = np.linalg.norm(rel - along[..., None] * up, axis=-1)
    cylinder = np.maximum(radial - radius, np.maximum(along - top_mm, -bottom_mm - along))
    block = values[k0:k1, j0:j1, i0:i1]
    np.maximum(block, -cylinder.astype(np.float32), out=block)
