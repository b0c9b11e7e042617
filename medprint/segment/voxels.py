"""Small voxel-array helpers shared by the seeded segmentations (region growing, vessels)."""

from __future__ import annotations

from collections.abc import Sequence

import cc3d
import numpy as np
from numpy.typing import NDArray

from ..geometry import Geometry
from ..threads import thread_budget
from .cleanup import CONNECTIVITY

#: Threads for distance transforms (edt splits the passes over them; the default is one): the process's
#: budget, which a batch lowers for each of its parallel orders (MEDPRINT_THREADS).
EDT_THREADS = thread_budget()


def seeded_components(mask: NDArray[np.bool_], seeds_zyx: NDArray[np.intp]) -> NDArray[np.bool_]:
    """The 6-connected components of ``mask`` that contain a seed."""
    labels = cc3d.connected_components(mask, connectivity=CONNECTIVITY)
    ids = {int(labels[tuple(seed)]) for seed in seeds_zyx} - {0}
    if not ids:
        return np.zeros(mask.shape, dtype=bool)
    if len(ids) == 1:
        return labels == ids.pop()
    return np.isin(labels, sorted(ids))


def fill_enclosed(region: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The region with every void that does not reach the outside through voxel faces or edges filled.

    Marching cubes seals a void whose only way out runs through voxel
    corners into an inner shell of the mesh (a cavity in the print), so the
    background is taken 18-connected here, not 26 as in digital topology.
    """
    box = bounding_box(region, margin=1)
    sub = region[box]
    background = cc3d.connected_components(~np.pad(sub, 1), connectivity=18)
    outside = background == background[0, 0, 0]
    filled = region.copy()
    filled[box] = ~outside[1:-1, 1:-1, 1:-1]
    return filled


def touches_border(region: NDArray[np.bool_], faces: Sequence[tuple[bool, bool]] = ((True, True),) * 3) -> bool:
    """Whether the region reaches one of the given faces (per axis: low, high)."""
    for axis, (low, high) in enumerate(faces):
        ends = np.moveaxis(region, axis, 0)
        if (low and ends[0].any()) or (high and ends[-1].any()):
            return True
    return False


def bounding_box(region: NDArray[np.bool_], margin: int) -> tuple[slice, slice, slice]:
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(region.any(axis=other))
        box.append(slice(max(0, int(hit[0]) - margin), min(region.shape[axis], int(hit[-1]) + 1 + margin)))
    return tuple(box)  # type: ignore[return-value]


def zyx_spacing(geometry: Geometry) -> tuple[float, float, float]:
    sx, sy, sz = geometry.spacing
    return (sz, sy, sx)


def format_ijk(seed_zyx: NDArray[np.intp]) -> str:
    z, y, x = (int(v) for v in seed_zyx)
    return f"{x},{y},{z}"
