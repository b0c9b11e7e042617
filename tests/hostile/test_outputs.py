"""Hostile outputs: a run writes all of its files or none.

Same paths for two outputs, part names that clean to one file name, names
longer than the file system allows, folders where files belong, a full disk,
signals mid-write, a slicer that refuses the model after meshing, and runs
that race for the same files.  Each case asserts the safe outcome through the
shared harness; the subprocess cases run the real ``python -m medprint``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from harness import assert_refused, assert_succeeded, files_in, run_cli

from medprint.io import mesh_files

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "medprint" / "profiles"
PAGE = 4096


# ---------------------------------------------------------------- inputs


def write_sphere(path: Path, *, size: int = 20, radius: float = 6.0, spacing: float = 1.0) -> Path:
    """A CT-like sphere (1000 HU in -1000 HU air) as NIfTI."""
    centre = (size - 1) / 2
    z, y, x = np.ogrid[:size, :size, :size]
    inside = (z - centre) ** 2 + (y - centre) ** 2 + (x - centre) ** 2 < radius**2
    image = sitk.GetImageFromArray(np.where(inside, 1000, -1000).astype(np.int16))
    image.SetSpacing((spacing,) * 3)
    sitk.WriteImage(image, str(path))
    return path


def write_two_labels(folder: Path, names: tuple[str, str]) -> tuple[Path, Path]:
    """A label map with two slabs of different sizes, and a names file naming them."""
    labels = np.zeros((20, 20, 20), dtype=np.uint8)
    labels[3:8, 4:16, 4:16] = 1
    labels[11:17, 3:17, 5:15] = 2
    label_path = folder / "labels.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(label_path))
    names_path = folder / "names.txt"
    names_path.write_text(f"1 {names[0]}\n2 {names[1]}\n", encoding="utf-8")
    return label_path, names_path


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    inputs = tmp_path / "in"
    inputs.mkdir()
    return write_sphere(inputs / "sphere.nii.gz")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def convert(scan: Path, output: Path | str, *more: object) -> list[object]:
    return ["convert", scan, "-o", output, "--modality", "CT", "--smooth", "0", *more]


def stl_triangles(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[80:84], "little")


def tiny_printer(folder: Path) -> Path:
    """A profile folder with printer 'tiny': a 20 x 20 mm bed (the smallest a profile may have)."""
    folder.mkdir()
    text = (PROFILES / "prusa-mk4.toml").read_text(encoding="utf-8")
    text = text.replace("build_x_mm = 250", "build_x_mm = 20").replace("build_y_mm = 210", "build_y_mm = 20")
    assert "build_x_mm = 20\n" in text and "build_y_mm = 20\n" in text
    (folder / "tiny.toml").write_text(text, encoding="utf-8")
    return folder


def medprint_process(args: list[object], cwd: Path, **options: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "medprint", *map(str, args)], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options,
    )


# ---------------------------------------------------------------- 1. one file per output


SAME_PATHS = {
    # option pairs that name one file; values: extra args given the -o path, what the error must name
    "gcode-is-o": (lambda o: ["--gcode", o, "--printer", "prusa-mk4", "--material", "pla"], ["--gcode", "-o/--output"]),
    "gcode-is-report": (
        lambda o: ["--gcode", o.with_name("x.report.json"), "--printer", "prusa-mk4", "--material", "pla"],
        ["--gcode", "report"],
    ),
    "3mf-is-o": (lambda o: ["--3mf", o.with_suffix(".3mf")], ["--3mf", "-o/--output"]),
    "gcode-is-3mf": (
        lambda o: ["--3mf", o.with_name("all.3mf"), "--gcode", o.with_name("all.3mf"), "--printer", "prusa-mk4",
                   "--material", "pla"],
        ["--gcode", "--3mf"],
    ),
    "gcode-is-o-via-dotdot": (
        lambda o: ["--gcode", o.parent / "sub" / ".." / o.name, "--printer", "prusa-mk4", "--material", "pla"],
        ["--gcode", "-o/--output"],
    ),
}


@pytest.mark.parametrize("case", sorted(SAME_PATHS))
def test_two_outputs_on_one_path_are_refused_before_work(scan: Path, out: Path, case: str) -> None:
    extra, mentions = SAME_PATHS[case]
    output = out / ("x.3mf" if case == "3mf-is-o" else "x.stl")
    (out / "sub").mkdir()
    before = files_in(out)
    outcome = run_cli(*convert(scan, output, *extra(output)))
    assert_refused(outcome, mentions=[*mentions, "own name"], out_dir=out, files_before=before)


def test_gcode_through_a_symlink_to_the_mesh_is_refused(scan: Path, out: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "link"
    elsewhere.symlink_to(out, target_is_directory=True)
    outcome = run_cli(*convert(scan, out / "x.stl", "--gcode", elsewhere / "x.stl", "--printer", "prusa-mk4",
                               "--material", "pla"))
    assert_refused(outcome, mentions=["--gcode", "-o/--output", "own name"], out_dir=out)


def test_relative_and_dotted_spellings_of_one_file_are_refused(
    scan: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(out)
    outcome = run_cli(*convert(scan, "x.stl", "--gcode", "./x.stl", "--printer", "prusa-mk4", "--material", "pla"))
    assert_refused(outcome, mentions=["--gcode", "x.stl", "own name"], out_dir=out)


@pytest.mark.parametrize("option", ["--3mf", "--gcode"])
def test_other_outputs_in_a_missing_folder_name_their_option(scan: Path, out: Path, option: str) -> None:
    target = out / "missing" / ("all.3mf" if option == "--3mf" else "x.gcode")
    extra = ["--printer", "prusa-mk4", "--material", "pla"] if option == "--gcode" else []
    outcome = run_cli(*convert(scan, out / "x.stl", option, target, *extra))
    assert_refused(outcome, mentions=[option, "does not exist", "create it"], out_dir=out)


# ---------------------------------------------------------------- part names


@pytest.mark.parametrize("names", [("a/b", "a_b"), ("femur_" + "x" * 40 + "_left", "femur_" + "x" * 40 + "_right")],
                         ids=["cleaned-alike", "same-first-40"])
def test_parts_whose_names_clean_alike_each_keep_a_file(scan: Path, out: Path, tmp_path: Path,
                                                        names: tuple[str, str]) -> None:
    label_path, names_path = write_two_labels(tmp_path / "in", names)
    args = convert(scan, out / "p.stl", "--labels", label_path, "--labels-names", names_path)
    assert_succeeded(run_cli(*args))
    first = files_in(out)
    meshes = sorted(name for name in first if name.endswith(".stl"))
    assert len(meshes) == 2, first
    report = json.loads((out / "p.report.json").read_text(encoding="utf-8"))
    recorded = {Path(part["mesh"]["path"]).name: part["mesh"]["triangles"] for part in report["parts"]}
    assert set(recorded) == set(meshes)
    for name in meshes:
        assert stl_triangles(out / name) == recorded[name]
    assert len(set(recorded.values())) == 2, "the two slabs differ, so must their meshes"
    # A rerun with --overwrite picks the same names and still writes every part.
    assert_succeeded(run_cli(*args, "--overwrite"))
    assert files_in(out) == first


def test_long_part_names_are_shortened_within_the_file_system_limit(scan: Path, out: Path, tmp_path: Path) -> None:
    label_path, names_path = write_two_labels(tmp_path / "in", ("bone", "vessel"))
    stem = "s" * 248
    outcome = run_cli(*convert(scan, out / f"{stem}.stl", "--labels", label_path, "--labels-names", names_path))
    assert_succeeded(outcome)
    written = files_in(out)
    assert len(written) == 3, written
    assert all(len(name.encode()) <= os.pathconf(out, "PC_NAME_MAX") for name in written)
    assert sum(name.endswith(".report.json") for name in written) == 1
    assert sum(name.endswith(".stl") for name in written) == 2


def test_a_part_file_that_is_also_the_3mf_is_refused_before_meshing(scan: Path, out: Path, tmp_path: Path) -> None:
    label_path, names_path = write_two_labels(tmp_path / "in", ("bone", "vessel"))
    outcome = run_cli(*convert(scan, out / "p.3mf", "--labels", label_path, "--labels-names", names_path,
                               "--3mf", out / "p_bone.3mf"))
    assert_refused(outcome, mentions=["part 1 of 2", "p_bone.3mf", "--3mf", "own name"], out_dir=out)


def test_gcode_with_several_parts_is_refused_before_meshing(scan: Path, out: Path, tmp_path: Path) -> None:
    label_path, names_path = write_two_labels(tmp_path / "in", ("bone", "vessel"))
    outcome = run_cli(*convert(scan, out / "p.stl", "--labels", label_path, "--labels-names", names_path,
                               "--gcode", out / "p.gcode", "--printer", "prusa-mk4", "--material", "pla"))
    assert_refused(outcome, mentions=["--gcode", "2 parts", "medprint slice"], out_dir=out)


# ---------------------------------------------------------------- names and folders


def test_output_name_over_the_limit_is_one_line(scan: Path, out: Path) -> None:
    outcome = run_cli(*convert(scan, out / ("n" * 300 + ".stl")))
    assert_refused(outcome, mentions=["-o/--output", "304 bytes", "shorter name"], out_dir=out)


def test_report_name_is_shortened_when_only_it_would_not_fit(scan: Path, out: Path) -> None:
    mesh = out / ("r" * 250 + ".stl")  # 254 bytes: fits; "<stem>.report.json" would be 262
    assert_succeeded(run_cli(*convert(scan, mesh)))
    written = files_in(out)
    reports = [name for name in written if name.endswith(".report.json")]
    assert mesh.name in written and len(reports) == 1, written
    assert len(reports[0].encode()) <= os.pathconf(out, "PC_NAME_MAX")
    assert json.loads((out / reports[0]).read_text())["parts"][0]["mesh"]["triangles"] == stl_triangles(mesh)


@pytest.mark.parametrize("command", ["convert", "slice"])
def test_output_naming_a_folder_says_give_a_file_name(scan: Path, out: Path, command: str) -> None:
    folder = out / "models"
    folder.mkdir()
    if command == "convert":
        outcome = run_cli(*convert(scan, folder))
    else:
        mesh = out / "m.stl"
        assert_succeeded(run_cli(*convert(scan, mesh, "--no-report")))
        outcome = run_cli("slice", mesh, "--printer", "prusa-mk4", "--material", "pla", "-o", folder)
    assert_refused(outcome, mentions=["-o/--output", "is a folder", "name of a file"], out_dir=out,
                   files_before={"m.stl"} if command == "slice" else ())


@pytest.mark.parametrize("depth", ["file/x.stl", "file/deeper/x.stl"])
def test_output_below_a_file_says_it_is_a_file(scan: Path, out: Path, depth: str) -> None:
    (out / "file").write_text("not a folder")
    outcome = run_cli(*convert(scan, out / depth))
    assert_refused(outcome, mentions=["-o/--output", "is a file, not a folder"], out_dir=out, files_before={"file"})


def test_output_in_a_missing_folder_says_create_it(scan: Path, out: Path) -> None:
    outcome = run_cli(*convert(scan, out / "missing" / "x.stl"))
    assert_refused(outcome, mentions=["-o/--output", "does not exist", "create it"], out_dir=out)


def test_output_that_is_only_a_suffix_asks_for_a_name(scan: Path, out: Path) -> None:
    outcome = run_cli(*convert(scan, out / ".stl"))
    assert_refused(outcome, mentions=["-o/--output", "only a suffix", "skull.stl"], out_dir=out)


def test_slice_output_on_its_own_input_mesh_is_refused(scan: Path, out: Path) -> None:
    mesh = out / "m.stl"
    assert_succeeded(run_cli(*convert(scan, mesh, "--no-report")))
    content = mesh.read_bytes()
    outcome = run_cli("slice", mesh, "--printer", "prusa-mk4", "--material", "pla", "-o", out / "." / "m.stl",
                      "--overwrite")
    assert_refused(outcome, mentions=["-o/--output", "input MESH"], out_dir=out, files_before={"m.stl"})
    assert mesh.read_bytes() == content


# ---------------------------------------------------------------- a stage fails after the meshes were made


def test_slicer_refusing_the_model_after_meshing_leaves_no_file(tmp_path: Path, out: Path) -> None:
    big = write_sphere(tmp_path / "big.nii.gz", spacing=2.0)  # 24 mm across, on a 20 mm bed
    profiles = tiny_printer(tmp_path / "profiles")
    outcome = run_cli(*convert(big, out / "x.stl", "--3mf", out / "x.3mf", "--gcode", out / "x.gcode",
                               "--printer", "tiny", "--material", "pla", "--profiles", profiles))
    assert_refused(outcome, mentions=["too big"], out_dir=out)


def test_overwrite_replaces_nothing_when_the_run_fails(tmp_path: Path, out: Path) -> None:
    big = write_sphere(tmp_path / "big.nii.gz", spacing=2.0)
    profiles = tiny_printer(tmp_path / "profiles")
    old = {"x.stl": b"old mesh", "x.report.json": b"{}", "x.gcode": b"; old"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    outcome = run_cli(*convert(big, out / "x.stl", "--gcode", out / "x.gcode", "--printer", "tiny",
                               "--material", "pla", "--profiles", profiles, "--overwrite"))
    assert_refused(outcome, mentions=["too big"], out_dir=out, files_before=old)
    assert {name: (out / name).read_bytes() for name in old} == old


# ---------------------------------------------------------------- disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs (needs root); skipped where it cannot be mounted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode(errors='replace').strip()})")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def leave_free(disk: Path, pages: int) -> None:
    """Fill ``disk`` so that exactly ``pages`` pages stay free."""
    stats = os.statvfs(disk)
    spare = stats.f_bavail * stats.f_frsize - pages * PAGE
    with open(disk / "filler", "wb") as handle:
        handle.write(b"\0" * spare)
    assert os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize == pages * PAGE


def pages_of(path: Path) -> int:
    return -(-path.stat().st_size // PAGE)


# what fails on the full disk -> (extra args, which files of a normal run must fit first)
DISK_FULL = {
    "stl": ([], []),
    "ascii-stl": (["--ascii"], []),
    "obj": ([], []),
    "ply": ([], []),
    "3mf": ([], []),
    "--3mf": (["--3mf", "{out}/x.3mf"], ["x.stl"]),
    "--gcode": (["--gcode", "{out}/x.gcode", "--printer", "prusa-mk4", "--material", "pla"], ["x.stl"]),
    "report": ([], ["x.stl"]),
}


@pytest.mark.parametrize("fails", sorted(DISK_FULL))
def test_disk_full_is_one_line_and_leaves_nothing(scan: Path, tmp_path: Path, small_disk: Path, fails: str) -> None:
    extra, fitting = DISK_FULL[fails]
    suffix = {"obj": ".obj", "ply": ".ply", "3mf": ".3mf"}.get(fails, ".stl")
    # A normal run first, to learn how much the files that must fit take.
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    assert_succeeded(run_cli(*convert(scan, sizes / f"x{suffix}", *[a.format(out=sizes) for a in extra])))
    out = small_disk / "out"
    out.mkdir()
    leave_free(small_disk, sum(pages_of(sizes / name) for name in fitting))
    outcome = run_cli(*convert(scan, out / f"x{suffix}", *[a.format(out=out) for a in extra]))
    target = {"--3mf": "x.3mf", "--gcode": "x.gcode", "report": "x.report.json"}.get(fails, f"x{suffix}")
    option = {"--3mf": "--3mf", "--gcode": "--gcode", "report": "report"}.get(fails, "-o/--output")
    assert_refused(outcome, mentions=[option, target, "disk is full", "free space on the disk"], out_dir=out)


def test_disk_full_while_slicing_to_gcode(scan: Path, tmp_path: Path, small_disk: Path) -> None:
    mesh = tmp_path / "m.stl"
    assert_succeeded(run_cli(*convert(scan, mesh, "--no-report")))
    out = small_disk / "out"
    out.mkdir()
    leave_free(small_disk, 0)
    outcome = run_cli("slice", mesh, "--printer", "prusa-mk4", "--material", "pla", "-o", out / "m.gcode")
    assert_refused(outcome, mentions=["-o/--output", "m.gcode", "free space on the disk"], out_dir=out)


def test_disk_full_without_a_mount_half_way_through_a_file(scan: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # For machines without mount rights: the STL writer gets half its bytes out, then the disk is full.
    def half_then_full(mesh: object, temp: Path, *, ascii: bool) -> None:
        temp.write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mesh_files, "_write_stl", half_then_full)
    outcome = run_cli(*convert(scan, out / "x.stl"))
    assert_refused(outcome, mentions=["-o/--output", "x.stl", "free space on the disk"], out_dir=out)


# ---------------------------------------------------------------- signals


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_signal_mid_write_removes_every_file(tmp_path: Path, out: Path, stop: signal.Signals) -> None:
    # ASCII STL of a large sphere takes seconds to write: time enough to catch the hidden .part file.
    big = write_sphere(tmp_path / "big.nii.gz", size=110, radius=50)
    run = medprint_process(convert(big, out / "x.stl", "--ascii"), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not any(name.endswith(".part") for name in files_in(out)):
        assert run.poll() is None, f"the run ended before writing: {run.communicate()}"
        assert time.monotonic() < deadline, "no .part file appeared"
        time.sleep(0.005)
    run.send_signal(stop)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, (run.returncode, stderr)
    assert "Traceback" not in stderr + stdout, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["medprint: aborted"]
    assert files_in(out) == set()


@pytest.fixture(scope="module")
def interpreter_start_s() -> float:
    """How long Python takes to start and import the medprint package (its own start-up, before our code).

    A Ctrl-C inside the interpreter's start-up (site, the package's ``import
    logging``) gives Python's own traceback and cannot be caught by any code of
    ours; the cases below start after it.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import medprint"], cwd=REPO, env=env, check=True)
    return time.monotonic() - started


