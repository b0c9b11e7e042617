"""Hostile outputs and slice inputs, round 3.

A folder removed mid-run, device nodes, FIFOs and symbolic links given as
outputs with ``--overwrite``, a FIFO in a profile folder, 3MF units and zip
bombs, cut-short STL files and a repair that moves the surface too far.
Each case asserts the safe outcome through the shared harness.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from harness import assert_refused, assert_succeeded, files_in, run_cli

from medprint.io import mesh_files
from medprint.io.mesh_files import write_mesh
from medprint.mesh.model import Mesh

PRINT = ("--printer", "ender-3", "--material", "pla")


def box(size: float = 10.0) -> Mesh:
    """A closed, outward-facing box ``size`` mm on a side."""
    corners = np.array([[x, y, z] for x in (0, size) for y in (0, size) for z in (0, size)], dtype=float)
    faces = np.array([
        [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
        [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
    ])
    return Mesh(vertices=corners, faces=faces, name="box")


@pytest.fixture
def cube(tmp_path: Path) -> Path:
    inputs = tmp_path / "in"
    inputs.mkdir()
    return write_mesh(box(), inputs / "cube.stl")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _need_root_for_mknod() -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root; the FIFO cases cover the same check")


# ---------------------------------------------------------------- 3: the output folder removed mid-run


def test_output_folder_removed_mid_run_is_one_line(cube: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_read = mesh_files.read_mesh_file

    def read_then_remove(path: Path) -> Mesh:
        mesh = real_read(path)
        shutil.rmtree(out)  # what `rm -rf out` does while medprint works
        return mesh

    monkeypatch.setattr("medprint.jobs.slice.read_mesh_file", read_then_remove)
    outcome = run_cli("slice", cube, *PRINT, "-o", out / "m.gcode")
    assert_refused(outcome, mentions=["-o/--output", "m.gcode", "folder was removed"])
    assert not out.exists()


def test_output_folder_removed_before_commit_leaves_nothing(tmp_path: Path) -> None:
    from medprint.errors import OutputError
    from medprint.io.outputs import RunOutputs

    folder = tmp_path / "gone"
    folder.mkdir()
    target = folder / "a.stl"
    with pytest.raises(OutputError, match="folder was removed"), RunOutputs(overwrite=False) as run:
        run.reserve(target, "-o/--output")
        with run.stage(target) as temp:
            temp.write_bytes(b"x")
        shutil.rmtree(folder)
        run.commit()
    assert not folder.exists()


# ---------------------------------------------------------------- 6: outputs that are not regular files


@pytest.mark.parametrize("kind", ["fifo", "chardev"])
def test_overwrite_refuses_a_special_file_as_gcode(cube: Path, out: Path, kind: str) -> None:
    target = out / "node.gcode"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        _need_root_for_mknod()
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers, in tmp_path only
    outcome = run_cli("slice", cube, *PRINT, "-o", target, "--overwrite")
    assert_refused(outcome, mentions=["-o/--output", "node.gcode", "not a regular file"],
                   out_dir=out, files_before=files_in(out))
    mode = os.lstat(target).st_mode
    assert (stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISCHR(mode)), "the node was replaced"


def test_overwrite_refuses_a_symlink_output_and_keeps_the_link(cube: Path, out: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.gcode"
    real.write_text("old\n")
    link = out / "link.gcode"
    link.symlink_to(real)
    outcome = run_cli("slice", cube, *PRINT, "-o", link, "--overwrite")
    assert_refused(outcome, mentions=["-o/--output", "link.gcode", "symbolic link"])
    assert link.is_symlink() and real.read_text() == "old\n"


def test_dangling_symlink_output_is_refused(cube: Path, out: Path, tmp_path: Path) -> None:
    link = out / "dangling.gcode"
    link.symlink_to(tmp_path / "nowhere.gcode")
    outcome = run_cli("slice", cube, *PRINT, "-o", link)
    assert_refused(outcome, mentions=["-o/--output", "dangling.gcode", "symbolic link"])
    assert link.is_symlink() and not (tmp_path / "nowhere.gcode").exists()


def test_convert_refuses_a_fifo_as_mesh_output(cube: Path, out: Path) -> None:
    # write_mesh alone (a script's use) goes through the same check.
    from medprint.errors import OutputError

    target = out / "pipe.stl"
    os.mkfifo(target)
    with pytest.raises(OutputError, match="FIFO"):
        write_mesh(box(), target, overwrite=True)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)


# ---------------------------------------------------------------- 4: a FIFO in a profile folder


class _Hung(Exception):
    pass


def _raise_hung(signum: int, frame: object) -> None:
    raise _Hung("profiles blocked on a FIFO")


@pytest.mark.parametrize("command", [("profiles", "list"), ("profiles", "show", "pla")])
def test_fifo_profile_is_refused_not_waited_on(tmp_path: Path, command: tuple[str, ...]) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    os.mkfifo(folder / "lab.toml")
    # Without the check, open() waits for a writer forever: an alarm turns the hang into a failure.
    previous = signal.signal(signal.SIGALRM, _raise_hung)
    signal.alarm(10)
    try:
        outcome = run_cli(*command, "--profiles", folder)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert_refused(outcome, mentions=["lab.toml", "not a regular file", "remove it"])


# ---------------------------------------------------------------- 7: cut-short STL files


def test_ascii_stl_cut_in_half_says_cut_short(tmp_path: Path, out: Path) -> None:
    whole = write_mesh(box(), tmp_path / "whole.stl", ascii=True).read_bytes()
    cut = tmp_path / "cut.stl"
    cut.write_bytes(whole[: len(whole) // 2])
    outcome = run_cli("slice", cut, *PRINT, "-o", out / "m.gcode")
    assert_refused(outcome, mentions=["MESH", "cut.stl", "cut short", "incomplete"], out_dir=out)


def test_truncated_binary_stl_with_a_solid_facet_header_is_binary(tmp_path: Path, out: Path) -> None:
    data = bytearray(write_mesh(box(), tmp_path / "whole.stl").read_bytes())
    data[:80] = b"solid part facet normal exported by another program".ljust(80)
    cut = tmp_path / "solidcut.stl"
    cut.write_bytes(bytes(data[: 84 + 50 * 7]))
    outcome = run_cli("slice", cut, *PRINT, "-o", out / "m.gcode")
    line = assert_refused(outcome, mentions=["MESH", "solidcut.stl", "binary STL", "is the file complete"],
                          out_dir=out)
    assert "package" not in line


# ---------------------------------------------------------------- 2: 3MF units


def _with_unit(source: Path, target: Path, unit: str) -> Path:
    """``source`` 3MF with its model's unit attribute set to ``unit`` (what an edit or another program writes)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for entry in old.infolist():
            payload = old.read(entry)
            if entry.filename.endswith(".model"):
                assert b'unit="millimeter"' in payload
                payload = payload.replace(b'unit="millimeter"', f'unit="{unit}"'.encode())
            new.writestr(entry.filename, payload)
    return target


