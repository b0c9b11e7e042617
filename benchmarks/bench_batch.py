#!/usr/bin/env python3
"""Benchmark ``medprint batch``: 20 mixed orders of the real cases on 1 and 2 workers, a Dask cluster, a resume.

A script a person runs (not a unit test)::

    /work/main/.venv/bin/python benchmarks/bench_batch.py                                  # 20 orders, all modes
    /work/main/.venv/bin/python benchmarks/bench_batch.py --orders 4 --skip-dask           # a quick check
    /work/main/.venv/bin/python benchmarks/bench_batch.py --cases bone,tumour --json-out r.json

The batch (written as TOML into the work folder, ``batch.toml``; inputs under ``$MEDPRINT_DATA``, default
``../shared/data``), orders taken in turn from these kinds, each kind cycling through its variants:

bone     ``convert`` of invesalius_cranium_ct/cranium_ct.nii.gz, CT bone presets
tumour   ``convert`` of pyradiomics_lung2_crop grown from one seed, the centroid of its tumour mask in LPS
         (computed once by a child process, cached); half of them also sliced (``gcode``, ``printer``,
         ``material``)
organs   ``convert`` of totalseg_torso_ct/example_ct.nii.gz with its TotalSegmentator labels (a few organs,
         one mesh each, a coloured 3MF; one also sliced)
aorta    ``convert`` of totalseg_aorta_cta/ct_cropped.nii.gz with the aorta label
hollow   ``design hollow`` of the aorta label (1.2-2 mm walls, 0.5 mm grid), as bench_design.py runs it
implant  ``design implant`` on the frontal defect (0.5 mm grid, three gaps), as bench_design.py runs it

Modes, each a fresh output folder but the last: ``medprint batch --workers 1``, ``--workers 2``, ``--scheduler``
on a local Dask cluster this script starts (``dask scheduler`` + two ``dask worker --nthreads 1`` processes) and
stops, then ``medprint batch`` again on the finished 2-worker folder (a resume: every order unchanged).

Every ``medprint batch`` is a child process timed by wall clock; its peak memory (``os.wait4`` ru_maxrss) is
that of the largest process of its tree (Linux counts reaped descendants).  Each order's own time and peak
memory come from its ``result.json`` (the batch takes them with ``os.wait4`` around the order's process);
the Dask workers' peaks from ``os.wait4`` when this script stops them.  The outputs of the three modes are
compared by their sha256 in each ``manifest.json`` (3MFs that differ, again without their objects' UUIDs, which
are new each run): the same orders should make the same files wherever they run.

Goals: speed-up (1 worker / 2 workers) >= 1.8 on this 2-CPU machine; a resume of the finished batch < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# One data folder and cache, one way of timing a child, for every benchmark.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import cache_dir, data_root
from bench_design import REPO, child_env, environment, print_banner, run_child

KINDS = ("bone", "tumour", "organs", "aorta", "hollow", "implant")
DEFAULT_ORDERS = 20
GOAL_SPEEDUP = 1.8
GOAL_RESUME_S = 2.0
DASK_WORKERS = 2
RESOLUTION_MM = 0.5
PROVENANCE = {"indication": "benchmark", "department": "3D printing lab"}


# ---------------------------------------------------------------------------------------------------------------
# The orders
# ---------------------------------------------------------------------------------------------------------------


def tumour_seed(checkout: Path, python: str, work: Path) -> list[float]:
    """The centroid of the lung tumour's mask, in LPS mm (a child computes it, so numpy stays out of this process)."""
    cached = cache_dir() / "lung2_tumour_seed.json"
    if cached.is_file():
        return [float(v) for v in json.loads(cached.read_text())]
    label = data_root() / "pyradiomics_lung2_crop" / "lung2_crop_label.nrrd"
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from medprint.io import load_volume\n"
        "mask = load_volume(sys.argv[1])\n"
        "z, y, x = np.argwhere(mask.array > 0).mean(axis=0)\n"
        "print(json.dumps([round(float(v), 2) for v in mask.geometry.index_to_lps([x, y, z])]))\n"
    )
    child = run_child([python, "-c", code, str(label)], work / "seed.log", child_env(checkout), checkout)
    if child.returncode != 0:
        raise SystemExit(f"cannot find the tumour seed: {child.log.strip().splitlines()[-1:]}")
    seed = json.loads(child.log.strip().splitlines()[-1])
    cached.write_text(json.dumps(seed))
    return [float(v) for v in seed]


