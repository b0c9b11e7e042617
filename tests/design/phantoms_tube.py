"""A bent tube with a known lumen: half a torus cut by the grid's border, on an anisotropic grid.

The centreline is the circle of radius ``major_mm`` around the z axis (LPS) through the origin's plane; the
lumen is every point within ``minor_mm`` of it.  The grid starts at ``x = x_min_mm``, so the tube leaves it
twice, crossing that border obliquely when ``x_min_mm > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    rotation: NDArray[np.float64] = field(default_factory=lambda: np.eye(3))  # tube frame -> LPS

    def local(self, lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """Points in the tube's own frame (the torus around its z axis)."""
        return np.asarray(lps, dtype=float).reshape(-1, 3) @ self.rotation

    def tangent(self, angle: float) -> NDArray[np.float64]:
        """The centreline's direction (LPS) at ``angle``."""
        return self.rotation @ np.array([-np.sin(angle), np.cos(angle), 0.0])

    def point(self, angle: float) -> NDArray[np.float64]:
        """The centreline's point (LPS) at ``angle``."""
        return self.rotation @ (self.major_mm * np.array([np.cos(angle), np.sin(angle), 0.0]))

    def lumen_distance(self, lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """Signed distance (mm) of points to the analytic lumen surface (negative inside)."""
        p = self.local(lps)
        ring = np.hypot(p[:, 0], p[:, 1]) - self.major_mm
        return np.hypot(ring, p[:, 2]) - self.minor_mm

    def angle(self, lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """Angle of points around the torus axis (radians, 0 on +x)."""
        p = self.local(lps)
        return np.arctan2(p[:, 1], p[:, 0])

    def border_angle(self) -> float:
        """Angle at which the centreline meets the grid's border x = x_min."""
        return float(np.arccos(self.x_min_mm / self.major_mm))


def bent_tube(*, major_mm: float = 22.0, minor_mm: float = 4.5, x_min_mm: float = 6.0,
              spacing: tuple[float, float, float] = (0.7, 0.8, 1.1), margin_mm: float = 3.0,
              mirrored: bool = False, tilt_deg: float = 0.0) -> BentTube:
    """Voxelise the half torus on a grid of ``spacing`` (x, y, z) starting at ``x = x_min_mm``.

    ``mirrored``: the grid's i axis runs towards -x and its k axis towards -z (a left-handed, flipped grid, as
    some scanners write), over the same box.  ``tilt_deg``: the tube and its grid turned together by this
    angle about the (1, 1, 1) axis: an oblique grid, with the analytic lumen turned alike.
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
    axis = np.ones(3) / np.sqrt(3.0)
    angle = np.radians(tilt_deg)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    turned = rotation @ np.asarray(direction).reshape(3, 3)
    geometry = Geometry(spacing=spacing, origin=tuple(rotation @ np.asarray(origin)),  # type: ignore[arg-type]
                        direction=tuple(turned.ravel()))
    k, j, i = np.meshgrid(*(np.arange(n, dtype=float) for n in reversed(counts)), indexing="ij")
    local = geometry.index_to_lps(np.stack([i, j, k], axis=-1)) @ rotation
    ring = np.hypot(local[..., 0], local[..., 1]) - major_mm
    inside = np.hypot(ring, local[..., 2]) <= minor_mm
    return BentTube(Mask(inside, geometry, "tube"), major_mm, minor_mm, x_min_mm, rotation)


def waisted_tube(*, radius_mm: float = 6.0, waist_mm: float = 2.5, half_length_mm: float = 16.0,
                 spacing_mm: float = 0.8) -> Mask:
    """A straight tube along x (radius ``radius_mm``) that leaves its grid at both ends and narrows to a waist.

    The radius is ``radius_mm - (radius_mm - waist_mm) exp(-(x / 3 mm)^2)``: ``waist_mm`` at x = 0.
    """
    reach = radius_mm + 2.0
    xs = np.arange(-half_length_mm, half_length_mm + spacing_mm / 2, spacing_mm)
    ys = np.arange(-reach, reach + spacing_mm / 2, spacing_mm)
    z, y, x = np.meshgrid(ys, ys, xs, indexing="ij")
    radius = radius_mm - (radius_mm - waist_mm) * np.exp(-(x / 3.0) ** 2)
    inside = np.hypot(y, z) <= radius
    geometry = Geometry(spacing=(spacing_mm,) * 3, origin=(float(xs[0]), float(ys[0]), float(ys[0])),
                        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return Mask(inside, geometry, "waisted")


def thick_slice_blob(*, radius_mm: float = 5.5, half_length_mm: float = 0.0, spacing: tuple[float, float, float] =
                     (0.8, 0.8, 2.0), shift_mm: float = 0.5) -> Mask:
    """A ball (``half_length_mm`` 0) or a capsule along z, on thick slices, inside its grid (touching no border).

    ``shift_mm``: the slices' offset from the blob's centre (where the staircase falls).
    """
    reach = radius_mm + 3.0
    zreach = reach + half_length_mm
    xs, ys, zs = ((np.arange(n) - (n - 1) / 2) * s for n, s in
                  zip((int(np.ceil(2 * r / s)) + 1 for r, s in zip((reach, reach, zreach), spacing)), spacing))
    zs = zs + shift_mm
    z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")
    along = np.clip(z, -half_length_mm, half_length_mm)
    inside = np.sqrt(x**2 + y**2 + (z - along) ** 2) <= radius_mm
    geometry = Geometry(spacing=spacing, origin=(float(xs[0]), float(ys[0]), float(zs[0])),
                        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return Mask(inside, geometry, "blob")


def flat_ended_rod(*, radius_mm: float = 5.5, half_length_mm: float = 12.0,
                   spacing: tuple[float, float, float] = (0.8, 0.8, 2.0)) -> Mask:
    """A straight vessel along z cut flat at z = +-``half_length_mm`` (a label stopped there), inside its grid."""
    reach = radius_mm + 3.0
    xs = np.arange(-reach, reach + 1e-9, spacing[0])
    zs = np.arange(-half_length_mm - 6.0, half_length_mm + 6.0 + 1e-9, spacing[2]) + 0.5
    z, y, x = np.meshgrid(zs, xs, xs, indexing="ij")
    inside = (np.hypot(x, y) <= radius_mm) & (np.abs(z) <= half_length_mm)
    geometry = Geometry(spacing=spacing, origin=(float(xs[0]), float(xs[0]), float(zs[0])),
                        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return Mask(inside, geometry, "rod")
