"""The limb's axis: principal direction of the skin, then the line through the centres of its cross-sections.

The direction is first the principal axis (largest variance) of the skin's area-weighted face centres; the
line is then refitted through the centroids of the skin in 5 mm slabs across it (the centreline of the
cross-sections), leaving out the last 10 % at each end where caps and cut faces pull the centroids.  A
direction given by the user (``--axis``) replaces the principal axis; the line is still fitted through the
cross-sections.  The axis points to increasing LPS coordinate of its largest component (``+z``, superior, for
a limb lying along the scanner), and distances along it are measured from the skin's lowest point on it.

Angles around the axis start at a stated reference: patient anterior (LPS ``-y``) projected onto the
cross-section, or, for an axis running anterior-posterior, superior (``+z``); they grow counter-clockwise
seen from the axis' end (right-handed about the axis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DesignError, ParameterError
from ..mesh.model import Mesh

#: Slab width (mm) for the cross-section centres.
SLAB_MM = 5.0
#: Fraction of the length left out at each end when fitting the centreline.
END_FRACTION = 0.1

#: Named directions (LPS) for the angle reference and ``--open-side``.
SIDES: dict[str, tuple[float, float, float]] = {
    "anterior": (0.0, -1.0, 0.0),
    "posterior": (0.0, 1.0, 0.0),
    "left": (1.0, 0.0, 0.0),
    "right": (-1.0, 0.0, 0.0),
    "superior": (0.0, 0.0, 1.0),
    "inferior": (0.0, 0.0, -1.0),
}


@dataclass(frozen=True)
class LimbAxis:
    """A line along the limb with a frame across it.

    Attributes
    ----------
    start : ndarray (3,)
        LPS point on the axis at distance 0 (level with the skin's lowest point along it).
    direction : ndarray (3,)
        Unit vector along the axis.
    length_mm : float
        Extent of the skin along the axis.
    reference : ndarray (3,)
        Unit vector across the axis where angles are 0; ``side`` says which patient direction it is.
    reference_side : str
    estimated : bool
        Whether the direction was estimated (else given).
    """

    start: NDArray[np.float64]
    direction: NDArray[np.float64]
    length_mm: float
    reference: NDArray[np.float64]
    reference_side: str
    estimated: bool

    @property
    def normal(self) -> NDArray[np.float64]:
        """The second across-axis vector (angle 90 degrees): ``direction x reference``."""
        return np.cross(self.direction, self.reference)

    def along(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Distance (mm) along the axis from its start."""
        return (np.asarray(points, dtype=float) - self.start) @ self.direction

    def angle_deg(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Angle around the axis in [0, 360) degrees from the reference."""
        rel = np.asarray(points, dtype=float) - self.start
        return np.degrees(np.arctan2(rel @ self.normal, rel @ self.reference)) % 360.0

    def across(self, side: str) -> NDArray[np.float64]:
        """A named patient direction projected onto the cross-section (unit), refused when along the axis."""
        vector = np.asarray(SIDES[side], dtype=float)
        projected = vector - (vector @ self.direction) * self.direction
        length = float(np.linalg.norm(projected))
        if length < 0.5:
            raise DesignError(
                f"--open-side {side}: the limb's axis runs {side}-wards (within 60 degrees), so that side is an "
                "end of the limb, not a side of it; use --keep-angle FROM:TO or cut the end with --from/--to"
            )
        return projected / length

    def describe(self) -> dict[str, Any]:
        return {
            "start_lps_mm": [round(float(v), 3) for v in self.start],
            "direction_lps": [round(float(v), 5) for v in self.direction],
            "length_mm": round(self.length_mm, 2),
            "estimated": self.estimated,
            "angle_zero": f"patient {self.reference_side} projected onto the cross-section",
            "angle_zero_lps": [round(float(v), 5) for v in self.reference],
            "angle_90_lps": [round(float(v), 5) for v in self.normal],
        }


def estimate_axis(skin: Mesh, direction: NDArray[np.float64] | None = None) -> LimbAxis:
    """The limb axis of a closed skin surface (see the module notes).

    Parameters
    ----------
    skin : Mesh
        Closed surface in LPS mm.
    direction : ndarray (3,), optional
        The axis direction, when the user gives it; otherwise estimated.
    """
    centres, weights = _face_samples(skin)
    total = float(weights.sum())
    mean = (centres * weights[:, None]).sum(axis=0) / total
    estimated = direction is None
    if direction is None:
        rel = centres - mean
        covariance = (rel * weights[:, None]).T @ rel / total
        values, vectors = np.linalg.eigh(covariance)
        axis = vectors[:, -1]
        if values[-1] < 1.2 * values[-2]:
            raise DesignError(
                "the limb's axis cannot be estimated: the surface is about as wide as it is long (principal "
                f"extents {2 * np.sqrt(3 * values[-1]):.0f} and {2 * np.sqrt(3 * values[-2]):.0f} mm); "
                "give its direction with --axis X,Y,Z (e.g. --axis 0,0,1 for a head, superior)"
            )
    else:
        axis = np.asarray(direction, dtype=float)
        norm = float(np.linalg.norm(axis))
        if not np.isfinite(norm) or norm < 1e-9:
            raise ParameterError("--axis: give a non-zero direction X,Y,Z, e.g. --axis 0,0,1")
        axis = axis / norm
    axis = axis * (1.0 if axis[np.argmax(np.abs(axis))] > 0 else -1.0)
    point, axis = _centreline(centres, weights, mean, axis, refit_direction=estimated)
    t = (skin.vertices - point) @ axis
    start = point + float(t.min()) * axis
    reference_side = "anterior" if abs(axis[1]) < 0.8 else "superior"
    vector = np.asarray(SIDES[reference_side])
    reference = vector - (vector @ axis) * axis
    reference /= np.linalg.norm(reference)
    return LimbAxis(start=start, direction=axis, length_mm=float(t.max() - t.min()), reference=reference,
                    reference_side=reference_side, estimated=estimated)


def _face_samples(mesh: Mesh) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return mesh.vertices[mesh.faces].mean(axis=1), mesh.face_areas_mm2()


def _centreline(centres: NDArray[np.float64], weights: NDArray[np.float64], mean: NDArray[np.float64],
                axis: NDArray[np.float64], *, refit_direction: bool) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A point on, and the direction of, the line through the slab centroids of the surface."""
    for _ in range(2):
        t = (centres - mean) @ axis
        low, high = float(t.min()), float(t.max())
        keep = (t > low + END_FRACTION * (high - low)) & (t < high - END_FRACTION * (high - low))
        slab = np.floor((t[keep] - low) / SLAB_MM).astype(np.int64)
        w = weights[keep]
        counts = np.bincount(slab, weights=w)
        used = counts > 0
        if used.sum() < 2:
            return mean, axis
        sums = np.stack([np.bincount(slab, weights=w * centres[keep, k]) for k in range(3)], axis=1)
        points = sums[used] / counts[used, None]
        slab_weights = counts[used]
        mean = (points * slab_weights[:, None]).sum(axis=0) / slab_weights.sum()
        if not refit_direction or len(points) < 3:
            break
        rel = points - mean
        _, _, vt = np.linalg.svd(rel * np.sqrt(slab_weights)[:, None], full_matrices=False)
        fitted = vt[0] * (1.0 if vt[0] @ axis > 0 else -1.0)
        axis = fitted
    return mean, axis
