"""Seeded region growing: the connected part of an intensity range that holds the seeds.

Region growing inside ``[low, high]`` is, exactly, "threshold, label the
6-connected components, keep those that contain a seed"; done that way it is
vectorised (numpy + cc3d) instead of a voxel-by-voxel flood fill.

What makes it usable on real lesions and vessels:

* the range can be estimated from the seeds, confidence-connected style
  (ITK's ``ConfidenceConnectedImageFilter``): mean +- k standard deviations
  over a small ball around the seeds, re-estimated a few times over the grown
  region and never past half-way to the surroundings; when that first range
  leaks (a lesion smaller than the ball, a click near its edge), it is clipped
  half-way across the steepest step of the radial profile around the seeds, at
  the lesion's edge, then estimated again from half and a quarter of the ball;
* a leak guard.  Tissue of the same intensity often touches the target (a
  tumour on the chest wall, the aorta on the heart).  The grown region is
  recomputed after openings of increasing radius (which cut bridges thinner
  than twice the radius); the largest radius whose predecessor *explodes*
  (is more than ``leak_ratio`` times its region) marks the last leak cut,
  unless what it cut off is a compact lump of the part's size through a
  waist (a lobulated tumour, kept whole with a warning); the
  opened region gets its own boundary back by a bounded reconstruction
  inside the threshold mask; a chosen region that still reaches the scan
  border or the volume limit gives way to the smallest larger opening that
  stops it.  If none does, growing stops with an error that says what to
  change, instead of returning half the body;
* on CT, a region that still leaks while the seeds lie in aerated lung (a
  nodule on the pleura, as dense as the chest wall over a contact wider than
  any opening) is kept to the lung field, closed over the nodule's bite;
* with an estimated range, the edge voxels past the 50 % level between the
  part and its surroundings, within 2 mm, are added (the partial-volume rim),
  so the part keeps its volume.

All of it runs in a window of the scan around the seeds, widened while the
region comes near one of its faces: the cost follows the part, not the scan.

This module holds the settings and the flow; the range estimates are in
:mod:`.intensity`, the leak guard in :mod:`.leak_guard`, the window in
:mod:`.window`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import cc3d
import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, SegmentationError
from ..geometry import Geometry
from ..volume import Mask, Volume
from .checks import MAX_RADIUS_MM, MAX_VOLUME_MM3, require_number
from .cleanup import CONNECTIVITY
from .intensity import (
    RIM_REACH_MM,
    add_partial_volume_rim,
    half_contrast_limit,
    neighbourhood_range,
    profile_edge_limit,
    smoothed_values,
)
from .leak_guard import AERATED_HU, RegionLeakError, grow_region, lung_field_around
from .seeds import seeds_to_indices
from .threshold import parse_threshold
from .voxels import fill_enclosed, format_ijk, zyx_spacing
from .window import GrowingWindow, WindowEdges, WindowTooSmall

__all__ = ["RegionGrowingSettings", "RegionLeakError", "parse_range", "segment_from_seeds"]

log = logging.getLogger("medprint")


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
        # Finite and within a sane range: NaN passes every ``<`` test, so each value goes through require_number.
        if self.smoothing_mm is not None:
            require_number(self.smoothing_mm, "--smooth-image", low=0, high=20, unit="mm Gaussian sigma")
        require_number(self.multiplier, "--range-k", low=0, high=20, low_open=True)
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, Integral):
            raise ParameterError(f"iterations must be a whole number, got {self.iterations!r}")
        require_number(self.iterations, "iterations", low=0, high=100, why="re-estimations settle within a few")
        require_number(self.seed_radius_mm, "seed radius", low=0, high=MAX_RADIUS_MM, unit="mm")
        if self.open_mm is not None:
            require_number(self.open_mm, "--open", low=0, high=MAX_RADIUS_MM, unit="mm")
        require_number(self.max_radius_mm, "--max-radius", low=0, high=MAX_RADIUS_MM, unit="mm")
        require_number(self.leak_ratio, "leak ratio", low=1, high=1000, low_open=True)
        if self.max_volume_mm3 is not None:
            require_number(self.max_volume_mm3, "--max-volume", low=0, high=MAX_VOLUME_MM3, low_open=True,
                           unit="mm3")
        if self.intensity_range is not None:
            low, high = self.intensity_range
            require_number(low, "--range", why="the low bound")
            require_number(high, "--range", low=low, low_open=True, why="the high bound, above the low one")


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
        check_seeds_in_range(volume, raw, seeds, *settings.intensity_range, settings)
    max_volume = settings.max_volume_mm3 or 0.25 * raw.size * volume.geometry.voxel_volume_mm3
    spacing_zyx = zyx_spacing(volume.geometry)
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
    steps = [f"{len(seeds)} seed(s) at voxel(s) " + "; ".join(format_ijk(s) for s in seeds_scan)]
    if smoothing > 0:
        steps.append(f"Gaussian smoothing {smoothing:g} mm before thresholding")
    try:
        return _grow_from_values(values, raw, geometry, edges, seeds, settings, max_volume, steps)
    except RegionLeakError:
        if not volume.is_hounsfield:
            raise
        field = lung_field_around(values, geometry, seeds)
        if field is None:
            raise
        # A nodule on the pleura is as dense as the chest wall it touches, over
        # a contact wider than any opening: keep to the lung field instead.
        inside, close_mm = field
        steps.append(
            f"the region leaked and the seeds lie in aerated lung: kept to the lung field (below {AERATED_HU:g} HU, "
            f"closed over {close_mm:.0f} mm so a lesion on the pleura stays inside it)"
        )
        restricted = np.where(inside, values, np.nan)
        return _grow_from_values(restricted, raw, geometry, edges, seeds, settings, max_volume, steps)


def _grow_from_values(
    values: NDArray[np.floating],
    raw: NDArray[Any],
    geometry: Geometry,
    edges: WindowEdges,
    seeds: NDArray[np.intp],
    settings: RegionGrowingSettings,
    max_volume: float,
    steps: list[str],
) -> tuple[NDArray[np.bool_], list[str]]:
    steps = list(steps)

    def grow(low: float, high: float) -> tuple[NDArray[np.bool_], float]:
        return grow_region(
            values, geometry, seeds, low, high, settings=settings, max_volume_mm3=max_volume, edges=edges
        )

    if settings.intensity_range is not None:
        low, high = settings.intensity_range
        region, radius = grow(low, high)
        steps.append(f"range {low:g}..{high:g} (given)")
    else:
        # A click is inside the part by definition: every estimate keeps the seeds' own values.
        seed_values = values[tuple(seeds.T)].astype(np.float64)
        seed_low, seed_high = float(seed_values.min()), float(seed_values.max())
        leak: RegionLeakError | None = None
        for low, high, note in _first_ranges(raw, values, geometry, seeds, settings, seed_low, seed_high):
            steps.append(note if leak is None else f"that range leaked: {note}")
            try:
                region, radius = grow(low, high)
                break
            except RegionLeakError as error:
                leak = error
        else:
            assert leak is not None
            raise leak
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
                # Usually a click on the part's blurred edge, or on a patch unlike the rest of it.
                log.warning(
                    "seeded growing: a seed's value (%.0f..%.0f) lies outside the range the part's own voxels give "
                    "(%.0f..%.0f): the click may be on the part's edge; check the result, or click deeper inside",
                    seed_low, seed_high, new_low, new_high,
                )
                break
            low, high = new_low, new_high
            region, radius = grow(low, high)
        steps.append(
            f"range re-estimated over the region (confidence-connected, at most {settings.iterations} times, "
            f"clipped half-way to the surroundings): {low:.0f}..{high:.0f}"
        )
    if settings.intensity_range is None and settings.partial_volume_rim:
        # Each edge voxel by its own value: the smoothing that keeps the growing
        # from going porous would blur the edge further (a 6 mm nodule loses a fifth).
        own_values = np.where(np.isnan(values), np.nan, raw) if np.issubdtype(values.dtype, np.floating) else raw
        region, added, level, around = add_partial_volume_rim(own_values, geometry, region)
        steps.append(
            f"partial-volume rim: {added} voxels within {RIM_REACH_MM:g} mm of the region past half-way between the "
            f"part ({level:.0f}) and its surroundings ({around:.0f}) added"
        )
    if radius > 0:
        steps.append(f"opening {radius:g} mm to cut bridges to touching tissue, then the region's own boundary restored")
    else:
        steps.append("no opening needed (no leak found)")
    if settings.fill_holes:
        region = fill_enclosed(region)
        steps.append("filled cavities enclosed by the region")
    return region, steps


def _first_ranges(
    raw: NDArray[Any],
    values: NDArray[np.floating],
    geometry: Geometry,
    seeds: NDArray[np.intp],
    settings: RegionGrowingSettings,
    seed_low: float,
    seed_high: float,
) -> Iterator[tuple[float, float, str]]:
    """First ranges to grow with, each tried only when the one before leaked.

    Mean +- k sd within the seed radius; if that leaks, the ball was wider than
    the part around the click (a small lesion, a click near the edge), so the
    range is clipped at the steepest step of the profile around the seeds, then
    estimated again within half and a quarter of the radius.
    """
    k, radius_mm = settings.multiplier, settings.seed_radius_mm

    def keep_seeds(low: float, high: float) -> tuple[float, float]:
        return min(low, seed_low), max(high, seed_high)

    # The spread comes from the unsmoothed scan: it is the noise the range must span.
    low, high = keep_seeds(*neighbourhood_range(raw, geometry, seeds, radius_mm, k))
    yield low, high, f"range {low:.0f}..{high:.0f} from mean +- {k:g} sd within {radius_mm:g} mm of the seeds"
    clipped_low, clipped_high, level, around = profile_edge_limit(values, geometry, seeds, low, high)
    clipped = keep_seeds(clipped_low, clipped_high)
    if clipped != (low, high):
        yield (*clipped, (
            f"clipped half-way between the seeds ({level:.0f}) and what lies past the steepest step of the "
            f"profile around them ({around:.0f}): {clipped[0]:.0f}..{clipped[1]:.0f}"
        ))
    for fraction in (0.5, 0.25):
        smaller = fraction * radius_mm
        low, high = keep_seeds(*neighbourhood_range(raw, geometry, seeds, smaller, k))
        yield low, high, (
            f"estimated again within {smaller:g} mm of the seeds (a click near the part's edge): {low:.0f}..{high:.0f}"
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
                f"--seed at voxel {format_ijk(seed)} lies in {what}: value {value:g} there; click inside the part to print, "
                f"or, to grow this region anyway, give --range {low:.0f}:{high:.0f}"
            )


def check_seeds_in_range(
    volume: Volume, values: NDArray[np.floating], seeds: NDArray[np.intp], low: float, high: float,
    settings: RegionGrowingSettings, *, seed_option: str = "--seed", range_option: str = "--range",
) -> None:
    for seed in seeds:
        value = float(values[tuple(seed)])
        if not low <= value <= high:
            s_low, s_high = neighbourhood_range(values, volume.geometry, seed[None, :], settings.seed_radius_mm, settings.multiplier)
            raise SegmentationError(
                f"{seed_option} at voxel {format_ijk(seed)} has value {value:g}, outside {range_option} {low:g}:{high:g}; "
                f"move the click into the part, or use a range around it such as {range_option} {s_low:.0f}:{s_high:.0f}"
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


