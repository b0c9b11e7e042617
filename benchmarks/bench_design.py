#!/usr/bin/env python3
"""Benchmark the design commands (issue 10) and ``medprint check`` on the real cases, at 0.5 mm working grids.

A script a person runs (not a unit test)::

    /work/main/.venv/bin/python benchmarks/bench_design.py                         # every case, repeat 1
    /work/main/.venv/bin/python benchmarks/bench_design.py --cases implant,hollow --repeat 3 --json-out r.json
    /work/main/.venv/bin/python benchmarks/bench_design.py --checkout /work/main   # another checkout's medprint

Cases (inputs under ``$MEDPRINT_DATA``, default ``../shared/data``)
-------------------------------------------------------------------
implant   ``medprint design implant`` on invesalius_cranium_ct/defect_frontal/frontal_defect_ct.nii.gz
hollow    ``medprint design hollow`` of the aorta label (totalseg_aorta_cta/reference/masks/aorta.nii.gz), 1.5 mm wall
orthosis  ``medprint design orthosis`` over the skin of invesalius_cranium_ct/cranium_ct.nii.gz: a helmet from 60 mm
          up the head's axis, open over the face, 2 mm gap, 3 mm shell, 10 mm holes every 28 mm
label     ``medprint design label`` of "ORD-1042 R" on the skull mesh (made once by ``medprint convert``)
check     ``medprint check`` of that skull mesh against PLA's minimum wall

Every command runs as its own child process (``python -m medprint ...``) with the chosen checkout first on
PYTHONPATH; its wall time is taken here and its peak resident memory from ``os.wait4`` (the kernel's
ru_maxrss of that child; this script imports nothing heavy, so the floor is a bare interpreter).  A design
command whose module (``medprint/commands/design_<kind>.py``) is missing from the checkout is skipped, and
said so; one that fails is reported with its last error line.  ``check`` exits 2 on a mesh that is not
printable (a real skull has walls thinner than 0.8 mm), which counts as a successful run.

Goals (issue 10): the implant and the hollow aorta each under 10 s and under 2 GB on this machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import cache_dir, data_root  # noqa: E402  (one data folder and cache for every benchmark)
ALL_CASES = ("implant", "hollow", "orthosis", "label", "check")
RESOLUTION_MM = "0.5"
#: Goals from the issue: (seconds, MB) for the cases that have one.
GOALS = {"implant": (10.0, 2048.0), "hollow": (10.0, 2048.0)}


@dataclass
class Case:
    name: str
    module: str | None  # medprint/commands/<module>.py the command needs
    argv: list[str]  # after `python -m medprint`; {out} is the output folder
    inputs: list[Path]
    ok_codes: tuple[int, ...] = (0,)


def cases(skull_mesh: Path) -> dict[str, Case]:
    data = data_root()
    cranium = data / "invesalius_cranium_ct"
    aorta = data / "totalseg_aorta_cta" / "reference" / "masks" / "aorta.nii.gz"
    defect = cranium / "defect_frontal" / "frontal_defect_ct.nii.gz"
    return {
        "implant": Case("implant", "design_implant",
                        ["design", "implant", str(defect), "-o", "{out}/implant.stl", "--resolution", RESOLUTION_MM,
                         "--overwrite"], [defect]),
        "hollow": Case("hollow", "design_hollow",
                       ["design", "hollow", str(aorta), "-o", "{out}/aorta_hollow.stl", "--wall", "1.5",
                        "--resolution", RESOLUTION_MM, "--overwrite"], [aorta]),
        "orthosis": Case("orthosis", "design_orthosis",
                         ["design", "orthosis", str(cranium / "cranium_ct.nii.gz"), "-o", "{out}/helmet.stl",
                          "--gap", "2", "--thickness", "3", "--axis", "0,0,1", "--from", "60", "--to", "end",
                          "--keep-angle", "240:120", "--holes", "10:28", "--hole-margin", "5",
                          "--resolution", RESOLUTION_MM, "--overwrite"],
                         [cranium / "cranium_ct.nii.gz"]),
        "label": Case("label", "design_label",
                      ["design", "label", str(skull_mesh), "--text", "ORD-1042 R", "-o", "{out}/skull_label.stl",
                       "--overwrite"], [skull_mesh]),
        "check": Case("check", "check",
                      ["check", str(skull_mesh), "--material", "pla", "--resolution", RESOLUTION_MM, "--json"],
                      [skull_mesh], ok_codes=(0, 2)),
    }


@dataclass
class ChildRun:
    returncode: int
    wall_s: float
    peak_rss_mb: float
    log: str


def run_child(cmd: list[str], log_path: Path, env: dict[str, str], cwd: Path) -> ChildRun:
    """Run ``cmd`` in ``cwd``; wall time and the child's own peak RSS (os.wait4 -> ru_maxrss, KiB on Linux).

    ``python -m`` puts the working folder first on sys.path, so children run in the checkout measured.
    """
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    rss_kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return ChildRun(os.waitstatus_to_exitcode(status), wall, rss_kib / 1024.0, log_path.read_text(errors="replace"))


@dataclass
class Result:
    case: str
    command: str
    status: str = "not run"  # ok | failed | skipped
    detail: str = ""
    runs: int = 0
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    wall_s_all: list[float] = field(default_factory=list)
    peak_rss_mb_all: list[float] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    summary: str = ""


def child_env(checkout: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), *filter(None, [env.get("PYTHONPATH")])])
    return env


def has_module(checkout: Path, module: str | None) -> bool:
    return module is None or (checkout / "medprint" / "commands" / f"{module}.py").is_file()


def make_skull_mesh(checkout: Path, python: str, work: Path) -> tuple[Path, str]:
    """The skull of the real head CT as ``convert`` makes it (once per cache)."""
    target = cache_dir() / "skull_for_design.stl"
    if target.is_file():
        return target, "cached"
    scan = data_root() / "invesalius_cranium_ct" / "cranium_ct.nii.gz"
    child = run_child([python, "-m", "medprint", "convert", str(scan), "-o", str(target), "--no-report"],
                      work / "skull_convert.log", child_env(checkout), checkout)
    if child.returncode != 0:
        raise SystemExit(f"cannot make the skull mesh: {child.log.strip().splitlines()[-1:]}")
    return target, f"made by convert in {child.wall_s:.1f} s"


def run_case(case: Case, checkout: Path, python: str, work: Path, repeat: int) -> Result:
    argv = [a.replace("{out}", str(work)) for a in case.argv]
    result = Result(case.name, "medprint " + " ".join(argv))
    if not has_module(checkout, case.module):
        result.status, result.detail = "skipped", f"medprint/commands/{case.module}.py is not in {checkout}"
        return result
    missing = [str(p) for p in case.inputs if not p.exists()]
    if missing:
        result.status, result.detail = "skipped", f"input missing: {', '.join(missing)}"
        return result
    for index in range(repeat):
        child = run_child([python, "-m", "medprint", *argv], work / f"{case.name}.run{index}.log",
                          child_env(checkout), checkout)
        result.exit_codes.append(child.returncode)
        if child.returncode not in case.ok_codes:
            lines = [line for line in child.log.strip().splitlines() if line.strip()]
            result.status, result.detail = "failed", f"exit {child.returncode}: {lines[-1] if lines else ''}"[:400]
            return result
        result.wall_s_all.append(round(child.wall_s, 3))
        result.peak_rss_mb_all.append(round(child.peak_rss_mb, 1))
        result.runs += 1
        result.summary = _summary(case.name, child.log)
    result.status = "ok"
    result.wall_s = round(statistics.median(result.wall_s_all), 3)
    result.peak_rss_mb = round(statistics.median(result.peak_rss_mb_all), 1)
    return result


def _summary(name: str, log: str) -> str:
    """A short fact line from the command's output (check: its JSON; design: its summary line)."""
    if name == "check":
        try:
            facts = json.loads(log[log.index("{"):])
        except ValueError:
            return ""
        walls = facts.get("walls") or {}
        return (f"printable={facts.get('printable')} min_wall={walls.get('min_wall_mm')} mm "
                f"thin_regions={facts.get('thin_regions_count')} measured={walls.get('surface_measured_fraction')}")
    lines = [line for line in log.splitlines() if line.strip() and not line.startswith("medprint: WARNING")]
    return lines[0][:160] if lines else ""


