"""The tube around a vessel's centreline through the user's clicks (the tube mode of :mod:`.vessels`).

The clicks, in order along one vessel, are joined by a minimal path through
the lumen that keeps to its middle (cost 1/depth^2).  Only the voxels within
``factor`` times the local vessel radius of that path are kept: first the
lumen's inscribed radius along the path, then the radius of the circle with
the region's own cross-sectional area, re-estimated a few times and
median-filtered along the path so a chamber touching over a short stretch
cannot inflate it.  The model is cut flat across the path at the first and
last click.  A branch's path starts where it leaves the vessel it branches
off, so the parent's width does not swell the branch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import pairwise

import edt
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from ..errors import SegmentationError
from .voxels import EDT_THREADS, format_ijk, seeded_components

log = logging.getLogger("medprint")


@dataclass(frozen=True)
class PathNames:
    """How messages name a path's clicks and range, and where the array they come in starts in the scan."""

    option: str = "--seed"
    range_option: str = "--range"
    offset_zyx: tuple[int, int, int] = (0, 0, 0)

    @property
    def clicks(self) -> str:
        return "seeds" if self.option == "--seed" else f"{self.option} clicks"

    def voxel(self, zyx: NDArray[np.intp]) -> str:
        return format_ijk(np.asarray(zyx) + np.asarray(self.offset_zyx))


#: Re-estimations of the tube radius from the region's cross-sections (it settles after two or three).
TUBE_ITERATIONS = 4


def vessel_tube(
    lumen: NDArray[np.bool_],
    seeds_zyx: NDArray[np.intp],
    spacing_zyx: tuple[float, float, float],
    *,
    factor: float,
    window_mm: float,
    branch_of: NDArray[np.bool_] | None = None,
    names: PathNames = PathNames(),
) -> tuple[NDArray[np.bool_], NDArray[np.intp], NDArray[np.float64]]:
    """The part of ``lumen`` within ``factor`` local radii of the centreline through the seeds.

    Parameters
    ----------
    lumen : ndarray of bool, shape (z, y, x)
        Connected voxels in the vessel's intensity range (holding the seeds).
    seeds_zyx : ndarray of int, shape (N, 3)
        N >= 2 points along the vessel, in order.
    spacing_zyx : (float, float, float)
        Voxel size in mm along z, y, x.
    factor : float
        Tube radius over local vessel radius.
    window_mm : float
        Median-filter length for the radius along the centreline.
    branch_of : ndarray of bool, shape (z, y, x), optional
        The vessel this one branches off (the first seed lies in it): the
        centreline starts where the path leaves it, so the parent's width
        does not swell the branch's radius.
    names : PathNames
        How errors and warnings name the clicks (and the offset of ``lumen``
        in the scan, so voxel numbers are the scan's).

    Returns
    -------
    region : ndarray of bool, shape (z, y, x)
        The seeded component of the lumen inside the tube.
    centreline : ndarray of int, shape (P, 3)
        Voxel path through the seeds.
    radii_mm : ndarray, shape (P,)
        The local vessel radius used at each path voxel.
    """
    depth = edt.edt(lumen, anisotropy=spacing_zyx, black_border=True, parallel=EDT_THREADS)
    centreline = _centreline(lumen, depth, seeds_zyx, spacing_zyx, names)
    if branch_of is not None:
        centreline = _from_where_it_leaves(centreline, branch_of, names)
        seeds_zyx = np.vstack([seeds_zyx, centreline[[0, -1]]])
    on_path = np.zeros(lumen.shape, dtype=bool)
    on_path[tuple(centreline.T)] = True
    path_index = np.full(lumen.shape, -1, dtype=np.int64)
    path_index[tuple(centreline.T)] = np.arange(len(centreline))
    distance, nearest_zyx = ndimage.distance_transform_edt(~on_path, sampling=spacing_zyx, return_indices=True)
    nearest = path_index[tuple(nearest_zyx)]
    del nearest_zyx
    steps = np.linalg.norm(np.diff(centreline * np.asarray(spacing_zyx), axis=0), axis=1)
    step = np.append(steps, steps[-1:]) if len(steps) else np.array([min(spacing_zyx)])
    window = max(3, round(window_mm / float(step.mean()))) | 1
    inscribed = ndimage.median_filter(depth[tuple(centreline.T)], size=window, mode="nearest")
    radii = inscribed.copy()
    voxel_mm3 = float(np.prod(spacing_zyx))
    # Never more than twice the tube over the lumen's inscribed radius: a
    # chamber filling the tube's cross-section cannot inflate it without bound.
    ceiling = 2.0 * factor * inscribed
    margin = 0.5 * max(spacing_zyx)  # a thin vessel keeps its boundary voxels
    # The path's direction at an end is taken over one vessel radius: shorter is
    # voxel noise, longer bends with the vessel.
    ends_reach = round(float(max(inscribed[0], inscribed[-1])) / float(step.mean()))
    beyond = _beyond_ends(nearest, centreline, spacing_zyx, ends_reach)
    region = lumen
    for _ in range(TUBE_ITERATIONS):
        tube = (distance <= np.minimum(factor * radii, ceiling)[nearest] + margin) & ~beyond
        region = seeded_components(lumen & tube, seeds_zyx)
        per_point = np.bincount(nearest[region], minlength=len(centreline)).astype(float) * voxel_mm3
        if len(per_point) >= 3:
            # The end points also collect everything beyond the ends: not a cross-section.
            per_point[0], per_point[-1] = per_point[1], per_point[-2]
        area = ndimage.uniform_filter1d(per_point, window, mode="nearest") / ndimage.uniform_filter1d(
            step, window, mode="nearest"
        )
        # Never below the inscribed radius: a cross-section emptied by a pinch
        # elsewhere must not shrink the tube further on the next round.
        radii = np.maximum(ndimage.median_filter(np.sqrt(area / np.pi), size=window, mode="nearest"), inscribed)
    return region, centreline, radii


