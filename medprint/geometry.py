"""Voxel-to-patient geometry in the DICOM patient frame (LPS, millimetres).

Index order follows ITK/DICOM: ``(i, j, k)`` = (column, row, slice), while
arrays are stored ``(k, j, i)`` = ``(z, y, x)``.  A point's patient position is
``origin + direction @ (spacing * ijk)``, with ``direction`` holding the unit
vectors of the i, j and k axes as its columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import GeometryError

#: Flips x and y: RAS (NIfTI, VTK viewers) <-> LPS (DICOM, ITK).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])

#: Farthest a voxel may sit from the scanner's origin, mm.  Beyond it the float32
#: vertices of an STL lose whole millimetres (1 mm at 1e7), so the model is wrong.
MAX_POSITION_MM = 1e5


@dataclass(frozen=True)
class Geometry:
    """Where a voxel grid sits in patient space.

    Parameters
    ----------
    spacing : tuple of float
        Voxel size along i, j, k (x, y, z) in mm.
    origin : tuple of float
        LPS position (mm) of the centre of voxel ``[0, 0, 0]``.
    direction : tuple of 9 float
        Row-major 3x3 matrix whose columns are the unit vectors of the i, j, k
        axes in LPS.  Must be orthonormal.
    """

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        spacing = np.asarray(self.spacing, dtype=float)
        if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise GeometryError(f"voxel spacing must be three positive numbers in mm, got {self.spacing}")
        if len(self.origin) != 3 or not np.all(np.isfinite(self.origin)):
            raise GeometryError(f"origin must be three finite numbers in mm, got {self.origin}")
        if float(np.max(np.abs(self.origin))) > MAX_POSITION_MM:
            raise GeometryError(
                f"origin {_numbers(np.asarray(self.origin, dtype=float))} mm is beyond {MAX_POSITION_MM:g} mm of "
                "the scanner's origin, where a printed model loses whole millimetres; fix the header's position"
            )
        matrix = np.asarray(self.direction, dtype=float)
        if matrix.shape != (9,) or not np.all(np.isfinite(matrix)):
            raise GeometryError(f"direction cosines must be nine finite numbers, got {self.direction}")
        matrix = matrix.reshape(3, 3)
        if abs(np.linalg.det(matrix)) < 0.5:
            # A zero or repeated axis: no point of the scan can be placed in the patient.
            raise GeometryError(
                f"direction cosines {_numbers(matrix)} are singular (an axis is zero or repeated); "
                "the scan's orientation is damaged"
            )
        if not np.allclose(matrix.T @ matrix, np.eye(3), atol=1e-4):
            raise GeometryError(
                f"direction cosines {_numbers(matrix)} are not orthonormal; "
                "resample the image to an orthogonal grid first"
            )
        object.__setattr__(self, "spacing", tuple(float(s) for s in spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", tuple(float(d) for d in matrix.ravel()))

    @property
    def direction_matrix(self) -> NDArray[np.float64]:
        """The 3x3 direction matrix (columns: i, j, k axes in LPS)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def affine(self) -> NDArray[np.float64]:
        """4x4 matrix mapping homogeneous ``(i, j, k, 1)`` to LPS mm."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction_matrix * np.asarray(self.spacing)
        affine[:3, 3] = self.origin
        return affine

    @property
    def is_left_handed(self) -> bool:
        """True when the index axes form a mirrored frame (det < 0).

        Surfaces extracted in index space must then flip their winding to stay
        outward-facing once placed in patient space.
        """
        return bool(np.linalg.det(self.direction_matrix) < 0)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3."""
        return float(np.prod(self.spacing))

    def index_to_lps(self, ijk: ArrayLike) -> NDArray[np.float64]:
        """Map ``(..., 3)`` index coordinates (i, j, k) to LPS mm.

        >>> Geometry(spacing=(2.0, 2.0, 5.0), origin=(10.0, 0.0, 0.0)).index_to_lps([1, 0, 2])
        array([12.,  0., 10.])
        """
        return apply_affine(self.affine, ijk)

    def lps_to_index(self, lps: ArrayLike) -> NDArray[np.float64]:
        """Map ``(..., 3)`` LPS mm points to fractional index coordinates (i, j, k)."""
        return apply_affine(np.linalg.inv(self.affine), lps)

    def check_extent(self, shape_zyx: tuple[int, ...]) -> None:
        """Refuse a grid whose far corner lies beyond :data:`MAX_POSITION_MM` (a huge spacing times many voxels).

        >>> Geometry(spacing=(1.0, 1.0, 1.0)).check_extent((10, 10, 10))
        """
        corner = self.index_to_lps([float(size - 1) for size in reversed(shape_zyx[:3])])
        if float(np.max(np.abs(corner))) > MAX_POSITION_MM:
            raise GeometryError(
                f"the far corner of the {' x '.join(str(n) for n in reversed(shape_zyx[:3]))} grid lies at "
                f"{_numbers(corner)} mm, beyond {MAX_POSITION_MM:g} mm of the scanner's origin, where a printed "
                "model loses whole millimetres; fix the header's position and voxel sizes"
            )

    def describe_orientation(self) -> str:
        """Three-letter code of the patient direction each index axis points to, e.g. ``'LPS'``.

        >>> Geometry(spacing=(1.0, 1.0, 1.0)).describe_orientation()
        'LPS'
        """
        letters = (("L", "R"), ("P", "A"), ("S", "I"))
        code = ""
        for axis in self.direction_matrix.T:
            dominant = int(np.argmax(np.abs(axis)))
            code += letters[dominant][0 if axis[dominant] > 0 else 1]
        return code


def _numbers(matrix: NDArray[np.float64]) -> str:
    return "(" + " ".join(f"{value:.4g}" for value in matrix.ravel()) + ")"


def apply_affine(affine: ArrayLike, points: ArrayLike) -> NDArray[np.float64]:
    """Apply a 4x4 affine to ``(..., 3)`` points.

    >>> apply_affine(np.diag([2.0, 2.0, 2.0, 1.0]), [[1.0, 2.0, 3.0]])
    array([[2., 4., 6.]])
    """
    matrix = np.asarray(affine, dtype=float)
    pts = np.asarray(points, dtype=float)
    return pts @ matrix[:3, :3].T + matrix[:3, 3]
