"""The one-shot conversion on real scans from MEDPRINT_DATA (skipped, with the reason, where absent)."""

import json

import cc3d
import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from medprint.cli import cli
from medprint.io import load_volume
from medprint.segment import SegmentationSettings, segment_by_threshold, threshold_volume


def test_head_ct_bone_drops_the_head_holder(real_data):
    volume = load_volume(real_data("invesalius_cranium_ct/cranium_ct.nii.gz"))
    raw = threshold_volume(volume, 226, 3071)
    labels = cc3d.connected_components(raw.array, connectivity=6)
    sizes = np.bincount(labels.ravel())[1:]
    by_size = np.argsort(sizes)[::-1] + 1
    holder_parts = [label for label in by_size[1:3] if sizes[label - 1] * volume.geometry.voxel_volume_mm3 > 10_000]
    assert len(holder_parts) == 2  # the two arms of the head holder, ~29 cm3 each

    mask, steps = segment_by_threshold(volume, SegmentationSettings(preset="bone"))

    assert not np.isin(labels[mask.array], holder_parts).any()
    assert mask.voxel_count == sizes[by_size[0] - 1]
    assert "kept the largest of" in steps[-1]


def test_head_ct_convert_gives_one_watertight_skull(real_data, tmp_path):
    source = real_data("invesalius_cranium_ct/cranium_ct.nii.gz")
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(tmp_path / "skull.stl"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    facts = report["mesh"]
    assert facts["watertight"] and facts["outward"] and facts["winding_consistent"]
    assert facts["bodies"] == 1  # one skull; the holder is gone
    # An adult skull with mandible and upper cervical spine at the bone preset: 0.4-0.9 litres.
    assert 400_000 < facts["volume_mm3"] < 900_000
    assert facts["volume_mm3"] == pytest.approx(report["mask"]["volume_mm3"], rel=0.03)
    width, depth, height = facts["bounding_box_mm"]["size"]
    assert 120 < width < 170 and 160 < depth < 230  # head-sized, not holder-sized (245 mm)
    mesh = trimesh.load(tmp_path / "skull.stl")
    assert mesh.is_watertight and mesh.is_winding_consistent