@pytest.mark.parametrize("delay_s", [0.0, 0.03, 0.1, 0.3, 0.8])
def test_ctrl_c_during_start_up_is_no_traceback(scan: Path, out: Path, delay_s: float,
                                                interpreter_start_s: float) -> None:
    run = medprint_process(convert(scan, out / "x.stl"), cwd=out.parent)
    time.sleep(1.5 * interpreter_start_s + delay_s)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    medprint_frames = [line for line in stderr.splitlines() if "medprint" in line and line.strip().startswith("File")]
    if ("init_import_site" in stderr or (run.returncode == -signal.SIGINT and "Traceback" not in stderr)
            or (medprint_frames and all("medprint/__init__.py" in line for line in medprint_frames))):
        pytest.skip("the machine was slow: Ctrl-C landed in the interpreter's start-up or the package's "
                    "`import logging`, before the command's code runs")
    assert "Traceback" not in stderr + stdout, stderr
    if run.returncode == 0:  # the run was already done: then its files are whole
        assert files_in(out) == {"x.stl", "x.report.json"}
        return
    assert run.returncode == 1, (run.returncode, stderr)
    assert [line for line in stderr.splitlines() if line.strip()] == ["medprint: aborted"]
    assert files_in(out) == set()


def test_a_signal_the_parent_ignores_stays_ignored(scan: Path, out: Path) -> None:
    # nohup ignores SIGHUP: a run started that way must not die when the terminal closes.
    run = medprint_process(convert(scan, out / "x.stl"), cwd=out.parent,
                           preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    deadline = time.monotonic() + 60
    while not any(name.endswith(".medprint.lock") for name in files_in(out)):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.005)
    run.send_signal(signal.SIGHUP)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    assert files_in(out) == {"x.stl", "x.report.json"}


