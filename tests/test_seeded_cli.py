"""`convert --seed`: a tumour-like part grown from one click, through the command line."""

import json

import numpy as np
import SimpleITK as sitk
from click.testing import CliRunner

from medprint.cli import cli

SPACING = (0.7, 0.7, 2.5)
ORIGIN = (-40.0, -60.0, 100.0)
CENTRE = np.array([-5.0, -20.0, 150.0])  # LPS mm
RADIUS = 12.0


def _lung_with_nodule(path):
    shape = (40, 110, 110)
    k, j, i = np.indices(shape)
    points = np.stack([ORIGIN[0] + i * SPACING[0], ORIGIN[1] + j * SPACING[1], ORIGIN[2] + k * SPACING[2]], -1)
    inside = np.linalg.norm(points - CENTRE, axis=-1) <= RADIUS
    rng = np.random.default_rng(3)
    ct = np.where(inside, 40.0, -820.0) + rng.normal(0, 25, shape)
    image = sitk.GetImageFromArray(ct.astype(np.int16))
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path))


def test_one_seed_grows_the_nodule(tmp_path):
    _lung_with_nodule(tmp_path / "chest.nii.gz")
    seed = ",".join(f"{v:g}" for v in CENTRE)
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "chest.nii.gz"), "-o", str(tmp_path / "nodule.stl"),
                                      "--seed", seed, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    truth = 4 / 3 * np.pi * RADIUS**3
    assert abs(report["mesh"]["volume_mm3"] - truth) < 0.10 * truth
    assert report["mesh"]["watertight"] and report["mesh"]["bodies"] == 1
    centre = np.mean([report["mesh"]["bounding_box_mm"]["min"], report["mesh"]["bounding_box_mm"]["max"]], axis=0)
    assert np.linalg.norm(centre - CENTRE) < 2.0


def test_seed_in_air_says_what_is_there(tmp_path):
    _lung_with_nodule(tmp_path / "chest.nii.gz")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "chest.nii.gz"), "-o", str(tmp_path / "n.stl"),
                                      "--seed", "-30,-50,110"])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "--seed" in line and "--range" in line
    assert not (tmp_path / "n.stl").exists()


def test_seed_outside_the_scan_names_the_extent(tmp_path):
    _lung_with_nodule(tmp_path / "chest.nii.gz")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "chest.nii.gz"), "-o", str(tmp_path / "n.stl"),
                                      "--seed", "500,0,0"])
    assert result.exit_code == 1 and "--seed" in result.output and "outside" in result.output


def test_vessel_tube_mode_keeps_the_vessel_not_the_chamber_beside_it(tmp_path):
    # A 5 mm radius vessel along z, pressed against a large contrast-filled chamber.
    spacing = (1.0, 1.0, 1.0)
    shape = (60, 50, 60)
    k, j, i = np.indices(shape)
    vessel = (i - 20) ** 2 + (j - 25) ** 2 <= 5**2
    chamber = ((i - 40) ** 2 + (j - 25) ** 2 + (k - 30) ** 2) <= 14**2
    ct = np.where(vessel | chamber, 350.0, 40.0) + np.random.default_rng(5).normal(0, 15, shape)
    image = sitk.GetImageFromArray(ct.astype(np.int16))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(tmp_path / "cta.nii.gz"))
    clicks = [f"20,25,{z}" for z in (8, 30, 52)]
    args = ["convert", str(tmp_path / "cta.nii.gz"), "-o", str(tmp_path / "v.stl"), "--vessel", "--tube", "1.4",
            "--modality", "CT",
            "--json", "--no-report"]
    for click in clicks:
        args += ["--seed", click]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    mesh = json.loads(result.stdout)["mesh"]
    tube_between_clicks = np.pi * 5**2 * (52 - 8)
    assert 0.8 * tube_between_clicks < mesh["volume_mm3"] < 1.25 * tube_between_clicks  # chamber (11.5 cm3) left out
    assert mesh["bounding_box_mm"]["max"][0] < 28  # nothing of the chamber at x >= 26


def _dissected_aorta(path):
    """Radius 9 mm along z; a flap at x = 0 splits it into a true lumen (400 HU) and a thrombosed false lumen
    (100 HU); fat around."""
    shape = (60, 50, 50)
    k, j, i = np.indices(shape)
    x, y = i - 25.0, j - 25.0
    aorta = x**2 + y**2 <= 9.0**2
    ct = np.full(shape, -100.0)
    ct[aorta & (x < -0.5)] = 400
    ct[aorta & (x > 0.5)] = 100
    ct[aorta & (np.abs(x) <= 0.5)] = 40
    ct += np.random.default_rng(4).normal(0, 10, shape)
    image = sitk.GetImageFromArray(ct.astype(np.int16))
    image.SetOrigin((-25.0, -25.0, 0.0))
    sitk.WriteImage(image, str(path))


