"""``medprint design implant`` end to end: the files written and read back, and every refusal (one line, exit 1,
nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from harness import assert_refused, assert_succeeded, files_in, run_cli

from phantoms_skull import skull_phantom

from medprint.geometry import RAS_TO_LPS
from medprint.io.mesh_files import read_mesh_file
from medprint.mesh import assess_mesh


def _write_ct(case, path: Path) -> Path:
    """The phantom as NIfTI (RAS affine, as the format wants)."""
    affine = case.volume.geometry.affine.copy()
    affine[:3] = RAS_TO_LPS @ affine[:3]
    image = nib.Nifti1Image(np.ascontiguousarray(case.volume.array.transpose(2, 1, 0)), affine)
    image.set_qform(affine, 1)
    image.set_sform(affine, 1)
    nib.save(image, str(path))
    return path


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    spacing = (1.2, 1.2, 2.0)
    with_defect = skull_phantom(spacing=spacing, defect_direction=(1.0, 0.15, 0.35), defect_radius_mm=20.0)
    intact = skull_phantom(spacing=spacing, defect_direction=None)
    return {"defect": _write_ct(with_defect, folder / "patient_smith_ct.nii.gz"), "case": with_defect,
            "intact": _write_ct(intact, folder / "intact.nii.gz")}


def test_writes_implant_report_fit_and_rim(scans, tmp_path):
    out = tmp_path / "implant.stl"
    outcome = run_cli("design", "implant", scans["defect"], "-o", out, "--fit", tmp_path / "fit.3mf",
                      "--rim", tmp_path / "rim.stl", "--gap", "0.5", "--resolution", "0.75", "--json")
    assert_succeeded(outcome)
    report = json.loads(outcome.stdout)
    assert files_in(tmp_path) == {"implant.stl", "implant.report.json", "fit.3mf", "rim.stl"}
    m = report["design"]["measurements"]
    assert report["design"]["kind"] == "implant"
    assert m["method"] == "mirror" and m["rim_gap_asked_mm"] == 0.5
    assert abs(m["rim_gap_mm"]["median"] - 0.5) <= 0.15
    # The thinnest wall is measured and reported against --min-wall (default 1 mm), within the 0.75 mm grid step.
    assert m["min_wall_mm"]["asked"] == 1.0 and m["min_wall_mm"]["measured"] >= 1.0 - 0.75
    assert report["parameters"]["min_wall_mm"] == 1.0
    mesh = read_mesh_file(out)
    quality = assess_mesh(mesh)
    assert quality.watertight and quality.shells == 1
    # The implant sits in the defect (LPS mm, not flipped): its centre is near the point the bone was cut at.
    centre = mesh.vertices.mean(axis=0)
    assert np.linalg.norm(centre - np.asarray(scans["case"].defect_point)) < 8.0
    assert assess_mesh(read_mesh_file(tmp_path / "rim.stl")).watertight
    # No patient file name in the report.
    assert "smith" not in (tmp_path / "implant.report.json").read_text().lower()
    assert "smith" not in outcome.stdout.lower()


@pytest.mark.parametrize("args, mentions", [
    (("--thickness", "0"), ["--thickness"]),
    (("--thickness", "-1"), ["--thickness"]),
    (("--thickness", "80"), ["--thickness"]),
    (("--gap", "12"), ["--gap"]),
    (("--min-wall", "0"), ["--min-wall"]),
    (("--thickness", "1", "--min-wall", "2"), ["--thickness", "--min-wall"]),
    (("--resolution", "0"), ["--resolution"]),
    (("--plane", "0,0,0:0,0,0"), ["--plane", "zero"]),
    (("--plane", "400,0,0:1,0,0"), ["--plane", "misses the skull"]),
    (("--near", "400,0,0"), ["--near", "outside the skull"]),
])
def test_bad_values_are_refused_with_one_line(scans, tmp_path, args, mentions):
    outcome = run_cli("design", "implant", scans["defect"], "-o", tmp_path / "implant.stl", *args)
    assert_refused(outcome, mentions=mentions, out_dir=tmp_path)


def test_skull_without_defect_says_so(scans, tmp_path):
    outcome = run_cli("design", "implant", scans["intact"], "-o", tmp_path / "implant.stl")
    line = assert_refused(outcome, mentions=["no defect found"], out_dir=tmp_path)
    assert "intact" not in line


def test_mirror_forced_across_the_midline_is_refused(tmp_path):
    case = skull_phantom(spacing=(1.2, 1.2, 2.0), defect_direction=(0.0, -0.5, 0.85), defect_radius_mm=18.0)
    scan = _write_ct(case, tmp_path / "midline.nii.gz")
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("design", "implant", scan, "-o", out / "implant.stl", "--method", "mirror")
    assert_refused(outcome, mentions=["--method mirror", "crosses", "--method rim"], out_dir=out)


def test_thin_bone_is_not_a_defect_and_says_how_to_design_over_it(tmp_path):
    case = skull_phantom(spacing=(1.2, 1.2, 2.0), defect_direction=None, thin_direction=(-1.0, 0.3, 0.4))
    scan = _write_ct(case, tmp_path / "thin.nii.gz")
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("design", "implant", scan, "-o", out / "implant.stl")
    line = assert_refused(outcome, mentions=["no defect found", "thin bone at", "--near", "to design over it"],
                          out_dir=out)
    assert "thin.nii" not in line


def test_a_mask_is_refused_saying_what_implant_needs(tmp_path):
    """A 0/1 mask is not a CT: the message names what design implant takes, not other commands' options."""
    mask = np.zeros((30, 30, 30), np.uint8)
    mask[8:22, 8:22, 8:22] = 1
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(path))
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("design", "implant", path, "-o", out / "implant.stl")
    line = assert_refused(outcome, mentions=["Hounsfield", "--threshold LO:HI"], out_dir=out)
    for foreign in ("--auto-threshold", "--percentile", "--seed"):
        assert foreign not in line
