"""`medprint design hollow` on the command line: the model written with its report, bad input refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from design.phantoms_tube import bent_tube
from harness import assert_refused, assert_succeeded, files_in, run_cli


def _write_mask(path: Path, array: np.ndarray, spacing=(0.7, 0.8, 1.1)) -> Path:
    affine = np.diag([*spacing, 1.0])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)).astype(np.uint8), affine), str(path))
    return path


@pytest.fixture(scope="module")
def tube_file(tmp_path_factory) -> Path:
    tube = bent_tube()
    return _write_mask(tmp_path_factory.mktemp("in") / "tube.nii.gz", tube.mask.array)


def test_hollow_cli_writes_the_model_and_its_report(tube_file: Path, tmp_path: Path) -> None:
    outcome = run_cli("design", "hollow", tube_file, "-o", tmp_path / "tube.stl", "--wall", "1.5")
    assert_succeeded(outcome)
    assert files_in(tmp_path) == {"tube.stl", "tube.report.json"}
    report = json.loads((tmp_path / "tube.report.json").read_text())
    measured = report["design"]["measurements"]
    assert abs(measured["wall_measured_mm"]["median"] - 1.5) <= 0.05
    assert len(measured["openings"]) == 2
    assert "tube.nii.gz" not in (tmp_path / "tube.report.json").read_text()


@pytest.mark.parametrize("args, mentions", [
    (["--wall", "0"], ["--wall", "> 0"]),
    (["--wall", "-2"], ["--wall"]),
    (["--wall", "15"], ["--wall", "larger than the vessel"]),
    (["--drain", "1.5"], ["--drain", ">= 2"]),
    (["--cut", "500,500,500"], ["--cut", "off the vessel"]),
])
def test_hollow_cli_refuses_bad_values(tube_file: Path, tmp_path: Path, args, mentions) -> None:
    outcome = run_cli("design", "hollow", tube_file, "-o", tmp_path / "out.stl", *args)
    assert_refused(outcome, mentions=mentions, out_dir=tmp_path)


@pytest.mark.parametrize("fill, mentions", [(0, ["empty"]), (1, ["touches every border"])])
def test_hollow_cli_refuses_empty_or_everywhere_masks(tmp_path: Path, fill: int, mentions) -> None:
    source = tmp_path / "in"
    source.mkdir()
    mask = _write_mask(source / "mask.nii.gz", np.full((12, 14, 16), fill, dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("design", "hollow", mask, "-o", out / "out.stl")
    assert_refused(outcome, mentions=mentions, out_dir=out)


def test_hollow_cli_takes_a_closed_surface_and_refuses_an_open_one(tmp_path: Path) -> None:
    import trimesh

    from medprint.io import write_mesh
    from medprint.mesh.model import Mesh

    source = tmp_path / "in"
    source.mkdir()
    solid = trimesh.creation.cylinder(radius=6.0, height=30.0, sections=64)
    write_mesh(Mesh(np.asarray(solid.vertices, float), np.asarray(solid.faces, np.int64), "root"), source / "root.stl")
    out = tmp_path / "out"
    out.mkdir()
    assert_succeeded(run_cli("design", "hollow", source / "root.stl", "-o", out / "root_hollow.stl"))
    report = json.loads((out / "root_hollow.report.json").read_text())
    assert [o["kind"] for o in report["design"]["measurements"]["openings"]] == ["cut face", "cut face"]
    sheet = Mesh(np.array([[0.0, 0, 0], [20, 0, 0], [20, 20, 0], [0, 20, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
                 "sheet")
    write_mesh(sheet, source / "sheet.stl")
    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = run_cli("design", "hollow", source / "sheet.stl", "-o", empty / "x.stl")
    assert_refused(outcome, mentions=["not closed"], out_dir=empty)


def test_hollow_cli_lumen_from_a_threshold_or_a_label_map(tmp_path: Path) -> None:
    tube = bent_tube()
    source = tmp_path / "in"
    source.mkdir()
    scan = _write_mask(source / "scan.nii.gz", tube.mask.array)  # 1 in the lumen, 0 around
    labels = np.where(tube.mask.array, 3, 0).astype(np.uint8)
    labels[0, 0, 0] = 5  # another label elsewhere
    label_map = _write_mask(source / "labels.nii.gz", labels)
    for extra in (["--threshold", "0.5:2"], ["--labels", label_map, "--label", "3"]):
        out = tmp_path / f"out{len(extra)}"
        out.mkdir()
        outcome = run_cli("design", "hollow", scan, "-o", out / "tube.stl", *extra)
        assert_succeeded(outcome)
        report = json.loads((out / "tube.report.json").read_text())
        assert len(report["design"]["measurements"]["openings"]) == 2
    out = tmp_path / "both"
    out.mkdir()
    outcome = run_cli("design", "hollow", label_map, "-o", out / "tube.stl")
    assert_refused(outcome, mentions=["--label", "2 labels"], out_dir=out)


def test_a_scan_given_alone_says_how_to_choose_the_lumen(tmp_path: Path) -> None:
    # a CT (HU, negative air) with no --labels, --preset, --threshold or --seed: the user gave no --labels,
    # so the error must not blame one, and must name every way of choosing the lumen
    rng = np.random.default_rng(1)
    ct = rng.integers(-1000, 1500, size=(24, 20, 16)).astype(np.int16)
    scan = tmp_path / "in" / "ct.nii.gz"
    scan.parent.mkdir()
    nib.save(nib.Nifti1Image(ct.transpose(2, 1, 0), np.diag([0.7, 0.8, 1.1, 1.0])), str(scan))
    out = tmp_path / "out"
    out.mkdir()
    line = assert_refused(run_cli("design", "hollow", scan, "-o", out / "x.stl"),
                          mentions=["is a scan", "--labels", "--preset", "--threshold", "--seed"], out_dir=out)
    assert "--labels " + str(scan) not in line and "ct.nii.gz" not in line
