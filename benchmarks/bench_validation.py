#!/usr/bin/env python3
"""Does input validation slow the main job?  ``convert`` at two commits, side by side in one run.

A script a person runs (not a unit test)::

    .venv/bin/python benchmarks/bench_validation.py --before 58f0d8d --repeat 3 --json-out results.json

It exports the ``--before`` commit's ``medprint/`` package with ``git archive`` into the cache folder and
runs ``convert_scan(..., SegmentationSettings(preset="bone"))`` on the 512x512x300 head CT, once as the
uncompressed NIfTI that ``bench_convert.py`` makes and once as a DICOM series of 300 uncompressed files
written from it, alternating before / after so that both see the same machine state.  Each run is a child
process (``bench_convert.py --_worker``) whose ``PYTHONPATH`` points at the tree under test; the child
records which ``medprint`` it imported.  The ratio after / before of the median ``convert_scan`` time is
the figure (issue 9: within 5 %).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_convert as bench  # noqa: E402  (the same cases, child runner and worker)

REPO = bench.REPO


def export_tree(revision: str) -> Path:
    """``medprint/`` of ``revision`` in the cache (made once per commit)."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", revision],
                            check=True, capture_output=True, text=True).stdout.strip()
    target = bench.cache_dir() / f"tree-{commit}"
    if not (target / "medprint" / "__init__.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "medprint"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _write_dicom_series(source: str, folder: str) -> int:
    """Child: the NIfTI as a plain CT series (one uncompressed file per slice)."""
    import numpy as np
    import pydicom
    import SimpleITK as sitk
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    image = sitk.ReadImage(source)
    voxels = sitk.GetArrayFromImage(image).astype(np.int16)
    spacing, origin = image.GetSpacing(), np.asarray(image.GetOrigin())
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    out = Path(folder)
    temp = out.with_name(out.name + ".part")
    temp.mkdir(parents=True, exist_ok=True)
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    for k, plane in enumerate(voxels):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Bench^Phantom", "BENCH"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [float(v) for v in origin + direction[:, 2] * spacing[2] * k]
        ds.ImageOrientationPatient = [float(v) for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = plane.tobytes()
        ds.save_as(temp / f"IM{k:05d}.dcm", enforce_file_format=True)
    os.replace(temp, out)
    return 0


def inputs() -> dict[str, Path]:
    found = bench.case_inputs(["512"])
    if "512" not in found:
        return {}
    series = bench.cache_dir() / "cranium_ct_512x512x300_dicom"
    if not series.is_dir():
        print(f"[prep] writing the DICOM series -> {series}", flush=True)
        child = bench.run_child([sys.executable, __file__, "--_dicom", str(found["512"]), str(series)],
                                bench.cache_dir() / "make512dicom.log")
        if child.returncode != 0:
            print(f"[skip] DICOM case: {child.log.strip()[-400:]}")
            return {"512 NIfTI": found["512"]}
    return {"512 NIfTI": found["512"], "512 DICOM": series}


def run_once(tree: Path, source: Path, work: Path, tag: str) -> dict[str, Any]:
    out, result_json = work / f"{tag}.stl", work / f"{tag}.json"
    result_json.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(bench.__file__).resolve()), "--_worker", str(source), str(out), str(result_json)]
    busy = bench.wait_until_quiet(bench.WAIT_IDLE_S)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=bench.cache_dir())
    wall = time.perf_counter() - start
    info = json.loads(result_json.read_text()) if result_json.is_file() else {}
    if proc.returncode != 0 or "error" in info:
        raise SystemExit(f"{tag}: {info.get('error') or proc.stderr[-600:]}")
    expected = (tree / "medprint").resolve()
    if Path(info["medprint_file"]).resolve().parent != expected:
        raise SystemExit(f"{tag}: imported {info['medprint_file']}, not {expected}")
    return {"wall_s": round(wall, 3), "convert_s": info["convert_s"], "timings_s": info["timings_s"],
            "triangles": info["mesh"].get("triangles"), "busy_before": round(busy, 2)}


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--_dicom":
        return _write_dicom_series(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the commit before the change (e.g. 58f0d8d)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wait-idle", type=float, default=20.0, metavar="S")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    bench.WAIT_IDLE_S = args.wait_idle
    trees = {"before": export_tree(args.before), "after": REPO}
    work = bench.cache_dir() / "validation-runs"
    work.mkdir(exist_ok=True)
    results: dict[str, Any] = {"before": args.before, "after": bench.environment()["medprint_commit"], "cases": {}}
    for case, source in inputs().items():
        runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for i in range(args.repeat):
            for name, tree in trees.items():
                run = run_once(tree, source, work, f"{case.replace(' ', '_')}_{name}_{i}")
                runs[name].append(run)
                print(f"{case} {name} run {i + 1}: convert_scan {run['convert_s']:.2f} s, wall {run['wall_s']:.2f} s"
                      f" (busy {run['busy_before']:.0%})", flush=True)
        medians = {name: statistics.median(r["convert_s"] for r in rs) for name, rs in runs.items()}
        ratio = medians["after"] / medians["before"]
        results["cases"][case] = {"runs": runs, "median_convert_s": medians, "ratio_after_before": round(ratio, 3)}
        print(f"{case}: before {medians['before']:.2f} s, after {medians['after']:.2f} s, ratio {ratio:.3f}"
              f" ({'within' if ratio <= 1.05 else 'OVER'} 5 %)", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
