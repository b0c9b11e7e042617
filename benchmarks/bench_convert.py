#!/usr/bin/env python3
"""Benchmark medprint's ``convert`` against dicom2stl on three CT cases.

A script a person runs (not a unit test)::

    /tmp/venv/bin/python benchmarks/bench_convert.py                 # all cases, repeat 1
    /tmp/venv/bin/python benchmarks/bench_convert.py --cases head,512 --repeat 3 --json-out results.json

Cases
-----
sample  the embedded synthetic head CT ``samples/head_phantom_ct`` (DICOM folder, 128x144x56)
head    the real head CT ``$MEDPRINT_DATA/invesalius_cranium_ct/cranium_ct.nii.gz`` (256x256x108)
512     that head CT resampled (linear) to 512x512x300 over the same extent, written once as an
        uncompressed NIfTI (.nii) into the cache folder ``$MEDPRINT_BENCH_CACHE``
        (default: ``$TMPDIR/medprint-bench-cache``)

Every run (medprint or dicom2stl) is its own child process; its wall time is taken by this
script and its peak resident memory from ``os.wait4`` (the kernel's ru_maxrss of that child).
Each output STL is then loaded with trimesh and checked: watertight, winding consistent, body
count, open edges (used by one triangle) and non-manifold edges (used by three or more).

dicom2stl (PyPI ``dicom2stl``) is looked up in ``$DICOM2STL`` then on PATH; it gets the same
input file and the same bone range as medprint's ``bone`` preset, as a double threshold
``lo;lo;hi;hi`` (= one threshold lo..hi), in its default mode and, on the 512 case, also with
``--disable shrink`` (full resolution).  Install it in its own venv::

    python3 -m venv /tmp/d2s && /tmp/d2s/bin/pip install dicom2stl
    export DICOM2STL=/tmp/d2s/bin/dicom2stl
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ALL_CASES = ("sample", "head", "512")
INSTALL_HINT = (
    "dicom2stl not found: set DICOM2STL=/path/to/dicom2stl or put it on PATH; install it in its own venv with\n"
    "    python3 -m venv /tmp/d2s && /tmp/d2s/bin/pip install dicom2stl && export DICOM2STL=/tmp/d2s/bin/dicom2stl"
)
BIG_SIZE = (512, 512, 300)


# --------------------------------------------------------------------------------------------
# worker: one medprint convert, run as `python bench_convert.py --_worker INPUT OUTPUT RESULT`
# --------------------------------------------------------------------------------------------


def _worker(input_path: str, output_path: str, result_path: str) -> int:
    """Run one medprint convert in this (child) process and write its report as JSON."""
    start = time.perf_counter()
    try:
        from medprint.pipeline import convert_scan
        from medprint.segment import SegmentationSettings
    except ImportError as exc:  # medprint.mesh not finished yet, for instance
        Path(result_path).write_text(json.dumps({"error": f"cannot import medprint: {exc}"}))
        return 3
    imported = time.perf_counter()
    try:
        result = convert_scan(
            Path(input_path),
            Path(output_path),
            segmentation=SegmentationSettings(preset="bone"),
            overwrite=True,
        )
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        Path(result_path).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 4
    done = time.perf_counter()
    Path(result_path).write_text(
        json.dumps(
            {
                "import_s": round(imported - start, 3),
                "medprint_file": sys.modules["medprint"].__file__,
                "convert_s": round(done - imported, 3),
                "timings_s": result.report.get("timings_s", {}),
                "mesh": result.report.get("mesh", {}),
            },
            default=str,
        )
    )
    return 0


# --------------------------------------------------------------------------------------------
# running children and measuring them
# --------------------------------------------------------------------------------------------


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction (0..1) of all CPUs busy over ``seconds``, from /proc/stat (0 where it is missing)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


WAIT_IDLE_S = 0.0  # set by --wait-idle


def wait_until_quiet(max_wait: float) -> float:
    """Wait up to ``max_wait`` s for the other processes to leave the CPUs (< 15 % busy); return busy."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy > 0.15 and time.monotonic() < deadline:
        busy = cpu_busy(2.0)
    return busy


