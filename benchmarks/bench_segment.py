#!/usr/bin/env python3
"""Benchmark seeded segmentation against the threshold path's marching cubes on 512x512x300.

A script a person runs (not a unit test)::

    /tmp/venv/bin/python benchmarks/bench_segment.py [--repeat 3] [--json-out results.json]

The volume is a synthetic chest CT, 512x512x300 at 0.7x0.7x1.0 mm, int16: air outside a soft
tissue body (40 HU), two lungs (-850 HU), a spine and ribs-like bone ring (700 HU), a 30 mm
tumour (60 HU) in the right lung touching the chest wall through a 3 mm-wide strand, and a
contrast-filled 'aorta' (350 HU) with a bone bridge.  Every stage runs in its own child
process; peak memory is that child's resident-set high-water mark during the stage (reset with
/proc/self/clear_refs before the stage), time is wall time of the stage alone.

Stages
------
marching-cubes       threshold 226..3071 (bone preset) then medprint.mesh.extract_surface: the
                     threshold path's surface step, the bar seeded growing must stay under
grow-range           segment_from_seeds with --range -400:300, leak guard automatic (openings)
grow-range-noopen    the same with the opening and the guard off (--open 0): threshold + cc3d +
                     seeded pick, which floods the body through the strand (the bare mechanics)
grow-estimated       segment_from_seeds with everything estimated (defaults)
sitk-connected       SimpleITK.ConnectedThreshold with the same range (single-threaded flood fill)
vessel               segment_vessel: blood-pool preset, --max-radius 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("marching-cubes", "grow-range", "grow-range-noopen", "grow-estimated", "sitk-connected", "vessel")
SHAPE = (300, 512, 512)
SPACING = (0.7, 0.7, 1.0)  # x, y, z mm


def make_volume():
    """The synthetic chest CT (see the module docstring) and the tumour and aorta seeds (LPS mm)."""
    import numpy as np

    from medprint.geometry import Geometry
    from medprint.volume import Volume

    nz, ny, nx = SHAPE
    y, x = np.ogrid[:ny, :nx]
    x_mm, y_mm = x * SPACING[0] - 179, y * SPACING[1] - 179
    body = (x_mm / 160) ** 2 + (y_mm / 120) ** 2 <= 1
    lungs = (((x_mm - 70) / 55) ** 2 + (y_mm / 80) ** 2 <= 1) | (((x_mm + 70) / 55) ** 2 + (y_mm / 80) ** 2 <= 1)
    ring = ((x_mm / 150) ** 2 + (y_mm / 110) ** 2 <= 1) & ((x_mm / 140) ** 2 + (y_mm / 100) ** 2 > 1)
    aorta = (x_mm + 10) ** 2 + (y_mm - 50) ** 2 <= 14**2
    plane = np.where(body, 40, -1000).astype(np.int16)
    plane[lungs] = -850
    plane[ring] = 700
    plane[aorta] = 350
    array = np.repeat(plane[None], nz, axis=0)
    z_mm = np.arange(nz)[:, None, None] * SPACING[2]
    tumour = ((x_mm[None] - 90) ** 2 + (y_mm[None] + 20) ** 2 + (z_mm - 150) ** 2) <= 15**2
    array[tumour] = 60
    strand = (np.abs(y_mm + 20) <= 1.5)[None] & (x_mm >= 100)[None] & (x_mm <= 130)[None] & (np.abs(z_mm - 150) <= 1.5)
    array[np.broadcast_to(strand, array.shape) & (array == -850)] = 60
    rng = np.random.default_rng(0)
    array += rng.normal(0, 12, array.shape).astype(np.int16)
    geometry = Geometry(spacing=SPACING, origin=(-179.0, -179.0, 0.0))
    volume = Volume(array=array, geometry=geometry, modality="CT")
    tumour_seed = (90.0, -20.0, 150.0)
    aorta_seed = (-10.0, 50.0, 150.0)
    return volume, tumour_seed, aorta_seed


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_stage(stage: str) -> dict:
    """Run one stage in this process; return wall time and peak extra memory."""
    import numpy as np

    from medprint.mesh import extract_surface
    from medprint.segment import (
        RegionGrowingSettings,
        SegmentationSettings,
        segment_by_threshold,
        segment_from_seeds,
        segment_vessel,
    )

    volume, tumour_seed, aorta_seed = make_volume()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    before = _rss_kib("VmRSS")
    start = time.perf_counter()
    extra: dict = {}
    if stage == "marching-cubes":
        mask, _ = segment_by_threshold(volume, SegmentationSettings(preset="bone", keep="all"))
        t_mc = time.perf_counter()
        mesh = extract_surface(mask)
        extra = {"threshold_s": t_mc - start, "surface_s": time.perf_counter() - t_mc, "triangles": mesh.face_count}
    elif stage in ("grow-range", "grow-range-noopen"):
        if stage == "grow-range":
            settings = RegionGrowingSettings(intensity_range=(-400, 300))
        else:  # the bare mechanics: the strand lets it flood the body, so the guard is lifted
            settings = RegionGrowingSettings(intensity_range=(-400, 300), open_mm=0.0, allow_border=True, max_volume_mm3=1e12)
        mask, steps = segment_from_seeds(volume, [tumour_seed], settings)
        extra = {"region_cm3": mask.volume_mm3 / 1000, "steps": steps}
    elif stage == "grow-estimated":
        mask, steps = segment_from_seeds(volume, [tumour_seed])
        extra = {"region_cm3": mask.volume_mm3 / 1000, "steps": steps}
    elif stage == "sitk-connected":
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(volume.array)
        index = np.rint(volume.geometry.lps_to_index(tumour_seed)).astype(int).tolist()
        t0 = time.perf_counter()
        out = sitk.ConnectedThreshold(image, seedList=[index], lower=-400, upper=300)
        extra = {"region_cm3": float(sitk.GetArrayViewFromImage(out).sum()) * volume.geometry.voxel_volume_mm3 / 1000,
                 "conversion_s": t0 - start}
    elif stage == "vessel":
        mask, steps = segment_vessel(volume, [aorta_seed])
        extra = {"region_cm3": mask.volume_mm3 / 1000, "steps": steps}
    seconds = time.perf_counter() - start
    peak = _rss_kib("VmHWM")
    return {"stage": stage, "seconds": seconds, "peak_extra_mib": (peak - before) / 1024, **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--_stage", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._stage:
        print(json.dumps(run_stage(args._stage)))
        return 0
    results = []
    for stage in args.stages.split(","):
        runs = []
        for _ in range(args.repeat):
            done = subprocess.run([sys.executable, __file__, "--_stage", stage], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if done.returncode != 0:
                print(f"{stage}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                break
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if not runs:
            continue
        best = min(runs, key=lambda r: r["seconds"])
        results.append(best)
        detail = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in best.items() if k not in ("stage", "seconds", "peak_extra_mib", "steps"))
        print(f"{stage:18s} {best['seconds']:7.2f} s  peak +{best['peak_extra_mib']:6.0f} MiB  {detail}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"shape_zyx": SHAPE, "spacing_xyz_mm": SPACING, "cpus": os.cpu_count(),
                                             "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
