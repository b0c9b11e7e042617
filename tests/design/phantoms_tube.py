"""A bent tube with a known lumen: half a torus cut by the grid's border, on an anisotropic grid.

The centreline is the circle of radius ``major_mm`` around the z axis (LPS) through the origin's plane; the
lumen is every point within ``minor_mm`` of it.  The grid starts at ``x = x_min_mm``, so the tube leaves it
twice, crossing that border obliquely when ``x_min_mm > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from medprint.geometry import Geometry
from medprint.volume import Mask


@dataclass(frozen=True)
class BentTube:
    mask: Mask
    major_mm: float
    minor_mm: float
    x_min_mm: float

    def lumen_distance(self, lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """Signed distance (mm) of points to the analytic lumen surface (negative inside)."""
        p = np.asarray(lps, dtype=float)
        ring = np.hypot(p[:, 0], p[:, 1]) - self.major_mm
        return np.hypot(ring, p[:, 2]) - self.minor_mm

    def angle(self, lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """Angle of points around the torus axis (radians, 0 on +x)."""
        p = np.asarray(lps, dtype=float)
        return np.arctan2(p[:, 1], p[:, 0])

    def border_angle(self) -> float:
        """Angle at which the centreline meets the grid's border x = x_min."""
        return float(np.arccos(self.x_min_mm / self.major_mm))


def bent_tube(*, major_mm: float = 22.0, minor_mm: float = 4.5, x_min_mm: float = 6.0,
              spacing: tuple[float, float, float] = (0.7, 0.8, 1.1), margin_mm: float = 3.0,
              mirrored: bool = False) -> BentTube:
    """Voxelise the half torus on a grid of ``spacing`` (x, y, z) starting at ``x = x_min_mm``.

    ``mirrored``: the grid's i axis runs towards -x and its k axis towards -z (a left-handed, flipped grid, as
    some scanners write), over the same box.
    """
    reach = major_mm + minor_mm + margin_mm
    counts = (int(np.ceil((reach - x_min_mm) / spacing[0])) + 1, int(np.ceil(2 * reach / spacing[1])) + 1,
              int(np.ceil(2 * (minor_mm + margin_mm) / spacing[2])) + 1)
    if mirrored:
        origin = (x_min_mm + spacing[0] * (counts[0] - 1), -reach, (minor_mm + margin_mm))
        direction = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    else:
        origin = (x_min_mm, -reach, -(minor_mm + margin_mm))
        direction = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    geometry = Geometry(spacing=spacing, origin=origin, direction=direction)
    k, j, i = np.meshgrid(*(np.arange(n, dtype=float) for n in reversed(counts)), indexing="ij")
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1))
    ring = np.hypot(lps[..., 0], lps[..., 1]) - major_mm
    inside = np.hypot(ring, lps[..., 2]) <= minor_mm
    return BentTube(Mask(inside, geometry, "tube"), major_mm, minor_mm, x_min_mm)