def _extent(path: Path) -> float:
    mesh = mesh_files.read_mesh_file(path)
    return float((mesh.vertices.max(axis=0) - mesh.vertices.min(axis=0)).max())


def test_medprint_3mf_is_read_in_millimetres(tmp_path: Path) -> None:
    written = write_mesh(box(10.0), tmp_path / "mm.3mf")
    assert _extent(written) == pytest.approx(10.0)


@pytest.mark.parametrize(("unit", "mm"), [("inch", 25.4), ("micron", 0.001), ("centimeter", 10.0)])
def test_3mf_unit_scales_to_millimetres_with_a_warning(tmp_path: Path, out: Path, unit: str, mm: float) -> None:
    size = 1.0 if unit != "micron" else 20_000.0
    edited = _with_unit(write_mesh(box(size), tmp_path / "mm.3mf"), tmp_path / f"{unit}.3mf", unit)
    assert _extent(edited) == pytest.approx(size * mm)
    outcome = run_cli("slice", edited, *PRINT, "-o", out / "m.gcode")
    assert_succeeded(outcome)
    assert f"in {unit} units" in outcome.stderr and "WARNING" in outcome.stderr


def test_3mf_unknown_unit_is_refused(tmp_path: Path, out: Path) -> None:
    edited = _with_unit(write_mesh(box(), tmp_path / "mm.3mf"), tmp_path / "furlong.3mf", "furlong")
    outcome = run_cli("slice", edited, *PRINT, "-o", out / "m.gcode")
    assert_refused(outcome, mentions=["MESH", "furlong.3mf", "furlong", "millimeter"], out_dir=out)


