"""Hostile cases for unprintable results, shared part boundaries under decimation, and repairs that move
the surface.

Decision on thin sheets: the size rule judges the whole part along its principal axes.  A sheet one voxel
thick is refused when that voxel is under 1 mm (0.5 mm grid: 0.5 mm thick, two layers at most), and accepted
on a 1 mm grid, where it is 1 mm thick like any wall a 0.4 mm nozzle lays down in two or three lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import trimesh
from harness import assert_refused, assert_succeeded, files_in, run_cli

from medprint.errors import MeshError
from medprint.mesh import Mesh, _vtk, make_printable
from medprint.mesh.deviation import two_sided_deviation_mm

AIR, BONE = -1000, 1000
#: 45 degrees about the x axis: a sheet in the scan's index planes lies obliquely in patient space.
OBLIQUE = (1.0, 0.0, 0.0, 0.0, np.cos(np.pi / 4), -np.sin(np.pi / 4), 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4))


def _write_image(path: Path, array: np.ndarray, spacing: tuple[float, float, float],
                 direction: tuple[float, ...] | None = None) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((-10.0, 20.0, -30.0))
    if direction is not None:
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


def _ct(selected: np.ndarray) -> np.ndarray:
    return np.where(selected, BONE, AIR).astype(np.int16)


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    return inputs, outputs


def _single_voxel() -> np.ndarray:
    selected = np.zeros((16, 16, 16), bool)
    selected[8, 8, 8] = True
    return selected


def _cube(size: int) -> np.ndarray:
    selected = np.zeros((16, 16, 16), bool)
    selected[7 : 7 + size, 7 : 7 + size, 7 : 7 + size] = True
    return selected


def _sheet() -> np.ndarray:
    selected = np.zeros((16, 16, 16), bool)
    selected[8, 2:14, 2:14] = True  # one voxel thick along the slice axis
    return selected


@pytest.mark.parametrize(
    ("selected", "spacing", "direction", "found"),
    [
        pytest.param(_single_voxel(), (1.0, 1.0, 1.0), None, "single voxel", id="single-voxel"),
        pytest.param(_single_voxel(), (2.0, 2.0, 2.0), None, "single voxel", id="single-2mm-voxel"),
        pytest.param(_cube(2), (0.25, 0.25, 0.25), None, "0.5 x 0.5 x 0.5 mm", id="half-millimetre-cube"),
        pytest.param(_sheet(), (0.5, 0.5, 0.5), None, "x 0.5 mm", id="thin-sheet-0.5mm"),
        pytest.param(_sheet(), (0.5, 0.5, 0.5), OBLIQUE, "x 0.5 mm", id="oblique-thin-sheet-0.5mm"),
        pytest.param(_sheet(), (0.5, 0.5, 0.5), (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0), "x 0.5 mm", id="flipped-sheet"),
    ],
)
def test_unprintable_result_is_refused_with_the_remedy(tmp_path, selected, spacing, direction, found):
    inputs, outputs = _folders(tmp_path)
    scan = _write_image(inputs / "scan.nii.gz", _ct(selected), spacing, direction)

    outcome = run_cli("convert", scan, "-o", outputs / "part.stl", "--threshold", "500:3000")

    assert_refused(outcome, mentions=["part 'threshold'", found, "--threshold"], out_dir=outputs)


def test_sheet_one_millimetre_voxel_thick_is_printable(tmp_path):
    inputs, outputs = _folders(tmp_path)
    scan = _write_image(inputs / "scan.nii.gz", _ct(_sheet()), (1.0, 1.0, 1.0))

    outcome = run_cli("convert", scan, "-o", outputs / "sheet.stl", "--threshold", "500:3000")

    assert_succeeded(outcome)
    sheet = trimesh.load(outputs / "sheet.stl")
    assert sheet.is_watertight
    assert sheet.extents.min() >= 1.0 - 1e-6  # smoothing did not thin it below the rule it passed


def test_opened_away_result_is_refused(tmp_path):
    inputs, outputs = _folders(tmp_path)
    scan = _write_image(inputs / "scan.nii.gz", _ct(_cube(4)), (1.0, 1.0, 1.0))

    outcome = run_cli("convert", scan, "-o", outputs / "part.stl", "--threshold", "500:3000", "--open", "5")

    assert_refused(outcome, mentions=["empty", "threshold"], out_dir=outputs)


def _labelled_scan(inputs: Path, tiny: np.ndarray | None = None) -> tuple[Path, Path, Path]:
    """A CT and a label map: liver (1) and kidney (2) touching along a plane, and optionally a tiny part (3)."""
    labels = np.zeros((16, 24, 30), np.uint8)
    labels[3:13, 4:20, 3:15] = 1
    labels[3:13, 4:20, 15:27] = 2
    if tiny is not None:
        labels[tiny] = 3
    ct = np.where(labels > 0, 60, AIR).astype(np.int16)
    spacing = (0.8, 0.8, 1.5)
    scan = _write_image(inputs / "ct.nii.gz", ct, spacing)
    label_map = _write_image(inputs / "labels.nii.gz", labels, spacing)
    names = inputs / "names.txt"
    names.write_text("1 liver\n2 kidney\n3 speck\n")
    return scan, label_map, names


@pytest.mark.parametrize(
    "tiny",
    [
        pytest.param((slice(1, 2), slice(1, 2), slice(1, 2)), id="one-voxel-label"),
        pytest.param((slice(1, 2), slice(1, 3), slice(1, 2)), id="sub-millimetre-label"),
    ],
)
def test_a_crumb_among_parts_stops_the_run_before_any_part_is_written(tmp_path, tiny):
    inputs, outputs = _folders(tmp_path)
    scan, label_map, names = _labelled_scan(inputs, tiny)

    outcome = run_cli("convert", scan, "-o", outputs / "organs.stl", "--labels", label_map,
                      "--labels-names", names, "--3mf", outputs / "organs.3mf")

    assert_refused(outcome, mentions=["part 'speck'", "--label"], out_dir=outputs)


def _on_plane(mesh: trimesh.Trimesh, x: float) -> set[tuple[float, ...]]:
    return {tuple(v) for v in np.round(mesh.vertices[np.abs(mesh.vertices[:, 0] - x) < 1e-6], 5)}


@pytest.mark.parametrize("decimate", ["25%", "0.1", "400"])
def test_decimated_touching_parts_share_their_boundary_exactly(tmp_path, decimate):
    inputs, outputs = _folders(tmp_path)
    scan, label_map, names = _labelled_scan(inputs)

    outcome = run_cli("convert", scan, "-o", outputs / "organs.stl", "--labels", label_map,
                      "--labels-names", names, "--decimate", decimate)

    assert_succeeded(outcome)
    assert files_in(outputs) == {"organs_liver.stl", "organs_kidney.stl", "organs.report.json"}
    liver, kidney = (trimesh.load(outputs / f"organs_{name}.stl") for name in ("liver", "kidney"))
    plane_x = -10.0 + 14.5 * 0.8
    assert liver.is_watertight and kidney.is_watertight
    shared = _on_plane(liver, plane_x)
    assert len(shared) > 50 and shared == _on_plane(kidney, plane_x)
    # Nothing crosses the plane: the parts neither overlap nor leave a gap beside the shared face.
    assert liver.bounds[1][0] <= plane_x + 1e-6 and kidney.bounds[0][0] >= plane_x - 1e-6


def _tetrahedron() -> Mesh:
    vertices = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return Mesh(vertices=vertices, faces=faces, name="tooth")


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_vertex_handed_to_repair_is_refused(bad):
    mesh = _tetrahedron()
    vertices = mesh.vertices.copy()
    vertices[3, 2] = bad

    with pytest.raises(MeshError, match="tooth mesh has 1 vertices with non-finite coordinates"):
        make_printable(Mesh(vertices=vertices, faces=mesh.faces, name="tooth"))


def _sphere(radius: float = 8.0) -> Mesh:
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    return Mesh(vertices=np.asarray(sphere.vertices, float), faces=np.asarray(sphere.faces, np.int64), name="ball")


def test_repair_that_fills_a_hole_reports_how_far_it_moved_the_surface():
    sphere = _sphere()
    # A cap cut away: pymeshfix must close a hole about 5 mm across.
    centroids = sphere.vertices[sphere.faces].mean(axis=1)
    holed = Mesh(vertices=sphere.vertices, faces=sphere.faces[centroids[:, 2] < 7.6], name="ball")

    repair = make_printable(holed)

    assert repair.quality.is_printable
    assert any("pymeshfix" in action and f"{repair.deviation_mm:.3g} mm" in action for action in repair.actions)
    # The patch lies across the hole: its farthest point from the open surface is near the hole's radius.
    samples, _ = trimesh.sample.sample_surface(
        trimesh.Trimesh(repair.mesh.vertices, repair.mesh.faces, process=False), 20000, seed=3
    )
    distance = _vtk.distance_to_surface(samples, _vtk.polydata_from_arrays(holed.vertices, holed.faces))
    assert distance.max() > 1.0  # the test means something: the patch does stand off the open surface
    assert repair.deviation_mm >= 0.9 * distance.max()
    assert repair.deviation_mm == pytest.approx(two_sided_deviation_mm(holed, repair.mesh, spacing_mm=0.2), rel=0.1)


def test_repair_that_only_drops_degenerate_faces_does_not_count_a_move():
    sphere = _sphere()
    # A zero-area face glued onto an edge (a repeated vertex): removing it moves nothing.
    faces = np.vstack([sphere.faces, [[0, 1, 1]]])

    repair = make_printable(Mesh(vertices=sphere.vertices, faces=faces, name="ball"))

    assert any("degenerate" in action for action in repair.actions)
    assert repair.deviation_mm == 0.0


def test_slicing_a_holed_mesh_says_how_far_the_repair_moved_it(tmp_path):
    inputs, outputs = _folders(tmp_path)
    sphere = _sphere(10.0)
    centroids = sphere.vertices[sphere.faces].mean(axis=1)
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[centroids[:, 2] < 9.0], process=False)
    holed.export(inputs / "holed.stl")

    # By default a repair that moves the surface past 0.5 mm is refused, naming how far ...
    refused = run_cli("slice", inputs / "holed.stl", "--printer", "prusa-mk4", "--material", "pla",
                      "-o", outputs / "ball.gcode")
    assert_refused(refused, mentions=["--max-repair-move", "moved the surface up to"], out_dir=outputs)
    # ... and taken when the user allows it, with the figure in the summary.
    outcome = run_cli("slice", inputs / "holed.stl", "--printer", "prusa-mk4", "--material", "pla",
                      "-o", outputs / "ball.gcode", "--json", "--max-repair-move", "10")

    assert_succeeded(outcome)
    actions = json.loads(outcome.stdout)["actions"]
    moved = [float(re.search(r"moving the surface up to ([\d.]+) mm", a).group(1)) for a in actions if "pymeshfix" in a]
    assert len(moved) == 1
    # The patch over a hole about 8.7 mm across stands off the open surface by a few mm; the figure says so.
    repaired = make_printable(Mesh(vertices=np.asarray(holed.vertices), faces=np.asarray(holed.faces), name="ball"))
    assert moved[0] == pytest.approx(repaired.deviation_mm, rel=0.01) and moved[0] > 2.0
