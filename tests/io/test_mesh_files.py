import os
from pathlib import Path

import numpy as np
import pytest
import trimesh
from stl import mesh as stl_mesh

from medprint.errors import InputError, OutputError, ParameterError
from medprint.io import write_mesh
from medprint.io.mesh_files import read_mesh_file
from medprint.mesh.model import Mesh


@pytest.fixture
def box() -> Mesh:
    solid = trimesh.creation.box((10.0, 20.0, 30.0))
    solid.apply_translation((-50.0, 12.0, 200.0))
    return Mesh(np.asarray(solid.vertices, float), np.asarray(solid.faces, np.int64), name="Doe^John skull")


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply", ".3mf"])
def test_every_format_reads_back_closed_in_millimetres(tmp_path, box, suffix):
    path = write_mesh(box, tmp_path / f"part{suffix}")
    loaded = trimesh.load(path, force="mesh")
    assert loaded.is_watertight
    assert loaded.volume == pytest.approx(6000.0, rel=1e-6)
    # Coordinates unchanged: patient-frame millimetres, no recentring.
    assert np.allclose(loaded.bounds, [[-55, 2, 185], [-45, 22, 215]], atol=1e-4)


def test_3mf_declares_millimetres(tmp_path, box):
    path = write_mesh(box, tmp_path / "part.3mf")
    import zipfile

    model = zipfile.ZipFile(path).read("3D/3dmodel.model").decode()
    assert 'unit="millimeter"' in model


def test_binary_stl_header_has_no_free_text(tmp_path, box):
    path = write_mesh(box, tmp_path / "part.stl")
    header = path.read_bytes()[:80].decode("ascii")
    assert header.startswith("medprint ")
    assert "Doe^John" not in header and " " not in header.split("part=")[1].strip()
    assert stl_mesh.Mesh.from_file(str(path)).vectors.shape == (12, 3, 3)


def test_ascii_stl(tmp_path, box):
    path = write_mesh(box, tmp_path / "part.stl", ascii=True)
    text = path.read_text()
    assert text.startswith("solid Doe_John_skull")
    assert text.count("facet normal") == 12


def test_outward_normals_in_stl(tmp_path, box):
    path = write_mesh(box, tmp_path / "part.stl")
    solid = stl_mesh.Mesh.from_file(str(path))
    centroids = solid.vectors.mean(axis=1)
    outward = centroids - centroids.mean(axis=0)
    assert np.all(np.einsum("ij,ij->i", solid.normals, outward) > 0)


def test_existing_output_needs_overwrite(tmp_path, box):
    target = tmp_path / "part.stl"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        write_mesh(box, target)
    assert target.read_bytes() == b"keep me"
    write_mesh(box, target, overwrite=True)
    assert target.stat().st_size == 84 + 50 * 12


def test_unwritable_system_folder_is_refused(box):
    # /sys refuses new files even for root, so this runs in CI as well.
    with pytest.raises(OutputError, match=r"folder /sys is not writable"):
        write_mesh(box, Path("/sys/part.stl"))


def test_unwritable_folder_leaves_nothing(tmp_path, box):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root ignores folder permissions)")
        with pytest.raises(OutputError, match="not writable"):
            write_mesh(box, folder / "part.stl")
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path, box, monkeypatch):
    import medprint.io.mesh_files as mesh_files

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mesh_files, "_write_stl", explode)
    with pytest.raises(RuntimeError):
        write_mesh(box, tmp_path / "part.stl")
    assert list(tmp_path.iterdir()) == []


def test_unknown_suffix_names_the_option(tmp_path, box):
    with pytest.raises(ParameterError, match=r"-o/--output: cannot write \.vtk"):
        write_mesh(box, tmp_path / "part.vtk")


