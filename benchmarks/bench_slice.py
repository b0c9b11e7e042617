#!/usr/bin/env python3
"""Benchmark medprint's built-in slicer against PrusaSlicer on the same life-size skull mesh.

A script a person runs (not a unit test)::

    /tmp/venv/bin/python benchmarks/bench_slice.py                      # skull made by `medprint convert`
    /tmp/venv/bin/python benchmarks/bench_slice.py --mesh skull.stl --json-out results.json

Settings for both (the issue's): 0.2 mm layers, 2 perimeters, 15 % grid infill, supports on
(threshold 45 degrees), printer ``prusa-mk4``, material ``pla``; PrusaSlicer gets the config
medprint's ``--engine prusaslicer`` would write (:func:`medprint.slice.prusaslicer.prusaslicer_config`)
and the mesh already placed by medprint, so both slice the same triangles in the same place.

Each run is its own child process: wall time measured here, peak resident memory from
``os.wait4`` (the child's ru_maxrss).  This parent never imports numpy or medprint, so the
children's high-water marks start from a bare interpreter.  The mesh is made once (``medprint
convert`` of ``$MEDPRINT_DATA/invesalius_cranium_ct/cranium_ct.nii.gz``) into
``$MEDPRINT_BENCH_CACHE`` (default ``$TMPDIR/medprint-bench-cache``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PRINTER, MATERIAL = "prusa-mk4", "pla"


def _settings() -> Any:
    from medprint.slice.engine import SliceSettings

    return SliceSettings(layer_height_mm=0.2, first_layer_height_mm=0.2, perimeters=2, infill_density=0.15,
                         infill_pattern="grid", supports=True, support_angle_deg=45.0)


def _prepare_worker(mesh_path: str, work: str) -> int:
    """Place the mesh as medprint does; write the placed STL and PrusaSlicer's config."""
    from medprint.io.mesh_files import write_mesh
    from medprint.mesh.model import Mesh
    from medprint.io.mesh_files import read_mesh_file
    from medprint.slice.engine import prepare_mesh
    from medprint.slice.placement import place_on_bed
    from medprint.slice.profiles import load_profiles
    from medprint.slice.prusaslicer import prusaslicer_config

    library = load_profiles()
    printer, material = library.printer(PRINTER), library.material(MATERIAL)
    settings = _settings().validated(printer)
    mesh, _ = prepare_mesh(read_mesh_file(mesh_path))
    margin = settings.skirt_distance_mm + (settings.skirt_loops + 1) * printer.line_width_mm
    vertices, _ = place_on_bed(mesh, printer, margin_mm=margin)
    write_mesh(Mesh(vertices, mesh.faces, "model"), Path(work) / "model.stl", overwrite=True)
    config = prusaslicer_config(printer, material, settings, max_z_mm=float(vertices[:, 2].max()) + 10)
    (Path(work) / "config.ini").write_text("".join(f"{k} = {v}\n" for k, v in config.items()))
    print(json.dumps({"faces": int(mesh.faces.shape[0]), "height_mm": float(vertices[:, 2].max())}))
    return 0


def _builtin_worker(mesh_path: str, out: str, result: str) -> int:
    from medprint.io.mesh_files import read_mesh_file
    from medprint.slice.engine import slice_to_gcode, write_gcode
    from medprint.slice.profiles import load_profiles

    library = load_profiles()
    started = time.perf_counter()
    mesh = read_mesh_file(mesh_path)
    sliced = slice_to_gcode(mesh, library.printer(PRINTER), library.material(MATERIAL), _settings())
    write_gcode(sliced, out, overwrite=True)
    summary = sliced.summary()
    summary["total_s"] = time.perf_counter() - started
    Path(result).write_text(json.dumps(summary))
    return 0


