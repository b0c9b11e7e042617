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
kept (:mod:`.tube`).  Side branches can be added the same way, each from
where it leaves the vessel.

An aortic dissection has two channels inside one wall: the true lumen and a
false lumen that may be contrast-filled, partly or wholly thrombosed (clot,
denser than the wall and the tissue around the aorta but well below the
contrast).  ``false_lumen`` traces it as a second tube from its own clicks
and its own range, and the part is the union of both channels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, SegmentationError
from ..volume import Mask, Volume
from .checks import MAX_RADIUS_MM, MAX_VOLUME_MM3, require_number
from .presets import get_preset
from .region import RegionGrowingSettings, check_seeds_in_range, segment_from_seeds
from .seeds import seeds_to_indices
from .threshold import check_preset_applies
from .tube import PathNames, path_length_mm, vessel_tube
from .voxels import (
    bounding_box,
    fill_enclosed,
    format_ijk,
    seeded_components,
    zyx_spacing,
)

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
        if self.intensity_range is not None:
            low, high = self.intensity_range
            require_number(low, "--false-lumen-range", why="the low bound")
            require_number(high, "--false-lumen-range", low=low, low_open=True,
                           why="the high bound, above the low one")
        if len(self.seeds_lps_mm) < 2:
            raise ParameterError(
                "--false-lumen: needs at least two clicks along the false lumen, in order; "
                f"got {len(self.seeds_lps_mm)}"
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
        require_number(self.max_radius_mm, "--max-radius", low=0, high=MAX_RADIUS_MM, unit="mm")
        if self.max_volume_mm3 is not None:
            require_number(self.max_volume_mm3, "--max-volume", low=0, high=MAX_VOLUME_MM3, low_open=True,
                           unit="mm3")
        require_number(self.tube_window_mm, "tube window", low=0, high=1000, low_open=True, unit="mm")
        if self.intensity_range is not None:
            low, high = self.intensity_range
            require_number(low, "--range", why="the low bound")
            require_number(high, "--range", low=low, low_open=True, why="the high bound, above the low one")
        if self.tube_factor is not None and not self.tube_factor >= 1:
            raise ParameterError(
                f"tube factor: must be >= 1 (the tube is at least the vessel), got {self.tube_factor:g}; 1.4 is usual"
            )
        if self.tube_factor is not None:
            require_number(self.tube_factor, "--tube", low=1, high=5,
                           why="local vessel radii; 1.3-1.5 is usual, more takes in the neighbours")
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
        branch, where, measured = _tube_along_lps_clicks(
            volume, clicks, low, high, settings, PathNames(option=f"--branch {number}"), branch_of=main
        )
        region |= branch
        steps.append(f"branch {number}: {where}, from where it leaves the vessel; {measured}")
    if settings.false_lumen is not None:
        fl_low, fl_high = settings.false_lumen.intensity_range or (low, high)
        false_region, where, measured = _tube_along_lps_clicks(
            volume, settings.false_lumen.seeds_lps_mm, fl_low, fl_high, settings,
            PathNames(option="--false-lumen", range_option="--false-lumen-range"),
        )
        region |= false_region
        steps.append(f"false lumen: {where}, range {fl_low:g}..{fl_high:g}; {measured}")
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


def _tube_along_lps_clicks(
    volume: Volume, clicks_lps_mm: Sequence[Sequence[float]], low: float, high: float, settings: VesselSettings,
    names: PathNames, branch_of: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], str, str]:
    """A further tube (a branch, a false lumen) from clicks in patient mm.

    Returns the region, where the clicks are and what the path measured.
    """
    seeds = seeds_to_indices(volume.geometry, volume.shape, lps_mm=clicks_lps_mm, option=names.option)
    region, measured = _tube_along_clicks(volume, seeds, low, high, settings, names, branch_of)
    return region, f"{len(seeds)} click(s) at voxel(s) {'; '.join(format_ijk(s) for s in seeds)}", measured


def _tube_along_clicks(
    volume: Volume, seeds: NDArray[np.intp], low: float, high: float, settings: VesselSettings,
    names: PathNames = PathNames(), branch_of: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], str]:
    """The range's voxels within the tube around the path through the clicks, and what the path measured."""
    raw = volume.array
    check_seeds_in_range(
        volume, raw, seeds, low, high, RegionGrowingSettings(), seed_option=names.option,
        range_option=names.range_option,
    )
    component = seeded_components((raw >= low) & (raw <= high), seeds)
    box = bounding_box(component, margin=1)
    offset = (int(box[0].start), int(box[1].start), int(box[2].start))
    spacing_zyx = zyx_spacing(volume.geometry)
    sub, centreline, radii = vessel_tube(
        component[box], seeds - np.array(offset), spacing_zyx, factor=settings.tube_factor or 1.0,
        window_mm=settings.tube_window_mm, branch_of=None if branch_of is None else branch_of[box],
        names=replace(names, offset_zyx=offset),
    )
    region = np.zeros(volume.shape, dtype=bool)
    region[box] = sub
    low_r, mid_r, high_r = np.percentile(radii, [10, 50, 90])
    return region, (
        f"centreline through the seeds: {path_length_mm(centreline, spacing_zyx):.0f} mm; vessel radius along it "
        f"{low_r:.1f} / {mid_r:.1f} / {high_r:.1f} mm (10th / 50th / 90th percentile, median over "
        f"{settings.tube_window_mm:g} mm)"
    )
