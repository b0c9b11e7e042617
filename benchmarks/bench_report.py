#!/usr/bin/env python3
"""Benchmark the HTML sign-off report (issue 12) on the real skull: ``medprint report`` and ``--report html``.

A script a person runs (not a unit test)::

    /work/main/.venv/bin/python benchmarks/bench_report.py                      # repeat 3
    /work/main/.venv/bin/python benchmarks/bench_report.py --repeat 1 --json-out /tmp/r.json

The skull is ``convert --preset bone`` of ``$MEDPRINT_DATA/invesalius_cranium_ct/cranium_ct.nii.gz`` (made once,
not timed, with its JSON report).  Then, each as its own ``python -m medprint`` child process (imports included;
peak RSS from ``os.wait4``):

report          ``medprint report skull.stl --source cranium_ct.nii.gz``: the scan loaded again, its montage,
                coronal and sagittal with the mesh's sections outlined, four model views, the page
report-model    ``medprint report skull.stl``: no scan, the model views and the numbers only
convert         ``medprint convert cranium_ct.nii.gz --preset bone`` (the JSON report only)
convert-html    the same with ``--report html``: the difference is what the HTML report adds to a convert

and, in one child, the stages of the page built in-process (``stages``): scan pictures, mesh pictures, the HTML.
Goal (issue 12): a 500k-triangle skull report written in under 10 s on this machine.  Results go to
``benchmarks/results-report-<date>.json`` unless ``--json-out`` says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_convert import cache_dir, data_root
from bench_design import WALL_NOTE, Result, child_env, environment, print_aligned, print_banner, run_child

REPO = HERE.parent
GOAL_S = 10.0
CASES = ("report", "report-model", "convert", "convert-html")

#: Run in a child: the page's stages timed one by one, as HtmlReport.write runs them.
STAGES_SCRIPT = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from medprint.io import load_volume
from medprint.io.mesh_files import read_mesh_file
from medprint.review.scan_views import scan_pictures, window_for
from medprint.review.mesh_views import mesh_pictures
from medprint.review.page import PageContent, render_page
from medprint.review.types import Outline, Shown
times = {"imports": time.perf_counter() - t0}
def timed(name, make):
    start = time.perf_counter(); value = make(); times[name] = round(time.perf_counter() - start, 3); return value
mesh = timed("read mesh", lambda: read_mesh_file(sys.argv[1]))
report = json.loads(Path(sys.argv[1]).with_suffix(".report.json").read_text())
volume = timed("load scan", lambda: load_volume(sys.argv[2]))
window = window_for(volume, "bone")
scan = timed("scan pictures", lambda: scan_pictures(volume, [Outline("skull", (230, 120, 40), mesh)], window))
model = timed("mesh pictures", lambda: mesh_pictures([Shown("skull", mesh, (230, 120, 40))]))
page = timed("html page", lambda: render_page(PageContent(report, "convert", "skull.stl", "x", "now", scan=scan,
                                                             window=window, model=model)))
times["page_bytes"] = len(page.encode("utf-8"))
times["triangles"] = mesh.face_count
print(json.dumps(times))
"""


def skull_mesh(python: str, work: Path) -> Path:
    """The convert skull and its JSON report, made once per cache."""
    folder = cache_dir() / "report-skull"
    target = folder / "skull.stl"
    if target.is_file() and target.with_suffix(".report.json").is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    child = run_child([python, "-m", "medprint", "convert", str(scan_path()), "-o", str(target), "--preset", "bone",
                       "--overwrite"], work / "skull_convert.log", child_env(REPO), REPO)
    if child.returncode != 0:
        raise SystemExit(f"cannot make the skull mesh: {child.log.strip().splitlines()[-1:]}")
    return target


def scan_path() -> Path:
    return data_root() / "invesalius_cranium_ct" / "cranium_ct.nii.gz"


def argv_of(case: str, skull: Path, work: Path) -> list[str]:
    scan = str(scan_path())
    return {
        "report": ["report", str(skull), "--source", scan, "-o", str(work / "skull.report.html"), "--overwrite"],
        "report-model": ["report", str(skull), "-o", str(work / "skull_model.report.html"), "--overwrite"],
        "convert": ["convert", scan, "-o", str(work / "convert.stl"), "--preset", "bone", "--overwrite"],
        "convert-html": ["convert", scan, "-o", str(work / "convert_html.stl"), "--preset", "bone", "--report",
                         "html", "--overwrite"],
    }[case]