# ---------------------------------------------------------------- concurrent runs


def test_an_output_locked_by_another_run_is_refused(scan: Path, out: Path) -> None:
    lock = out / ".x.report.json.medprint.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        outcome = run_cli(*convert(scan, out / "x.stl"))
    assert_refused(outcome, mentions=["report", "another medprint run is writing", "x.report.json", "wait"],
                   out_dir=out, files_before={lock.name})


def test_a_lock_file_left_by_a_killed_run_does_not_block(scan: Path, out: Path) -> None:
    # SIGKILL leaves the (empty) lock file but no lock: the next run takes it and removes it.
    (out / ".x.stl.medprint.lock").touch()
    assert_succeeded(run_cli(*convert(scan, out / "x.stl")))
    assert files_in(out) == {"x.stl", "x.report.json"}


def test_concurrent_runs_never_mix_one_runs_mesh_with_anothers_report(tmp_path: Path, out: Path) -> None:
    # Three runs of different spheres race for one -o; each either wins whole or is refused in one line.
    scans = [write_sphere(tmp_path / f"s{radius}.nii.gz", radius=radius) for radius in (4, 5, 6)]
    runs = [medprint_process(convert(path, out / "x.stl", "--overwrite"), cwd=tmp_path) for path in scans]
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert "Traceback" not in stderr + stdout, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        if run.returncode != 0:
            assert run.returncode == 1 and len(lines) == 1, (run.returncode, stderr)
            assert "another medprint run is writing" in lines[0] or "appeared while" in lines[0], lines
    assert any(run.returncode == 0 for run in runs)
    assert files_in(out) == {"x.stl", "x.report.json"}
    report = json.loads((out / "x.report.json").read_text(encoding="utf-8"))
    assert report["parts"][0]["mesh"]["triangles"] == stl_triangles(out / "x.stl")
