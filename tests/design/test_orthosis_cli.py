"""``medprint design orthosis``: a splint written and read back, and every bad input refused in one line, no file."""

from __future__ import annotations

import json

import pytest
from harness import assert_refused, assert_succeeded, files_in, run_cli
from phantoms_limb import AXIS, START_LPS, forearm_mesh

from medprint.io import write_mesh
from medprint.io.mesh_files import read_mesh_file
from medprint.mesh import assess_mesh
from medprint.mesh.model import Mesh

#: A file name a hospital might give a scan: it must not reach the report.
PRIVATE_NAME = "doe_jane_1961_arm.stl"
FAST = ("--resolution", "1.5")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("orthosis_inputs")
    arm = forearm_mesh(around=120, ring_step_mm=20.0)
    write_mesh(arm, folder / PRIVATE_NAME)
    write_mesh(forearm_mesh(around=120, ring_step_mm=20.0, closed=False), folder / "open.stl")
    finger = Mesh(vertices=START_LPS + (arm.vertices - START_LPS) * 0.25, faces=arm.faces, name="finger")
    write_mesh(finger, folder / "finger.stl")
    return folder


def test_writes_a_printable_splint_and_its_report(inputs, tmp_path):
    out = tmp_path / "splint.stl"
    outcome = run_cli("design", "orthosis", inputs / PRIVATE_NAME, "-o", out, "--gap", "1", "--thickness", "2.5",
                      "--from", "30", "--to", "150", "--open-side", "anterior", "--holes", "8:20",
                      "--edge-radius", "0.8", *FAST)
    assert_succeeded(outcome)
    assert "orthosis" in outcome.stdout and "holes" in outcome.stdout
    mesh = read_mesh_file(out)
    quality = assess_mesh(mesh)
    assert quality.is_printable and quality.shells == 1
    report_text = (tmp_path / "splint.report.json").read_text()
    assert "doe_jane" not in report_text
    report = json.loads(report_text)
    measured = report["design"]["measurements"]
    assert abs(measured["gap_mm"]["median"] - 1.0) < 0.05
    assert abs(measured["thickness_mm"]["median"] - 2.5) < 0.05
    assert measured["holes"]["placed"] == measured["holes"]["through_holes_in_mesh"] > 0
    assert measured["angle"]["covered_deg"] in range(178, 184)  # the posterior half
    assert report["parameters"]["gap_mm"] == 1.0
    assert any("--open-side anterior" in choice for choice in report["choices"])
    assert files_in(tmp_path) == {"splint.stl", "splint.report.json"}


def test_json_report_to_stdout(inputs, tmp_path):
    outcome = run_cli("design", "orthosis", inputs / PRIVATE_NAME, "-o", tmp_path / "s.stl", "--gap", "0.5",
                      "--thickness", "2", "--keep-angle", "300:60", "--json", *FAST)
    assert_succeeded(outcome)
    report = json.loads(outcome.stdout)
    assert report["design"]["kind"] == "orthosis"
    assert report["design"]["measurements"]["region"]["keep_angle_deg"] == [300.0, 60.0]


@pytest.mark.parametrize("arguments, mentions", [
    (("--gap", "-1", "--thickness", "2"), ("--gap", ">= 0")),
    (("--gap", "1", "--thickness", "0"), ("--thickness", "> 0")),
    (("--gap", "1", "--thickness", "2", "--from", "500"), ("--from", "misses the limb")),
    (("--gap", "1", "--thickness", "2", "--start", ",".join(f"{v:g}" for v in START_LPS + 900 * AXIS)),
     ("--start", "misses the limb")),
    (("--gap", "1", "--thickness", "2", "--start", "200,200,0"), ("--start", "from the limb's axis", "LPS")),
    (("--gap", "1", "--thickness", "2", "--edge-radius", "1.5"), ("--edge-radius", "half the")),
    (("--gap", "1", "--thickness", "2", "--from", "30", "--to", "60", "--holes", "40:60"),
     ("--holes", "no 40 mm hole fits")),
    (("--gap", "1", "--thickness", "2", "--holes", "8:8.5"), ("--holes", "spacing of at least")),
])
def test_bad_values_are_refused(inputs, tmp_path, arguments, mentions):
    outcome = run_cli("design", "orthosis", inputs / PRIVATE_NAME, "-o", tmp_path / "s.stl", *arguments, *FAST)
    line = assert_refused(outcome, mentions=mentions, out_dir=tmp_path)
    assert "doe_jane" not in line


