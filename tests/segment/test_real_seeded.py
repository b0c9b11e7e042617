"""Seeded segmentation on the real cases in ../shared/data (skipped when absent).

The seed is where a user would click: the voxel deepest inside the reference
mask (largest distance to its boundary), given to the library in LPS mm.  The
segmentation itself never sees the reference.
"""

from __future__ import annotations

import edt
import numpy as np
import pytest

from medprint.io import load_volume
from medprint.mesh import extract_surface
from medprint.segment import segment_from_seeds, segment_vessel


def deepest_point_lps(reference, volume) -> tuple[float, float, float]:
    """LPS mm of the voxel deepest inside ``reference`` (a user's click in the middle)."""
    sx, sy, sz = volume.geometry.spacing
    depth = edt.edt(reference, anisotropy=(sz, sy, sx))
    z, y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return tuple(float(v) for v in volume.geometry.index_to_lps([x, y, z]))


def dice(a, b) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_lung_tumour_from_one_seed(real_data):
    case = real_data("pyradiomics_lung2_crop")
    volume = load_volume(case / "lung2_crop_image.nrrd", modality="CT")
    reference = load_volume(case / "lung2_crop_label.nrrd").array > 0
    mask, steps = segment_from_seeds(volume, [deepest_point_lps(reference, volume)])
    reference_mm3 = np.count_nonzero(reference) * volume.geometry.voxel_volume_mm3
    mesh_mm3 = extract_surface(mask).volume_mm3()
    # Measured: Dice 0.894, mesh 45.5 cm3 vs 48.4 cm3 manual (-6.1 %).
    assert dice(mask.array, reference) >= 0.80, steps
    assert abs(mesh_mm3 - reference_mm3) <= 0.10 * reference_mm3, (mesh_mm3, reference_mm3, steps)


def test_brain_tumour_on_mr_from_one_seed(real_data):
    case = real_data("pyradiomics_brain1")
    volume = load_volume(case / "brain1_image.nrrd", modality="MR")
    reference = load_volume(case / "brain1_label.nrrd").array > 0
    mask, steps = segment_from_seeds(volume, [deepest_point_lps(reference, volume)])
    # Measured: Dice 0.714 (9.8 cm3 vs 16.4 cm3 manual: the dimmer margin of the tumour is left out).
    assert dice(mask.array, reference) >= 0.70, steps


@pytest.mark.xfail(
    strict=True,
    reason="not met yet: the aortic root opens into the left ventricle and the arch touches other contrast-filled "
    "vessels through necks wider than any opening; measured Dice 0.33 (756 cm3 vs 246 cm3) at --max-radius 2, "
    "0.60 (133 cm3) at --max-radius 6",
)
def test_aorta_from_one_seed_on_cta(real_data):
    case = real_data("totalseg_aorta_cta")
    volume = load_volume(case / "ct_cropped.nii.gz", modality="CT")
    reference = load_volume(case / "reference" / "masks" / "aorta.nii.gz").array > 0
    mask, steps = segment_vessel(volume, [deepest_point_lps(reference, volume)])
    assert dice(mask.array, reference) >= 0.80, steps