def environment(checkout: Path, python: str) -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "checkout": str(checkout),
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted": [line[3:] for line in git("status", "--porcelain", "--", "medprint").splitlines()],
        "python": python,
        "python_version": platform.python_version(),
        "host_cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
    }


def print_banner(title: str, checkout: Path, env: dict[str, Any]) -> None:
    """The run's first lines: what was measured where, and a warning when other work loads the machine."""
    print(f"{title}  {env['date']}  checkout {checkout} @ {env['commit']}"
          f"{' + uncommitted changes' if env['uncommitted'] else ''}  cpus={env['host_cpus']}  "
          f"load {env['load_average_1min']}")
    if env["load_average_1min"] > 0.5 * (os.cpu_count() or 1):
        print(f"[warn] load average {env['load_average_1min']} on {os.cpu_count()} cpus: other work is running, "
              "timings will be inflated")


#: What the wall and peak-memory columns of the child-process benchmarks measure.
WALL_NOTE = ("wall s: child process start to exit, median of the runs (imports included); peak MB: the child's "
             "ru_maxrss")


def print_aligned(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Rows in columns as wide as their widest cell; the last column, free text, is not padded."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header) - 1)]
    print()
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + str(row[-1]))


def print_table(results: list[Result]) -> None:
    header = ("case", "status", "wall s", "peak MB", "goal", "facts / why")
    rows = []
    for r in results:
        goal = ""
        if r.case in GOALS and r.status == "ok" and r.wall_s is not None and r.peak_rss_mb is not None:
            seconds, megabytes = GOALS[r.case]
            passed = r.wall_s < seconds and r.peak_rss_mb < megabytes
            goal = f"{'PASS' if passed else 'FAIL'} (<{seconds:g} s, <{megabytes / 1024:g} GB)"
        rows.append((r.case, r.status, f"{r.wall_s:.2f}" if r.wall_s is not None else "-",
                     f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb is not None else "-", goal or "-",
                     r.summary if r.status == "ok" else r.detail))
    print_aligned(header, rows)
    print(WALL_NOTE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma list of: {','.join(ALL_CASES)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the median is reported")
    parser.add_argument("--checkout", type=Path, default=REPO, help="the medprint checkout to run (default: this)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with medprint's dependencies")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--work-dir", type=Path, help="where outputs and logs go (default: CACHE/design-runs)")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in ALL_CASES]
    if unknown or args.repeat < 1:
        parser.error(f"--cases takes {','.join(ALL_CASES)}; --repeat >= 1")
    checkout = args.checkout.resolve()
    work = args.work_dir or cache_dir() / "design-runs"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = environment(checkout, args.python)
    print_banner("medprint design benchmark", checkout, env)
    skull, how = make_skull_mesh(checkout, args.python, work) if {"label", "check"} & set(chosen) else (Path(), "")
    if how:
        print(f"skull mesh: {skull} ({how})")
    table = cases(skull)
    results = []
    for name in chosen:
        case = table[name]
        print(f"[run] {name:<8} x{args.repeat} ...", end=" ", flush=True)
        result = run_case(case, checkout, args.python, work, args.repeat)
        print(f"{result.status}: " + (f"{result.wall_s:.2f} s, {result.peak_rss_mb:.0f} MB"
                                      if result.status == "ok" else result.detail), flush=True)
        results.append(result)
    print_table(results)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "resolution_mm": float(RESOLUTION_MM), "repeat": args.repeat,
                   "goals": {k: {"seconds": s, "megabytes": m} for k, (s, m) in GOALS.items()},
                   "results": [asdict(r) for r in results]}
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"JSON written to {args.json_out}")
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
