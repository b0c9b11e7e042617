"""Segmentation: Volume -> Mask."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import ParameterError
from ..volume import Mask, Volume
from .checks import MAX_RADIUS_MM, MAX_VOLUME_MM3, require_number
from .cleanup import (
    close_mm,
    count_components,
    fill_cavities,
    keep_components_above,
    keep_largest_component,
    largest_component_and_count,
    open_mm,
)
from .mri import (
    MriSettings,
    correct_bias_field,
    denoise,
    otsu_level,
    percentile_range,
    prepare_mri,
    segment_mri,
)
from .presets import CT_PRESETS, ThresholdPreset, get_preset
from .region import RegionGrowingSettings, parse_range, segment_from_seeds
from .seeds import parse_point, seeds_to_indices
from .threshold import check_preset_applies, parse_threshold, threshold_volume
from .vessels import FalseLumen, VesselSettings, segment_vessel

log = logging.getLogger("medprint")

__all__ = [
    "CT_PRESETS",
    "FalseLumen",
    "MriSettings",
    "RegionGrowingSettings",
    "SegmentationSettings",
    "ThresholdPreset",
    "VesselSettings",
    "clean_up_mask",
    "close_mm",
    "correct_bias_field",
    "count_components",
    "denoise",
    "fill_cavities",
    "get_preset",
    "keep_components_above",
    "keep_largest_component",
    "open_mm",
    "otsu_level",
    "parse_point",
    "parse_range",
    "parse_threshold",
    "percentile_range",
    "prepare_mri",
    "seeds_to_indices",
    "segment_by_threshold",
    "segment_from_seeds",
    "segment_mri",
    "segment_vessel",
    "select_by_threshold",
    "threshold_volume",
]


@dataclass(frozen=True)
class SegmentationSettings:
    """How to select the part to print by intensity.

    Parameters
    ----------
    preset : str, optional
        Name from :data:`CT_PRESETS` (CT only).  Without a preset or a
        threshold the settings only describe the clean-up (for imported labels).
    threshold : (float, float), optional
        Inclusive range in the scan's units; overrides the preset's range.
    keep : {'auto', 'largest', 'all'}
        Which connected bodies to keep; ``'auto'`` follows the preset
        (largest body for ``bone``, all bodies otherwise).
    min_component_mm3 : float
        Drop bodies smaller than this (applied when keeping all).
    fill_cavities : bool
        Fill enclosed cavities (solid print instead of a hollow shell).
    close_mm, open_mm : float
        Radii in mm of morphological closing / opening; 0 disables.
    """

    preset: str | None = None
    threshold: tuple[float, float] | None = None
    keep: str = "auto"
    min_component_mm3: float = 0.0
    fill_cavities: bool = False
    close_mm: float = 0.0
    open_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.keep not in ("auto", "largest", "all"):
            raise ParameterError(f"--keep: {self.keep!r} is not one of auto, largest, all")
        for option, radius in (("--close", self.close_mm), ("--open", self.open_mm)):
            require_number(radius, option, low=0, high=MAX_RADIUS_MM, unit="mm",
                           why="a larger ball merges whole organs and only costs memory")
        require_number(self.min_component_mm3, "--min-component", low=0, high=MAX_VOLUME_MM3, unit="mm3")
        if self.threshold is not None:
            low, high = self.threshold
            require_number(low, "--threshold", why="the low bound")
            require_number(high, "--threshold", low=low, low_open=True, why="the high bound, above the low one")


def segment_by_threshold(volume: Volume, settings: SegmentationSettings) -> tuple[Mask, list[str]]:
    """Threshold a volume and clean the mask up.

    Returns
    -------
    mask : Mask
    steps : list of str
        What was done, in order, for the report.
    """
    mask, steps = select_by_threshold(volume, settings)
    cleaned, cleanup_steps = clean_up_mask(mask, settings)
    return cleaned, steps + cleanup_steps


def select_by_threshold(volume: Volume, settings: SegmentationSettings) -> tuple[Mask, list[str]]:
    """The thresholding half of :func:`segment_by_threshold` (the only part that reads voxel values)."""
    if settings.preset is None and settings.threshold is None:
        raise ParameterError("choose what to print: --preset NAME (CT) or --threshold LO:HI")
    preset = _preset_of(settings)
    if preset is not None and settings.threshold is None:
        check_preset_applies(volume, preset)
    low, high = settings.threshold or (preset.low, preset.high)  # type: ignore[union-attr]
    mask = threshold_volume(volume, low, high, label=preset.name if preset else "threshold")
    return mask, [f"threshold {low:g}..{high:g}" + (f" (preset {preset.name})" if preset else "")]


def clean_up_mask(mask: Mask, settings: SegmentationSettings) -> tuple[Mask, list[str]]:
    """The clean-up half of :func:`segment_by_threshold`: morphology, cavities, components."""
    steps = []
    if settings.open_mm > 0:
        mask = open_mm(mask, settings.open_mm)
        steps.append(f"opening {settings.open_mm:g} mm")
    if settings.close_mm > 0:
        mask = close_mm(mask, settings.close_mm)
        steps.append(f"closing {settings.close_mm:g} mm")
    if settings.fill_cavities:
        mask = fill_cavities(mask)
        steps.append("filled enclosed cavities")
    keep = settings.keep
    if keep == "auto":
        preset = _preset_of(settings)
        keep = "largest" if preset is not None and preset.keep_largest else "all"
    mask, step = _select_components(mask, keep, settings.min_component_mm3)
    steps.append(step)
    return mask, steps


def _preset_of(settings: SegmentationSettings) -> ThresholdPreset | None:
    return get_preset(settings.preset) if settings.preset else None


def _select_components(mask: Mask, keep: str, min_component_mm3: float) -> tuple[Mask, str]:
    if keep == "largest":
        kept, bodies = largest_component_and_count(mask)
        dropped = mask.volume_mm3 - kept.volume_mm3
        step = f"kept the largest of {bodies} bodies ({dropped:.0f} mm3 dropped)"
        log.info(step)
        return kept, step
    bodies = count_components(mask)
    if min_component_mm3 > 0:
        kept = keep_components_above(mask, min_component_mm3)
        return kept, f"kept {count_components(kept)} of {bodies} bodies >= {min_component_mm3:g} mm3"
    return mask, f"kept all {bodies} bodies"
