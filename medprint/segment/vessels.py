"""Contrast-filled vessels: one connected vessel tree picked by a seed.

On arterial-phase CT the lumen of the aorta, its branches, the heart chambers
and (at low resolution) bone all fall in the same Hounsfield range and touch.
The seeded variant thresholds the blood pool, opens it with a ball of
``max_radius_mm`` (cutting every bridge thinner than twice the radius: vessel
walls meeting bone, small side branches into neighbouring structures), keeps
the component holding the seed and grows it back to its own boundary inside
the threshold mask.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import ParameterError
from ..volume import Mask, Volume
from .presets import get_preset
from .region import RegionGrowingSettings, segment_from_seeds
from .threshold import check_preset_applies

log = logging.getLogger("medprint")


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
    """

    intensity_range: tuple[float, float] | None = None
    max_radius_mm: float = 2.0
    max_volume_mm3: float | None = None
    allow_border: bool = True
    label: str = "vessel"

    def __post_init__(self) -> None:
        if not self.max_radius_mm >= 0:
            raise ParameterError(f"--max-radius: must be >= 0 mm, got {self.max_radius_mm:g}")


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
        Seeds as in :func:`~medprint.segment.segment_from_seeds`.
    settings : VesselSettings, optional

    Returns
    -------
    mask : Mask
    steps : list of str

    Raises
    ------
    ParameterError
        The blood-pool preset on a non-CT scan (give ``--range``), bad seeds.
    SegmentationError
        Seed outside the range, or a leak past the volume limit.
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
