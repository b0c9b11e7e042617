"""A real ``medprint batch`` process SIGKILLed at several moments: what it recorded is whole, its orders'
processes die with it, and the next run completes the batch; a run of a finished batch redoes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from batch_helpers import (
    alive,
    check_folders_whole,
    check_manifest_matches_folders,
    manifest_orders,
    medprint,
    processes_in,
    quick_orders,
    slice_batch,
    start_medprint,
)

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="the batch tests look at /proc (Linux)")


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def done_count(output_dir: Path) -> int:
    try:
        return sum(entry["status"] == "done" for entry in manifest_orders(output_dir).values())
    except (json.JSONDecodeError, OSError):  # pragma: no cover - the manifest is replaced whole; a torn read fails
        raise AssertionError("manifest.json was read half-written") from None


def test_a_batch_killed_at_any_moment_resumes_to_complete_results(tmp_path: Path) -> None:
    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 4))
    out = tmp_path / "out"
    staging = out / ".staging"
    orphans_checked = 0
    for finished in (0, 1, 2, 3):
        batch_process = start_medprint("batch", batch, "-o", out, "--workers", "2")
        try:
            if finished == 0:  # early: while the batch starts its first orders
                wait_until(lambda: bool(processes_in(staging)), 60, "a first order to start")
            else:
                wait_until(lambda: done_count(out) >= finished or batch_process.poll() is not None,  # noqa: B023
                           90, f"{finished} orders to finish")
            running = processes_in(staging)
        finally:
            batch_process.kill()
            batch_process.wait()
        assert batch_process.returncode == -9, "the batch ended before it could be killed"
        # The orders under way die with the batch (PR_SET_PDEATHSIG) at once; they do not write on alone.
        # (An order runs for seconds: without it, one of them would outlive this wait.)
        wait_until(lambda: not any(alive(pid) for pid in running), 1.5,  # noqa: B023
                   "the killed batch's orders to die with it")
        wait_until(lambda: not processes_in(staging), 10, "every order process to end")
        orphans_checked += bool(running)
        recorded = check_manifest_matches_folders(out)
        assert len(recorded) >= finished
        statuses = check_folders_whole(out)  # no OUTDIR/<name> is partial
        assert all(statuses[name] == "done" for name in recorded)
    assert orphans_checked >= 2

    resumed = medprint("batch", batch, "-o", out, "--json")
    assert resumed.returncode == 0, resumed.stderr
    counts = json.loads(resumed.stdout)["counts"]
    assert counts["failed"] == 0 and counts["unchanged"] >= 3 and counts["done"] + counts["unchanged"] == 4
    assert check_folders_whole(out) == {f"B-{i}": "done" for i in range(4)}
    assert check_manifest_matches_folders(out) == [f"B-{i}" for i in range(4)]
    assert list(staging.iterdir()) == []

    files = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = medprint("batch", batch, "-o", out, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"] == {"done": 0, "unchanged": 4, "failed": 0}
    assert {p: p.stat().st_mtime_ns for p in files} == files
