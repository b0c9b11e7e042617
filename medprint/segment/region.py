"""Seeded region growing: the connected part of an intensity range that holds the seeds.

Region growing inside ``[low, high]`` is, exactly, "threshold, label the
6-connected components, keep those that contain a seed"; done that way it is
vectorised (numpy + cc3d) instead of a voxel-by-voxel flood fill.

Two things make it usable on real lesions and vessels:

* the range can be estimated from the seeds, confidence-connected style
  (ITK's ``ConfidenceConnectedImageFilter``): mean +- k standard deviations
  over a small ball around the seeds, re-estimated a few times over the grown
  region; when that first range leaks (a lesion smaller than the ball), it is
  clipped half-way across the steepest step of the radial profile around the
  seeds, i.e. at the lesion's own edge;
* a leak guard.  Tissue of the same intensity often touches the target (a
  tumour on the chest wall, the aorta on the heart).  The grown region is
  recomputed after openings of increasing radius (which cut bridges thinner
  than twice the radius) and the smallest radius whose region does not
  *explode* (grow by more than ``leak_ratio`` over the region found with the
  next larger radius) is kept; the opened region is then given its own
  boundary back by a bounded reconstruction inside the threshold mask.  If the
  region still exceeds the volume limit or reaches the volume border, growing
  stops with an error that says what to change, instead of returning half the
  body.

All of it runs in a window of the scan around the seeds, widened while the
region comes near one of its faces: the cost follows the part, not the scan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cc3d
import edt
import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, SegmentationError
from ..geometry import Geometry
from ..volume import Mask, Volume
from .cleanup import CONNECTIVITY
from .threshold import parse_threshold
from .seeds import seeds_to_indices

log = logging.getLogger("medprint")

#: Opening radii (mm) tried by the automatic leak guard, up to ``max_radius_mm``.
OPENING_RADII_MM = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0)

#: At or below this a CT voxel is air or aerated lung: a seed there is almost surely a mis-click.
AIR_HU = -700.0


@dataclass(frozen=True)
class RegionGrowingSettings:
    """How to grow a region from seeds.

    Parameters
    ----------
    intensity_range : (float, float), optional
        Inclusive range in the scan's units (``--range LO:HI``).  Default:
        estimated from the seeds' neighbourhood.
    multiplier : float
        k in mean +- k*std when estimating the range (``--range-k``).
    iterations : int
        Re-estimations of the range over the grown region (ITK's default
        behaviour; 0 uses the seed neighbourhood only).
    seed_radius_mm : float
        Radius of the ball around each seed used for the first estimate.
    open_mm : float, optional
        Fixed opening radius in mm before picking the seeded component
        (``--open``); ``None`` chooses it automatically up to
        ``max_radius_mm``; 0 disables opening.
    max_radius_mm : float
        Largest opening radius the automatic leak guard may use
        (``--max-radius``).
    leak_ratio : float
        A region more than this many times the one found with the next larger
        opening counts as a leak.
    max_volume_mm3 : float, optional
        Stop with an error when the region exceeds this (``--max-volume``).
        Default: a quarter of the scanned volume.
    allow_border : bool
        Accept a region that reaches the border of the scan (vessels leaving a
        crop); off by default, since a lesion reaching the border usually
        means a leak (``--allow-border``).
    fill_holes : bool
        Fill cavities enclosed by the region (calcifications, necrosis, air
        bronchograms) so the print is solid.
    label : str
        Name of the mask.
    smoothing_mm : float, optional
        Gaussian sigma (mm) applied before thresholding (``--smooth-image``).
        Default: 1 mm when the range is estimated (noise would make the region
        porous and the leak guard would cut it apart), none with a given
        ``--range`` (the user's values are applied to the scan as it is).
    partial_volume_rim : bool
        With an estimated range, add the edge voxels that are more part than
        surroundings (see :func:`add_partial_volume_rim`).
    """

    intensity_range: tuple[float, float] | None = None
    multiplier: float = 2.5
    iterations: int = 3
    seed_radius_mm: float = 5.0
    open_mm: float | None = None
    max_radius_mm: float = 6.0
    leak_ratio: float = 1.5
    max_volume_mm3: float | None = None
    allow_border: bool = False
    fill_holes: bool = True
    label: str = "region"
    smoothing_mm: float | None = None
    partial_volume_rim: bool = True

    def __post_init__(self) -> None:
        if self.smoothing_mm is not None and not self.smoothing_mm >= 0:
            raise ParameterError(f"--smooth-image: must be >= 0 mm, got {self.smoothing_mm:g}")
        if self.intensity_range is not None:
            low, high = self.intensity_range
            if not (np.isfinite(low) and np.isfinite(high) and low < high):
                raise ParameterError(f"--range: low {low:g} must be below high {high:g}; write --range LO:HI")
        if not self.multiplier > 0:
            raise ParameterError(f"--range-k: must be > 0, got {self.multiplier:g} (2.5 is usual)")
        if self.iterations < 0:
            raise ParameterError(f"iterations must be >= 0, got {self.iterations}")
        if not self.seed_radius_mm >= 0:
            raise ParameterError(f"seed radius must be >= 0 mm, got {self.seed_radius_mm:g}")
        if self.open_mm is not None and not self.open_mm >= 0:
            raise ParameterError(f"--open: radius must be >= 0 mm, got {self.open_mm:g}")
        if not self.max_radius_mm >= 0:
            raise ParameterError(f"--max-radius: must be >= 0 mm, got {self.max_radius_mm:g}")
        if not self.leak_ratio > 1:
            raise ParameterError(f"leak ratio must be > 1, got {self.leak_ratio:g}")
        if self.max_volume_mm3 is not None and not self.max_volume_mm3 > 0:
            raise ParameterError(f"--max-volume: must be > 0 mm3, got {self.max_volume_mm3:g}")


def parse_range(text: str, *, option: str = "--range") -> tuple[float, float]:
    """Parse ``'LO:HI'`` into an inclusive intensity range.

    >>> parse_range("-100:200")
    (-100.0, 200.0)
    """
    return parse_threshold(text, option=option)


def segment_from_seeds(
    volume: Volume,
    seeds_lps_mm: Iterable[Sequence[float]] = (),
    settings: RegionGrowingSettings | None = None,
    *,
    seeds_voxel: Iterable[Sequence[float]] = (),
) -> tuple[Mask, list[str]]:
    """Grow the region connected to the seeds.

    Parameters
    ----------
    volume : Volume
        The scan, array ``(z, y, x)``.
    seeds_lps_mm : iterable of (x, y, z)
        Seed points in LPS mm (``--seed``).
    settings : RegionGrowingSettings, optional
        Range, leak guard and clean-up; defaults estimate everything.
    seeds_voxel : iterable of (i, j, k)
        Seed voxel indices (``--seed-voxel``).

    Returns
    -------
    mask : Mask
        The grown region, on the volume's grid.
    steps : list of str
        What was done, for the report: seeds, range and how it was found,
        opening radius chosen, region volume, leak-guard limits.

    Raises
    ------
    ParameterError
        No seed, or a seed outside the volume.
    SegmentationError
        A seed in air/background or outside the given range (the message gives
        the value found and a suggested range), or a leak the guard could not
        stop (the message gives the volume reached, the limit and the remedies).
    """
    settings = settings or RegionGrowingSettings()
    seeds = seeds_to_indices(volume.geometry, volume.shape, lps_mm=seeds_lps_mm, voxels_ijk=seeds_voxel)
    raw = volume.array  # native dtype: a float copy of a hospital volume costs more than the growing
    _check_seeds_not_background(volume, raw, seeds, settings)
    if settings.intensity_range is not None:
        _check_seeds_in_range(volume, raw, seeds, *settings.intensity_range, settings)
    max_volume = settings.max_volume_mm3 or 0.25 * raw.size * volume.geometry.voxel_volume_mm3
    spacing_zyx = _spacing_zyx(volume.geometry)
    # The leak guard's reconstruction reaches twice the opening radius past the cut.
    guard_mm = max(WINDOW_GUARD_MM, 2.0 * settings.max_radius_mm + 2.0, 2.0 * (settings.open_mm or 0.0) + 2.0)
    window = GrowingWindow.around(seeds, volume.shape, spacing_zyx, max(WINDOW_REACH_MM, 2.0 * guard_mm))
    while True:
        edges = window.edges(spacing_zyx, guard_mm)
        try:
            region, steps = _grow_in_window(volume, window, edges, seeds, settings, max_volume)
            edges.require_inside(region)
            break
        except WindowTooSmall as small:
            window = window.widened(small.faces, WINDOW_GROWTH)
    log.debug("seeded growing: window %s voxels (z, y, x) of %s", window.shape, volume.shape)
    full = np.zeros(volume.shape, dtype=bool)
    full[window.box] = region
    volume_mm3 = float(np.count_nonzero(region)) * volume.geometry.voxel_volume_mm3
    steps.append(
        f"region {volume_mm3 / 1000:.2f} cm3 (limit {max_volume / 1000:.0f} cm3"
        + (", border allowed)" if settings.allow_border else ", must not reach the scan border)")
    )
    for step in steps:
        log.info("seeded growing: %s", step)
    return Mask(array=full, geometry=volume.geometry, label=settings.label), steps


#: First reach of the growing window around the seeds: a lesion or organ part plus room for the leak guard.
WINDOW_REACH_MM = 40.0
#: The region must stay this far from a window face inside the scan: the surroundings' shell (5 mm),
#: the smoothing kernel's reach (2 mm) and a voxel are then all inside the window (at least; the leak
#: guard's reach is added for large opening radii).
WINDOW_GUARD_MM = 8.0
#: Each widening multiplies the reach past a reached face by this.
WINDOW_GROWTH = 2.5


@dataclass(frozen=True)
class GrowingWindow:
    """A box of the scan that the growing works in, widened until the region lies well inside it.

    Growing touches only the voxels near the part: a tumour in a 512x512x300
    scan is grown in a box of a few million voxels, not the whole volume.  A
    region that comes within the guard of a window face (other than the scan
    border) may go on beyond it, so that face is pushed out and the growing is
    redone; a leak ends with the whole scan as the window, as without it.
    """

    lower: tuple[int, int, int]
    upper: tuple[int, int, int]
    scan_shape: tuple[int, int, int]
    reach_vox: tuple[tuple[int, int, int], tuple[int, int, int]]

    @classmethod
    def around(
        cls, seeds_zyx: NDArray[np.intp], scan_shape: Sequence[int], spacing_zyx: Sequence[float], reach_mm: float
    ) -> "GrowingWindow":
        reach = tuple(max(2, int(np.ceil(reach_mm / s))) for s in spacing_zyx)
        return cls._make(seeds_zyx.min(axis=0), seeds_zyx.max(axis=0) + 1, tuple(scan_shape), (reach, reach))  # type: ignore[arg-type]

    @classmethod
    def _make(cls, first, stop, scan_shape, reach_vox) -> "GrowingWindow":
        lower = tuple(max(0, int(f) - r) for f, r in zip(first, reach_vox[0]))
        upper = tuple(min(n, int(s) + r) for s, r, n in zip(stop, reach_vox[1], scan_shape))
        return cls(lower, upper, scan_shape, reach_vox)  # type: ignore[arg-type]

    @property
    def box(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.lower, self.upper))  # type: ignore[return-value]

    @property
    def offset(self) -> NDArray[np.intp]:
        return np.asarray(self.lower, dtype=np.intp)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.lower, self.upper))  # type: ignore[return-value]

    def edges(self, spacing_zyx: Sequence[float], guard_mm: float) -> WindowEdges:
        borders = tuple((a == 0, b == n) for a, b, n in zip(self.lower, self.upper, self.scan_shape))
        return WindowEdges(borders, tuple(int(np.ceil(guard_mm / s)) for s in spacing_zyx))

    def widened(self, faces: Iterable[tuple[int, int]], growth: float) -> "GrowingWindow":
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
            lower, upper = [0, 0, 0], list(self.scan_shape)
        return GrowingWindow(tuple(lower), tuple(upper), self.scan_shape, (tuple(reach[0]), tuple(reach[1])))  # type: ignore[arg-type]


def _grow_in_window(
    volume: Volume,
    window: GrowingWindow,
    edges: WindowEdges,
    seeds_scan: NDArray[np.intp],
    settings: RegionGrowingSettings,
    max_volume: float,
) -> tuple[NDArray[np.bool_], list[str]]:
    """Everything :func:`segment_from_seeds` does, on the window's part of the scan."""
    geometry = volume.geometry
    seeds = seeds_scan - window.offset
    raw = volume.array[window.box]
    smoothing = settings.smoothing_mm
    if smoothing is None:
        smoothing = 1.0 if settings.intensity_range is None else 0.0
    values = smoothed_values(raw, geometry, smoothing)
    steps = [f"{len(seeds)} seed(s) at voxel(s) " + "; ".join(_ijk(s) for s in seeds_scan)]
    if smoothing > 0:
        steps.append(f"Gaussian smoothing {smoothing:g} mm before thresholding")

    def grow(low: float, high: float) -> tuple[NDArray[np.bool_], float]:
        return grow_region(
            values, geometry, seeds, low, high, settings=settings, max_volume_mm3=max_volume, edges=edges
        )

    if settings.intensity_range is not None:
        low, high = settings.intensity_range
        region, radius = grow(low, high)
        steps.append(f"range {low:g}..{high:g} (given)")
    else:
        # The spread comes from the unsmoothed scan: it is the noise the range must span.
        low, high = neighbourhood_range(raw, geometry, seeds, settings.seed_radius_mm, settings.multiplier)
        # A click is inside the part by definition: every estimate keeps the seeds' own values.
        seed_values = values[tuple(seeds.T)].astype(np.float64)
        seed_low, seed_high = float(seed_values.min()), float(seed_values.max())
        low, high = min(low, seed_low), max(high, seed_high)
        steps.append(
            f"range {low:.0f}..{high:.0f} from mean +- {settings.multiplier:g} sd within {settings.seed_radius_mm:g} mm of the seeds"
        )
        try:
            region, radius = grow(low, high)
        except RegionLeakError:
            # A neighbourhood wider than a small lesion mixes in its surroundings
            # and the range spans both: clip it at the lesion's own edge.
            clipped_low, clipped_high, level, around = profile_edge_limit(values, geometry, seeds, low, high)
            clipped_low, clipped_high = min(clipped_low, seed_low), max(clipped_high, seed_high)
            if (clipped_low, clipped_high) == (low, high):
                raise
            low, high = clipped_low, clipped_high
            steps.append(
                f"that range leaked: clipped half-way between the seeds ({level:.0f}) and what lies past the "
                f"steepest step of the profile around them ({around:.0f}): {low:.0f}..{high:.0f}"
            )
            region, radius = grow(low, high)
        for _ in range(settings.iterations):
            inside = raw[region].astype(np.float64)
            mean, std = float(inside.mean()), float(inside.std())
            wide_low, wide_high = mean - settings.multiplier * std, mean + settings.multiplier * std
            # Never past half-way to the surroundings: beyond it a voxel is more
            # neighbour than part, and that is where confidence ranges leak.
            new_low, new_high, level, around = half_contrast_limit(values, geometry, region, wide_low, wide_high)
            if abs(new_low - low) <= 1e-3 * (abs(low) + 1) and abs(new_high - high) <= 1e-3 * (abs(high) + 1):
                break
            if new_low > seed_low or new_high < seed_high:
                steps.append(
                    f"re-estimation stopped: the next range ({new_low:.0f}..{new_high:.0f}) would leave out a seed's "
                    f"own value ({seed_low:.0f}..{seed_high:.0f})"
                )
                break
            low, high = new_low, new_high
            region, radius = grow(low, high)
        steps.append(
            f"range re-estimated over the region (confidence-connected, at most {settings.iterations} times, "
            f"clipped half-way to the surroundings): {low:.0f}..{high:.0f}"
        )
    if settings.intensity_range is None and settings.partial_volume_rim:
        region, added, level, around = add_partial_volume_rim(values, geometry, region)
        steps.append(
            f"partial-volume rim: {added} voxels within {RIM_REACH_MM:g} mm of the region past half-way between the "
            f"part ({level:.0f}) and its surroundings ({around:.0f}) added"
        )
    if radius > 0:
        steps.append(f"opening {radius:g} mm to cut bridges to touching tissue, then the region's own boundary restored")
    else:
        steps.append("no opening needed (no leak found)")
    if settings.fill_holes:
        region = _fill_enclosed(region)
        steps.append("filled cavities enclosed by the region")
    return region, steps


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

    sigma = [sigma_mm / s for s in _spacing_zyx(geometry)]
    return gaussian_filter(np.asarray(values, dtype=np.float32), sigma=sigma, truncate=2.0)


#: How far from the seeds the radial profile looks for the part's edge.
PROFILE_REACH_MM = 30.0


def profile_edge_limit(
    values: NDArray[np.floating],
    geometry: Geometry,
    seeds_zyx: NDArray[np.intp],
    low: float,
    high: float,
) -> tuple[float, float, float, float]:
    """Clip a range half-way across the steepest step of the radial profile around the seeds.

    The profile is the median value at each distance from the nearest seed (in
    steps of the finest voxel size, up to ``PROFILE_REACH_MM``); the part's edge
    is where it changes most, smoothed over three steps.

    Returns
    -------
    low, high : float
        The range, clipped on the surroundings' side (unchanged when the
        profile does not step away from the seeds' value).
    level, around : float
        Median at the seeds, and 2 mm past the step.
    """
    spacing = _spacing_zyx(geometry)
    reach = np.array([int(np.ceil(PROFILE_REACH_MM / s)) for s in spacing])
    first = np.maximum(seeds_zyx.min(axis=0) - reach, 0)
    stop = np.minimum(seeds_zyx.max(axis=0) + reach + 1, values.shape)
    not_seed = np.ones(tuple(stop - first), dtype=bool)
    not_seed[tuple((seeds_zyx - first).T)] = False
    distance = edt.edt(not_seed, anisotropy=spacing, black_border=False)
    step = min(spacing)
    bins = np.minimum((distance / step).astype(np.int64), int(PROFILE_REACH_MM / step)).ravel()
    window = np.asarray(values[tuple(slice(a, b) for a, b in zip(first, stop))], dtype=np.float64).ravel()
    order = np.lexsort((window, bins))
    counts = np.bincount(bins)
    present = counts > 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    medians = window[order][(starts + counts // 2)[present]]
    if len(medians) < 4:
        return low, high, float(medians[0]), float(medians[0])
    profile = np.convolve(np.pad(medians, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    edge = int(np.argmax(np.abs(np.diff(profile))))
    level = float(medians[0])
    around = float(profile[min(len(profile) - 1, edge + 1 + int(np.ceil(2.0 / step)))])
    middle = 0.5 * (level + around)
    if around < level:
        return max(low, middle), high, level, around
    return low, min(high, middle), level, around


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
    middle = 0.5 * (level + around)
    if around < level:
        return max(low, middle), high, level, around
    return low, min(high, middle), level, around


def part_and_surroundings(
    values: NDArray[np.floating],
    geometry: Geometry,
    region: NDArray[np.bool_],
    *,
    shell_mm: tuple[float, float] = (2.0, 5.0),
) -> tuple[float, float]:
    """Median value inside the region and in a shell ``shell_mm`` outside it."""
    box = _bounding_box(region, margin=int(np.ceil(shell_mm[1] / min(geometry.spacing))) + 1)
    sub = region[box]
    outside = edt.edt(~sub, anisotropy=_spacing_zyx(geometry), black_border=False)
    shell = (outside > shell_mm[0]) & (outside <= shell_mm[1])
    sub_values = values[box]
    level = float(np.median(sub_values[sub]))
    around = float(np.median(sub_values[shell])) if shell.any() else level
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
    spacing = _spacing_zyx(geometry)
    margin = max(2, int(np.ceil(RIM_REACH_MM / min(spacing))) + 1)
    box = _bounding_box(region, margin=margin)
    sub = region[box]
    near = edt.edt(~sub, black_border=False) <= 1.5  # voxel units: faces and edges
    near |= edt.edt(~sub, anisotropy=spacing, black_border=False) <= RIM_REACH_MM
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


def grow_region(
    values: NDArray[np.floating],
    geometry: Geometry,
    seeds_zyx: NDArray[np.intp],
    low: float,
    high: float,
    *,
    settings: RegionGrowingSettings,
    max_volume_mm3: float,
    edges: "WindowEdges | None" = None,
) -> tuple[NDArray[np.bool_], float]:
    """Region of ``[low, high]`` connected to the seeds, with the leak guard.

    ``edges`` says which faces of ``values`` are the scan's border when
    ``values`` is a window of the scan (default: all of them); a region that
    the window may cut raises ``WindowTooSmall`` before any leak check.

    Returns
    -------
    region : ndarray of bool, shape (z, y, x)
    opening_mm : float
        The opening radius used (0 when none was needed).
    """
    edges = edges or WindowEdges()
    in_range = (values >= low) & (values <= high)
    region = seeded_components(in_range, seeds_zyx)
    if not region.any():
        raise SegmentationError(
            f"no seed lies in the range {low:.0f}..{high:.0f}; move --seed inside the part or widen --range"
        )
    if settings.open_mm is not None:
        radius = float(settings.open_mm)
        if radius > 0:
            region = _opened_region(in_range, region, seeds_zyx, geometry, radius)
            if not region.any():
                raise SegmentationError(
                    f"--open {radius:g} mm removes the seeded part entirely (it is thinner than {2 * radius:g} mm "
                    "at the seeds); use a smaller --open or --max-radius"
                )
        edges.require_inside(region)
        _check_leak(region, geometry, max_volume_mm3, settings, low, high, radius, edges.scan_borders)
        return region, radius

    # Automatic: walk the opening radii up while the region keeps shrinking a
    # lot (a leak being cut), then take the smallest radius after the last cut.
    volumes = [int(np.count_nonzero(region))]
    regions = [region]
    radii = [0.0]
    min_step = min(geometry.spacing)
    box = _bounding_box(region, margin=0)
    sub_range = in_range[box]
    sub_seeds = seeds_zyx - np.array([s.start for s in box])
    sub_seed_region = region[box]
    spacing_zyx = _spacing_zyx(geometry)
    inside_depth = edt.edt(np.pad(sub_seed_region, 1), anisotropy=spacing_zyx, black_border=True)[1:-1, 1:-1, 1:-1]
    for radius in OPENING_RADII_MM:
        if radius > settings.max_radius_mm:
            break
        if radius < min_step:
            continue
        opened = _opened_sub(sub_range, sub_seed_region, inside_depth, sub_seeds, spacing_zyx, radius)
        count = int(np.count_nonzero(opened))
        if count == 0:
            break
        full = np.zeros_like(region)
        full[box] = opened
        volumes.append(count)
        regions.append(full)
        radii.append(radius)
    chosen = 0
    # The largest radius whose predecessor "explodes" marks the last leak cut.
    for index in range(1, len(volumes)):
        if volumes[index - 1] > settings.leak_ratio * volumes[index]:
            chosen = index
    region, radius = regions[chosen], radii[chosen]
    log.debug(
        "leak guard: region voxels by opening radius %s",
        ", ".join(f"{r:g} mm: {v}" for r, v in zip(radii, volumes)),
    )
    # The choice holds in a window when the regions it compares from the chosen
    # radius on are whole: a smaller radius's region, cut by the window, is
    # only larger outside it, so it still "explodes".
    for kept in regions[chosen:]:
        edges.require_inside(kept)
    _check_leak(region, geometry, max_volume_mm3, settings, low, high, radius, edges.scan_borders)
    return region, radius


class RegionLeakError(SegmentationError):
    """The grown region passed the volume limit or reached the scan border."""


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


def seeded_components(mask: NDArray[np.bool_], seeds_zyx: NDArray[np.intp]) -> NDArray[np.bool_]:
    """The 6-connected components of ``mask`` that contain a seed."""
    labels = cc3d.connected_components(mask, connectivity=CONNECTIVITY)
    ids = {int(labels[tuple(seed)]) for seed in seeds_zyx} - {0}
    if not ids:
        return np.zeros(mask.shape, dtype=bool)
    if len(ids) == 1:
        return labels == ids.pop()
    return np.isin(labels, sorted(ids))


def _opened_region(
    in_range: NDArray[np.bool_],
    region: NDArray[np.bool_],
    seeds_zyx: NDArray[np.intp],
    geometry: Geometry,
    radius_mm: float,
) -> NDArray[np.bool_]:
    box = _bounding_box(region, margin=0)
    spacing_zyx = _spacing_zyx(geometry)
    sub_region = region[box]
    depth = edt.edt(np.pad(sub_region, 1), anisotropy=spacing_zyx, black_border=True)[1:-1, 1:-1, 1:-1]
    opened = _opened_sub(in_range[box], sub_region, depth, seeds_zyx - np.array([s.start for s in box]), spacing_zyx, radius_mm)
    full = np.zeros_like(region)
    full[box] = opened
    return full


def _opened_sub(
    in_range: NDArray[np.bool_],
    region: NDArray[np.bool_],
    depth_mm: NDArray[np.floating],
    seeds_zyx: NDArray[np.intp],
    spacing_zyx: tuple[float, float, float],
    radius_mm: float,
) -> NDArray[np.bool_]:
    """Seeded part of the opened region, grown back to its own boundary.

    Erosion by ``radius_mm`` cuts every bridge thinner than twice the radius;
    the seeded cores are then dilated by twice the radius (the opening's own
    dilation plus the reconstruction) and clipped to the threshold region, so
    the part keeps its real boundary while a cut bridge stays cut beyond one
    radius from the part.
    """
    core = depth_mm > radius_mm
    # A seed on a thin spot (a vessel wall, the rim of a lesion) is carried by
    # the core nearest to it rather than lost.
    anchors = [_nearest_core_voxel(core, seed, spacing_zyx, 2.0 * radius_mm) for seed in seeds_zyx]
    found = [a for a in anchors if a is not None]
    cores = seeded_components(core, np.array(found, dtype=np.intp).reshape(-1, 3))
    if not cores.any():
        return cores
    # Only within twice the radius of the cores: the distance map of that box, not of the whole region.
    reach = [int(np.ceil(2.0 * radius_mm / s)) + 1 for s in spacing_zyx]
    near = tuple(slice(max(0, b.start - r), min(n, b.stop + r)) for b, r, n in zip(_bounding_box(cores, 0), reach, cores.shape))
    distance = edt.edt(~cores[near], anisotropy=spacing_zyx, black_border=False)
    grown = np.zeros_like(cores)
    grown[near] = (distance <= 2.0 * radius_mm) & region[near] & in_range[near]
    return seeded_components(grown, seeds_zyx)


def _nearest_core_voxel(
    core: NDArray[np.bool_], seed: NDArray[np.intp], spacing_zyx: tuple[float, float, float], reach_mm: float
) -> tuple[int, int, int] | None:
    """The core voxel nearest to ``seed`` within ``reach_mm`` (the seed itself if it is core)."""
    if core[tuple(seed)]:
        return tuple(int(v) for v in seed)  # type: ignore[return-value]
    reach = [int(np.ceil(reach_mm / s)) for s in spacing_zyx]
    window = tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, r, n in zip(seed, reach, core.shape))
    hits = np.argwhere(core[window])
    if len(hits) == 0:
        return None
    offsets = (hits + [w.start for w in window] - seed) * np.asarray(spacing_zyx)
    distances = np.linalg.norm(offsets, axis=1)
    best = int(np.argmin(distances))
    if distances[best] > reach_mm:
        return None
    return tuple(int(v) for v in hits[best] + [w.start for w in window])  # type: ignore[return-value]


def _check_leak(
    region: NDArray[np.bool_],
    geometry: Geometry,
    max_volume_mm3: float,
    settings: RegionGrowingSettings,
    low: float,
    high: float,
    radius: float,
    scan_borders: Sequence[tuple[bool, bool]],
) -> None:
    volume_mm3 = float(np.count_nonzero(region)) * geometry.voxel_volume_mm3
    remedy = "give a narrower --range, a larger --max-radius (or --open MM) to cut the bridge, or more seeds"
    if volume_mm3 > max_volume_mm3:
        raise RegionLeakError(
            f"region growing from the seeds leaked: {volume_mm3 / 1000:.0f} cm3 in range {low:.0f}..{high:.0f} "
            f"(opening {radius:g} mm) exceeds the limit of {max_volume_mm3 / 1000:.0f} cm3 (--max-volume); {remedy}"
        )
    if not settings.allow_border and _touches_border(region, scan_borders):
        raise RegionLeakError(
            f"region growing from the seeds reached the border of the scan ({volume_mm3 / 1000:.1f} cm3 in range "
            f"{low:.0f}..{high:.0f}, opening {radius:g} mm): probably a leak; {remedy}; "
            "or --allow-border if the part really leaves the scan"
        )


def _check_seeds_not_background(
    volume: Volume, values: NDArray[np.floating], seeds: NDArray[np.intp], settings: RegionGrowingSettings
) -> None:
    for seed in seeds:
        value = float(values[tuple(seed)])
        if settings.intensity_range is not None:
            continue  # the range check says more
        if volume.is_hounsfield:
            background = value <= AIR_HU
            what = "air or lung"
        else:
            background = _in_outer_background(values, seed)
            what = "the dark background around the body"
        if background:
            low, high = neighbourhood_range(values, volume.geometry, seed[None, :], settings.seed_radius_mm, settings.multiplier)
            raise SegmentationError(
                f"--seed at voxel {_ijk(seed)} lies in {what}: value {value:g} there; click inside the part to print, "
                f"or, to grow this region anyway, give --range {low:.0f}:{high:.0f}"
            )


def _check_seeds_in_range(
    volume: Volume, values: NDArray[np.floating], seeds: NDArray[np.intp], low: float, high: float,
    settings: RegionGrowingSettings,
) -> None:
    for seed in seeds:
        value = float(values[tuple(seed)])
        if not low <= value <= high:
            s_low, s_high = neighbourhood_range(values, volume.geometry, seed[None, :], settings.seed_radius_mm, settings.multiplier)
            raise SegmentationError(
                f"--seed at voxel {_ijk(seed)} has value {value:g}, outside --range {low:g}:{high:g}; move the seed "
                f"into the part, or use a range around it such as --range {s_low:.0f}:{s_high:.0f}"
            )


def _in_outer_background(values: NDArray[np.floating], seed: NDArray[np.intp]) -> bool:
    """Whether an MR seed lies in the dark region that surrounds the body.

    Dark is below a tenth of the way from the darkest to the brightest values;
    but some sequences show organs that dark (spleen and kidneys on
    opposed-phase T1), so a dark seed counts as background only when its dark
    region reaches the in-plane edge of the image, as the air around a patient
    does, rather than lying enclosed in the body.
    """
    sample = values.ravel()[:: max(1, values.size // 200_000)]
    darkest, brightest = np.percentile(sample, [1.0, 99.0])
    level = float(darkest + 0.1 * (brightest - darkest))
    if values[tuple(seed)] > level:
        return False
    labels = cc3d.connected_components(values <= level, connectivity=CONNECTIVITY)
    own = labels[tuple(seed)]
    edges = (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1])
    return bool(any((edge == own).any() for edge in edges))


def _fill_enclosed(region: NDArray[np.bool_]) -> NDArray[np.bool_]:
    box = _bounding_box(region, margin=1)
    sub = region[box]
    background = cc3d.connected_components(~np.pad(sub, 1), connectivity=26)
    outside = background == background[0, 0, 0]
    filled = region.copy()
    filled[box] = ~outside[1:-1, 1:-1, 1:-1]
    return filled


def _touches_border(region: NDArray[np.bool_], faces: Sequence[tuple[bool, bool]] = ((True, True),) * 3) -> bool:
    """Whether the region reaches one of the given faces (per axis: low, high)."""
    for axis, (low, high) in enumerate(faces):
        ends = np.moveaxis(region, axis, 0)
        if (low and ends[0].any()) or (high and ends[-1].any()):
            return True
    return False


def _bounding_box(region: NDArray[np.bool_], margin: int) -> tuple[slice, slice, slice]:
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(region.any(axis=other))
        box.append(slice(max(0, int(hit[0]) - margin), min(region.shape[axis], int(hit[-1]) + 1 + margin)))
    return tuple(box)  # type: ignore[return-value]


def _spacing_zyx(geometry: Geometry) -> tuple[float, float, float]:
    sx, sy, sz = geometry.spacing
    return (sz, sy, sx)


def _ijk(seed_zyx: NDArray[np.intp]) -> str:
    z, y, x = (int(v) for v in seed_zyx)
    return f"{x},{y},{z}"
