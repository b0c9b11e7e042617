#!/usr/bin/env python3
"""Benchmark label import (``medprint.io.labels.load_label_mask``) on a 512x512x300 scan.

A script a person runs (not a unit test)::

    /tmp/venv/bin/python benchmarks/bench_labels.py                  # both cases, repeat 1
    /tmp/venv/bin/python benchmarks/bench_labels.py --repeat 3 --labels 5 --json-out /tmp/labels.json

Cases
-----
labelmap  a label map on another grid than the scan: 256x256x150 voxels of twice the scan's spacing,
          y axis flipped, ten spherical labels, gzip NIfTI; it is resampled (nearest neighbour) onto
          the 512x512x300 scan.
rtstruct  an RTSTRUCT with one ROI of 150 circular 128-point contours (one every other slice),
          rasterised onto the 512x512x300 scan.

The scan itself is made in memory by the worker (int16 zeros, 0.5x0.5x0.6 mm), so that the figures
are those of the import, not of reading a scan.  Inputs are written once into
``$MEDPRINT_BENCH_CACHE/labels`` (default ``$TMPDIR/medprint-bench-cache/labels``).  Every run is a
child process; wall time of the import is taken inside it, peak memory is the child's ru_maxrss
(``os.wait4``), and the scan's own share (RSS after making it) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCAN_SHAPE = (300, 512, 512)  # z, y, x
SCAN_SPACING = (0.5, 0.5, 0.6)  # x, y, z mm
CASES = ("labelmap", "rtstruct")


def cache_dir() -> Path:
    root = os.environ.get("MEDPRINT_BENCH_CACHE") or str(Path(tempfile.gettempdir()) / "medprint-bench-cache")
    folder = Path(root) / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------------------------------------
# inputs (made once, in a child so the parent stays small)
# ---------------------------------------------------------------------------------------------


def make_label_map(path: Path) -> None:
    import numpy as np
    import SimpleITK as sitk

    nz, ny, nx = (n // 2 for n in SCAN_SHAPE)
    spacing = tuple(2 * s for s in SCAN_SPACING)
    k, j, i = np.ogrid[:nz, :ny, :nx]
    labels = np.zeros((nz, ny, nx), dtype=np.uint8)
    rng = np.random.default_rng(0)
    for value in range(1, 11):
        ci, cj, ck = rng.uniform(0.2, 0.8, 3) * (nx, ny, nz)
        radius = rng.uniform(15, 40)  # mm
        inside = ((i - ci) * spacing[0]) ** 2 + ((j - cj) * spacing[1]) ** 2 + ((k - ck) * spacing[2]) ** 2
        labels[inside <= radius**2] = value
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(spacing)
    # y flipped: row 0 at the scan's last row, so that both grids cover the same box
    image.SetOrigin((0.25, (SCAN_SHAPE[1] - 1) * SCAN_SPACING[1] - 0.25, 0.3))
    image.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
    sitk.WriteImage(image, str(path), useCompression=True)


def make_rtstruct(path: Path) -> None:
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    roi = Dataset()
    roi.ROINumber, roi.ROIName = 1, "Body"
    ds.StructureSetROISequence = Sequence([roi])
    contours = []
    angle = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    for k in range(0, SCAN_SHAPE[0], 2):
        z = k * SCAN_SPACING[2]
        radius = 60 + 40 * np.sin(np.pi * k / SCAN_SHAPE[0])
        points = np.stack([128 + radius * np.cos(angle), 128 + radius * np.sin(angle), np.full_like(angle, z)], 1)
        item = Dataset()
        item.ContourGeometricType = "CLOSED_PLANAR"
        item.NumberOfContourPoints = len(points)
        item.ContourData = [f"{v:.3f}" for v in points.ravel()]
        contours.append(item)
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = 1
    roi_contour.ContourSequence = Sequence(contours)
    ds.ROIContourSequence = Sequence([roi_contour])
    ds.save_as(path, enforce_file_format=True)


# ---------------------------------------------------------------------------------------------
# worker: one import, run as `python bench_labels.py --_worker CASE INPUT LABELS RESULT`
# ---------------------------------------------------------------------------------------------


def worker(case: str, source: Path, label_count: int, result: Path) -> None:
    import numpy as np

    from medprint.geometry import Geometry
    from medprint.io.labels import load_label_mask
    from medprint.volume import Volume

    scan = Volume(array=np.zeros(SCAN_SHAPE, dtype=np.int16), geometry=Geometry(spacing=SCAN_SPACING), modality="CT")
    scan.array.fill(0)  # touch the pages, so the scan's memory is counted before the import
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    labels = list(range(1, label_count + 1)) if case == "labelmap" else ["Body"]
    start = time.perf_counter()
    masks = load_label_mask(source, scan, labels=labels)
    seconds = time.perf_counter() - start
    result.write_text(json.dumps({
        "import_s": seconds,
        "scan_rss_mb": before_mb,
        "masks": len(masks),
        "voxels": [m.voxel_count for m in masks],
    }))


def run_once(case: str, source: Path, label_count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        command = [sys.executable, __file__, "--_worker", case, str(source), str(label_count), str(result)]
        start = time.perf_counter()
        process = subprocess.Popen(command)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"{case}: worker failed (status {status})")
        values = json.loads(result.read_text())
    values.update(wall_s=wall, peak_mb=usage.ru_maxrss / 1024)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--labels", type=int, default=5, help="labels imported from the label map (1..10)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--_worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        case, source, count, result = args._worker
        worker(case, Path(source), int(count), Path(result))
        return 0
    folder = cache_dir()
    inputs = {"labelmap": folder / "labels_256x256x150_yflip.nii.gz", "rtstruct": folder / "rtstruct_150_contours.dcm"}
    makers = {"labelmap": make_label_map, "rtstruct": make_rtstruct}
    results = {}
    for case in args.cases.split(","):
        if not inputs[case].exists():
            makers[case](inputs[case])
        runs = [run_once(case, inputs[case], args.labels) for _ in range(args.repeat)]
        summary = {key: statistics.median(run[key] for run in runs) for key in ("import_s", "wall_s", "peak_mb",
                                                                                 "scan_rss_mb")}
        summary.update(masks=runs[0]["masks"], voxels=runs[0]["voxels"], repeat=args.repeat)
        results[case] = summary
        print(f"{case:9s} import {summary['import_s']:.2f} s  (process {summary['wall_s']:.2f} s)  "
              f"peak {summary['peak_mb']:.0f} MB (scan alone {summary['scan_rss_mb']:.0f} MB)  "
              f"{summary['masks']} masks")
    if args.json_out:
        args.json_out.write_text(json.dumps({"scan_shape_zyx": SCAN_SHAPE, "cases": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
