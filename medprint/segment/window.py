"""The growing window: the part of the scan that seeded growing works in.

Growing touches only the voxels near the part, so its cost follows the part,
not the scan.  A region that comes within a guard distance of a window face
that is not the scan's border may go on beyond it: that face is pushed out and
the growing redone, so the result is the one the whole scan would give.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


class WindowTooSmall(Exception):
    """A region came near a face of the growing window that is not the scan border (internal: widen and redo)."""

    def __init__(self, faces: list[tuple[int, int]]) -> None:
        super().__init__(faces)
        self.faces = faces


@dataclass(frozen=True)
class WindowEdges:
    """Which faces of a window are the scan border, and how near the others (voxels) a region may come."""

    scan_borders: tuple[tuple[bool, bool], ...] = ((True, True),) * 3
    guard_vox: tuple[int, ...] = (0, 0, 0)

    def reached(self, region: NDArray[np.bool_]) -> list[tuple[int, int]]:
        """(axis, side) of the faces inside the scan that the region comes within the guard of."""
        reached = []
        for axis, ((low_is_border, high_is_border), guard) in enumerate(zip(self.scan_borders, self.guard_vox)):
            if low_is_border and high_is_border:
                continue
            hit = np.flatnonzero(region.any(axis=tuple(a for a in range(3) if a != axis)))
            if len(hit) == 0:
                continue
            if not low_is_border and hit[0] < guard:
                reached.append((axis, 0))
            if not high_is_border and hit[-1] >= region.shape[axis] - guard:
                reached.append((axis, 1))
        return reached

    def require_inside(self, region: NDArray[np.bool_]) -> None:
        faces = self.reached(region)
        if faces:
            raise WindowTooSmall(faces)


@dataclass(frozen=True)
class GrowingWindow:
    """A box of the scan that the growing works in, widened until the region lies well inside it.

    Growing touches only the voxels near the part: a tumour in a 512x512x300
    scan is grown in a box of a few million voxels, not the whole volume.  A
    region that comes within the guard of a window face (other than the scan
    border) may go on beyond it, so that face is pushed out and the growing is
    redone; a leak ends with the whole scan as the window, as without it.
    """

    lower: tuple[int, ...]  #: first voxel (z, y, x) of the window
    upper: tuple[int, ...]  #: one past the last voxel
    scan_shape: tuple[int, ...]
    reach_vox: tuple[tuple[int, ...], tuple[int, ...]]  #: how far past the seeds each low / high face lies

    @classmethod
    def around(
        cls, seeds_zyx: NDArray[np.intp], scan_shape: Sequence[int], spacing_zyx: Sequence[float], reach_mm: float
    ) -> GrowingWindow:
        reach = tuple(max(2, int(np.ceil(reach_mm / s))) for s in spacing_zyx)
        first, stop = seeds_zyx.min(axis=0), seeds_zyx.max(axis=0) + 1
        lower = tuple(max(0, int(f) - r) for f, r in zip(first, reach))
        upper = tuple(min(int(n), int(e) + r) for e, r, n in zip(stop, reach, scan_shape))
        return cls(lower, upper, tuple(int(n) for n in scan_shape), (reach, reach))

    @property
    def box(self) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in zip(self.lower, self.upper))

    @property
    def offset(self) -> NDArray[np.intp]:
        return np.asarray(self.lower, dtype=np.intp)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.lower, self.upper))

    def edges(self, spacing_zyx: Sequence[float], guard_mm: float) -> WindowEdges:
        borders = tuple((a == 0, b == n) for a, b, n in zip(self.lower, self.upper, self.scan_shape))
        return WindowEdges(borders, tuple(int(np.ceil(guard_mm / s)) for s in spacing_zyx))

    def widened(self, faces: Iterable[tuple[int, int]], growth: float) -> GrowingWindow:
        """The window with the given faces pushed out; the whole scan once that is most of it.

        Redoing the growing in ever larger windows costs a geometric series;
        past a third of the scan one more round is cheaper as the last.
        """
        reach = [list(self.reach_vox[0]), list(self.reach_vox[1])]
        lower, upper = list(self.lower), list(self.upper)
        for axis, side in faces:
            step = int(np.ceil(reach[side][axis] * (growth - 1.0)))
            reach[side][axis] += step
            if side == 0:
                lower[axis] = max(0, lower[axis] - step)
            else:
                upper[axis] = min(self.scan_shape[axis], upper[axis] + step)
        if np.prod(np.subtract(upper, lower), dtype=float) > np.prod(self.scan_shape, dtype=float) / 3:
            lower, upper = [0] * len(self.scan_shape), list(self.scan_shape)
        return GrowingWindow(tuple(lower), tuple(upper), self.scan_shape, (tuple(reach[0]), tuple(reach[1])))
