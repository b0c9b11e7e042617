"""``medprint batch --scheduler``: the same orders on a real Dask cluster (scheduler and workers as processes on
127.0.0.1), with workers and the scheduler killed mid-batch."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from batch_helpers import (
    alive,
    check_folders_whole,
    check_manifest_matches_folders,
    manifest_orders,
    medprint,
    order_processes,
    parent_pid,
    quick_orders,
    slice_batch,
    start_medprint,
)
from cluster_helpers import Cluster, free_port

pytest.importorskip("distributed")
pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="the batch tests look at /proc (Linux)")


def _wait(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _worker_pids(output_dir: Path) -> dict[str, int]:
    return {folder.name: json.loads((folder / "result.json").read_text())["worker_pid"]
            for folder in output_dir.iterdir() if (folder / "result.json").is_file()}


def test_a_batch_runs_on_two_workers(tmp_path: Path, cluster: Cluster) -> None:
    address, _ = cluster.scheduler()
    workers = [cluster.worker(address, "w1"), cluster.worker(address, "w2")]
    cluster.wait_for_workers(address, 2)
    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 3))
    out = tmp_path / "out"
    run = medprint("batch", batch, "-o", out, "--scheduler", address, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["counts"] == {"done": 3, "unchanged": 0, "failed": 0}
    assert check_folders_whole(out) == {"B-0": "done", "B-1": "done", "B-2": "done"}
    assert check_manifest_matches_folders(out) == ["B-0", "B-1", "B-2"]
    assert set(_worker_pids(out).values()) <= {w.pid for w in workers}  # run by the workers, not the client
    again = medprint("batch", batch, "-o", out, "--scheduler", address, "--json")
    assert json.loads(again.stdout)["counts"] == {"done": 0, "unchanged": 3, "failed": 0}


def test_an_order_whose_worker_is_killed_is_done_by_the_other(tmp_path: Path, cluster: Cluster) -> None:
    address, _ = cluster.scheduler()
    workers = {w.pid: w for w in (cluster.worker(address, "w1"), cluster.worker(address, "w2"))}
    cluster.wait_for_workers(address, 2)
    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 1))
    out = tmp_path / "out"
    batch_process = start_medprint("batch", batch, "-o", out, "--scheduler", address, "--json")
    try:
        _wait(lambda: bool(order_processes(out / ".staging")) or batch_process.poll() is not None, 60,
              "the order to start on a worker")
        assert batch_process.poll() is None, batch_process.communicate()
        (order_pid, _), = order_processes(out / ".staging").items()
        victim = parent_pid(order_pid)
        assert victim in workers
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: not alive(order_pid), 1.5, "the order's process to die with its worker")
        stdout, stderr = batch_process.communicate(timeout=90)
    finally:
        batch_process.kill()
    assert batch_process.returncode == 0, stderr
    assert json.loads(stdout)["counts"]["done"] == 1
    assert check_folders_whole(out) == {"B-0": "done"}
    survivor = next(pid for pid in workers if pid != victim)
    assert _worker_pids(out) == {"B-0": survivor}


def test_a_worker_that_stops_answering_is_dropped_and_its_order_done_by_the_other(tmp_path: Path,
                                                                                   cluster: Cluster) -> None:
    # A hung worker (SIGSTOP: no heartbeats, its connection still open) is only noticed through the worker TTL.
    address, _ = cluster.scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "3s"})
    workers = {w.pid: w for w in (cluster.worker(address, "w1"), cluster.worker(address, "w2"))}
    cluster.wait_for_workers(address, 2)
    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 2))
    out = tmp_path / "out"
    batch_process = start_medprint("batch", batch, "-o", out, "--scheduler", address, "--json")
    hung = None
    try:
        _wait(lambda: bool(order_processes(out / ".staging")) or batch_process.poll() is not None, 60,
              "an order to start on a worker")
        assert batch_process.poll() is None, batch_process.communicate()
        order_pid, staging_name = next(iter(order_processes(out / ".staging").items()))
        hung = parent_pid(order_pid)
        assert hung in workers
        os.kill(hung, signal.SIGSTOP)
        stdout, stderr = batch_process.communicate(timeout=40)
    finally:
        batch_process.kill()
        if hung is not None:
            os.kill(hung, signal.SIGCONT)  # the fixture then kills it
    assert batch_process.returncode == 0, stderr
    assert json.loads(stdout)["counts"] == {"done": 2, "unchanged": 0, "failed": 0}
    assert check_folders_whole(out) == {"B-0": "done", "B-1": "done"}
    survivor = next(pid for pid in workers if pid != hung)
    slow_order = staging_name.rsplit("-", 1)[0]  # staging folders are <folder>-<nonce>
    assert _worker_pids(out)[slow_order] == survivor


def test_a_lost_scheduler_ends_the_batch_and_a_new_cluster_resumes_it(tmp_path: Path, cluster: Cluster) -> None:
    address, scheduler = cluster.scheduler()
    worker = cluster.worker(address, "w1")
    cluster.wait_for_workers(address, 1)
    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 3))
    out = tmp_path / "out"
    batch_process = start_medprint("batch", batch, "-o", out, "--scheduler", address)
    try:
        _wait(lambda: any(e["status"] == "done" for e in manifest_orders(out).values())
              or batch_process.poll() is not None, 90, "a finished order")
        assert batch_process.poll() is None, batch_process.communicate()
        scheduler.kill()
        _, stderr = batch_process.communicate(timeout=60)
    finally:
        batch_process.kill()
    assert batch_process.returncode == 1
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]  # status lines
    assert len(lines) == 1 and "scheduler" in lines[0], stderr
    finished = check_manifest_matches_folders(out)
    assert finished
    worker.kill()
    worker.wait()

    new_address, _ = cluster.scheduler("scheduler2")
    cluster.worker(new_address, "w2")
    resumed = medprint("batch", batch, "-o", out, "--scheduler", new_address, "--json")
    assert resumed.returncode == 0, resumed.stderr
    results = {order["order_id"]: order["status"] for order in json.loads(resumed.stdout)["orders"]}
    assert all(results[order_id] == "unchanged" for order_id in finished)
    assert sorted(results.values()).count("done") == 3 - len(finished)
    assert check_folders_whole(out) == {"B-0": "done", "B-1": "done", "B-2": "done"}


def test_an_unreachable_scheduler_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 1))
    run = medprint("batch", batch, "-o", tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{free_port()}")
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1 and "no Dask scheduler answers" in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()
