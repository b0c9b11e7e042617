"""MRI tools on a phantom: a bright ball in tissue, a smooth bias field, noise."""

import numpy as np
import pytest

from medprint.errors import ParameterError, SegmentationError
from medprint.geometry import Geometry
from medprint.segment import SegmentationSettings, segment_by_threshold
from medprint.segment.mri import (
    MriSettings,
    correct_bias_field,
    denoise,
    otsu_level,
    percentile_range,
    segment_mri,
)
from medprint.segment.region import segment_from_seeds
from medprint.volume import Volume

GEOMETRY = Geometry(spacing=(1.0, 1.0, 2.0))


def _head(bias: bool = True, noise: float = 20.0):
    """An ellipsoid 'head' (400) holding a ball 'lesion' (800) in dark background (~0)."""
    k, j, i = np.indices((40, 96, 96), dtype=float)
    x, y, z = i - 48, j - 48, (k - 20) * 2.0
    head = (x / 40) ** 2 + (y / 44) ** 2 + (z / 36) ** 2 <= 1
    lesion = (x - 12) ** 2 + (y + 5) ** 2 + z**2 <= 10.0**2
    array = np.where(lesion, 800.0, np.where(head, 400.0, 5.0))
    if bias:
        array = array * (0.7 + 0.6 * (i / 95))  # a 0.7..1.3 intensity ramp across the field
    array = array + np.random.default_rng(1).normal(0, noise, array.shape)
    return Volume(array=array.astype(np.float32), geometry=GEOMETRY, modality="MR"), head, lesion


def _dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_ct_preset_on_mr_says_what_to_use():
    volume, _, _ = _head()
    with pytest.raises(ParameterError, match="--preset bone: .*MR.*--auto-threshold otsu, --percentile LO:HI or --seed"):
        segment_by_threshold(volume, SegmentationSettings(preset="bone"))


def test_otsu_separates_head_from_background():
    volume, head, _ = _head(bias=False)
    assert 50 < otsu_level(volume) < 400
    mask, steps = segment_mri(volume, MriSettings(method="otsu", fill_cavities=True))
    assert _dice(mask.array, head) > 0.97
    assert steps[0].startswith("Otsu threshold")


def test_percentile_range_is_over_the_foreground():
    volume, head, lesion = _head(bias=False)
    low, high = percentile_range(volume, 95, 100)
    assert 400 < low < 800 < high  # the top 5 % of tissue is the lesion (about 4 % of the head)


def test_n4_flattens_a_bias_ramp():
    volume, head, lesion = _head(bias=True, noise=5.0)
    tissue = head & ~lesion
    columns = np.broadcast_to(np.arange(96), tissue.shape)
    left, right = tissue & (columns < 30), tissue & (columns > 66)

    def ratio(v):
        return float(np.median(v.array[right]) / np.median(v.array[left]))

    assert ratio(volume) > 1.3
    corrected = correct_bias_field(volume)
    assert abs(ratio(corrected) - 1) < 0.1
    assert "N4" in corrected.notes[-1]


@pytest.mark.parametrize("method", ["curvature-flow", "anisotropic", "bilateral"])
def test_denoising_lowers_noise_and_keeps_the_edge(method):
    volume, head, lesion = _head(bias=False, noise=40.0)
    out = denoise(volume, method)
    inner = head & ~lesion
    assert out.array[inner].std() < 0.8 * volume.array[inner].std()
    # The edge stays: lesion and tissue means barely move.
    assert abs(out.array[lesion].mean() - volume.array[lesion].mean()) < 40


def test_seeded_growing_on_mr_finds_the_lesion():
    volume, _, lesion = _head(bias=True)
    centre = GEOMETRY.index_to_lps([60, 43, 20])
    mask, _ = segment_from_seeds(volume, [centre])
    assert _dice(mask.array, lesion) > 0.9


def test_seed_in_mr_background_is_refused_but_a_dark_organ_is_not():
    volume, head, _ = _head(bias=False)
    array = volume.array.copy()
    organ = np.zeros(head.shape, dtype=bool)
    organ[14:26, 60:76, 20:36] = True  # a dark organ: 50, 6 % of the bright end (opposed-phase spleen)
    array[organ] = 50.0 + np.random.default_rng(2).normal(0, 5, np.count_nonzero(organ))
    volume = Volume(array=array, geometry=GEOMETRY, modality="MR")
    with pytest.raises(SegmentationError, match=r"voxel 2,2,2 lies in the dark background .*: value -?\d+.*--range -?\d+:-?\d+"):
        segment_from_seeds(volume, seeds_voxel=[(2, 2, 2)])
    mask, _ = segment_from_seeds(volume, seeds_voxel=[(28, 68, 20)])
    # Measured 0.87: the box's edges and corners are partly lost to the 1 mm smoothing.
    assert _dice(mask.array, organ) > 0.8


def test_bad_options():
    with pytest.raises(ParameterError, match="--auto-threshold"):
        MriSettings(method="kmeans")
    with pytest.raises(ParameterError, match="--percentile"):
        MriSettings(method="percentile", percentiles=(90, 10))
    with pytest.raises(ParameterError, match="--denoise"):
        MriSettings(denoise="median")
