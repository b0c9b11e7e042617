"""Several parts from one scan: imported labels become one watertight mesh each, in one frame."""

import json
import zipfile

import numpy as np
import SimpleITK as sitk
import trimesh
from click.testing import CliRunner

from medprint.cli import cli

SPACING = (0.8, 0.8, 2.0)
ORIGIN = (-20.0, 30.0, -50.0)


def _scan_and_labels(folder):
    ct = np.full((20, 40, 50), -1000, np.int16)
    labels = np.zeros(ct.shape, np.uint8)
    labels[5:15, 10:30, 10:25] = 1  # "liver"
    labels[5:15, 10:30, 25:40] = 2  # "kidney", touching the liver along x = 24.5 voxels
    zz, yy, xx = np.indices(ct.shape)
    labels[((xx - 25) * 0.8) ** 2 + ((yy - 35) * 0.8) ** 2 + ((zz - 10) * 2.0) ** 2 <= 3.5**2] = 3  # "aorta"
    ct[labels > 0] = 60
    for name, array in (("ct.nii.gz", ct), ("labels.nii.gz", labels)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(SPACING)
        image.SetOrigin(ORIGIN)
        sitk.WriteImage(image, str(folder / name))
    (folder / "names.txt").write_text("1 liver\n2 kidney\n3 aorta\n")


def test_labels_become_parts_that_meet_without_gaps(tmp_path):
    _scan_and_labels(tmp_path)
    result = CliRunner().invoke(cli, [
        "convert", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "organs.stl"),
        "--labels", str(tmp_path / "labels.nii.gz"), "--labels-names", str(tmp_path / "names.txt"),
        "--3mf", str(tmp_path / "organs.3mf"),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "organs.report.json").read_text())
    assert [part["name"] for part in report["parts"]] == ["liver", "kidney", "aorta"]
    meshes = {name: trimesh.load(tmp_path / f"organs_{name}.stl") for name in ("liver", "kidney", "aorta")}
    for name, mesh in meshes.items():
        assert mesh.is_watertight and mesh.volume > 0, name
    # The shared face of liver and kidney lies half-way between voxel columns 24 and 25.
    plane_x = ORIGIN[0] + 24.5 * SPACING[0]
    limit = report["parts"][0]["mesh"]["deviation_limit_mm"]
    liver, kidney = meshes["liver"], meshes["kidney"]
    assert abs(liver.bounds[1][0] - plane_x) <= limit
    assert abs(kidney.bounds[0][0] - plane_x) <= limit
    on_plane = lambda m: {tuple(v) for v in np.round(m.vertices[np.abs(m.vertices[:, 0] - plane_x) < 1e-6], 5)}
    shared_liver, shared_kidney = on_plane(liver), on_plane(kidney)
    assert len(shared_liver) > 50 and shared_liver == shared_kidney  # identical interface: no gap, no overlap
    assert any("shared with other parts kept in place" in choice for choice in report["choices"])
    # The 3MF holds the same three parts by name.
    model = zipfile.ZipFile(tmp_path / "organs.3mf").read("3D/3dmodel.model").decode()
    assert all(f'name="{name}"' in model for name in meshes)


def test_label_name_typo_lists_close_matches(tmp_path):
    _scan_and_labels(tmp_path)
    result = CliRunner().invoke(cli, [
        "convert", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "organs.stl"),
        "--labels", str(tmp_path / "labels.nii.gz"), "--labels-names", str(tmp_path / "names.txt"),
        "--label", "livr",
    ])
    assert result.exit_code == 1
    assert "liver" in result.output and len(result.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("organs*"))


def test_warnings_go_to_the_report_without_file_names(tmp_path):
    """A print lab's report records what went wrong, but not the file names, which hospitals often build
    from the patient's name; --show-phi shows them."""
    _scan_and_labels(tmp_path)
    labels = sitk.ReadImage(str(tmp_path / "labels.nii.gz"))
    labels.SetOrigin((ORIGIN[0] - 12.0, ORIGIN[1], ORIGIN[2]))  # 12 mm to the right: part of the liver falls off
    named = tmp_path / "Doe_John_1961" / "Doe_John_labels.nii.gz"
    named.parent.mkdir()
    sitk.WriteImage(labels, str(named))
    args = ["convert", str(tmp_path / "ct.nii.gz"), "--labels", str(named), "--label", "1", "--overwrite"]

    quiet = CliRunner().invoke(cli, ["-q", *args, "-o", str(tmp_path / "liver.stl")])
    assert quiet.exit_code == 0, quiet.output
    assert "keeps" not in quiet.stderr  # -q: nothing on stderr but errors
    report_text = (tmp_path / "liver.report.json").read_text()
    report = json.loads(report_text)
    assert any(w.startswith("<labels>: label 'label_1' keeps") for w in report["warnings"]), report["warnings"]
    assert "Doe" not in report_text and "1961" not in report_text
    assert report["parameters"]["labels"]["path"] == "<labels>"

    shown = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "shown.stl"), "--show-phi"])
    assert shown.exit_code == 0 and "Doe_John_labels.nii.gz: label 'label_1' keeps" in shown.stderr
    report = json.loads((tmp_path / "shown.report.json").read_text())
    assert any(w.startswith("Doe_John_labels.nii.gz: label 'label_1' keeps") for w in report["warnings"])
    assert report["parameters"]["labels"]["path"] == str(named)


def _shared_plane_vertices(mesh, plane_x):
    return {tuple(v) for v in np.round(mesh.vertices[np.abs(mesh.vertices[:, 0] - plane_x) < 1e-6], 5)}


def test_decimated_parts_keep_their_shared_boundary_vertex_for_vertex(tmp_path):
    _scan_and_labels(tmp_path)
    for run, extra in (("plain", []), ("decimated", ["--decimate", "25%"])):
        result = CliRunner().invoke(cli, [
            "convert", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / f"{run}.stl"),
            "--labels", str(tmp_path / "labels.nii.gz"), "--labels-names", str(tmp_path / "names.txt"),
            "--label", "liver", "--label", "kidney", *extra,
        ])
        assert result.exit_code == 0, result.output
    plane_x = ORIGIN[0] + 24.5 * SPACING[0]
    plain = {name: trimesh.load(tmp_path / f"plain_{name}.stl") for name in ("liver", "kidney")}
    decimated = {name: trimesh.load(tmp_path / f"decimated_{name}.stl") for name in ("liver", "kidney")}
    for name in decimated:
        assert decimated[name].is_watertight and decimated[name].is_winding_consistent, name
        # The reduction happened (away from the shared face) ...
        assert len(decimated[name].faces) < 0.7 * len(plain[name].faces), name
    # ... and the shared face is the same set of points in both parts, and the same as without decimation.
    liver, kidney = (_shared_plane_vertices(decimated[name], plane_x) for name in ("liver", "kidney"))
    assert len(liver) > 50 and liver == kidney
    assert liver == _shared_plane_vertices(plain["liver"], plane_x)
    # No vertex of one part pokes into the other: the liver ends at the plane, the kidney starts there.
    assert decimated["liver"].bounds[1][0] <= plane_x + 1e-6
    assert decimated["kidney"].bounds[0][0] >= plane_x - 1e-6
    report = json.loads((tmp_path / "decimated.report.json").read_text())
    for part in report["parts"]:
        facts = part["mesh"]
        assert facts["surface_deviation_mm"] <= facts["deviation_limit_mm"] + 1e-9, part["name"]
