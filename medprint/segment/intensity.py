"""What intensity range a seeded part has: estimates from around the seeds, and its edge.

The range starts as mean +- k sd around the seeds (ITK's confidence-connected
style) and is clipped where the part meets its surroundings: half-way (the
50 % level used to measure lesions) between the part's median and that of a
shell around it, or, for a first range that leaks, across the steepest step of
the radial profile around the seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import edt
import numpy as np
from numpy.typing import NDArray

from ..geometry import Geometry
from .voxels import EDT_THREADS, bounding_box, seeded_components, zyx_spacing


def neighbourhood_range(
    values: NDArray[np.floating],
    geometry: Geometry,
    seeds_zyx: NDArray[np.intp],
    radius_mm: float,
    multiplier: float,
) -> tuple[float, float]:
    """Mean +- ``multiplier`` std of the voxels within ``radius_mm`` of any seed.

    The ball always holds the seed voxel and its face neighbours in-plane, so
    thick slices or a tiny radius still give a spread to work with.
    """
    ball = seed_ball(values.shape, seeds_zyx, geometry, radius_mm)
    samples = values[ball].astype(np.float64)
    mean, std = float(samples.mean()), float(samples.std())
    # A perfectly flat neighbourhood (synthetic data, saturated MR) would give
    # an empty range; a tenth of a unit keeps the seed value itself inside.
    std = max(std, 0.1)
    return mean - multiplier * std, mean + multiplier * std


def smoothed_values(values: NDArray[np.generic], geometry: Geometry, sigma_mm: float) -> NDArray[np.floating]:
    """``values`` as float32, Gaussian-smoothed with ``sigma_mm`` (0: unchanged).

    Noise makes a thresholded region porous, and a porous region falls apart
    under the leak guard's opening; a 1 mm blur is below what a print resolves.
    The sigma is per axis in mm, so thick slices are barely blurred across.
    """
    if sigma_mm <= 0:
        return values  # type: ignore[return-value]
    from scipy.ndimage import gaussian_filter

    sigma = [sigma_mm / s for s in zyx_spacing(geometry)]
    return gaussian_filter(np.asarray(values, dtype=np.float32), sigma=sigma, truncate=2.0)


#: How far from the seeds the radial profile looks for the part's edge.
PROFILE_REACH_MM = 30.0


@dataclass(frozen=True)
class ProfileEdge:
    """Where the radial profile around the seeds steps: the part's edge."""

    level: float  #: median value at the seeds
    around: float  #: median 2 mm past the steepest step
    distance_mm: float  #: distance of that step from the seeds


