"""A scan's voxels seen on the patient axes: the grid's axes permuted and flipped onto L, P, S (no resampling).

The display conventions all start from one array, ``lps[z, y, x]``, whose axes run towards Superior, Posterior
and Left: the axial slice ``lps[k]`` then shows the patient's Right on the image left and Anterior at the top
as it stands, and the coronal and sagittal slices only need their rows reversed (Superior at the top).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..geometry import Geometry


@dataclass(frozen=True)
class PatientFrame:
    """How a grid's index axes map onto the patient axes.

    ``index_axis[L]`` is the index axis (0 = i, 1 = j, 2 = k) that runs along patient axis ``L`` (0 = x
    towards Left, 1 = y towards Posterior, 2 = z towards Superior); ``flipped[L]`` says it runs the other way.
    ``oblique_deg`` is the largest angle between an index axis and the patient axis it is shown on.
    """

    geometry: Geometry
    shape_zyx: tuple[int, int, int]
    index_axis: tuple[int, int, int]
    flipped: tuple[bool, bool, bool]
    oblique_deg: float

    @property
    def spacing_lps(self) -> tuple[float, float, float]:
        """Voxel size (mm) along patient x, y, z as shown."""
        return tuple(self.geometry.spacing[axis] for axis in self.index_axis)  # type: ignore[return-value]

    @property
    def shape_lps(self) -> tuple[int, int, int]:
        """Number of voxels along patient x, y, z as shown."""
        sizes_ijk = tuple(reversed(self.shape_zyx))
        return tuple(sizes_ijk[axis] for axis in self.index_axis)  # type: ignore[return-value]

    def view(self, array: NDArray[Any]) -> NDArray[Any]:
        """``array`` (z, y, x on the grid) as ``[patient z, patient y, patient x]``: a view, never a copy."""
        # Array axis of index axis a is 2 - a; output axis c holds patient axis 2 - c.
        order = tuple(2 - self.index_axis[2 - c] for c in range(3))
        viewed = np.transpose(array, order)
        flips = tuple(c for c in range(3) if self.flipped[2 - c])
        return np.flip(viewed, flips) if flips else viewed

    def lps_points_to_shown(self, points_lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """LPS mm points to fractional shown indices (x, y, z) on the patient axes."""
        ijk = self.geometry.lps_to_index(points_lps)
        sizes = self.shape_lps
        shown = np.empty_like(ijk)
        for axis in range(3):
            values = ijk[..., self.index_axis[axis]]
            shown[..., axis] = (sizes[axis] - 1) - values if self.flipped[axis] else values
        return shown

    def shown_to_lps(self, shown_xyz: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fractional shown indices (x, y, z) back to LPS mm."""
        shown = np.asarray(shown_xyz, dtype=float)
        sizes = self.shape_lps
        ijk = np.empty_like(shown)
        for axis in range(3):
            values = shown[..., axis]
            ijk[..., self.index_axis[axis]] = (sizes[axis] - 1) - values if self.flipped[axis] else values
        return self.geometry.index_to_lps(ijk)


def patient_frame(geometry: Geometry, shape_zyx: tuple[int, int, int]) -> PatientFrame:
    """The signed permutation nearest the grid's direction cosines (exact for axial, coronal, sagittal scans)."""
    direction = np.abs(geometry.direction_matrix)  # rows: patient axes, columns: index axes
    best = max(itertools.permutations(range(3)), key=lambda p: sum(direction[axis, p[axis]] for axis in range(3)))
    matrix = geometry.direction_matrix
    flipped = tuple(bool(matrix[axis, best[axis]] < 0) for axis in range(3))
    cosines = [min(1.0, direction[axis, best[axis]]) for axis in range(3)]
    oblique = max(math.degrees(math.acos(c)) for c in cosines)
    return PatientFrame(geometry, shape_zyx, best, flipped, oblique)  # type: ignore[arg-type]