def variants(seed: list[float]) -> dict[str, list[dict[str, Any]]]:
    """Per kind, the orders' keys (the CLI's long option names) for each variant, without ``id``."""
    data = data_root()
    cranium = data / "invesalius_cranium_ct"
    torso = data / "totalseg_torso_ct"
    aorta_cta = data / "totalseg_aorta_cta"
    aorta_mask = str(aorta_cta / "reference" / "masks" / "aorta.nii.gz")
    lung = str(data / "pyradiomics_lung2_crop" / "lung2_crop_image.nrrd")
    organs = {"command": "convert", "input": str(torso / "example_ct.nii.gz"),
              "labels": str(torso / "reference" / "example_seg_fast_force_split.nii.gz"),
              "labels-names": str(torso / "reference" / "class_map_total_and_total_mr.json") + "#total"}
    gcode = {"printer": "prusa-mk4", "material": "pla"}
    return {
        "bone": [
            {"command": "convert", "input": str(cranium / "cranium_ct.nii.gz"), "preset": preset,
             "output": "skull.stl", **extra}
            for preset, extra in (("bone", {}), ("bone", {"smooth": 10}), ("compact-bone", {}),
                                  ("bone", {"keep": "largest", "max-deviation": 0.3}))
        ],
        "tumour": [
            {"command": "convert", "input": lung, "seed": [seed], "output": "tumour.stl", **extra}
            for extra in ({"gcode": "tumour.gcode", **gcode}, {}, {"gcode": "tumour.gcode", **gcode,
                                                                  "material": "petg"}, {"smooth": 10})
        ],
        "organs": [
            {**organs, "label": ["liver", "spleen", "kidney_left", "kidney_right"], "output": "organs.stl",
             "3mf": "organs.3mf"},
            {**organs, "label": ["kidney_left"], "output": "kidney.stl", "gcode": "kidney.gcode", **gcode},
            {**organs, "label": ["aorta", "liver"], "output": "organs.stl", "3mf": "organs.3mf"},
        ],
        "aorta": [
            {"command": "convert", "input": str(aorta_cta / "ct_cropped.nii.gz"), "labels": aorta_mask,
             "keep": "largest", "output": "aorta.stl", **extra}
            for extra in ({}, {"smooth": 10}, {"max-deviation": 0.3})
        ],
        "hollow": [
            {"command": "design hollow", "input": aorta_mask, "wall": wall, "resolution": RESOLUTION_MM,
             "output": "aorta_hollow.stl"}
            for wall in (1.5, 2.0, 1.2)
        ],
        "implant": [
            {"command": "design implant", "input": str(cranium / "defect_frontal" / "frontal_defect_ct.nii.gz"),
             "gap": gap, "resolution": RESOLUTION_MM, "output": "implant.stl"}
            for gap in (0.5, 0.0, 1.0)
        ],
    }


def make_orders(kinds: list[str], count: int, seed: list[float]) -> list[dict[str, Any]]:
    """``count`` orders taking the kinds in turn (so any prefix is mixed), each kind cycling through its variants."""
    table = variants(seed)
    used = dict.fromkeys(kinds, 0)
    orders = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        keys = dict(table[kind][used[kind] % len(table[kind])])
        used[kind] += 1
        # Ids with spaces, as people write them: the batch makes them into safe folder names.
        order = {"id": f"2026-B{index + 1:02d} {kind}", **keys}
        if index % 3 == 0:
            order["provenance"] = dict(PROVENANCE)
        orders.append(order)
    return orders