def radial_profile_edge(values: NDArray[np.floating], geometry: Geometry, seeds_zyx: NDArray[np.intp]) -> ProfileEdge:
    """The steepest step of the median value against distance from the nearest seed.

    The profile is taken in steps of the finest voxel size up to
    ``PROFILE_REACH_MM`` and smoothed over three steps.
    """
    spacing = zyx_spacing(geometry)
    reach = np.array([int(np.ceil(PROFILE_REACH_MM / s)) for s in spacing])
    first = np.maximum(seeds_zyx.min(axis=0) - reach, 0)
    stop = np.minimum(seeds_zyx.max(axis=0) + reach + 1, values.shape)
    not_seed = np.ones(tuple(stop - first), dtype=bool)
    not_seed[tuple((seeds_zyx - first).T)] = False
    distance = edt.edt(not_seed, anisotropy=spacing, black_border=False, parallel=EDT_THREADS)
    step = min(spacing)
    bins = np.minimum((distance / step).astype(np.int64), int(PROFILE_REACH_MM / step)).ravel()
    window = np.asarray(values[tuple(slice(a, b) for a, b in zip(first, stop))], dtype=np.float64).ravel()
    known = np.isfinite(window)  # a restricted scan marks what is left out with NaN
    window, bins = window[known], bins[known]
    order = np.lexsort((window, bins))
    counts = np.bincount(bins)
    present = counts > 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    medians = window[order][(starts + counts // 2)[present]]
    radii = np.flatnonzero(present) * step
    if len(medians) < 4:
        return ProfileEdge(float(medians[0]), float(medians[0]), float(radii[-1]))
    profile = np.convolve(np.pad(medians, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    edge = int(np.argmax(np.abs(np.diff(profile))))
    around = float(profile[min(len(profile) - 1, edge + 1 + int(np.ceil(2.0 / step)))])
    return ProfileEdge(float(medians[0]), around, float(0.5 * (radii[edge] + radii[edge + 1])))


def profile_edge_limit(
    values: NDArray[np.floating],
    geometry: Geometry,
    seeds_zyx: NDArray[np.intp],
    low: float,
    high: float,
) -> tuple[float, float, float, float]:
    """Clip a range half-way across the steepest step of the radial profile around the seeds.

    Returns
    -------
    low, high : float
        The range, clipped on the surroundings' side (unchanged when the
        profile does not step away from the seeds' value).
    level, around : float
        Median at the seeds, and 2 mm past the step (see :func:`radial_profile_edge`).
    """
    edge = radial_profile_edge(values, geometry, seeds_zyx)
    return (*clip_half_way(low, high, edge.level, edge.around), edge.level, edge.around)


def half_contrast_limit(
    values: NDArray[np.floating],
    geometry: Geometry,
    region: NDArray[np.bool_],
    low: float,
    high: float,
    *,
    shell_mm: tuple[float, float] = (2.0, 5.0),
) -> tuple[float, float, float, float]:
    """Clip a range so it stops half-way between the part and its surroundings.

    Returns
    -------
    low, high : float
        The range, clipped on the surroundings' side at the half-contrast level
        (the 50 % iso-level used to measure lesions).
    level, around : float
        Median inside the region and median of a shell ``shell_mm`` outside it.
    """
    level, around = part_and_surroundings(values, geometry, region, shell_mm=shell_mm)
    return (*clip_half_way(low, high, level, around), level, around)


def clip_half_way(low: float, high: float, level: float, around: float) -> tuple[float, float]:
    """``[low, high]`` clipped, on the surroundings' side, half-way between the part's level and theirs.

    >>> clip_half_way(-100.0, 200.0, 40.0, -850.0)
    (-100.0, 200.0)
    >>> clip_half_way(0.0, 200.0, 130.0, 60.0)
    (95.0, 200.0)
    """
    middle = 0.5 * (level + around)
    if around < level:
        return max(low, middle), high
    return low, min(high, middle)


def part_and_surroundings(
    values: NDArray[np.floating],
    geometry: Geometry,
    region: NDArray[np.bool_],
    *,
    shell_mm: tuple[float, float] = (2.0, 5.0),
) -> tuple[float, float]:
    """Median value inside the region and in a shell ``shell_mm`` outside it."""
    box = bounding_box(region, margin=int(np.ceil(shell_mm[1] / min(geometry.spacing))) + 1)
    sub = region[box]
    outside = edt.edt(~sub, anisotropy=zyx_spacing(geometry), black_border=False, parallel=EDT_THREADS)
    shell = (outside > shell_mm[0]) & (outside <= shell_mm[1])
    sub_values = values[box]
    level = float(np.nanmedian(sub_values[sub]))
    around = float(np.nanmedian(sub_values[shell])) if np.isfinite(sub_values[shell]).any() else level
    return level, around


#: How far past the grown region its partial-volume rim may reach (besides one voxel in every direction).
RIM_REACH_MM = 2.0


def add_partial_volume_rim(
    values: NDArray[np.floating], geometry: Geometry, region: NDArray[np.bool_]
) -> tuple[NDArray[np.bool_], int, float, float]:
    """Add the voxels along the region's edge that are more part than surroundings.

    The voxels on a lesion's edge mix lesion and background (the scanner's
    blur spreads the edge over a millimetre or two), so a range fitted to the
    lesion's core misses them and the print comes out too thin: on thin slices
    a 20 mm nodule loses a fifth of its volume, on 5 mm slices a whole slice at
    each end.  The edge belongs to the part up to the half-way (50 %) level
    between the part and its surroundings, the usual iso-level for lesion
    volumes.  Only voxels within ``RIM_REACH_MM`` (and at least one voxel) of
    the region and connected to it are considered, so the rim never grows into
    a neighbour of the same intensity.

    Returns
    -------
    region : ndarray of bool
    added : int
        Voxels added.
    level, around : float
        Median inside the region and of a 2..5 mm shell outside it.
    """
    level, around = part_and_surroundings(values, geometry, region)
    middle = 0.5 * (level + around)
    spacing = zyx_spacing(geometry)
    margin = max(2, int(np.ceil(RIM_REACH_MM / min(spacing))) + 1)
    box = bounding_box(region, margin=margin)
    sub = region[box]
    near = edt.edt(~sub, black_border=False, parallel=EDT_THREADS) <= 1.5  # voxel units: faces and edges
    near |= edt.edt(~sub, anisotropy=spacing, black_border=False, parallel=EDT_THREADS) <= RIM_REACH_MM
    sub_values = values[box]
    past = sub_values >= middle if level >= around else sub_values <= middle
    grown = seeded_components(sub | (near & past), np.argwhere(sub)[:1])
    rim = grown & ~sub
    out = region.copy()
    out[box] |= rim
    return out, int(np.count_nonzero(rim)), level, around


def seed_ball(
    shape_zyx: Sequence[int], seeds_zyx: NDArray[np.intp], geometry: Geometry, radius_mm: float
) -> NDArray[np.bool_]:
    """Voxels within ``radius_mm`` of any seed (anisotropic spacing respected)."""
    sx, sy, sz = geometry.spacing
    spacing_zyx = (sz, sy, sx)
    ball = np.zeros(tuple(shape_zyx), dtype=bool)
    # At least one voxel in-plane, so the estimate never rests on one value.
    reach = [max(int(np.floor(radius_mm / s)), 1 if axis else 0) for axis, s in enumerate(spacing_zyx)]
    for seed in seeds_zyx:
        window = tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, r, n in zip(seed, reach, shape_zyx))
        grids = np.ogrid[window]
        dist2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, seed, spacing_zyx))
        limit = max(radius_mm, min(spacing_zyx[1:])) ** 2 + 1e-9
        ball[window] |= dist2 <= limit
    return ball
