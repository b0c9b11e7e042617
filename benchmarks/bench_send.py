#!/usr/bin/env python3
"""Benchmark sending the real skull's DICOM Encapsulated STL to a local Orthanc by C-STORE.

A script a person runs (not a unit test)::

    /work/main/.venv/bin/python benchmarks/bench_send.py                 # 5 repeats
    /work/main/.venv/bin/python benchmarks/bench_send.py --repeats 9 --json-out results.json

The skull: ``medprint convert $MEDPRINT_DATA/invesalius_cranium_ct/cranium_ct.nii.gz --preset bone
--dicom-stl skull.dcm`` with a made-up identity (the NIfTI carries none: --patient-name/-id, --study-uid), made
once into ``$MEDPRINT_BENCH_CACHE`` (default ``$TMPDIR/medprint-bench-cache``).  Where ``--dicom-stl`` is not
built yet, ``--stand-in`` wraps the same STL bytes in a minimal Encapsulated STL made here (same size, same
SOP Class and transfer syntax) and says so in the results.

An Orthanc (/usr/sbin/Orthanc) is started by this script on 127.0.0.1 with its own configuration and storage
in a temporary folder (tests/pacs/orthanc_process.py), and stopped at the end.  Timed, each repeat:

- **library**: :func:`medprint.io.pacs.send_files` in this process: one association, one C-STORE, release.
- **cli**: ``medprint send skull.dcm --to ...`` as a child process: the same plus the interpreter and imports;
  beside it the start-up floor, ``medprint send --help`` (best of 3).

Between repeats the instance is deleted through Orthanc's REST API (not timed), so every repeat is a new store
(Orthanc answers an instance it already has without writing it again).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "pacs"))
sys.path.insert(0, str(REPO))

from orthanc_process import Orthanc

IDENTITY = ("--patient-name", "BENCH^SKULL", "--patient-id", "BENCH-0001",
            "--study-uid", "1.2.826.0.1.3680043.8.498.20261202.1")


def data_root() -> Path:
    return Path(os.environ.get("MEDPRINT_DATA", REPO.parent / "shared" / "data"))


def cache_dir() -> Path:
    folder = Path(os.environ.get("MEDPRINT_BENCH_CACHE", Path(tempfile.gettempdir()) / "medprint-bench-cache"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def medprint(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "medprint", *args], env=env, capture_output=True, text=True, check=False)


def skull_dicom(stand_in: bool) -> tuple[Path, str]:
    """The skull's DICOM STL (made once) and how it was made."""
    ct = data_root() / "invesalius_cranium_ct" / "cranium_ct.nii.gz"
    if not ct.is_file():
        sys.exit(f"bench_send: {ct} not found (set MEDPRINT_DATA)")
    folder = cache_dir()
    stl, dcm = folder / "send-skull.stl", folder / ("send-skull-standin.dcm" if stand_in else "send-skull.dcm")
    if dcm.is_file() and stl.is_file():
        return dcm, "stand-in" if stand_in else "medprint --dicom-stl"
    if stand_in:
        if not stl.is_file():
            done = medprint("convert", str(ct), "-o", str(stl), "--preset", "bone", "--no-report", "--overwrite")
            if done.returncode != 0:
                sys.exit(f"bench_send: convert failed: {done.stderr.strip()}")
        from pacs_files import write_encapsulated_stl

        write_encapsulated_stl(dcm, patient_id="BENCH-0001", patient_name="BENCH^SKULL", document=stl.read_bytes())
        return dcm, "stand-in"
    done = medprint("convert", str(ct), "-o", str(stl), "--preset", "bone", "--no-report", "--overwrite",
                    "--dicom-stl", str(dcm), *IDENTITY)
    if done.returncode != 0:
        sys.exit(f"bench_send: convert --dicom-stl failed ({done.stderr.strip()}); try --stand-in")
    return dcm, "medprint --dicom-stl"


def version_of(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stand-in", action="store_true",
                        help="send a minimal Encapsulated STL of the same STL bytes instead of --dicom-stl's")
    parser.add_argument("--json-out", type=Path, default=None,
                        help="default: benchmarks/results-send-<date>.json")
    args = parser.parse_args(argv)

    from medprint.io.pacs import parse_pacs_address, send_files

    dcm, made_by = skull_dicom(args.stand_in)
    size_mb = dcm.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(prefix="bench-send-") as work:
        server = Orthanc(Path(work) / "orthanc")
        try:
            address = parse_pacs_address(server.address)
            version = server.get("/system")["Version"]
            library, cli = [], []
            for _ in range(args.repeats):
                server.clear()
                start = time.perf_counter()
                send_files([dcm], address)
                library.append(time.perf_counter() - start)
                assert len(server.instances()) == 1
                server.clear()
                start = time.perf_counter()
                done = medprint("send", str(dcm), "--to", server.address)
                cli.append(time.perf_counter() - start)
                if done.returncode != 0:
                    sys.exit(f"bench_send: medprint send failed: {done.stderr.strip()}")
        finally:
            server.stop()
    floor = []
    for _ in range(3):
        start = time.perf_counter()
        medprint("send", "--help")
        floor.append(time.perf_counter() - start)

    results: dict[str, Any] = {
        "benchmark": "send", "date": date.today().isoformat(), "commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "orthanc": version, "object": {"made_by": made_by, "size_mb": round(size_mb, 2)},
        "repeats": args.repeats,
        "library_s": [round(t, 3) for t in library], "cli_s": [round(t, 3) for t in cli],
        "library_median_s": round(statistics.median(library), 3), "cli_median_s": round(statistics.median(cli), 3),
        "library_mb_per_s": round(size_mb / statistics.median(library), 1),
        "cli_floor_s": round(min(floor), 3),
        "pynetdicom": version_of("pynetdicom"), "pydicom": version_of("pydicom"),
    }
    out = args.json_out or REPO / "benchmarks" / f"results-send-{results['date']}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"skull DICOM STL ({made_by}): {size_mb:.1f} MB to Orthanc {version} on 127.0.0.1, {args.repeats} repeats")
    print(f"  library send_files: median {results['library_median_s']:.3f} s "
          f"(min {min(library):.3f}, max {max(library):.3f}), {results['library_mb_per_s']} MB/s")
    print(f"  medprint send (process): median {results['cli_median_s']:.3f} s (min {min(cli):.3f}, max {max(cli):.3f})")
    print(f"  start-up floor, `medprint send --help`: {results['cli_floor_s']:.3f} s (best of 3)")
    print(f"  written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