def write_batch(orders: list[dict[str, Any]], path: Path) -> None:
    """The batch as TOML, as a person writes it: ``[defaults]``, then one ``[[order]]`` table per order."""
    lines = ["[defaults]", 'command = "convert"']
    for order in orders:
        lines += ["", "[[order]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in order.items()
                  if key != "provenance" and not (key == "command" and value == "convert")]
        if "provenance" in order:
            lines += ["[order.provenance]", *(f"{k} = {_toml_value(v)}" for k, v in order["provenance"].items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_value(value: Any) -> str:
    """A TOML value for the few types an order holds here (JSON's string escapes are TOML's)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def missing_inputs(orders: list[dict[str, Any]]) -> list[str]:
    paths = {str(order[key]).split("#")[0] for order in orders for key in ("input", "labels", "labels-names")
             if key in order}
    return sorted(p for p in paths if not Path(p).exists())


# ---------------------------------------------------------------------------------------------------------------
# Running a batch, a Dask cluster
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    command: str
    status: str = "not run"  # ok | failed
    detail: str = ""
    exit_code: int | None = None
    wall_s: float | None = None
    batch_tree_peak_mb: float | None = None  # the largest process of `medprint batch`'s tree (os.wait4)
    counts: dict[str, int] = field(default_factory=dict)
    order_seconds_sum: float | None = None  # the work done, one order after another
    order_peak_mb_max: float | None = None
    order_peak_mb_median: float | None = None
    hosts: list[str] = field(default_factory=list)
    failed_orders: list[str] = field(default_factory=list)
    worker_peak_mb: list[float | None] = field(default_factory=list)  # Dask: each worker process tree (os.wait4)
    cluster_start_s: float | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)  # per order: id, status, seconds, peak MB


def run_batch_child(mode: str, batch: Path, out: Path, options: list[str], checkout: Path, python: str,
                    work: Path) -> ModeResult:
    argv = [python, "-m", "medprint", "-q", "batch", str(batch), "-o", str(out), *options, "--json"]
    result = ModeResult(mode, " ".join(argv[1:]))
    child = run_child(argv, work / f"{mode.replace(' ', '-')}.log", child_env(checkout), checkout)
    result.exit_code, result.wall_s = child.returncode, round(child.wall_s, 3)
    result.batch_tree_peak_mb = round(child.peak_rss_mb, 1)
    summary = _json_in(child.log)
    if summary is None:
        lines = [line for line in child.log.strip().splitlines() if line.strip()]
        result.status, result.detail = "failed", f"exit {child.returncode}: {lines[-1] if lines else ''}"[:400]
        return result
    result.counts = dict(summary.get("counts", {}))
    read_order_results(result, summary, out)
    result.status = "ok" if child.returncode == 0 else "failed"
    if result.failed_orders:
        result.detail = "; ".join(result.failed_orders)[:400]
    return result


def _json_in(log: str) -> dict[str, Any] | None:
    """The batch's --json summary: the log holds it alone when the run worked (-q keeps status lines off)."""
    start = log.find("{")
    try:
        data = json.loads(log[start:]) if start >= 0 else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_order_results(result: ModeResult, summary: dict[str, Any], out: Path) -> None:
    """Per order: status from the summary, time, peak memory and host from its folder's result.json."""
    peaks, seconds, hosts = [], [], set()
    for entry in summary.get("orders", []):
        record = {"id": entry.get("order_id"), "status": entry.get("status"), "seconds": entry.get("seconds"),
                  "peak_memory_mb": entry.get("peak_memory_mb")}
        if entry.get("status") == "failed":
            result.failed_orders.append(f"{entry.get('order_id')}: {entry.get('error')}")
        result_file = out / str(entry.get("folder", "")) / "result.json"
        if entry.get("status") == "done" and result_file.is_file():
            facts = json.loads(result_file.read_text(encoding="utf-8"))
            record.update(seconds=facts.get("seconds"), peak_memory_mb=facts.get("peak_memory_mb"),
                          host=facts.get("host"))
            hosts.add(str(facts.get("host")))
            if facts.get("peak_memory_mb") is not None:
                peaks.append(float(facts["peak_memory_mb"]))
            if facts.get("seconds") is not None:
                seconds.append(float(facts["seconds"]))
        result.orders.append(record)
    result.hosts = sorted(hosts)
    if seconds:
        result.order_seconds_sum = round(sum(seconds), 2)
    if peaks:
        result.order_peak_mb_max = round(max(peaks), 1)
        result.order_peak_mb_median = round(statistics.median(peaks), 1)


def output_digests(out: Path) -> dict[str, dict[str, str]]:
    """Per order id, sha256 by output name from the batch's manifest (reports left out: they hold timings)."""
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {order_id: {name: facts.get("sha256", "") for name, facts in entry.get("outputs", {}).items()
                       if not name.endswith(".json")}
            for order_id, entry in manifest.get("orders", {}).items() if entry.get("status") == "done"}


def outputs_differing(reference: Path, other: Path) -> list[str]:
    """Outputs (``order id/name``) whose bytes differ between two batch folders of the same orders.

    A 3MF gives every object a fresh UUID each run, so 3MFs that differ are compared again without them.
    """
    mine, theirs = output_digests(reference), output_digests(other)
    folders = {**_folders(reference), **_folders(other)}
    differing = []
    for order_id, files in mine.items():
        for name, digest in files.items():
            if order_id not in theirs or theirs[order_id].get(name) == digest:
                continue
            folder = folders.get(order_id, "")
            if name.endswith(".3mf") and _same_3mf(reference / folder / name, other / folder / name):
                continue
            differing.append(f"{order_id}/{name}")
    return sorted(differing)


def _folders(out: Path) -> dict[str, str]:
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {order_id: str(entry.get("folder", "")) for order_id, entry in manifest.get("orders", {}).items()}


def _same_3mf(first: Path, second: Path) -> bool:
    def members(path: Path) -> dict[str, bytes]:
        with zipfile.ZipFile(path) as archive:
            return {name: _UUID.sub(b"", archive.read(name)) for name in sorted(archive.namelist())}

    try:
        return members(first) == members(second)
    except (OSError, zipfile.BadZipFile):
        return False


_UUID = re.compile(rb'\s[\w:]*UUID="[^"]*"')


class DaskCluster:
    """A scheduler and ``workers`` worker processes (one thread each) on this machine, started and stopped here.

    Each runs in a session of its own, so stopping it (SIGTERM, then SIGKILL of that group after a grace time)
    reaches its nanny's worker process and nothing else.
    """

    def __init__(self, python: str, checkout: Path, work: Path, workers: int) -> None:
        self.python, self.checkout, self.work, self.workers = python, checkout, work, workers
        self.scheduler_file = work / "dask-scheduler.json"
        self.address = ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.peaks_mb: dict[str, float | None] = {}

    def _dask(self) -> list[str]:
        script = Path(self.python).parent / "dask"
        return [str(script)] if script.is_file() else [self.python, "-m", "dask"]

    def _start(self, name: str, argv: list[str]) -> None:
        log = open(self.work / f"dask-{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=child_env(self.checkout), cwd=self.checkout, start_new_session=True)
        log.close()

    def start(self, timeout_s: float = 90.0) -> float:
        clock = time.perf_counter()
        self.scheduler_file.unlink(missing_ok=True)
        self._start("scheduler", [*self._dask(), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(self.scheduler_file)])
        deadline = time.monotonic() + timeout_s
        while not self.address:
            if time.monotonic() > deadline or self.procs["scheduler"].poll() is not None:
                raise RuntimeError(f"the Dask scheduler did not start (see {self.work / 'dask-scheduler.log'})")
            try:
                self.address = json.loads(self.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.2)
        for index in range(1, self.workers + 1):
            self._start(f"worker{index}", [*self._dask(), "worker", self.address, "--nthreads", "1",
                                           "--name", f"bench-worker-{index}", "--no-dashboard",
                                           "--local-directory", str(self.work / f"dask-worker{index}")])
        wait = ("import sys; from distributed import Client; c = Client(sys.argv[1], timeout=30); "
                "c.wait_for_workers(int(sys.argv[2]), timeout=float(sys.argv[3])); c.close()")
        child = run_child([self.python, "-c", wait, self.address, str(self.workers), str(timeout_s)],
                          self.work / "dask-wait.log", child_env(self.checkout), self.checkout)
        if child.returncode != 0:
            raise RuntimeError(f"the Dask workers did not join (see {self.work / 'dask-wait.log'})")
        return time.perf_counter() - clock

    def stop(self, grace_s: float = 30.0) -> None:
        # Workers first, so none is left looking for a scheduler.
        for name in sorted(self.procs, key=lambda n: n == "scheduler"):
            proc = self.procs[name]
            if proc.returncode is None:  # not poll(): it would reap the process and lose its resource usage
                proc.send_signal(signal.SIGTERM)
            self.peaks_mb[name] = self._reap(proc, grace_s)
        self.procs.clear()

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes], grace_s: float) -> float | None:
        """Wait for ``proc`` (killing its process group after ``grace_s``); its tree's peak RSS in MB."""
        deadline = time.monotonic() + grace_s
        while True:
            try:
                pid, _, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:  # already reaped (it exited during start-up): no usage left to read
                return None
            if pid:
                rss_kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
                return round(rss_kib / 1024.0, 1)
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this script gave it, nothing else
                deadline = time.monotonic() + grace_s
            time.sleep(0.1)


def run_dask(batch: Path, out: Path, checkout: Path, python: str, work: Path) -> ModeResult:
    cluster = DaskCluster(python, checkout, work, DASK_WORKERS)
    try:
        started = cluster.start()
    except RuntimeError as error:
        cluster.stop(5.0)
        return ModeResult(f"dask {DASK_WORKERS}", "medprint batch --scheduler", "failed", str(error))
    try:
        result = run_batch_child(f"dask {DASK_WORKERS}", batch, out, ["--scheduler", cluster.address], checkout,
                                 python, work)
    finally:
        cluster.stop()
    result.cluster_start_s = round(started, 2)
    result.worker_peak_mb = [cluster.peaks_mb[name] for name in sorted(cluster.peaks_mb) if name != "scheduler"]
    return result


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def ratios(results: dict[str, ModeResult]) -> dict[str, float | None]:
    def speedup(mode: str) -> float | None:
        one, other = results.get("1 worker"), results.get(mode)
        if not one or not other or one.status != "ok" or other.status != "ok" or not other.wall_s:
            return None
        return round((one.wall_s or 0.0) / other.wall_s, 3)

    return {"speedup_2_workers": speedup("2 workers"), f"speedup_dask_{DASK_WORKERS}": speedup(f"dask {DASK_WORKERS}")}


def goals(results: dict[str, ModeResult], speedups: dict[str, float | None]) -> dict[str, Any]:
    resume = results.get("resume")
    resumed_all = bool(resume and resume.status == "ok"
                       and resume.counts.get("unchanged") == sum(resume.counts.values()))
    return {
        "speedup_2_workers": {"goal": f">= {GOAL_SPEEDUP}", "value": speedups["speedup_2_workers"],
                              "pass": speedups["speedup_2_workers"] is not None
                              and speedups["speedup_2_workers"] >= GOAL_SPEEDUP},
        "resume_s": {"goal": f"< {GOAL_RESUME_S}", "value": resume.wall_s if resume else None,
                     "every_order_unchanged": resumed_all,
                     "pass": resumed_all and resume is not None and (resume.wall_s or 1e9) < GOAL_RESUME_S},
    }


def start_up_s(checkout: Path, python: str, work: Path) -> float:
    """The wall time of ``medprint batch --help`` (best of 3): the imports a resume cannot go below."""
    times = [run_child([python, "-m", "medprint", "batch", "--help"], work / "start-up.log", child_env(checkout),
                       checkout).wall_s for _ in range(3)]
    return round(min(times), 3)


def print_table(results: list[ModeResult], speedups: dict[str, float | None], checks: dict[str, Any]) -> None:
    header = ("mode", "status", "wall s", "orders (done/unch/failed)", "order s sum", "order peak MB max/median",
              "tree peak MB", "worker peak MB")
    rows = []
    for r in results:
        counts = "/".join(str(r.counts.get(k, 0)) for k in ("done", "unchanged", "failed")) if r.counts else "-"
        rows.append((r.mode, r.status, f"{r.wall_s:.2f}" if r.wall_s is not None else "-", counts,
                     f"{r.order_seconds_sum:.1f}" if r.order_seconds_sum is not None else "-",
                     f"{r.order_peak_mb_max:.0f}/{r.order_peak_mb_median:.0f}" if r.order_peak_mb_max else "-",
                     f"{r.batch_tree_peak_mb:.0f}" if r.batch_tree_peak_mb else "-",
                     ", ".join(f"{p:.0f}" if p is not None else "?" for p in r.worker_peak_mb) or "-"))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print()
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    for r in results:
        if r.detail:
            print(f"  {r.mode}: {r.detail}")
    for name, value in speedups.items():
        print(f"{name.replace('_', ' ')}: {value if value is not None else '-'}")
    for name, goal in checks.items():
        verdict = "PASS" if goal["pass"] else "FAIL"
        print(f"goal {name} {goal['goal']}: {goal['value']} -> {verdict}")
    print("wall s: `medprint batch` start to exit; order s sum: the orders' own times added up (the work one "
          "worker does in turn); tree peak MB: the largest process of the batch's tree; worker peak MB: each Dask "
          "worker's tree, orders included")


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(KINDS), help=f"comma list of the kinds: {','.join(KINDS)}")
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS, help="orders in the batch (default 20)")
    parser.add_argument("--skip-dask", action="store_true", help="leave out the Dask cluster run")
    parser.add_argument("--checkout", type=Path, default=REPO, help="the medprint checkout to run (default: this)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with medprint's dependencies")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--work-dir", type=Path, help="where the batch and its outputs go (default: CACHE/batch-runs)")
    args = parser.parse_args(argv)
    kinds = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in kinds if c not in KINDS]
    if unknown or not kinds or args.orders < 1:
        parser.error(f"--cases takes {','.join(KINDS)}; --orders >= 1")
    checkout = args.checkout.resolve()
    if not (checkout / "medprint" / "commands" / "batch.py").is_file():
        raise SystemExit(f"{checkout} has no `medprint batch` (medprint/commands/batch.py); nothing to measure")
    work = (args.work_dir or cache_dir() / "batch-runs").resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = environment(checkout, args.python)
    print_banner("medprint batch benchmark", checkout, env)
    seed = tumour_seed(checkout, args.python, work) if "tumour" in kinds else [0.0, 0.0, 0.0]
    orders = make_orders(kinds, args.orders, seed)
    missing = missing_inputs(orders)
    if missing:
        raise SystemExit(f"input missing (MEDPRINT_DATA={data_root()}): {', '.join(missing)}")
    batch = work / "batch.toml"
    write_batch(orders, batch)
    print(f"{len(orders)} orders ({', '.join(kinds)}; tumour seed {seed} LPS mm) in {batch}")

    startup = start_up_s(checkout, args.python, work)
    print(f"start-up floor of a batch (`medprint batch --help`, best of 3): {startup:.2f} s")
    results: dict[str, ModeResult] = {}
    modes: list[tuple[str, Any]] = [
        ("1 worker", lambda: run_batch_child("1 worker", batch, work / "w1", ["--workers", "1"], checkout,
                                             args.python, work)),
        ("2 workers", lambda: run_batch_child("2 workers", batch, work / "w2", ["--workers", "2"], checkout,
                                              args.python, work)),
    ]
    if not args.skip_dask:
        modes.append((f"dask {DASK_WORKERS}", lambda: run_dask(batch, work / "dask", checkout, args.python, work)))
    modes.append(("resume", lambda: run_batch_child("resume", batch, work / "w2", ["--workers", "2"], checkout,
                                                    args.python, work)))
    for name, run in modes:
        print(f"[run] {name:<9} ...", end=" ", flush=True)
        result = run()
        results[name] = result
        print(f"{result.status}: " + (f"{result.wall_s:.2f} s {result.counts}" if result.wall_s is not None
                                      else result.detail), flush=True)

    differing = {mode: outputs_differing(work / "w1", work / folder)
                 for mode, folder in (("2 workers", "w2"), (f"dask {DASK_WORKERS}", "dask")) if mode in results}
    speedups = ratios(results)
    checks = goals(results, speedups)
    print_table(list(results.values()), speedups, checks)
    for mode, names in differing.items():
        print(f"outputs of {mode} vs 1 worker: " + (f"{len(names)} differ: {', '.join(names[:5])}" if names
                                                     else "identical (sha256)"))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "orders": len(orders), "kinds": kinds, "tumour_seed_lps_mm": seed,
                   "batch_file": str(batch), "results": [asdict(r) for r in results.values()],
                   "speedups": speedups, "goals": checks, "start_up_s": startup, "outputs_differing_from_1_worker": differing}
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"JSON written to {args.json_out}")
    return 0 if all(r.status == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
