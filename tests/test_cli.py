"""End-to-end: the `medprint` command on the embedded sample and on bad input."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from medprint.cli import cli

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE = SAMPLES / "head_phantom_ct"
sys.path.insert(0, str(SAMPLES))


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = run("-v", "convert", SAMPLE, "-o", out / "skull.stl", "--preset", "bone")
    assert result.exit_code == 0, result.output
    return out, result


def test_convert_sample_writes_a_watertight_skull_and_report(converted):
    out, result = converted
    mesh = trimesh.load(out / "skull.stl")
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    report = json.loads((out / "skull.report.json").read_text())
    facts = report["mesh"]
    assert facts["watertight"] and facts["outward"] and facts["bodies"] == 1
    assert facts["triangles"] == len(mesh.faces)
    assert facts["volume_mm3"] == pytest.approx(mesh.volume, rel=1e-3)
    # The head holder (a separate bright body) was dropped, and the report says so.
    assert any("kept the largest of" in choice for choice in report["choices"])
    assert report["mask"]["volume_mm3"] == pytest.approx(facts["volume_mm3"], rel=0.05)
    assert facts["surface_deviation_mm"] <= facts["deviation_limit_mm"]
    assert set(report["timings_s"]) >= {"load", "segment", "surface", "write", "total"}
    assert "skull.stl" in result.output and "watertight" in result.output


def test_sample_skull_sits_where_the_scan_says_with_the_bead_on_the_left(converted):
    """Compare with the phantom as generated (LPS positions of bone voxels), not as read back."""
    import cc3d
    import make_head_phantom as phantom

    hu = phantom.head_phantom_hu()
    skull = cc3d.largest_k(hu >= 226, k=1, connectivity=6).astype(bool)
    k, j, i = np.nonzero(skull)
    centres = np.asarray(phantom.ORIGIN_LPS) + np.stack([i, j, k], axis=1) * np.asarray(phantom.SPACING_XYZ)
    # Marching cubes puts the surface half a voxel beyond the outermost bone voxel centres;
    # smoothing may move it by at most the deviation limit (half the smallest voxel).
    half_voxel = np.asarray(phantom.SPACING_XYZ) / 2
    expected_low = centres.min(axis=0) - half_voxel
    expected_high = centres.max(axis=0) + half_voxel
    out, _ = converted
    low, high = trimesh.load(out / "skull.stl").bounds
    assert np.all(np.abs(low - expected_low) <= 0.75 + 1e-6)
    assert np.all(np.abs(high - expected_high) <= 0.75 + 1e-6)
    # The bead makes the patient's left (+x) reach further than the right: no mirroring.
    assert expected_high[0] + expected_low[0] > 2.0
    assert high[0] + low[0] > 2.0


def test_no_patient_data_in_any_output(converted):
    out, result = converted
    for path in out.iterdir():
        assert b"Phantom" not in path.read_bytes(), path
    assert "Phantom" not in result.output


def test_json_goes_to_stdout(tmp_path):
    result = run("convert", SAMPLE, "-o", tmp_path / "skull.ply", "--json", "--smooth", "0", "--no-report")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["mesh"]["watertight"] is True
    assert report["mesh"]["surface_deviation_mm"] == 0
    assert list(tmp_path.iterdir()) == [tmp_path / "skull.ply"]


def test_info_lists_the_series_without_phi():
    result = run("info", SAMPLE)
    assert result.exit_code == 0
    assert "56 slices" in result.output
    # The series description is PS3.15 free text: withheld, like the patient's name, unless asked for.
    assert "Phantom" not in result.output and "synthetic head phantom" not in result.output
    shown = run("info", SAMPLE, "--show-phi")
    assert "Phantom^Sample" in shown.output and "CT synthetic head phantom" in shown.output


def _assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("medprint: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_missing_input(tmp_path):
    result = run("convert", tmp_path / "nowhere", "-o", tmp_path / "a.stl")
    _assert_one_line_error(result, "nowhere", "no such file or folder")
    assert not (tmp_path / "a.stl").exists()


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("convert", tmp_path / "empty", "-o", tmp_path / "a.stl")
    _assert_one_line_error(result, "empty")
    assert not (tmp_path / "a.stl").exists()


def test_folder_of_non_dicom_files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a scan")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    result = run("convert", folder, "-o", tmp_path / "a.stl")
    _assert_one_line_error(result, "docs", "no DICOM")


def test_threshold_selecting_nothing(tmp_path):
    result = run("convert", SAMPLE, "-o", tmp_path / "a.stl", "--threshold", "5000:6000")
    _assert_one_line_error(result, "no voxels between 5000 and 6000", "scan range")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_without_overwrite(tmp_path):
    target = tmp_path / "a.stl"
    target.write_bytes(b"old")
    result = run("convert", SAMPLE, "-o", target)
    _assert_one_line_error(result, "a.stl", "--overwrite")
    assert target.read_bytes() == b"old"


def test_unwritable_output_folder():
    result = run("convert", SAMPLE, "-o", "/sys/skull.stl")
    _assert_one_line_error(result, "/sys", "not writable")


def test_truncated_file_in_good_series_is_skipped_with_warning(tmp_path):
    folder = tmp_path / "series"
    shutil.copytree(SAMPLE, folder)
    victim = sorted(folder.iterdir())[5]
    victim.write_bytes(victim.read_bytes()[:3000])
    # A file skipped in the middle leaves a missing slice: a gap, refused unless --allow-gaps (issue 9).
    refused = CliRunner().invoke(cli, ["convert", str(folder), "-o", str(tmp_path / "a.stl")])
    assert refused.exit_code == 1 and "--allow-gaps" in refused.stderr and victim.name not in refused.stderr
    assert not (tmp_path / "a.stl").exists()
    result = CliRunner().invoke(cli, ["convert", str(folder), "-o", str(tmp_path / "a.stl"), "--json", "--allow-gaps"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # File names can carry the patient's name: the report counts the file instead of naming it.
    assert any(note.startswith("skipped unreadable file 6 of 56") for note in report["choices"]), report
    assert victim.name not in result.stdout
    assert any(warning.startswith("skipping 1 truncated") for warning in report["warnings"])
    # Nor does the terminal at the default verbosity (issue 9): a count, not the name.
    assert "warning" in result.stderr.lower() and victim.name not in result.stderr
    assert report["mesh"]["watertight"]
    shown = CliRunner().invoke(cli, ["-vv", "convert", str(folder), "-o", str(tmp_path / "b.stl"), "--allow-gaps",
                                     "--show-phi"])
    assert shown.exit_code == 0 and victim.name in shown.stderr  # the name, when asked for


def test_series_that_is_all_truncated_is_an_error(tmp_path):
    folder = tmp_path / "series"
    shutil.copytree(SAMPLE, folder)
    for victim in folder.iterdir():
        victim.write_bytes(victim.read_bytes()[:3000])
    result = run("convert", folder, "-o", tmp_path / "a.stl")
    _assert_one_line_error(result, "series")
    assert not (tmp_path / "a.stl").exists()


def test_debug_shows_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "convert", str(tmp_path / "x"), "-o", str(tmp_path / "a.stl")])
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "InputError"


def test_bad_option_value_is_one_line(tmp_path):
    result = run("convert", SAMPLE, "-o", tmp_path / "a.stl", "--threshold", "abc")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "--threshold" in result.output


def test_preset_on_mr_volume_is_refused(tmp_path):
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 4, 4), 300, np.float32)), str(tmp_path / "t1.nii.gz"))
    result = run("convert", tmp_path / "t1.nii.gz", "-o", tmp_path / "a.stl", "--preset", "bone")
    _assert_one_line_error(result, "--preset bone", "--threshold")


def test_decimate_stays_watertight_and_within_the_deviation_budget(tmp_path, converted):
    full = json.loads((converted[0] / "skull.report.json").read_text())["mesh"]
    result = run("convert", SAMPLE, "-o", tmp_path / "small.stl", "--decimate", "50%", "--max-deviation", "1.0",
                 "--json", "--no-report")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)["mesh"]
    assert facts["watertight"] and facts["outward"] and facts["bodies"] == 1
    assert facts["triangles"] < 0.8 * full["triangles"]
    assert facts["smoothing_deviation_mm"] <= 0.5 + 1e-9  # half the budget each
    assert facts["surface_deviation_mm"] <= 1.0
    assert facts["volume_mm3"] == pytest.approx(full["volume_mm3"], rel=0.02)


def _two_series_folder(folder):
    from dicom_phantoms import write_ct_series

    small = np.full((6, 20, 20), -1000.0)
    small[2:4, 5:15, 5:15] = 1000.0
    large = np.full((12, 24, 24), -1000.0)
    large[3:9, 4:20, 4:20] = 1000.0
    write_ct_series(folder / "a", small, (1.0, 1.0, 2.0), series_uid="1.2.3.111", description="small")
    write_ct_series(folder / "b" / "deeper", large, (1.0, 1.0, 2.0), series_uid="1.2.3.222", description="large",
                    tilt_deg=12.0)


def test_info_lists_every_series_with_its_problems(tmp_path):
    _two_series_folder(tmp_path)
    result = run("info", tmp_path, "--json", "--show-phi")
    assert result.exit_code == 0, result.output
    listed = {series["uid"]: series for series in json.loads(result.output)["series"]}
    # Without --show-phi the UIDs and descriptions (PS3.15 data) stay out; the numbers tell the series apart.
    plain = json.loads(run("info", tmp_path, "--json").output)["series"]
    assert [s["number"] for s in plain] == [1, 2] and not any("uid" in s or "description" in s for s in plain)
    assert set(listed) == {"1.2.3.111", "1.2.3.222"}
    assert any("tilt" in problem for problem in listed["1.2.3.222"]["problems"])
    assert listed["1.2.3.111"]["dimensions_xyz"] == [20, 20, 6]


def test_convert_picks_the_largest_series_and_says_why_unless_told(tmp_path):
    _two_series_folder(tmp_path / "in")
    result = run("convert", tmp_path / "in", "-o", tmp_path / "a.stl", "--json", "--no-report")
    report = json.loads(result.stdout)
    # The UID is PS3.15 data: the report carries it only with --show-phi; the size tells the series apart.
    assert "series_uid" not in report["input"]["metadata"]
    assert report["input"]["dimensions_xyz"][2] == 12
    assert any("chosen" in choice and "largest" in choice for choice in report["choices"])
    listing = run("info", tmp_path / "in", "--json", "--show-phi").output
    numbers = {s["uid"]: s["number"] for s in json.loads(listing)["series"]}
    chosen = run("convert", tmp_path / "in", "-o", tmp_path / "b.stl", "--json", "--no-report", "--show-phi",
                 "--series", str(numbers["1.2.3.111"]))
    assert json.loads(chosen.stdout)["input"]["metadata"]["series_uid"] == "1.2.3.111"
    unknown = run("convert", tmp_path / "in", "-o", tmp_path / "c.stl", "--series", "9")
    _assert_one_line_error(unknown, "--series")


def test_parts_from_one_scan_line_up(tmp_path, converted):
    """Bone and the soft-tissue head from the same scan share one frame: the skull sits inside the head."""
    result = run("convert", SAMPLE, "-o", tmp_path / "head.stl", "--preset", "soft-tissue", "--keep", "largest",
                 "--fill-cavities", "--no-report")
    assert result.exit_code == 0, result.output
    head = trimesh.load(tmp_path / "head.stl")
    skull = trimesh.load(converted[0] / "skull.stl")
    # The skull's box lies inside the head's, with scalp around it on every side, and they share a centre.
    margin_low = skull.bounds[0] - head.bounds[0]
    margin_high = head.bounds[1] - skull.bounds[1]
    assert np.all(margin_low > 0.5) and np.all(margin_high > 0.5)
    assert np.linalg.norm(head.bounds.mean(axis=0) - skull.bounds.mean(axis=0)) < 3.0


def test_convert_straight_to_gcode(tmp_path):
    from dicom_phantoms import write_ct_series

    block = np.full((14, 30, 30), -1000.0)
    block[2:12, 5:25, 5:25] = 1200.0  # 20 x 20 x 20 mm of bone at 1 x 1 x 2 mm voxels
    write_ct_series(tmp_path / "ct", block, (1.0, 1.0, 2.0), patient_name="Doe^Jane")
    result = run("convert", tmp_path / "ct", "-o", tmp_path / "block.stl", "--gcode", tmp_path / "block.gcode",
                 "--printer", "prusa-mk4", "--material", "pla")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "block.report.json").read_text())
    made = report["gcode"]
    assert made["printer"] == "prusa-mk4" and made["material"] == "pla"
    assert 95 <= made["layer_count"] <= 105  # 20 mm at 0.2 mm layers
    gcode = (tmp_path / "block.gcode").read_text()
    assert "Doe" not in gcode and "G1 " in gcode
    assert "block.gcode" in result.output


def test_gcode_needs_printer_and_material(tmp_path):
    result = run("convert", SAMPLE, "-o", tmp_path / "a.stl", "--gcode", tmp_path / "a.gcode")
    assert result.exit_code == 2 and "--printer" in result.output
    unknown = run("convert", SAMPLE, "-o", tmp_path / "a.stl", "--gcode", tmp_path / "a.gcode",
                  "--printer", "prusa-mk5", "--material", "pla")
    _assert_one_line_error(unknown, "prusa-mk4")
    assert list(tmp_path.iterdir()) == []


def test_a_command_that_exits_with_a_code_gives_that_code():
    import click

    from medprint.cli import cli, main

    @click.command(name="exit-three")
    @click.pass_context
    def exit_three(ctx: click.Context) -> None:
        ctx.exit(3)

    cli.add_command(exit_three)
    try:
        with pytest.raises(SystemExit) as stopped:
            main(["exit-three"])
    finally:
        cli.commands.pop("exit-three")
    assert stopped.value.code == 3
