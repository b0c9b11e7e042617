"""The real case: a ~36 mm frontal defect crossing the midline, against the bone that was removed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from phantoms_skull import dice, hd95_mm, voxelise  # noqa: E402

from medprint.design.implant import ImplantSettings, design_implant  # noqa: E402
from medprint.design.part import finish_part  # noqa: E402
from medprint.io import load_volume  # noqa: E402

CASE = "invesalius_cranium_ct/defect_frontal"


@pytest.mark.realdata
def test_frontal_defect_matches_the_removed_bone(real_data):
    folder = real_data(CASE)
    volume = load_volume(folder / "frontal_defect_ct.nii.gz")
    reference = load_volume(folder / "frontal_removed_bone.nii.gz")
    # Compared at gap 0: the reference is exactly the bone removed.
    part, quality = finish_part(design_implant(volume, ImplantSettings(rim_gap_mm=0.0)))
    assert quality.is_printable and quality.shells == 1
    m = part.measurements
    assert m["method"] == "rim", m["method_reason"]
    assert "crosses the mid-sagittal plane" in m["method_reason"]
    built = voxelise(part.mesh, reference.geometry, reference.shape)
    truth = reference.array > 0
    score = dice(built, truth)
    hd95 = hd95_mm(built, truth, reference.geometry.spacing[::-1])
    assert score >= 0.85, score
    assert hd95 <= 2.0, hd95
    assert 30.0 <= m["defect_diameter_mm"] <= 42.0