# ---------------------------------------------------------------- 5: a 3MF zip bomb


def test_3mf_zip_bomb_is_refused_before_parsing(tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real bomb is 400 MB of padding; the floor is lowered so the case stays small and fast.
    monkeypatch.setattr(mesh_files, "_RATIO_FLOOR_BYTES", 1_000_000)
    source = write_mesh(box(), tmp_path / "mm.3mf")
    bomb = tmp_path / "bomb.3mf"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as new:
        for entry in old.infolist():
            payload = old.read(entry)
            if entry.filename.endswith(".model"):
                # Padding spread over many small text nodes, which lxml's own limit does not catch.
                payload = payload.replace(b"<vertices>", b"<vertices>" + b"<!-- -->" + b" " * 3_000_000)
            new.writestr(entry.filename, payload)
    outcome = run_cli("slice", bomb, *PRINT, "-o", out / "m.gcode")
    assert_refused(outcome, mentions=["MESH", "bomb.3mf", "unpacks", "export the mesh again"], out_dir=out)


# ---------------------------------------------------------------- 1: a repair that moves the surface too far


def _cut_sphere(path: Path) -> Path:
    """An 11 mm sphere OBJ with only the first 60 % of its faces, as a cut-short download leaves it."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=5.5)
    keep = int(len(sphere.faces) * 0.6)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in sphere.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in sphere.faces[:keep]]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_repair_that_moves_the_surface_too_far_is_refused(tmp_path: Path, out: Path) -> None:
    cut = _cut_sphere(tmp_path / "cut.obj")
    outcome = run_cli("slice", cut, *PRINT, "-o", out / "m.gcode")
    assert_refused(outcome, mentions=["moved the surface", "--max-repair-move 0.5 mm", "fix the mesh"],
                   out_dir=out)


def test_repair_under_the_bound_is_a_warning(tmp_path: Path, out: Path) -> None:
    cut = _cut_sphere(tmp_path / "cut.obj")
    outcome = run_cli("slice", cut, *PRINT, "-o", out / "m.gcode", "--max-repair-move", "50")
    assert_succeeded(outcome)
    assert "WARNING" in outcome.stderr and "moving its surface up to" in outcome.stderr


# ---------------------------------------------------------------- 8: the prusaslicer engine from the CLI


@pytest.mark.parametrize("printer", ["ender-3", "prusa-mk4"])
def test_prusaslicer_engine_slices_a_small_cube_from_the_cli(cube: Path, out: Path, printer: str) -> None:
    # The CLI's run staged prusa-slicer's input model until its commit, so prusa-slicer found no file.
    if shutil.which("prusa-slicer") is None:
        pytest.skip("prusa-slicer is not installed")
    outcome = run_cli("slice", cube, "--printer", printer, "--material", "pla", "-o", out / "m.gcode",
                      "--engine", "prusaslicer")
    assert_succeeded(outcome)
    assert ";Z:" in (out / "m.gcode").read_text()


def test_prusaslicer_failure_names_its_reason(cube: Path, out: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "prusa-slicer"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho '[2026-12-01 21:00:00.1] [0x00007f] [trace]   Initializing' \n"
                    "echo 'Objects could not fit on the bed' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    outcome = run_cli("slice", cube, *PRINT, "-o", out / "m.gcode", "--engine", "prusaslicer")
    assert_refused(outcome, mentions=["--engine prusaslicer", "could not fit on the bed", "--engine builtin"],
                   out_dir=out)
