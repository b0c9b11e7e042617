"""Contrast-filled vessels: one connected vessel tree picked by a seed.

On arterial-phase CT the lumen of the aorta, its branches, the heart chambers
and (at low resolution) bone all fall in the same Hounsfield range and touch.
The seeded variant thresholds the blood pool, opens it with a ball of
``max_radius_mm`` (cutting every bridge thinner than twice the radius: vessel
walls meeting bone, small side branches into neighbouring structures), keeps
the component holding the seed and grows it back to its own boundary inside
the threshold mask.

Where a vessel touches a chamber through a neck as wide as the vessel itself
(the aortic root opening into the left ventricle, an aorta lying against the
pulmonary artery with the walls lost to partial volume) no opening can cut
the contact without cutting the vessel.  The *tube* mode then uses what the
user's clicks say about the shape: seeds given in order along one vessel are
joined by a minimal path through the lumen (its centreline), and only the
voxels within ``tube_factor`` times the local vessel radius of that path are
kept.  The local radius is first the lumen's inscribed radius along the path
(its distance transform), then the radius of the circle with the region's own
cross-sectional area, re-estimated a few times, median-filtered along the
path so a chamber touching over a short stretch cannot inflate it.

An aortic dissection has two channels inside one wall: the true lumen and a
false lumen that may be contrast-filled, partly or wholly thrombosed (clot,
denser than the wall and the tissue around the aorta but well below the
contrast).  ``false_lumen`` traces it as a second tube from its own clicks
and its own range, and the part is the union of both channels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import edt
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from ..errors import ParameterError, SegmentationError
from ..volume import Mask, Volume
from .presets import get_preset
from .region import RegionGrowingSettings, check_seeds_in_range, segment_from_seeds
from .seeds import seeds_to_indices
from .threshold import check_preset_applies
from .voxels import EDT_THREADS, bounding_box, fill_enclosed, format_ijk, seeded_components, zyx_spacing

log = logging.getLogger("medprint")


@dataclass(frozen=True)
class FalseLumen:
    """A dissection's second channel, traced as its own tube (tube mode only).

    Parameters
    ----------
    seeds_lps_mm : tuple of (x, y, z)
        Clicks along the false lumen, in order, in patient mm (LPS).
    intensity_range : (float, float), optional
        Its range; default the true lumen's.  A thrombosed false lumen needs
        a lower bound under the clot's values (clot is about 50-150 HU on
        arterial-phase CT) and above the wall's and the periaortic tissue's.
    """

    seeds_lps_mm: tuple[tuple[float, float, float], ...]
    intensity_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if len(self.seeds_lps_mm) < 2:
            raise ParameterError(
                f"--false-lumen: needs at least two clicks along the false lumen, in order; got {len(self.seeds_lps_mm)}"
            )


@dataclass(frozen=True)
class VesselSettings:
    """How to pick one contrast-filled vessel tree.

    Parameters
    ----------
    intensity_range : (float, float), optional
        Blood-pool range (``--range``); default: the ``blood-pool`` preset.
    max_radius_mm : float
        Opening radius in mm (``--max-radius``): bridges thinner than twice
        this are cut before the seeded tree is picked.  0 disables.
    max_volume_mm3 : float, optional
        Leak limit (``--max-volume``); default a quarter of the scan.
    allow_border : bool
        Vessels leave the field of view, so reaching the border is accepted by
        default.
    label : str
        Mask name.
    tube_factor : float, optional
        Tube mode: the seeds are points along one vessel, in order (LPS seeds
        first, then voxel seeds); keep only the voxels within this many local
        vessel radii of the centreline through them.  ``None`` (default):
        keep the whole connected tree.  1.3-1.5 keeps the vessel wall's
        partial-volume rim and cuts what lies against it.  Replaces the
        opening step (``max_radius_mm`` is not used).
    tube_window_mm : float
        Tube mode: length along the centreline over which the local radius
        is median-filtered (longer: steadier radius, slower to follow a
        narrowing).
    false_lumen : FalseLumen, optional
        Tube mode: a dissection's false lumen, traced as a second tube and
        joined to the first.
    branches : tuple of click paths
        Tube mode: side branches to keep (the arch's supra-aortic arteries,
        say), each as clicks in order, in patient mm (LPS), the first on the
        vessel where the branch leaves it.  Each is traced as its own tube
        (in the vessel's range) from where its path leaves the vessel.
    """

    intensity_range: tuple[float, float] | None = None
    max_radius_mm: float = 2.0
    max_volume_mm3: float | None = None
    allow_border: bool = True
    label: str = "vessel"
    tube_factor: float | None = None
    tube_window_mm: float = 20.0
    false_lumen: FalseLumen | None = None
    branches: tuple[tuple[tuple[float, float, float], ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.max_radius_mm >= 0:
            raise ParameterError(f"--max-radius: must be >= 0 mm, got {self.max_radius_mm:g}")
        if self.tube_factor is not None and not self.tube_factor >= 1:
            raise ParameterError(
                f"tube factor: must be >= 1 (the tube is at least the vessel), got {self.tube_factor:g}; 1.4 is usual"
            )
        if not self.tube_window_mm > 0:
            raise ParameterError(f"tube window: must be > 0 mm, got {self.tube_window_mm:g}")
        if self.false_lumen is not None and self.tube_factor is None:
            raise ParameterError("--false-lumen goes with --tube: both lumina are traced as tubes along clicks")
        if self.branches and self.tube_factor is None:
            raise ParameterError("--branch goes with --tube: the tree mode keeps every branch already")
        for number, clicks in enumerate(self.branches, start=1):
            if len(clicks) < 2:
                raise ParameterError(
                    f"--branch {number}: needs at least two clicks, the first on the vessel where the branch leaves "
                    f"it; got {len(clicks)}"
                )


def segment_vessel(
    volume: Volume,
    seeds_lps_mm: Iterable[Sequence[float]] = (),
    settings: VesselSettings | None = None,
    *,
    seeds_voxel: Iterable[Sequence[float]] = (),
) -> tuple[Mask, list[str]]:
    """The contrast-filled vessel tree connected to the seeds.

    Parameters
    ----------
    volume : Volume
        Contrast-enhanced CT (Hounsfield units) unless ``intensity_range`` is
        given.
    seeds_lps_mm, seeds_voxel :
        Seeds as in :func:`~medprint.segment.segment_from_seeds`.  In tube
        mode (``settings.tube_factor``) they are points along one vessel in
        order, LPS seeds first: the model runs from the first to the last and
        is cut flat at both (click the first one at the valve to end a root
        model there).
    settings : VesselSettings, optional

    Returns
    -------
    mask : Mask
    steps : list of str

    Raises
    ------
    ParameterError
        The blood-pool preset on a non-CT scan (give ``--range``), bad seeds,
        fewer than two seeds in tube mode.
    SegmentationError
        Seed outside the range, a leak past the volume limit, or (tube mode)
        two successive seeds not connected inside the range.
    """
    settings = settings or VesselSettings()
    if settings.intensity_range is None:
        preset = get_preset("blood-pool")
        check_preset_applies(volume, preset)
        low, high = preset.low, preset.high
        origin = "preset blood-pool"
    else:
        low, high = settings.intensity_range
        origin = "given"
    if settings.tube_factor is not None:
        return _segment_vessel_tube(volume, seeds_lps_mm, seeds_voxel, settings, low, high, origin)
    growing = RegionGrowingSettings(
        intensity_range=(low, high),
        open_mm=settings.max_radius_mm,
        max_volume_mm3=settings.max_volume_mm3,
        allow_border=settings.allow_border,
        fill_holes=True,
        label=settings.label,
    )
    mask, steps = segment_from_seeds(volume, seeds_lps_mm, growing, seeds_voxel=seeds_voxel)
    steps.insert(1, f"blood-pool range {low:g}..{high:g} ({origin}); opening {settings.max_radius_mm:g} mm (--max-radius)")
    log.info("vessel: %s", steps[1])
    return mask, steps


#: Re-estimations of the tube radius from the region's cross-sections (it settles after two or three).
TUBE_ITERATIONS = 4


def _segment_vessel_tube(
    volume: Volume,
    seeds_lps_mm: Iterable[Sequence[float]],
    seeds_voxel: Iterable[Sequence[float]],
    settings: VesselSettings,
    low: float,
    high: float,
    origin: str,
) -> tuple[Mask, list[str]]:
    seeds = seeds_to_indices(volume.geometry, volume.shape, lps_mm=seeds_lps_mm, voxels_ijk=seeds_voxel)
    if len(seeds) < 2:
        raise ParameterError(
            "tube mode needs at least two seeds along the vessel, in order (e.g. one at each end); "
            f"got {len(seeds)}"
        )
    region, path_steps = _tube_along_clicks(volume, seeds, low, high, settings)
    steps = [
        f"{len(seeds)} seed(s) along the vessel, in order, at voxel(s) " + "; ".join(format_ijk(s) for s in seeds),
        f"blood-pool range {low:g}..{high:g} ({origin}); tube mode, factor {settings.tube_factor:g}",
        path_steps,
    ]
    main = region.copy()
    for number, clicks in enumerate(settings.branches, start=1):
        branch_seeds = seeds_to_indices(volume.geometry, volume.shape, lps_mm=clicks)
        branch, branch_steps = _tube_along_clicks(
            volume, branch_seeds, low, high, settings, options=("--branch", "--range"), branch_of=main
        )
        region |= branch
        steps.append(
            f"branch {number}: {len(branch_seeds)} click(s) at voxel(s) "
            + "; ".join(format_ijk(s) for s in branch_seeds) + f", from where it leaves the vessel; {branch_steps}"
        )
    if settings.false_lumen is not None:
        channel = settings.false_lumen
        fl_low, fl_high = channel.intensity_range or (low, high)
        fl_seeds = seeds_to_indices(volume.geometry, volume.shape, lps_mm=channel.seeds_lps_mm)
        false_region, false_steps = _tube_along_clicks(
            volume, fl_seeds, fl_low, fl_high, settings, options=("--false-lumen", "--false-lumen-range")
        )
        region |= false_region
        steps.append(
            f"false lumen: {len(fl_seeds)} click(s) at voxel(s) " + "; ".join(format_ijk(s) for s in fl_seeds)
            + f", range {fl_low:g}..{fl_high:g}; {false_steps}"
        )
    region = fill_enclosed(region)
    volume_mm3 = float(np.count_nonzero(region)) * volume.geometry.voxel_volume_mm3
    limit = settings.max_volume_mm3 or 0.25 * region.size * volume.geometry.voxel_volume_mm3
    if volume_mm3 > limit:
        raise SegmentationError(
            f"vessel tube from the seeds leaked: {volume_mm3 / 1000:.0f} cm3 exceeds the limit of "
            f"{limit / 1000:.0f} cm3 (--max-volume); give a narrower --range or a smaller tube factor"
        )
    steps.append(
        f"kept the range within {settings.tube_factor:g} radii of the centreline, filled enclosed cavities: "
        f"{volume_mm3 / 1000:.1f} cm3"
    )
    log.info("vessel: %s", "; ".join(steps[1:]))
    return Mask(array=region, geometry=volume.geometry, label=settings.label), steps


def _tube_along_clicks(
    volume: Volume, seeds: NDArray[np.intp], low: float, high: float, settings: VesselSettings,
    options: tuple[str, str] = ("--seed", "--range"),
    branch_of: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], str]:
    """The range's voxels within the tube around the path through the clicks, and what the path measured."""
    raw = volume.array
    seed_option, range_option = options
    check_seeds_in_range(
        volume, raw, seeds, low, high, RegionGrowingSettings(), seed_option=seed_option, range_option=range_option
    )
    component = seeded_components((raw >= low) & (raw <= high), seeds)
    box = bounding_box(component, margin=1)
    offset = np.array([b.start for b in box])
    spacing_zyx = zyx_spacing(volume.geometry)
    sub, centreline, radii = vessel_tube(
        component[box], seeds - offset, spacing_zyx, factor=settings.tube_factor or 1.0,
        window_mm=settings.tube_window_mm, branch_of=None if branch_of is None else branch_of[box],
    )
    region = np.zeros(volume.shape, dtype=bool)
    region[box] = sub
    # The voxel path is a staircase: its length is taken along a running mean of it.
    smooth_path = ndimage.uniform_filter1d(centreline * np.asarray(spacing_zyx), 5, axis=0, mode="nearest")
    length_mm = float(np.linalg.norm(np.diff(smooth_path, axis=0), axis=1).sum())
    low_r, mid_r, high_r = np.percentile(radii, [10, 50, 90])
    return region, (
        f"centreline through the seeds: {length_mm:.0f} mm; vessel radius along it {low_r:.1f} / {mid_r:.1f} / "
        f"{high_r:.1f} mm (10th / 50th / 90th percentile, median over {settings.tube_window_mm:g} mm)"
    )


def vessel_tube(
    lumen: NDArray[np.bool_],
    seeds_zyx: NDArray[np.intp],
    spacing_zyx: tuple[float, float, float],
    *,
    factor: float,
    window_mm: float,
    branch_of: NDArray[np.bool_] | None = None,
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
    centreline = _centreline(lumen, depth, seeds_zyx, spacing_zyx)
    if branch_of is not None:
        centreline = _from_where_it_leaves(centreline, branch_of)
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


def _from_where_it_leaves(centreline: NDArray[np.intp], parent: NDArray[np.bool_]) -> NDArray[np.intp]:
    """The path from its last voxel inside ``parent`` on (all of it when it never enters)."""
    inside = np.flatnonzero(parent[tuple(centreline.T)])
    if len(inside) == 0:
        return centreline
    start = min(int(inside[-1]), len(centreline) - 2)
    return centreline[start:]


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
                f"seeds {number} and {number + 1} (voxels {format_ijk(start)} and {format_ijk(end)}) are not connected "
                "inside the range; add a seed between them on the vessel or widen --range"
            )
        stretch = [target]
        while stretch[-1] != source:
            stretch.append(int(previous[stretch[-1]]))
        stretch.reverse()
        _warn_on_detour(coords[np.asarray(stretch)], spacing_zyx, number)
        path.extend(stretch if not path else stretch[1:])
    return coords[np.asarray(path, dtype=np.int64)]


#: A path between two clicks this many times longer than the straight line has probably left the vessel.
DETOUR_RATIO = 2.5


def _warn_on_detour(stretch: NDArray[np.intp], spacing_zyx: tuple[float, float, float], number: int) -> None:
    """Warn when the path between two successive clicks runs far longer than the gap between them.

    Where the vessel falls out of the range for a stretch (a stenosis, a
    streak), the cheapest path inside the range goes round through other
    vessels; the result still looks like a tube, so say so.
    """
    scaled = stretch * np.asarray(spacing_zyx)
    straight = float(np.linalg.norm(scaled[-1] - scaled[0]))
    # The voxel path is a staircase: measured along a running mean of it.
    smooth = ndimage.uniform_filter1d(scaled.astype(float), 5, axis=0, mode="nearest")
    length = float(np.linalg.norm(np.diff(smooth, axis=0), axis=1).sum())
    if length > DETOUR_RATIO * straight and length - straight > 20.0:
        log.warning(
            "vessel: the path from click %d to click %d runs %.0f mm for a %.0f mm gap: it may leave the vessel "
            "where the vessel falls out of the range; add a click between them, or lower --range",
            number, number + 1, length, straight,
        )