def run_child(cmd: list[str], log_path: Path) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS in MB of one child (os.wait4 ru_maxrss)."""
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024.0


def gcode_stats(path: Path) -> dict[str, Any]:
    text = path.read_text(errors="replace")

    def grab(pattern: str) -> str | None:
        match = re.search(pattern, text)
        return match.group(1) if match else None

    return {
        "filament_mm": float(grab(r"; filament used \[mm\] ?[=:] ?([\d.]+)") or "nan"),
        "filament_g": float(grab(r"; filament used \[g\] ?[=:] ?([\d.]+)") or "nan"),
        "time": grab(r"; estimated print(?:ing)? time[^=:]*[=:] ?([^\n]+)"),
        "layers": text.count(";LAYER_CHANGE") or text.count(";LAYER:"),
        "size_mb": round(path.stat().st_size / 1e6, 1),
    }


def make_skull(cache: Path) -> Path:
    target = cache / "skull.stl"
    if target.is_file():
        return target
    data = Path(os.environ.get("MEDPRINT_DATA", REPO.parent / "shared" / "data"))
    scan = data / "invesalius_cranium_ct" / "cranium_ct.nii.gz"
    if not scan.is_file():
        sys.exit(f"bench_slice: {scan} not found; set MEDPRINT_DATA or pass --mesh")
    cache.mkdir(parents=True, exist_ok=True)
    code = subprocess.call([str(Path(sys.executable).with_name("medprint")), "convert", str(scan), "-o", str(target),
                            "--no-report", "--overwrite"])
    if code != 0:
        sys.exit("bench_slice: medprint convert failed")
    return target


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_prepare":
        return _prepare_worker(*sys.argv[2:4])
    if len(sys.argv) > 1 and sys.argv[1] == "--_builtin":
        return _builtin_worker(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mesh", type=Path, default=None, help="Mesh to slice (default: the converted skull).")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    cache = Path(os.environ.get("MEDPRINT_BENCH_CACHE", Path(tempfile.gettempdir()) / "medprint-bench-cache"))
    mesh = args.mesh or make_skull(cache)
    work = Path(tempfile.mkdtemp(prefix="medprint-bench-slice-"))
    results: dict[str, Any] = {"mesh": str(mesh), "printer": PRINTER, "material": MATERIAL,
                               "settings": "0.2 mm layers, 2 perimeters, 15% grid, supports 45 deg", "cpus": os.cpu_count()}
    code, wall, _ = run_child([sys.executable, __file__, "--_prepare", str(mesh), str(work)], work / "prepare.log")
    if code != 0:
        print((work / "prepare.log").read_text())
        return 1
    results["mesh_info"] = json.loads((work / "prepare.log").read_text().strip().splitlines()[-1])

    builtin_out = work / "builtin.gcode"
    code, wall, rss = run_child([sys.executable, __file__, "--_builtin", str(work / "model.stl"), str(builtin_out),
                                 str(work / "builtin.json")], work / "builtin.log")
    if code != 0:
        print((work / "builtin.log").read_text())
        return 1
    builtin = json.loads((work / "builtin.json").read_text())
    results["builtin"] = {"wall_s": round(wall, 1), "peak_mb": round(rss), "stages_s": builtin["timings_s"],
                          **gcode_stats(builtin_out)}

    exe = shutil.which("prusa-slicer")
    if exe is None:
        print("prusa-slicer not installed (apt-get install prusa-slicer): built-in only")
    else:
        ps_out = work / "prusaslicer.gcode"
        code, wall, rss = run_child([exe, "--datadir", str(work / "datadir"), "--load", str(work / "config.ini"),
                                     "--export-gcode", "--center", "125,105", "-o", str(ps_out),
                                     str(work / "model.stl")], work / "prusaslicer.log")
        if code != 0:
            print((work / "prusaslicer.log").read_text()[-2000:])
            return 1
        results["prusaslicer"] = {"wall_s": round(wall, 1), "peak_mb": round(rss), **gcode_stats(ps_out)}
        b, p = results["builtin"], results["prusaslicer"]
        results["time_ratio_builtin_over_prusaslicer"] = round(b["wall_s"] / p["wall_s"], 3)
        results["filament_ratio_builtin_over_prusaslicer"] = round(b["filament_mm"] / p["filament_mm"], 3)
    results["goals"] = {
        "builtin at least as fast as prusa-slicer": (results.get("time_ratio_builtin_over_prusaslicer", 99) <= 1.0),
        "builtin peak memory < 1 GB": results["builtin"]["peak_mb"] < 1000,
    }
    print(json.dumps(results, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
