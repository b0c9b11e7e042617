"""Mask clean-up: connected components, cavity filling, morphology in mm.

Connected components use 6-connectivity (face neighbours), the same notion of
"touching" that marching cubes uses when it closes a surface, so one component
here is one closed body in the mesh.
"""

from __future__ import annotations

import logging
from typing import Final

import cc3d
import edt
import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, SegmentationError
from ..volume import Mask

log = logging.getLogger("medprint")

CONNECTIVITY: Final = 6


def keep_largest_component(mask: Mask) -> Mask:
    """Keep only the largest connected body (drops scanner tables and head holders)."""
    return largest_component_and_count(mask)[0]


def largest_component_and_count(mask: Mask) -> tuple[Mask, int]:
    """The largest connected body and how many bodies there were, from one labelling pass."""
    _require_voxels(mask, "keeping the largest component")
    labels, count = cc3d.connected_components(mask.array, connectivity=CONNECTIVITY, return_N=True)
    voxel_counts = cc3d.statistics(labels)["voxel_counts"]
    largest = int(np.argmax(voxel_counts[1:])) + 1
    return mask.replace(labels == largest), int(count)


def keep_components_above(mask: Mask, min_volume_mm3: float) -> Mask:
    """Keep the bodies whose volume is at least ``min_volume_mm3``."""
    if not min_volume_mm3 >= 0 or not np.isfinite(min_volume_mm3):
        raise ParameterError(f"--min-component: volume must be >= 0 mm3, got {min_volume_mm3:g}")
    _require_voxels(mask, "filtering components")
    min_voxels = int(np.ceil(min_volume_mm3 / mask.geometry.voxel_volume_mm3))
    kept = cc3d.dust(mask.array, threshold=min_voxels, connectivity=CONNECTIVITY, binary_image=True)
    if not kept.any():
        sizes = cc3d.statistics(cc3d.connected_components(mask.array, connectivity=CONNECTIVITY))["voxel_counts"][1:]
        largest_mm3 = float(sizes.max()) * mask.geometry.voxel_volume_mm3
        raise SegmentationError(
            f"--min-component {min_volume_mm3:g} mm3 removes every body (largest is {largest_mm3:.0f} mm3); "
            "lower it"
        )
    return mask.replace(kept.astype(bool, copy=False))


def count_components(mask: Mask) -> int:
    """Number of separate bodies in the mask."""
    return int(cc3d.connected_components(mask.array, connectivity=CONNECTIVITY, return_N=True)[1])


def fill_cavities(mask: Mask) -> Mask:
    """Fill enclosed cavities: background not connected to the volume border.

    Faster than ``scipy.ndimage.binary_fill_holes`` on hospital-size volumes
    because it labels the background once instead of dilating repeatedly.
    """
    background = np.pad(~mask.array, 1, constant_values=True)
    # Not 26-connected, as digital topology would pair with 6-connected bodies:
    # marching cubes seals a cavity whose only way out runs through voxel
    # corners, and it would stay in the print.
    labels = cc3d.connected_components(background, connectivity=18)
    outside = labels == labels[0, 0, 0]
    return mask.replace(~outside[1:-1, 1:-1, 1:-1])


def dilate_mm(array: NDArray[np.bool_], radius_mm: float, spacing_zyx: tuple[float, float, float]) -> NDArray[np.bool_]:
    """Euclidean dilation by ``radius_mm`` respecting anisotropic voxels."""
    distance_outside = edt.edt(~array, anisotropy=spacing_zyx, black_border=False)
    return distance_outside <= radius_mm


def erode_mm(array: NDArray[np.bool_], radius_mm: float, spacing_zyx: tuple[float, float, float]) -> NDArray[np.bool_]:
    """Euclidean erosion by ``radius_mm``; the volume border counts as background."""
    distance_inside = edt.edt(array, anisotropy=spacing_zyx, black_border=True)
    return distance_inside > radius_mm


def close_mm(mask: Mask, radius_mm: float) -> Mask:
    """Morphological closing (bridge gaps, fill pits) with a ball of ``radius_mm``."""
    spacing_zyx, pad = _ball_setup(mask, radius_mm, "--close")
    padded = np.pad(mask.array, [(p, p) for p in pad])
    closed = erode_mm(dilate_mm(padded, radius_mm, spacing_zyx), radius_mm, spacing_zyx)
    return mask.replace(_unpad(closed, pad))


def open_mm(mask: Mask, radius_mm: float) -> Mask:
    """Morphological opening (cut thin bridges, drop specks) with a ball of ``radius_mm``."""
    spacing_zyx, pad = _ball_setup(mask, radius_mm, "--open")
    padded = np.pad(mask.array, [(p, p) for p in pad])
    opened = dilate_mm(erode_mm(padded, radius_mm, spacing_zyx), radius_mm, spacing_zyx)
    return mask.replace(_unpad(opened, pad))


def _ball_setup(mask: Mask, radius_mm: float, option: str) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    if not (radius_mm > 0 and np.isfinite(radius_mm)):
        raise ParameterError(f"{option}: radius must be a positive number of mm, got {radius_mm:g}")
    sx, sy, sz = mask.geometry.spacing
    spacing_zyx = (sz, sy, sx)
    # The mask is padded by the radius on every side: a ball wider than the scan changes nothing a smaller
    # one would not, and only multiplies the memory used.
    extent_mm = max(n * s for n, s in zip(mask.array.shape, spacing_zyx))
    if radius_mm > extent_mm:
        raise ParameterError(
            f"{option}: radius {radius_mm:g} mm is larger than the scan itself ({extent_mm:.0f} mm across); "
            "use a radius of a few mm"
        )
    # Pad so a ball at the edge behaves as if the scan continued with background.
    pad = tuple(int(np.ceil(radius_mm / s)) + 1 for s in spacing_zyx)
    return spacing_zyx, pad  # type: ignore[return-value]


def _unpad(array: NDArray[np.bool_], pad: tuple[int, int, int]) -> NDArray[np.bool_]:
    pz, py, px = pad
    return np.ascontiguousarray(array[pz:-pz, py:-py, px:-px])


def _require_voxels(mask: Mask, doing: str) -> None:
    if not mask.array.any():
        raise SegmentationError(f"the {mask.label} mask is empty before {doing}; widen the threshold range")