def test_wall_thicker_than_the_limb_is_refused(inputs, tmp_path):
    outcome = run_cli("design", "orthosis", inputs / "finger.stl", "-o", tmp_path / "s.stl", "--gap", "1",
                      "--thickness", "20", *FAST)
    assert_refused(outcome, mentions=("--thickness", "more than the limb"), out_dir=tmp_path)


def test_open_mesh_with_its_hole_in_the_region_is_refused(inputs, tmp_path):
    outcome = run_cli("design", "orthosis", inputs / "open.stl", "-o", tmp_path / "s.stl", "--gap", "1",
                      "--thickness", "2", "--from", "2", "--to", "150", *FAST)
    assert_refused(outcome, mentions=("hole in the input mesh", "--from/--to"), out_dir=tmp_path)


def test_open_mesh_with_its_holes_outside_the_region_is_repaired(inputs, tmp_path):
    out = tmp_path / "s.stl"
    outcome = run_cli("design", "orthosis", inputs / "open.stl", "-o", out, "--gap", "1", "--thickness", "2",
                      "--from", "40", "--to", "150", "--open-side", "left", *FAST)
    assert_succeeded(outcome)
    report = json.loads((tmp_path / "s.report.json").read_text())
    assert any(choice.startswith("input mesh:") for choice in report["choices"])


@pytest.mark.parametrize("arguments, mentions", [
    (("--gap", "1", "--thickness", "2", "--keep-angle", "ten:20"), ("--keep-angle",)),
    (("--gap", "1", "--thickness", "nan"), ("--thickness",)),
    (("--gap", "1", "--thickness", "2", "--open-side", "top"), ("--open-side",)),
])
def test_malformed_options_are_usage_errors(inputs, tmp_path, arguments, mentions):
    outcome = run_cli("design", "orthosis", inputs / PRIVATE_NAME, "-o", tmp_path / "s.stl", *arguments)
    assert outcome.exit_code == 2, outcome.stderr
    assert any(word in outcome.stderr for word in mentions)
    assert files_in(tmp_path) == set()


def test_existing_output_is_kept_without_overwrite(inputs, tmp_path):
    out = tmp_path / "s.stl"
    out.write_bytes(b"keep me")
    outcome = run_cli("design", "orthosis", inputs / PRIVATE_NAME, "-o", out, "--gap", "1", "--thickness", "2",
                      *FAST)
    assert_refused(outcome, mentions=("--overwrite",), out_dir=tmp_path, files_before={"s.stl"})
    assert out.read_bytes() == b"keep me"


def test_coarsely_triangulated_limb_gives_the_region_asked(tmp_path):
    """A mesh with rings 73 mm apart (no vertex between 10 and 70 mm): the splint spans --from..--to, as the
    report says, not the few millimetres around the one ring in the region."""
    source = tmp_path / "in"
    source.mkdir()
    write_mesh(forearm_mesh(around=48, ring_step_mm=73.0), source / "coarse.stl")
    out = tmp_path / "out" / "s.stl"
    out.parent.mkdir()
    outcome = run_cli("design", "orthosis", source / "coarse.stl", "-o", out, "--gap", "1.5", "--thickness", "3",
                      "--from", "10", "--to", "100", *FAST)
    assert_succeeded(outcome)
    mesh = read_mesh_file(out)
    t = (mesh.vertices - START_LPS) @ AXIS
    assert abs(t.min() - 10.0) <= 1.5 and abs(t.max() - 100.0) <= 1.5, (t.min(), t.max())
    report = json.loads((tmp_path / "out" / "s.report.json").read_text())
    low, high = report["design"]["measurements"]["extent_along_axis_mm"]
    assert abs(low - 10.0) <= 1.5 and abs(high - 100.0) <= 1.5
