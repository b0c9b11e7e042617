"""``medprint check`` and :func:`medprint.design.check.check_mesh`: exit codes, thin walls, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trimesh

from harness import assert_refused, assert_succeeded, files_in, run_cli
from medprint.design.check import CheckSettings, check_mesh
from medprint.errors import ParameterError
from medprint.io.mesh_files import write_mesh
from medprint.mesh.model import Mesh
from phantoms_check import hollow_sphere, open_box, partitioned_block


def _write(mesh: Mesh, path: Path) -> Path:
    if path.suffix in (".stl", ".3mf"):
        write_mesh(mesh, path)
    else:
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(path)
    return path


@pytest.fixture(scope="module")
def tray_stl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(partitioned_block(), tmp_path_factory.mktemp("tray") / "tray.stl")


def test_thin_partition_is_not_printable(tray_stl: Path) -> None:
    outcome = run_cli("check", tray_stl, "--min-wall", "1")
    assert outcome.exception is None and outcome.exit_code == 2, (outcome.exit_code, outcome.stderr)
    assert "NOT printable" in outcome.stdout
    assert "thinnest wall 0.80 mm" in outcome.stdout
    assert "LPS (15.0, 10.0" in outcome.stdout  # where the partition is


def test_json_result_locates_the_thin_region(tray_stl: Path) -> None:
    outcome = run_cli("check", tray_stl, "--min-wall", "1", "--json")
    assert outcome.exit_code == 2
    result = json.loads(outcome.stdout)
    assert result["printable"] is False and result["watertight"] is True and result["bodies"] == 1
    assert result["walls"]["min_wall_mm"] == pytest.approx(0.8, abs=0.1)
    assert result["thin_regions_count"] == 1
    region = result["thin_regions"][0]
    assert region["centroid_lps_mm"][0] == pytest.approx(15.0, abs=0.2)
    assert region["min_thickness_mm"] == pytest.approx(0.8, abs=0.1)
    assert result["bounding_box_lps_mm"]["size"] == pytest.approx([30.0, 20.0, 10.0])
    assert result["volume_mm3"] == pytest.approx(30 * 20 * 10 - 2 * 12.6 * 16 * 8, rel=1e-6)


def test_printable_under_a_lower_minimum(tray_stl: Path) -> None:
    outcome = run_cli("check", tray_stl, "--min-wall", "0.6")
    assert_succeeded(outcome)
    assert outcome.stdout.startswith(f"{tray_stl}: printable")


def test_material_profile_sets_the_minimum(tray_stl: Path) -> None:
    # tpu-95a asks for 1.2 mm walls: the 0.8 mm partition fails; the result names the material.
    outcome = run_cli("check", tray_stl, "--material", "tpu-95a", "--json")
    assert outcome.exit_code == 2
    result = json.loads(outcome.stdout)
    assert result["min_wall_required_mm"] == 1.2 and result["min_wall_source"] == "material tpu-95a"


def test_open_mesh_exit_2_says_not_watertight(tmp_path: Path) -> None:
    path = _write(open_box(), tmp_path / "open.stl")
    outcome = run_cli("check", path, "--min-wall", "1")
    assert outcome.exception is None and outcome.exit_code == 2
    assert "not watertight" in outcome.stdout and "open edges" in outcome.stdout
    result = check_mesh(open_box(), CheckSettings(min_wall_mm=1.0))
    assert not result.printable and result.walls is None


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".3mf"])
def test_other_mesh_formats_read(tmp_path: Path, suffix: str) -> None:
    path = _write(hollow_sphere(), tmp_path / f"shell{suffix}")
    outcome = run_cli("check", path, "--min-wall", "1.0", "--json")
    assert_succeeded(outcome)
    result = json.loads(outcome.stdout)
    assert result["walls"]["min_wall_mm"] == pytest.approx(1.2, abs=0.1)
    assert result["shells"] == 1 and result["cavities"] == 1


def test_api_refuses_what_the_cli_refuses() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf"), 1000.0):
        with pytest.raises(ParameterError, match="--min-wall"):
            CheckSettings(min_wall_mm=bad)
    with pytest.raises(ParameterError, match="--min-wall and --material"):
        CheckSettings(min_wall_mm=1.0, material="pla")
    with pytest.raises(ParameterError, match="--material.*did you mean"):
        check_mesh(partitioned_block(), CheckSettings(material="plaa"))


def test_missing_file(tmp_path: Path) -> None:
    assert_refused(run_cli("check", tmp_path / "nothing.stl"), mentions=("nothing.stl", "MESH"), out_dir=tmp_path)


def test_not_a_mesh(tmp_path: Path) -> None:
    path = tmp_path / "notes.stl"
    path.write_text("these are not triangles\n" * 20)
    assert_refused(run_cli("check", path), mentions=("notes.stl",), out_dir=tmp_path, files_before={"notes.stl"})
    text = tmp_path / "scan.txt"
    text.write_text("x")
    assert_refused(run_cli("check", text), mentions=("scan.txt",), out_dir=tmp_path,
                   files_before=files_in(tmp_path))


@pytest.mark.parametrize("value", ["0", "-0.5", "nan", "inf", "abc"])
def test_min_wall_not_positive(tray_stl: Path, value: str) -> None:
    # A bad option value is a usage error: exit 2, like every medprint option (see `medprint check --help`).
    assert_refused(run_cli("check", tray_stl, "--min-wall", value), mentions=("--min-wall",), exit_code=2)


def test_unknown_material_suggests_names(tray_stl: Path) -> None:
    line = assert_refused(run_cli("check", tray_stl, "--material", "petgg"), mentions=("--material", "petgg"))
    assert "petg" in line.replace("petgg", "")


def test_min_wall_and_material_together(tray_stl: Path) -> None:
    assert_refused(run_cli("check", tray_stl, "--min-wall", "1", "--material", "pla"),
                   mentions=("--min-wall", "--material"), exit_code=2)


def test_help_explains_exit_codes() -> None:
    outcome = run_cli("check", "--help")
    assert outcome.exit_code == 0
    assert "2  not printable" in outcome.stdout and "usage errors" in outcome.stdout
    assert "--min-wall 0" in outcome.stdout


def test_inside_out_mesh_is_not_printable_and_its_walls_not_guessed(tmp_path: Path) -> None:
    tray = partitioned_block()
    path = _write(Mesh(tray.vertices, tray.faces[:, ::-1].copy(), "inverted"), tmp_path / "inverted.stl")
    outcome = run_cli("check", path, "--min-wall", "1", "--json")
    assert outcome.exception is None and outcome.exit_code == 2
    result = json.loads(outcome.stdout)
    assert result["outward"] is False and result["walls"] is None
    assert any("inwards" in problem for problem in result["problems"])