def test_parts_3mf_has_named_coloured_objects_in_place(tmp_path, box):
    import zipfile

    from medprint.io.mesh_files import write_parts_3mf

    ball = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    ball.apply_translation((30.0, -4.0, 7.0))
    parts = [box.with_name("liver"), Mesh(np.asarray(ball.vertices, float), np.asarray(ball.faces, np.int64), "aorta")]
    path = write_parts_3mf(parts, tmp_path / "parts.3mf", colours=[None, (220, 30, 30)])
    model = zipfile.ZipFile(path).read("3D/3dmodel.model").decode()
    assert 'unit="millimeter"' in model and 'name="liver"' in model and 'displaycolor="#DC1E1EFF"' in model
    scene = trimesh.load(path)
    assert set(scene.geometry) == {"liver", "aorta"}
    aorta = scene.geometry["aorta"]
    assert aorta.is_watertight and np.allclose(aorta.bounds.mean(axis=0), (30.0, -4.0, 7.0), atol=1e-3)


def test_truncated_or_corrupt_stl_is_one_clear_error(tmp_path, box):
    good = write_mesh(box, tmp_path / "box.stl")
    truncated = tmp_path / "truncated.stl"
    truncated.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(InputError, match=r"truncated\.stl is not a valid binary STL: its header counts 12 triangles"):
        read_mesh_file(truncated)
    noise = tmp_path / "noise.stl"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"noise\.stl is not a valid binary STL"):
        read_mesh_file(noise)
    assert len(read_mesh_file(good).faces) == 12


# ---- one run's files together (medprint.io.outputs.RunOutputs), as a script uses it


def test_run_outputs_commit_writes_every_file_and_no_lock(tmp_path, box):
    from medprint.io import write_mesh
    from medprint.io.mesh_files import write_parts_3mf
    from medprint.io.outputs import RunOutputs

    with RunOutputs(overwrite=False) as run:
        run.reserve(tmp_path / "a.stl", "-o/--output")
        run.reserve(tmp_path / "all.3mf", "--3mf")
        write_mesh(box, tmp_path / "a.stl")
        write_parts_3mf([box], tmp_path / "all.3mf")
        assert not (tmp_path / "a.stl").exists(), "nothing is in place before the commit"
        run.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.stl", "all.3mf"]
    assert read_mesh_file(tmp_path / "a.stl").faces.shape == (12, 3)
    assert read_mesh_file(tmp_path / "all.3mf").faces.shape == (12, 3)


def test_run_outputs_failure_after_a_write_leaves_nothing(tmp_path, box):
    from medprint.io.outputs import RunOutputs

    with pytest.raises(KeyboardInterrupt):
        with RunOutputs(overwrite=False) as run:
            run.reserve(tmp_path / "a.stl", "-o/--output")
            write_mesh(box, tmp_path / "a.stl")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_run_outputs_overwrite_replaces_only_at_commit(tmp_path, box):
    from medprint.io.outputs import RunOutputs

    target = tmp_path / "a.stl"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with RunOutputs(overwrite=True) as run:
            run.reserve(target, "-o/--output")
            write_mesh(box, target, overwrite=True)
            assert target.read_bytes() == b"old"
            raise RuntimeError("a later stage failed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.stl"]


def test_run_outputs_one_file_under_two_spellings_is_refused(tmp_path, monkeypatch):
    from medprint.io.outputs import RunOutputs

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with RunOutputs(overwrite=False) as run:
        run.reserve(Path("a.stl"), "-o/--output")
        with pytest.raises(OutputError, match=r"--gcode: .* is also the -o/--output file"):
            run.reserve(tmp_path / "sub" / ".." / "a.stl", "--gcode")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_disk_full_in_the_3mf_writer_is_one_output_error(tmp_path, box, monkeypatch):
    import errno

    from medprint.io.mesh_files import write_parts_3mf

    def full(self, data):
        with open(self, "wb") as handle:
            handle.write(b"PK")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OutputError, match=r"--3mf: cannot write .*all\.3mf: the disk is full; free space on the disk"):
        write_parts_3mf([box], tmp_path / "all.3mf")
    assert list(tmp_path.iterdir()) == []


def test_fit_name_keeps_long_names_distinct_and_within_the_limit():
    from medprint.io.outputs import fit_name

    first, second = fit_name("a" * 300 + "1", ".stl"), fit_name("a" * 300 + "2", ".stl")
    assert first != second
    assert len(first.encode()) == len(second.encode()) == 255
    assert first.endswith(".stl") and fit_name("a" * 300 + "1", ".stl") == first
    assert len(fit_name("é" * 200, ".report.json").encode()) <= 255