@dataclass
class ChildRun:
    returncode: int
    wall_s: float
    peak_rss_mb: float
    log: str
    busy_before: float  # fraction of the CPUs busy with other work just before the run started


def run_child(cmd: list[str], log_path: Path) -> ChildRun:
    """Run ``cmd``; wall time and the child's own peak RSS (os.wait4 -> ru_maxrss, KiB on Linux).

    On Linux a child's ru_maxrss starts at its parent's RSS at fork time (exec keeps the old
    high-water mark), so this script never loads numpy, trimesh or SimpleITK itself: the trimesh
    check, the resampling and the medprint runs are all children too, and the floor is the
    ~10-20 MB of a bare interpreter (printed as "parent RSS").
    """
    busy = wait_until_quiet(WAIT_IDLE_S)
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return ChildRun(proc.returncode, wall, rss_kib / 1024.0, log_path.read_text(errors="replace"), busy)


def _check_worker(stl: str, result_path: str) -> int:
    """Mesh facts from trimesh for one STL file (run in a child so this script stays small)."""
    import numpy as np
    import trimesh

    path = Path(stl)
    mesh = trimesh.load_mesh(str(path), file_type="stl", process=True)
    edges = mesh.edges_sorted
    if len(edges):
        _, counts = np.unique(edges, axis=0, return_counts=True)
        open_edges = int((counts == 1).sum())
        nonmanifold = int((counts > 2).sum())
    else:
        open_edges = nonmanifold = 0
    # Shells: edge-connected face groups; a closed shell with negative signed volume is a cavity wall.
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    tri = mesh.triangles
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    shell_volumes = np.bincount(labels, weights=signed)
    facts = {
        "triangles": int(len(mesh.faces)),
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "bodies": int(mesh.body_count),
        "shells": int(len(shell_volumes)),
        # signed volumes mean something only on a closed, consistently wound surface
        "cavity_shells": int((shell_volumes < 0).sum()) if mesh.is_watertight and mesh.is_winding_consistent else None,
        "open_edges": open_edges,
        "nonmanifold_edges": nonmanifold,
        "volume_mm3": round(float(mesh.volume), 1),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }
    Path(result_path).write_text(json.dumps(facts))
    return 0


def check_stl(path: Path, work: Path) -> dict[str, Any]:
    """Run the trimesh check in a child process; returns its facts or {'error': ...}."""
    out = work / (path.stem + ".check.json")
    out.unlink(missing_ok=True)
    child = run_child([sys.executable, str(Path(__file__).resolve()), "--_check", str(path), str(out)],
                      work / (path.stem + ".check.log"))
    if child.returncode != 0 or not out.is_file():
        return {"error": child.log.strip()[-400:]}
    return json.loads(out.read_text())


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def data_root() -> Path:
    return Path(os.environ.get("MEDPRINT_DATA", REPO.parent / "shared" / "data"))


