import numpy as np
import pytest

from medprint.errors import ParameterError, SegmentationError
from medprint.geometry import Geometry
from medprint.segment import CT_PRESETS, SegmentationSettings, get_preset, segment_by_threshold, threshold_volume
from medprint.segment.threshold import parse_threshold
from medprint.volume import Volume

GEOMETRY = Geometry(spacing=(0.5, 0.5, 2.5))


def _ct(array: np.ndarray, modality: str = "CT") -> Volume:
    return Volume(array=array.astype(np.int16), geometry=GEOMETRY, modality=modality)


def test_presets_carry_invesalius_ranges():
    expected = {
        "bone": (226, 3071),
        "compact-bone": (662, 1988),
        "spongy-bone": (148, 661),
        "enamel": (1553, 2850),
        "soft-tissue": (-700, 225),
        "fat": (-205, -51),
        "muscle": (-5, 135),
        "skin": (-718, -177),
    }
    for name, (low, high) in expected.items():
        assert (CT_PRESETS[name].low, CT_PRESETS[name].high) == (low, high)
    blood = CT_PRESETS["blood-pool"]
    assert blood.low < 300 < 450 < blood.high  # spans typical arterial-phase lumen


def test_unknown_preset_names_close_matches():
    with pytest.raises(ParameterError, match="did you mean bone"):
        get_preset("bones")


def test_threshold_is_inclusive_at_both_ends():
    values = np.array([225, 226, 1000, 3071, 3072]).reshape(1, 1, 5)
    mask = threshold_volume(_ct(values), 226, 3071)
    assert mask.array.ravel().tolist() == [False, True, True, True, False]


def test_threshold_selecting_nothing_names_the_scan_range():
    with pytest.raises(SegmentationError, match=r"no voxels between 226 and 3071 \(scan range -1000..200\)"):
        threshold_volume(_ct(np.linspace(-1000, 200, 27).reshape(3, 3, 3)), 226, 3071)


def test_ct_preset_on_mri_says_what_to_use_instead():
    volume = _ct(np.full((2, 2, 2), 300), modality="MR")
    with pytest.raises(ParameterError, match=r"--preset bone: .* this scan is MR .* use --threshold"):
        segment_by_threshold(volume, SegmentationSettings(preset="bone"))


def test_explicit_threshold_works_on_mri():
    volume = _ct(np.pad(np.full((2, 2, 2), 300), 1), modality="MR")
    mask, steps = segment_by_threshold(volume, SegmentationSettings(threshold=(250, 400)))
    assert mask.voxel_count == 8
    assert steps[0] == "threshold 250..400"


@pytest.mark.parametrize("text", ["226", "a:b", "300:200", "1:2:3"])
def test_parse_threshold_rejects_bad_ranges(text):
    with pytest.raises(ParameterError, match="--threshold"):
        parse_threshold(text)


def test_bone_preset_keeps_largest_body_and_drops_table():
    array = np.full((20, 40, 40), -1000)
    array[5:15, 5:25, 5:35] = 1000  # "skull"
    array[5:15, 30:33, 0:40] = 800  # "table", separate
    mask, steps = segment_by_threshold(_ct(array), SegmentationSettings(preset="bone"))
    assert mask.voxel_count == 10 * 20 * 30
    assert "kept the largest of 2 bodies" in steps[-1]


def test_soft_tissue_preset_keeps_all_bodies_by_default():
    array = np.full((10, 20, 20), -1000)
    array[2:5, 2:5, 2:5] = 40
    array[6:9, 12:15, 12:15] = 40
    mask, _ = segment_by_threshold(_ct(array), SegmentationSettings(preset="soft-tissue"))
    assert mask.voxel_count == 2 * 27