def run_case(case: str, skull: Path, python: str, work: Path, repeat: int) -> Result:
    argv = argv_of(case, skull, work)
    result = Result(case, "medprint " + " ".join(argv))
    for index in range(repeat):
        child = run_child([python, "-m", "medprint", *argv], work / f"{case}.run{index}.log", child_env(REPO), REPO)
        result.exit_codes.append(child.returncode)
        if child.returncode != 0:
            lines = [line for line in child.log.strip().splitlines() if line.strip()]
            result.status, result.detail = "failed", f"exit {child.returncode}: {lines[-1] if lines else ''}"[:400]
            return result
        result.wall_s_all.append(round(child.wall_s, 3))
        result.peak_rss_mb_all.append(round(child.peak_rss_mb, 1))
        result.runs += 1
        result.summary = " | ".join(line for line in child.log.strip().splitlines()[:2])[:200]
    result.status = "ok"
    result.wall_s = round(statistics.median(result.wall_s_all), 3)
    result.peak_rss_mb = round(statistics.median(result.peak_rss_mb_all), 1)
    return result


def stages(skull: Path, python: str, work: Path) -> dict[str, Any]:
    child = run_child([python, "-c", STAGES_SCRIPT, str(skull), str(scan_path())], work / "stages.log",
                      child_env(REPO), REPO)
    if child.returncode != 0:
        return {"failed": child.log.strip().splitlines()[-1:]}
    return dict(json.loads(child.log.strip().splitlines()[-1]), wall_s=round(child.wall_s, 3))


def print_table(results: list[Result], triangles: int | None) -> None:
    header = ("case", "status", "wall s", "peak MB", "goal")
    rows = []
    for r in results:
        goal = "-"
        if r.case == "report" and r.wall_s is not None:
            goal = f"{'PASS' if r.wall_s < GOAL_S else 'FAIL'} (< {GOAL_S:g} s for {triangles or '?':,} triangles)"
        rows.append((r.case, r.status if r.status == "ok" else f"{r.status}: {r.detail}",
                     f"{r.wall_s:.2f}" if r.wall_s is not None else "-",
                     f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb is not None else "-", goal))
    print_aligned(header, rows)
    by_case = {r.case: r for r in results}
    if by_case.get("convert") and by_case.get("convert-html") and by_case["convert"].wall_s is not None \
            and by_case["convert-html"].wall_s is not None:
        extra = by_case["convert-html"].wall_s - by_case["convert"].wall_s
        print(f"--report html adds {extra:.2f} s to convert")
    print(WALL_NOTE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of: {','.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--python", default=sys.executable, help="interpreter with medprint's dependencies")
    parser.add_argument("--json-out", type=Path, help="where the JSON goes (default benchmarks/results-report-DATE)")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    if any(c not in CASES for c in chosen) or args.repeat < 1:
        parser.error(f"--cases takes {','.join(CASES)}; --repeat >= 1")
    if not scan_path().is_file():
        print(f"skipped: {scan_path()} not found (set MEDPRINT_DATA)")
        return 0
    work = cache_dir() / "report-runs"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = environment(REPO, args.python)
    print_banner("medprint report benchmark", REPO, env)
    skull = skull_mesh(args.python, work)
    triangles = json.loads(skull.with_suffix(".report.json").read_text())["mesh"]["triangles"]
    print(f"skull mesh: {skull} ({triangles:,} triangles)")
    results = []
    for name in chosen:
        print(f"[run] {name:<13} x{args.repeat} ...", end=" ", flush=True)
        result = run_case(name, skull, args.python, work, args.repeat)
        print(f"{result.status}: " + (f"{result.wall_s:.2f} s, {result.peak_rss_mb:.0f} MB"
                                      if result.status == "ok" else result.detail), flush=True)
        results.append(result)
    staged = stages(skull, args.python, work)
    print_table(results, triangles)
    print("stages in one process (s): " + ", ".join(f"{k} {v}" for k, v in staged.items()))
    html = work / "skull.report.html"
    out = args.json_out or HERE / f"results-report-{_dt.date.today().isoformat()}.json"
    payload = {"environment": env, "repeat": args.repeat, "skull_triangles": triangles,
               "goal": {"case": "report", "seconds": GOAL_S}, "results": [asdict(r) for r in results],
               "stages": staged, "page_bytes": html.stat().st_size if html.is_file() else None}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"JSON written to {out}")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
