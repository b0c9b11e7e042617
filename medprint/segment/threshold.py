"""Turn a volume into a mask by intensity."""

from __future__ import annotations

import math

from ..errors import ParameterError, SegmentationError
from ..volume import Mask, Volume
from .presets import ThresholdPreset


def parse_threshold(text: str, *, option: str = "--threshold") -> tuple[float, float]:
    """Parse ``'LO:HI'`` into an inclusive range; errors name ``option``.

    >>> parse_threshold("226:3071")
    (226.0, 3071.0)
    >>> parse_threshold("-700:225")
    (-700.0, 225.0)
    """
    parts = text.split(":")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ParameterError(f"{option}: {text!r} is not LO:HI; give two numbers, e.g. {option} 226:3071") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        # An open end (-inf:inf) would select every voxel, air and table included, without saying so.
        raise ParameterError(f"{option}: {text!r} has a bound that is not a finite number; give two numbers, "
                             f"e.g. {option} 226:3071")
    if not low < high:
        raise ParameterError(f"{option}: low {low:g} must be below high {high:g}; swap them")
    return low, high


def check_preset_applies(volume: Volume, preset: ThresholdPreset) -> None:
    """Refuse a Hounsfield preset on a scan whose values are not Hounsfield units."""
    if not volume.is_hounsfield:
        raise ParameterError(
            f"--preset {preset.name}: presets are Hounsfield ranges for CT, but this scan is "
            f"{volume.modality} (values {volume.value_range()[0]:g}..{volume.value_range()[1]:g}); "
            "use --threshold LO:HI in the scan's own units, --auto-threshold otsu, --percentile LO:HI "
            "or --seed X,Y,Z instead"
        )


def threshold_volume(volume: Volume, low: float, high: float, *, label: str = "mask") -> Mask:
    """Select voxels whose value lies in ``[low, high]``.

    Parameters
    ----------
    volume : Volume
    low, high : float
        Inclusive range in the volume's units (HU for CT).
    label : str
        Name given to the mask.

    Raises
    ------
    SegmentationError
        When no voxel is in range; the message gives the scan's value range.
    """
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ParameterError(f"threshold: low {low:g} must be below high {high:g}, both finite numbers")
    values = volume.array
    selected = (values >= low) & (values <= high)
    if not selected.any():
        vmin, vmax = volume.value_range()
        hint = (
            "is this a CT? for MRI use --threshold in the scan's units"
            if volume.is_hounsfield is False or vmax < low
            else "widen the range"
        )
        raise SegmentationError(
            f"no voxels between {low:g} and {high:g} (scan range {vmin:g}..{vmax:g}): {hint}"
        )
    return Mask(array=selected, geometry=volume.geometry, label=label)