def _from_where_it_leaves(
    centreline: NDArray[np.intp], parent: NDArray[np.bool_], names: PathNames
) -> NDArray[np.intp]:
    """The path from its last voxel inside ``parent`` before it first leaves it (all of it if it starts outside)."""
    inside = parent[tuple(centreline.T)]
    if inside[-1]:
        raise SegmentationError(
            f"the last of the {names.clicks} (voxel {names.voxel(centreline[-1])}) lies in the vessel the branch "
            "leaves: give them from the vessel out along the branch, the last one on the branch"
        )
    if not inside[0]:
        return centreline
    first_out = int(np.argmin(inside))
    return centreline[first_out - 1:]


def _beyond_ends(
    nearest: NDArray[np.int64], centreline: NDArray[np.intp], spacing_zyx: tuple[float, float, float], reach: int
) -> NDArray[np.bool_]:
    """Voxels past the first or last seed, across the plane perpendicular to the path there.

    The first and last seeds mark where the user wants the vessel to end (at
    a valve, at the edge of the region to print): the model is cut flat there
    instead of running on into the chamber the vessel opens into.
    """
    beyond = np.zeros(nearest.shape, dtype=bool)
    if len(centreline) < 2:
        return beyond
    reach = int(np.clip(reach, 1, len(centreline) - 1))
    scale = np.asarray(spacing_zyx)
    for end, inward in ((0, reach), (len(centreline) - 1, len(centreline) - 1 - reach)):
        voxels = np.argwhere(nearest == end)
        if len(voxels) == 0:
            continue
        direction = (centreline[inward] - centreline[end]) * scale
        behind = ((voxels - centreline[end]) * scale) @ direction < 0
        beyond[tuple(voxels[behind].T)] = True
    return beyond


def _centreline(
    lumen: NDArray[np.bool_],
    depth_mm: NDArray[np.floating],
    seeds_zyx: NDArray[np.intp],
    spacing_zyx: tuple[float, float, float],
    names: PathNames,
) -> NDArray[np.intp]:
    """Minimal path through the seeds in order, cost 1/depth^2 (it keeps to the middle of the lumen)."""
    index = np.full(lumen.shape, -1, dtype=np.int64)
    count = int(np.count_nonzero(lumen))
    index[lumen] = np.arange(count)
    cost = 1.0 / np.maximum(depth_mm, 0.5 * min(spacing_zyx)) ** 2
    rows, cols, weights = [], [], []
    for axis in range(3):
        head = [slice(None)] * 3
        tail = [slice(None)] * 3
        head[axis], tail[axis] = slice(0, -1), slice(1, None)
        both = lumen[tuple(head)] & lumen[tuple(tail)]
        rows.append(index[tuple(head)][both])
        cols.append(index[tuple(tail)][both])
        weights.append(0.5 * (cost[tuple(head)][both] + cost[tuple(tail)][both]) * spacing_zyx[axis])
    graph = coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(count, count)
    ).tocsr()
    coords = np.argwhere(lumen)
    path: list[int] = []
    for number, (start, end) in enumerate(pairwise(seeds_zyx), start=1):
        source, target = int(index[tuple(start)]), int(index[tuple(end)])
        _, previous = dijkstra(graph, directed=False, indices=source, return_predecessors=True)
        if source != target and previous[target] < 0:
            raise SegmentationError(
                f"{names.clicks} {number} and {number + 1} (voxels {names.voxel(start)} and {names.voxel(end)}) "
                f"are not connected inside the range; add a click between them on the vessel or widen "
                f"{names.range_option}"
            )
        stretch = [target]
        while stretch[-1] != source:
            stretch.append(int(previous[stretch[-1]]))
        stretch.reverse()
        _warn_on_detour(coords[np.asarray(stretch)], spacing_zyx, number, names)
        path.extend(stretch if not path else stretch[1:])
    return coords[np.asarray(path, dtype=np.int64)]


#: A path between two clicks this many times longer than the straight line has probably left the vessel.
DETOUR_RATIO = 2.5


def path_length_mm(path_zyx: NDArray[np.intp], spacing_zyx: tuple[float, float, float]) -> float:
    """Length of a voxel path, measured along a running mean of it (the voxel path is a staircase)."""
    smooth = ndimage.uniform_filter1d(path_zyx * np.asarray(spacing_zyx, dtype=float), 5, axis=0, mode="nearest")
    return float(np.linalg.norm(np.diff(smooth, axis=0), axis=1).sum())


def _warn_on_detour(
    stretch: NDArray[np.intp], spacing_zyx: tuple[float, float, float], number: int, names: PathNames
) -> None:
    """Warn when the path between two successive clicks runs far longer than the gap between them.

    Where the vessel falls out of the range for a stretch (a stenosis, a
    streak), the cheapest path inside the range goes round through other
    vessels; the result still looks like a tube, so say so.
    """
    scaled = stretch * np.asarray(spacing_zyx)
    straight = float(np.linalg.norm(scaled[-1] - scaled[0]))
    length = path_length_mm(stretch, spacing_zyx)
    if length > DETOUR_RATIO * straight and length - straight > 20.0:
        log.warning(
            "vessel: the path between %s %d and %d runs %.0f mm for a %.0f mm gap: it may leave the vessel where "
            "the vessel falls out of the range; add a click between them, or lower %s",
            names.clicks, number, number + 1, length, straight, names.range_option,
        )
