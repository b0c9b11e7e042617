"""``medprint design label``: what it writes, and every bad input refused in one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from harness import assert_refused, assert_succeeded, files_in, run_cli

from phantoms_label import box_mesh, ellipsoid_mesh

from medprint.io.mesh_files import read_mesh_file, write_mesh
from medprint.mesh import assess_mesh
from medprint.mesh.model import Mesh

#: The top face of the default box phantom (60 x 40 x 20 mm centred at 12.3,-45.6,78.9).
TOP = "12.3,-45.6,88.9"


@pytest.fixture
def part(tmp_path: Path) -> Path:
    # Hospitals name files after patients: the name must stay out of the report.
    path = tmp_path / "Doe^John_1956.stl"
    write_mesh(box_mesh(), path)
    return path


def test_label_writes_the_labelled_part_and_its_report(part: Path, tmp_path: Path):
    out = tmp_path / "labelled.stl"
    outcome = run_cli("design", "label", part, "--text", "ORD-1042 R", "-o", out, "--at", TOP, "--height", "0.8",
                      "--size", "4", "--printer", "prusa-mk4")
    assert_succeeded(outcome)
    assert "ORD-1042 R" in outcome.stdout and "embossed" in outcome.stdout
    assert files_in(tmp_path) == {part.name, "labelled.stl", "labelled.report.json"}
    labelled = read_mesh_file(out)
    quality = assess_mesh(labelled)
    assert quality.is_printable and quality.shells == 1
    report = json.loads((tmp_path / "labelled.report.json").read_text())
    measured = report["design"]["measurements"]
    assert report["design"]["kind"] == "label"
    assert measured["text"] == "ORD-1042 R" and measured["font"] == "DejaVu Sans Bold"
    assert measured["minimum_stroke_mm"] == pytest.approx(0.45) and measured["thinnest_stroke_mm"] >= 0.45
    assert measured["relief_measured_mm"] == pytest.approx(0.8, abs=0.01)
    assert np.allclose(measured["placement"]["centre_lps"], (12.3, -45.6, 88.9), atol=1e-3)
    gained = quality.volume_mm3 - assess_mesh(box_mesh()).volume_mm3
    assert gained == pytest.approx(measured["glyph_area_mm2"] * 0.8, rel=0.01)
    assert "Doe" not in json.dumps(report) and "John" not in json.dumps(report)


def test_engrave_with_json_prints_the_report(part: Path, tmp_path: Path):
    out = tmp_path / "engraved.stl"
    outcome = run_cli("design", "label", part, "--text", "L", "-o", out, "--at", TOP, "--depth", "0.6",
                      "--no-report", "--json")
    assert_succeeded(outcome)
    report = json.loads(outcome.stdout)
    assert report["design"]["measurements"]["mode"] == "engrave"
    assert report["mesh"]["volume_mm3"] < assess_mesh(box_mesh()).volume_mm3
    assert files_in(tmp_path) == {part.name, "engraved.stl"}


def test_a_flat_spot_is_found_and_said(tmp_path: Path):
    source = tmp_path / "ball.stl"
    write_mesh(ellipsoid_mesh((60.0, 45.0, 30.0), (0.0, 0.0, 0.0), segments=128), source)
    outcome = run_cli("design", "label", source, "--text", "R", "-o", tmp_path / "out.stl", "--json")
    assert_succeeded(outcome)
    report = json.loads(outcome.stdout)
    assert any("flattest spot" in choice for choice in report["choices"])
    assert report["design"]["measurements"]["placement"]["found_automatically"]


def test_flatness_and_up_are_taken_as_given(tmp_path: Path):
    source = tmp_path / "ball.stl"
    write_mesh(ellipsoid_mesh((40.0, 40.0, 40.0), (0.0, 0.0, 0.0), segments=128), source)
    args = ("design", "label", source, "--text", "ORD-1042", "--size", "4", "-o", tmp_path / "out.stl",
            "--at", "0,0,40", "--up", "1,0,0")
    # A 33 mm label on a 40 mm ball falls away ~3.6 mm from its plane: more than the default allows ...
    refused = run_cli(*args)
    assert_refused(refused, mentions=["--at", "departs", "--flatness"], out_dir=tmp_path, files_before={"ball.stl"})
    # ... and accepted when more is allowed, reading along -y (up = +x, seen from above: right = up x normal).
    outcome = run_cli(*args, "--flatness", "5", "--json")
    assert_succeeded(outcome)
    where = json.loads(outcome.stdout)["design"]["measurements"]["placement"]
    assert np.allclose(where["up_lps"], (1, 0, 0), atol=0.02) and np.allclose(where["right_lps"], (0, -1, 0), atol=0.02)
    assert where["flatness_tolerance_mm"] == 5.0


@pytest.mark.parametrize("args, mentions, code", [
    (["--text", ""], ["--text", "empty"], 1),
    (["--text", "   "], ["--text", "empty"], 1),
    (["--text", "ORD\x1b[31m"], ["--text", "control character"], 1),
    (["--text", "A\nB"], ["--text", "control character"], 1),
    (["--text", "R", "--size", "0"], ["--size"], 2),
    (["--text", "R", "--size", "-3"], ["--size"], 2),
    (["--text", "R", "--size", "nan"], ["--size"], 2),
    (["--text", "R", "--height", "0"], ["--height"], 2),
    (["--text", "R", "--depth", "-1"], ["--depth"], 2),
    (["--text", "R", "--height", "1", "--depth", "1"], ["--height", "--depth"], 2),
    (["--text", "R", "--at", "0,0"], ["--at"], 2),
    (["--text", "R", "--at", "500,0,0"], ["--at", "surface"], 1),
    (["--text", "R", "--at", TOP, "--up", "0,0,1"], ["--up"], 1),
    (["--text", "ORD-1042-R-2026", "--at", TOP], ["--at", "--size", "does not fit"], 1),
    (["--text", "abc", "--size", "2", "--printer", "prusa-mk4", "--at", TOP], ["--size", "line width"], 1),
    (["--text", "R", "--printer", "no-such-printer"], ["no-such-printer"], 1),
    (["--text", "R", "--thicken"], ["--thicken", "--printer"], 2),
])
def test_bad_input_is_refused_in_one_line_with_nothing_written(part: Path, tmp_path: Path, args, mentions, code):
    before = files_in(tmp_path)
    outcome = run_cli("design", "label", part, "-o", tmp_path / "out.stl", *args)
    assert_refused(outcome, mentions=mentions, exit_code=code, out_dir=tmp_path, files_before=before)


def test_too_deep_an_engraving_is_refused(tmp_path: Path):
    plate = tmp_path / "plate.stl"
    write_mesh(box_mesh((60.0, 40.0, 2.0), (0.0, 0.0, 0.0)), plate)
    outcome = run_cli("design", "label", plate, "--text", "R", "-o", tmp_path / "out.stl", "--at", "0,0,1",
                      "--depth", "1.8")
    assert_refused(outcome, mentions=["--depth", "thick"], out_dir=tmp_path, files_before={"plate.stl"})


def test_an_open_mesh_is_refused_when_closing_it_moves_the_surface(tmp_path: Path):
    ball = ellipsoid_mesh((20.0, 20.0, 20.0), (0.0, 0.0, 0.0), segments=96)
    keep = ball.vertices[ball.faces][:, :, 2].min(axis=1) > 0.0
    dome = tmp_path / "dome.stl"
    write_mesh(Mesh(ball.vertices, ball.faces[keep], "dome"), dome)
    outcome = run_cli("design", "label", dome, "--text", "R", "-o", tmp_path / "out.stl")
    assert_refused(outcome, mentions=["MESH", "not closed", "--max-repair-move"], out_dir=tmp_path,
                   files_before={"dome.stl"})


def test_the_output_must_not_be_the_input_nor_exist(part: Path, tmp_path: Path):
    outcome = run_cli("design", "label", part, "--text", "R", "-o", part, "--at", TOP)
    assert_refused(outcome, mentions=["-o/--output"], out_dir=tmp_path, files_before={part.name})
    (tmp_path / "out.stl").write_text("keep me")
    outcome = run_cli("design", "label", part, "--text", "R", "-o", tmp_path / "out.stl", "--at", TOP)
    assert_refused(outcome, mentions=["out.stl"], out_dir=tmp_path, files_before={part.name, "out.stl"})
    assert (tmp_path / "out.stl").read_text() == "keep me"


def test_the_summary_line_says_the_relief_of_the_letter_tops(tmp_path: Path):
    # The hostile tester's case: the letters stand 1.0 mm proud, the line said "embossed 0.80 mm".
    box = tmp_path / "box.stl"
    write_mesh(box_mesh((30.0, 30.0, 30.0)), box)
    outcome = run_cli("design", "label", box, "--text", "ORD-1042 R", "--size", "3", "-o", tmp_path / "a.stl")
    assert_succeeded(outcome)
    assert "embossed 1.00 mm" in outcome.stdout
    measured = json.loads((tmp_path / "a.report.json").read_text())["design"]["measurements"]
    assert measured["relief_measured_mm"] == pytest.approx(1.0, abs=0.02)
