"""The data that flows through the pipeline before it becomes a surface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .geometry import Geometry

#: Modalities whose voxel values are Hounsfield units once rescaled.
HOUNSFIELD_MODALITIES = frozenset({"CT"})

# Slices checked at a time for NaN/Inf: bounds the temporary mask to a few MB.
_FINITE_CHUNK_VOXELS = 1 << 22


def all_finite(array: NDArray[Any]) -> bool:
    """True when no voxel is NaN or infinite; checked a few slices at a time, without a full-size mask.

    >>> all_finite(np.array([[[1.0, np.nan]]]))
    False
    """
    if not np.issubdtype(array.dtype, np.floating):
        return True
    step = max(1, _FINITE_CHUNK_VOXELS // max(1, array[0].size))
    return all(bool(np.isfinite(array[k: k + step]).all()) for k in range(0, array.shape[0], step))


def describe_non_finite(bad: NDArray[np.bool_]) -> str:
    """Say how many voxels are non-finite and where, from their ``(z, y, x)`` mask.

    >>> bad = np.zeros((4, 2, 2), bool); bad[1:3, 0, 1] = True
    >>> describe_non_finite(bad)
    '2 voxels are NaN or infinite, the first at voxel (i, j, k) = (1, 0, 1), in slices k = 1..2'
    """
    slices = np.flatnonzero(bad.any(axis=(1, 2)))
    k, j, i = np.unravel_index(int(np.argmax(bad)), bad.shape)
    count = int(np.count_nonzero(bad))
    noun = "voxel is" if count == 1 else "voxels are"
    span = f"slice k = {slices[0]}" if len(slices) == 1 else f"slices k = {slices[0]}..{slices[-1]}"
    return f"{count} {noun} NaN or infinite, the first at voxel (i, j, k) = ({i}, {j}, {k}), in {span}"


@dataclass(frozen=True)
class Volume:
    """A scan: voxel values on a grid placed in the patient frame.

    Parameters
    ----------
    array : ndarray, shape (z, y, x)
        Voxel values (Hounsfield units for CT, arbitrary units for MR).
    geometry : Geometry
        Spacing, origin and direction in LPS mm.
    modality : str
        DICOM modality code (``'CT'``, ``'MR'``, ...) or ``'OT'`` when unknown.
    metadata : dict
        De-identified description of the source (no names, IDs or dates of birth).
    notes : tuple of str
        What was done to the data while loading (resampling, skipped files).
    """

    array: NDArray[Any]
    geometry: Geometry
    modality: str = "OT"
    metadata: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise InputError(f"a volume needs a 3-D array (z, y, x), got shape {self.array.shape}")
        if min(self.array.shape) < 1:
            raise InputError(f"the volume is empty (shape {self.array.shape})")
        self.geometry.check_extent(self.array.shape)
        # Otsu, percentiles and thresholds all misbehave on NaN; one chunked pass (40 ms on
        # 512x512x300 float32) keeps every path into segmentation clean.
        if np.issubdtype(self.array.dtype, np.floating) and not all_finite(self.array):
            raise InputError(
                f"a volume's voxels must be finite: {describe_non_finite(~np.isfinite(self.array))}; "
                "replace them first (e.g. numpy.nan_to_num, or load_volume(..., non_finite=VALUE))"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(z, y, x)``."""
        return self.array.shape  # type: ignore[return-value]

    @property
    def is_hounsfield(self) -> bool:
        """True for CT, whose values are Hounsfield units."""
        return self.modality.upper() in HOUNSFIELD_MODALITIES

    def value_range(self) -> tuple[float, float]:
        """Smallest and largest voxel value."""
        return float(self.array.min()), float(self.array.max())


@dataclass(frozen=True)
class Mask:
    """A boolean selection of voxels on a volume's grid.

    Parameters
    ----------
    array : ndarray of bool, shape (z, y, x)
    geometry : Geometry
        The grid it lives on (the same as the volume it was made from).
    label : str
        Name of what is selected, used for output names and reports.
    """

    array: NDArray[np.bool_]
    geometry: Geometry
    label: str = "mask"

    def __post_init__(self) -> None:
        if self.array.dtype != np.bool_:
            raise InputError(f"a mask must be boolean, got {self.array.dtype}")
        if self.array.ndim != 3:
            raise InputError(f"a mask needs a 3-D array (z, y, x), got shape {self.array.shape}")

    @property
    def voxel_count(self) -> int:
        """Number of selected voxels."""
        return int(np.count_nonzero(self.array))

    @property
    def volume_mm3(self) -> float:
        """Selected volume in mm^3 (voxel count times voxel volume)."""
        return self.voxel_count * self.geometry.voxel_volume_mm3

    def replace(self, array: NDArray[np.bool_]) -> Mask:
        """A new mask with the same grid and label and another selection."""
        return Mask(array=array, geometry=self.geometry, label=self.label)