def cache_dir() -> Path:
    path = Path(os.environ.get("MEDPRINT_BENCH_CACHE", Path(tempfile.gettempdir()) / "medprint-bench-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_big_ct(source: Path, target: Path) -> None:
    """Resample ``source`` (linear) to 512x512x300 voxels covering the same box, as .nii."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(str(source))
    old_size = np.array(image.GetSize(), float)
    old_spacing = np.array(image.GetSpacing(), float)
    new_size = np.array(BIG_SIZE, float)
    new_spacing = old_size * old_spacing / new_size  # same edge-to-edge extent
    direction = np.array(image.GetDirection(), float).reshape(3, 3)
    # The first voxel's outer corner stays where it was.
    new_origin = np.array(image.GetOrigin(), float) + direction @ (0.5 * new_spacing - 0.5 * old_spacing)
    resample = sitk.ResampleImageFilter()
    resample.SetSize([int(s) for s in BIG_SIZE])
    resample.SetOutputSpacing(new_spacing.tolist())
    resample.SetOutputOrigin(new_origin.tolist())
    resample.SetOutputDirection(image.GetDirection())
    resample.SetInterpolator(sitk.sitkLinear)
    resample.SetUseNearestNeighborExtrapolator(True)  # the outer half-voxel rim
    resample.SetOutputPixelType(image.GetPixelID())
    big = resample.Execute(image)
    temp = target.with_name(target.name + ".part.nii")
    sitk.WriteImage(big, str(temp), useCompression=False)
    os.replace(temp, target)


def sample_as_dcm(folder: Path) -> Path:
    """The sample's files under *.dcm names (symlinks to the same bytes) in the cache.

    dicom2stl only finds DICOM files whose names end in .dcm; the sample's do not. Both tools are
    given this folder, so they read the very same files.
    """
    view = cache_dir() / "head_phantom_ct_dcm"
    view.mkdir(exist_ok=True)
    wanted = {f.name + ".dcm": f.resolve() for f in folder.iterdir() if f.is_file() and f.name.startswith("IM")}
    for stale in view.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for name, target in wanted.items():
        link = view / name
        if not (link.is_symlink() and link.resolve() == target):
            link.unlink(missing_ok=True)
            link.symlink_to(target)
    return view


def case_inputs(cases: list[str]) -> dict[str, Path]:
    """Input path per case, making the 512 case once if needed. Missing cases are reported and skipped."""
    head = data_root() / "invesalius_cranium_ct" / "cranium_ct.nii.gz"
    found: dict[str, Path] = {}
    for case in cases:
        if case == "sample":
            found[case] = sample_as_dcm(REPO / "samples" / "head_phantom_ct")
        elif not head.is_file():
            print(f"[skip] case {case}: {head} not found (set MEDPRINT_DATA)")
            continue
        elif case == "head":
            found[case] = head
        elif case == "512":
            big = cache_dir() / "cranium_ct_512x512x300.nii"
            if not big.is_file():
                print(f"[prep] resampling {head.name} to 512x512x300 -> {big}", flush=True)
                start = time.perf_counter()
                child = run_child([sys.executable, str(Path(__file__).resolve()), "--_make512", str(head), str(big)],
                                  cache_dir() / "make512.log")
                if child.returncode != 0:
                    print(f"[skip] case 512: resampling failed: {child.log.strip()[-400:]}")
                    continue
                print(f"[prep] done in {time.perf_counter() - start:.1f} s", flush=True)
            found[case] = big
    return found


# --------------------------------------------------------------------------------------------
# the two tools
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    case: str
    tool: str
    runs: int = 0
    ok: bool = False
    error: str = ""
    wall_s: float | None = None  # median child wall time (process start to exit)
    wall_s_all: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None  # median of the runs' peaks
    peak_rss_mb_all: list[float] = field(default_factory=list)
    convert_s: float | None = None  # medprint: convert_scan alone, without interpreter start and imports
    import_s: float | None = None  # medprint: interpreter start + imports (wall_s - convert_s, roughly)
    stages_s: dict[str, float] = field(default_factory=dict)  # medprint: median per stage
    untimed_s: float | None = None  # medprint: convert_scan time outside its named stages (report, checks)
    busy_before: list[float] = field(default_factory=list)  # CPU share used by other work before each run
    medprint_mesh: dict[str, Any] = field(default_factory=dict)  # medprint's own report
    check: dict[str, Any] = field(default_factory=dict)  # trimesh facts of the output STL
    output: str = ""


def _bone_range_worker() -> int:
    from medprint.segment.presets import CT_PRESETS

    print(json.dumps([CT_PRESETS["bone"].low, CT_PRESETS["bone"].high]))
    return 0


_BONE: tuple[float, float] | None = None


def bone_range() -> tuple[float, float]:
    """medprint's bone preset range (asked of medprint in a child), so dicom2stl gets the same one."""
    global _BONE
    if _BONE is None:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_bone"], capture_output=True, text=True)
        try:
            lo, hi = json.loads(done.stdout.strip().splitlines()[-1])
            _BONE = (float(lo), float(hi))
        except (ValueError, IndexError):
            print("[warn] could not read medprint's bone preset; using InVesalius' 226..3071 HU")
            _BONE = (226.0, 3071.0)
    return _BONE


def run_medprint(case: str, source: Path, work: Path, repeat: int) -> Result:
    res = Result(case, "medprint")
    out = work / f"{case}_medprint.stl"
    stages: dict[str, list[float]] = {}
    converts: list[float] = []
    imports: list[float] = []
    for i in range(repeat):
        result_json = work / f"{case}_medprint.run{i}.json"
        result_json.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", str(source), str(out), str(result_json)]
        child = run_child(cmd, work / f"{case}_medprint.run{i}.log")
        info = json.loads(result_json.read_text()) if result_json.is_file() else {}
        if child.returncode != 0 or "error" in info:
            res.error = info.get("error") or f"exit {child.returncode}: {child.log.strip()[-600:]}"
            return res
        res.wall_s_all.append(round(child.wall_s, 3))
        res.peak_rss_mb_all.append(round(child.peak_rss_mb, 1))
        res.busy_before.append(round(child.busy_before, 2))
        converts.append(info["convert_s"])
        imports.append(info["import_s"])
        for name, seconds in info.get("timings_s", {}).items():
            stages.setdefault(name, []).append(seconds)
        res.medprint_mesh = info.get("mesh", {})
        res.runs += 1
    res.ok = True
    res.wall_s = round(statistics.median(res.wall_s_all), 3)
    res.peak_rss_mb = round(statistics.median(res.peak_rss_mb_all), 1)
    res.convert_s = round(statistics.median(converts), 3)
    res.import_s = round(statistics.median(imports), 3)
    res.stages_s = {k: round(statistics.median(v), 3) for k, v in stages.items()}
    named = res.stages_s.get("total", sum(v for k, v in res.stages_s.items() if k != "total"))
    res.untimed_s = round(res.convert_s - named, 3)
    res.output = str(out)
    return res


def run_dicom2stl(exe: str, case: str, source: Path, work: Path, repeat: int, full_res: bool) -> Result:
    tool = "dicom2stl --disable shrink" if full_res else "dicom2stl"
    res = Result(case, tool)
    out = work / f"{case}_{'dicom2stl_fullres' if full_res else 'dicom2stl'}.stl"
    lo, hi = bone_range()
    for i in range(repeat):
        temp = Path(tempfile.mkdtemp(prefix="d2s-", dir=work))
        cmd = [exe, "--double", f"{lo:g};{lo:g};{hi:g};{hi:g}", "-T", str(temp), "-o", str(out)]
        if full_res:
            cmd += ["--disable", "shrink"]
        cmd.append(str(source))
        out.unlink(missing_ok=True)
        child = run_child(cmd, work / f"{out.stem}.run{i}.log")
        shutil.rmtree(temp, ignore_errors=True)
        if child.returncode != 0 or not out.is_file():
            res.error = f"exit {child.returncode}: {child.log.strip()[-600:]}"
            return res
        res.wall_s_all.append(round(child.wall_s, 3))
        res.peak_rss_mb_all.append(round(child.peak_rss_mb, 1))
        res.busy_before.append(round(child.busy_before, 2))
        res.runs += 1
    res.ok = True
    res.wall_s = round(statistics.median(res.wall_s_all), 3)
    res.peak_rss_mb = round(statistics.median(res.peak_rss_mb_all), 1)
    res.output = str(out)
    return res


def find_dicom2stl() -> str | None:
    exe = os.environ.get("DICOM2STL")
    if exe:
        return exe if Path(exe).is_file() and os.access(exe, os.X_OK) else None
    return shutil.which("dicom2stl")


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = "") -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format(value, spec)


def print_table(results: list[Result]) -> None:
    header = ("case", "tool", "wall s", "convert s", "peak MB", "triangles", "watertight", "winding ok",
              "bodies", "cavity shells", "open edges", "non-manif.", "volume cm3", "busy")
    rows = []
    for r in results:
        if not r.ok:
            rows.append((r.case, r.tool, "FAILED", *([""] * (len(header) - 3))))
            continue
        c = r.check
        vol = c.get("volume_mm3")
        rows.append((
            r.case, r.tool, _fmt(r.wall_s, ".2f"), _fmt(r.convert_s, ".2f"), _fmt(r.peak_rss_mb, ".0f"),
            _fmt(c.get("triangles"), ","), _fmt(c.get("watertight")), _fmt(c.get("winding_consistent")),
            _fmt(c.get("bodies")), _fmt(c.get("cavity_shells")), _fmt(c.get("open_edges"), ","),
            _fmt(c.get("nonmanifold_edges"), ","), _fmt(None if vol is None else vol / 1000, ".1f"),
            f"{max(r.busy_before):.0%}" if r.busy_before else "-",
        ))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    for r in results:
        if not r.ok:
            print(f"  {r.case} / {r.tool} failed: {r.error}")
        elif "error" in r.check:
            print(f"  {r.case} / {r.tool}: trimesh check failed: {r.check['error']}")
    print("wall s: child process start to exit (median); convert s: medprint's convert_scan alone; peak MB: the\n"
          "child's ru_maxrss; bodies: vertex-connected parts (trimesh); cavity shells: closed shells with negative\n"
          "signed volume (inner walls of enclosed voids); busy: CPU share used by other processes just before the\n"
          "run (max over repeats); timings with busy > 15 % are not trustworthy")


def ratios(results: list[Result]) -> list[dict[str, Any]]:
    by = {(r.case, r.tool): r for r in results if r.ok}
    out = []
    for (case, tool), r in by.items():
        mp = by.get((case, "medprint"))
        if tool == "medprint" or mp is None:
            continue
        out.append({
            "case": case,
            "vs": tool,
            "time_ratio": round(r.wall_s / mp.wall_s, 2),
            "memory_ratio": round(r.peak_rss_mb / mp.peak_rss_mb, 2),
        })
    return out


def goals(results: list[Result]) -> list[dict[str, Any]]:
    by = {(r.case, r.tool): r for r in results if r.ok}
    mp = by.get(("512", "medprint"))
    d_default = by.get(("512", "dicom2stl"))
    d_full = by.get(("512", "dicom2stl --disable shrink"))
    found = []

    def goal(name: str, passed: bool | None, detail: str) -> None:
        found.append({"goal": name, "passed": passed, "detail": detail})

    if mp is None:
        goal("512: medprint ran", False, "no medprint result on the 512 case")
        return found
    if d_default:
        goal("512: medprint full-res faster than dicom2stl's shrunk default", mp.wall_s < d_default.wall_s,
             f"medprint {mp.wall_s:.2f} s vs dicom2stl default {d_default.wall_s:.2f} s "
             f"(x{d_default.wall_s / mp.wall_s:.2f})")
    else:
        goal("512: medprint full-res faster than dicom2stl's shrunk default", None, "dicom2stl not run")
    if d_full:
        goal("512: medprint >= 3x faster than dicom2stl full-res", d_full.wall_s >= 3 * mp.wall_s,
             f"medprint {mp.wall_s:.2f} s vs dicom2stl --disable shrink {d_full.wall_s:.2f} s "
             f"(x{d_full.wall_s / mp.wall_s:.2f})")
        goal("512: medprint peak memory below dicom2stl full-res", mp.peak_rss_mb < d_full.peak_rss_mb,
             f"medprint {mp.peak_rss_mb:.0f} MB vs dicom2stl --disable shrink {d_full.peak_rss_mb:.0f} MB")
    else:
        goal("512: medprint >= 3x faster than dicom2stl full-res", None, "dicom2stl not run")
        goal("512: medprint peak memory below dicom2stl full-res", None, "dicom2stl not run")
    if d_default:
        # Informative: the shrunk run is at 1/8 the voxels, so it is the harder memory target.
        goal("512: medprint peak memory below dicom2stl default (info)", mp.peak_rss_mb < d_default.peak_rss_mb,
             f"medprint {mp.peak_rss_mb:.0f} MB vs dicom2stl default {d_default.peak_rss_mb:.0f} MB")
    c = mp.check
    goal("512: medprint output watertight", bool(c.get("watertight") and c.get("winding_consistent")),
         f"watertight={c.get('watertight')} winding_consistent={c.get('winding_consistent')} "
         f"open_edges={c.get('open_edges')} nonmanifold_edges={c.get('nonmanifold_edges')} bodies={c.get('bodies')}")
    return found


def environment() -> dict[str, Any]:
    def version(module: str) -> str | None:
        try:
            from importlib.metadata import version as v

            return v(module)
        except Exception:  # noqa: BLE001
            return None

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "medprint").splitlines()]
    # from a neutral folder, as the workers see it (the cwd would shadow PYTHONPATH)
    found = subprocess.run([sys.executable, "-c", "import medprint; print(medprint.__file__)"],
                           capture_output=True, text=True, cwd=tempfile.gettempdir())
    medprint_dir = str(Path(found.stdout.strip()).parent) if found.returncode == 0 else None
    return {
        "medprint_imported_from": medprint_dir,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "medprint_commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "medprint_uncommitted": dirty,
        "host_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "medprint": version("medprint"),
        "vtk": version("vtk"),
        "SimpleITK": version("SimpleITK"),
        "trimesh": version("trimesh"),
        "blas_env": {k: v for k, v in os.environ.items() if "BLAS" in k or k.endswith("NUM_THREADS")},
    }


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_worker"]:
        return _worker(*argv[1:4])
    if argv[:1] == ["--_check"]:
        return _check_worker(*argv[1:3])
    if argv[:1] == ["--_make512"]:
        make_big_ct(Path(argv[1]), Path(argv[2]))
        return 0
    if argv[:1] == ["--_bone"]:
        return _bone_range_worker()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(ALL_CASES), help="comma list of: sample,head,512 (default all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case and tool; the median is reported")
    parser.add_argument("--tools", default="medprint,dicom2stl", help="comma list of: medprint,dicom2stl")
    parser.add_argument("--json-out", type=Path, help="also write all results as JSON here")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                        help="before each run wait up to S seconds for other processes to leave the CPUs")
    parser.add_argument("--work-dir", type=Path, help="where output meshes and logs go (default: CACHE/runs)")
    args = parser.parse_args(argv)

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown or args.repeat < 1:
        parser.error(f"--cases takes {','.join(ALL_CASES)}; --repeat >= 1")
    global WAIT_IDLE_S
    WAIT_IDLE_S = args.wait_idle
    tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    work = args.work_dir or cache_dir() / "runs"
    work.mkdir(parents=True, exist_ok=True)

    env = environment()
    print(f"medprint benchmark  {env['date']}  cpus={env['host_cpus']}  python {env['python']}  "
          f"vtk {env['vtk']}  SimpleITK {env['SimpleITK']}")
    dirty = f" + uncommitted changes in {', '.join(env['medprint_uncommitted'])}" if env["medprint_uncommitted"] else ""
    if env["medprint_imported_from"] and Path(env["medprint_imported_from"]).parent != REPO:
        print(f"medprint imported from {env['medprint_imported_from']} (not this checkout: git facts below are not its)")
    print(f"this checkout: commit {env['medprint_commit']}{dirty}")
    print(f"cache: {cache_dir()}   outputs and logs: {work}")
    print(f"parent RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (floor of every child's peak); "
          f"load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")

    d2s = find_dicom2stl() if "dicom2stl" in tools else None
    if "dicom2stl" in tools and d2s is None:
        print(f"[skip] {INSTALL_HINT}")
    elif d2s:
        version = subprocess.run([d2s, "--version"], capture_output=True, text=True).stdout.strip()
        env["dicom2stl"] = version or d2s
        lo, hi = bone_range()
        print(f"dicom2stl: {d2s} ({version}); bone range {lo:g}..{hi:g} HU as --double '{lo:g};{lo:g};{hi:g};{hi:g}'")

    inputs = case_inputs(cases)
    results: list[Result] = []
    for case, source in inputs.items():
        plan: list[tuple[str, Any]] = []
        if "medprint" in tools:
            plan.append(("medprint", lambda c=case, s=source: run_medprint(c, s, work, args.repeat)))
        if d2s:
            plan.append(("dicom2stl", lambda c=case, s=source: run_dicom2stl(d2s, c, s, work, args.repeat, False)))
            if case == "512":
                plan.append(("dicom2stl --disable shrink",
                             lambda c=case, s=source: run_dicom2stl(d2s, c, s, work, args.repeat, True)))
        for name, run in plan:
            print(f"[run] {case:<6} {name} x{args.repeat} ...", end=" ", flush=True)
            res = run()
            if res.ok:
                res.check = check_stl(Path(res.output), work)
                busy = [x for x in res.busy_before if x > 0.15]
                if busy:
                    print(f"[warn: {max(busy):.0%} of the CPUs busy with other work at start] ", end="")
                extra = f"  stages {res.stages_s}" if res.stages_s else ""
                print(f"{res.wall_s:.2f} s, {res.peak_rss_mb:.0f} MB{extra}", flush=True)
            else:
                print(f"FAILED: {res.error.splitlines()[-1] if res.error else ''}", flush=True)
            results.append(res)

    print_table(results)
    found_ratios = ratios(results)
    if found_ratios:
        print("\nratios (dicom2stl / medprint; > 1 means medprint is faster / smaller):")
        for r in found_ratios:
            print(f"  {r['case']:<6} {r['vs']:<28} time x{r['time_ratio']:.2f}   peak memory x{r['memory_ratio']:.2f}")
    mp_rows = [r for r in results if r.ok and r.stages_s]
    if mp_rows:
        print("\nmedprint stages (s, median):")
        for r in mp_rows:
            stages = "  ".join(f"{k} {v:.2f}" for k, v in r.stages_s.items())
            print(f"  {r.case:<6} {stages}  | outside stages {r.untimed_s:.2f}; convert_scan {r.convert_s:.2f}; "
                  f"start+imports {r.import_s:.2f}; process {r.wall_s:.2f}")
    found_goals = goals(results) if "512" in inputs else []
    if found_goals:
        print("\ngoals (512x512x300):")
        for g in found_goals:
            mark = "PASS" if g["passed"] else ("n/a " if g["passed"] is None else "FAIL")
            print(f"  [{mark}] {g['goal']}: {g['detail']}")
    if args.json_out:
        payload = {
            "environment": env,
            "inputs": {k: str(v) for k, v in inputs.items()},
            "input_format": {"512": "uncompressed NIfTI (.nii)", "head": "NIfTI .nii.gz as shipped",
                             "sample": "DICOM folder (RLE)"},
            "repeat": args.repeat,
            "results": [asdict(r) for r in results],
            "ratios": found_ratios,
            "goals": found_goals,
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"\nJSON written to {args.json_out}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