def test_vessel_tube_with_a_thrombosed_false_lumen(tmp_path):
    _dissected_aorta(tmp_path / "cta.nii.gz")
    base = ["convert", str(tmp_path / "cta.nii.gz"), "--vessel", "--tube", "1.3", "--modality", "CT",
            "--json", "--no-report"]
    for z in (8, 30, 52):
        base += ["--seed", f"-4,0,{z}"]
    true_only = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "tl.stl")])
    assert true_only.exit_code == 0, true_only.output
    false_clicks = [arg for z in (8, 30, 52) for arg in ("--false-lumen", f"4,0,{z}")]
    both = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "both.stl"), *false_clicks,
                                    "--false-lumen-range", "60:3000"])
    assert both.exit_code == 0, both.output
    whole_between_clicks = np.pi * 9**2 * (52 - 8)
    true_volume = json.loads(true_only.stdout)["mesh"]["volume_mm3"]
    both_volume = json.loads(both.stdout)["mesh"]["volume_mm3"]
    assert 0.35 * whole_between_clicks < true_volume < 0.6 * whole_between_clicks
    assert 0.85 * whole_between_clicks < both_volume < 1.15 * whole_between_clicks


def test_false_lumen_options_need_the_tube(tmp_path):
    _dissected_aorta(tmp_path / "cta.nii.gz")
    base = ["convert", str(tmp_path / "cta.nii.gz"), "-o", str(tmp_path / "v.stl"), "--vessel", "--modality", "CT",
            "--seed", "-4,0,8", "--seed", "-4,0,52"]
    result = CliRunner().invoke(cli, [*base, "--false-lumen", "4,0,8", "--false-lumen", "4,0,52"])
    assert result.exit_code == 2
    assert "--branch, --false-lumen and --false-lumen-range go with --vessel --tube" in result.output
    result = CliRunner().invoke(cli, [*base, "--tube", "1.3", "--false-lumen-range", "60:3000"])
    assert result.exit_code == 2 and "--false-lumen-range goes with --false-lumen" in result.output
    # The clot is outside the true lumen's range, which the false lumen takes by default: one error line.
    result = CliRunner().invoke(cli, [*base, "--tube", "1.3", "--false-lumen", "4,0,8", "--false-lumen", "4,0,52"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "--false-lumen at voxel" in result.output, result.output
    assert not (tmp_path / "v.stl").exists()


def test_vessel_tube_keeps_a_side_branch_given_by_its_clicks(tmp_path):
    shape = (60, 40, 60)  # z, y, x at 1 mm
    k, j, i = np.indices(shape)
    x, y, z = i - 20.0, j - 20.0, k * 1.0
    aorta = x**2 + y**2 <= 7.0**2
    branch = (y**2 + (z - 30) ** 2 <= 3.0**2) & (x >= 0) & (x <= 36)
    ct = np.where(aorta | branch, 400.0, 40.0) + np.random.default_rng(6).normal(0, 10, shape)
    image = sitk.GetImageFromArray(ct.astype(np.int16))
    image.SetOrigin((-20.0, -20.0, 0.0))
    sitk.WriteImage(image, str(tmp_path / "cta.nii.gz"))
    base = ["convert", str(tmp_path / "cta.nii.gz"), "--vessel", "--tube", "1.3", "--modality", "CT", "--json",
            "--no-report", "--seed", "0,0,6", "--seed", "0,0,30", "--seed", "0,0,54"]
    alone = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "a.stl")])
    with_branch = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "b.stl"), "--branch", "0,0,30;15,0,30;34,0,30"])
    assert alone.exit_code == 0 and with_branch.exit_code == 0, with_branch.output
    added = json.loads(with_branch.stdout)["mesh"]["volume_mm3"] - json.loads(alone.stdout)["mesh"]["volume_mm3"]
    branch_outside_the_tube = np.pi * 3**2 * (34 - 9)  # from the aorta's tube (1.3 x 7 mm) to the last click
    assert 0.8 * branch_outside_the_tube < added < 1.3 * branch_outside_the_tube
    assert json.loads(with_branch.stdout)["mesh"]["bounding_box_mm"]["max"][0] > 30
    bad = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "c.stl"), "--branch", "0,0,30"])
    assert bad.exit_code == 1 and bad.output.startswith("medprint: error: --branch 1: needs at least two clicks")
