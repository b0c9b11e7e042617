"""``medprint batch`` and ``run_batch`` on this machine: real orders (slice jobs of small boxes) in real
subprocesses; good and bad orders together, resume rules, and the CLI's exit codes and lines."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from batch_helpers import (
    box_stl,
    check_folders_whole,
    check_manifest_matches_folders,
    manifest_orders,
    medprint,
    quick_orders,
    sha256,
    slice_batch,
)

from medprint.batch import BatchEvent, run_batch
from medprint.cli import main
from medprint.jobs.orders import load_batch, load_order

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="the batch tests look at /proc (Linux)")


def test_failing_orders_do_not_stop_the_others_and_say_why(tmp_path: Path) -> None:
    box_stl(tmp_path / "box.stl")
    (tmp_path / "broken.stl").write_bytes(b"garbage")
    box_stl(tmp_path / "wide.stl", (300.0, 20.0, 4.0))
    batch = slice_batch(tmp_path / "batch.toml", [
        {"id": "A-1", "input": "box.stl", "output": "box.gcode"},
        {"id": "A-2 broken", "input": "broken.stl", "output": "broken.gcode"},
        {"id": "A-3", "input": "wide.stl", "output": "wide.gcode"},
        {"id": "A-4", "input": "box.stl", "output": "thick.gcode", "layer-height": 0.3},
    ])
    out = tmp_path / "out"
    run = medprint("batch", batch, "-o", out, "--workers", "2", "--json")
    assert run.returncode == 3, run.stderr
    summary = json.loads(run.stdout)
    by_id = {order["order_id"]: order for order in summary["orders"]}
    assert summary["counts"] == {"done": 2, "unchanged": 0, "failed": 2}
    assert "too short for an STL" in by_id["A-2 broken"]["error"]
    assert "too big for printer" in by_id["A-3"]["error"]
    assert check_folders_whole(out) == {"A-1": "done", "A-2_broken": "failed", "A-3": "failed", "A-4": "done"}
    failed = json.loads((out / "A-3" / "result.json").read_text())
    assert failed["error"] == by_id["A-3"]["error"] and "too big" in (out / "A-3" / "log.txt").read_text()
    done = json.loads((out / "A-1" / "result.json").read_text())
    assert done["peak_memory_mb"] > 20  # a Python process with numpy: ru_maxrss was read, in MB
    assert by_id["A-1"]["peak_memory_mb"] == done["peak_memory_mb"]
    assert check_manifest_matches_folders(out) == ["A-1", "A-4"]
    # Status lines as orders finish, on stderr.
    assert re.search(r"^\[[1-4]/4\] A-1  done  \d+\.\d s  \d+ MB$", run.stderr, re.MULTILINE), run.stderr
    assert re.search(r"^\[[1-4]/4\] A-3  failed: the model is .* too big for printer", run.stderr, re.MULTILINE)
    assert "\r" not in run.stderr and "[#" not in run.stderr  # no progress bar when stderr is not a terminal
    # The order folder's order.toml reproduces the order (its input absolute), with the same G-code.
    again = load_order(out / "A-4" / "order.toml")
    assert again.input == (tmp_path / "box.stl").resolve() and again.values["layer_height"] == 0.3
    rerun = medprint("-q", "run", out / "A-4" / "order.toml", "-o", tmp_path / "again")
    assert rerun.returncode == 0, rerun.stderr
    assert sha256(tmp_path / "again" / "thick.gcode") == sha256(out / "A-4" / "thick.gcode")


def test_resume_skips_what_is_done_and_redoes_what_changed(tmp_path: Path) -> None:
    orders_spec = quick_orders(tmp_path, 3)
    batch = slice_batch(tmp_path / "batch.toml", orders_spec)
    out = tmp_path / "out"
    events: list[BatchEvent] = []
    first = run_batch(load_batch(batch), out, workers=2, on_event=events.append)
    assert [r.status for r in first.results] == ["done"] * 3
    assert events[0].kind == "started" and events[0].total == 3
    assert sorted(e.index for e in events[1:]) == [1, 2, 3] and all(e.result for e in events[1:])
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and ".staging" not in p.parts}

    unchanged = run_batch(load_batch(batch), out, workers=2)
    assert [r.status for r in unchanged.results] == ["unchanged"] * 3
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    box_stl(tmp_path / "box0.stl", (12.0, 12.0, 2.0))  # new input bytes
    orders_spec[1]["layer-height"] = 0.25  # new parameters
    slice_batch(batch, orders_spec)
    os.utime(out / "B-2" / "box2.gcode", ns=(1, 1))  # touched, same bytes: still done
    changed = run_batch(load_batch(batch), out, workers=2)
    assert [r.status for r in changed.results] == ["done", "done", "unchanged"]
    assert manifest_orders(out)["B-1"]["parameters_sha256"] != ""
    assert check_manifest_matches_folders(out) == ["B-0", "B-1", "B-2"]

    (out / "B-2" / "box2.gcode").write_text("tampered")  # an output no longer as recorded
    (out / ".staging" / "B-0-deadbeef").mkdir()  # left by a killed run
    redone = run_batch(load_batch(batch), out, workers=2)
    assert [r.status for r in redone.results] == ["unchanged", "unchanged", "done"]
    assert list((out / ".staging").iterdir()) == []
    check_folders_whole(out)


def test_a_failed_order_is_tried_again_on_resume(tmp_path: Path) -> None:
    (tmp_path / "box.stl").write_bytes(b"not yet written")
    batch = slice_batch(tmp_path / "batch.toml", [{"id": "C-1", "input": "box.stl", "output": "box.gcode"}])
    out = tmp_path / "out"
    assert [r.status for r in run_batch(load_batch(batch), out, workers=1).results] == ["failed"]
    box_stl(tmp_path / "box.stl")
    run = medprint("batch", batch, "-o", out, "--workers", "1")
    assert run.returncode == 0, run.stderr
    assert check_folders_whole(out) == {"C-1": "done"}
    lines = run.stdout.splitlines()  # the summary table
    assert lines[0].split() == ["order", "folder", "status", "time", "memory"]
    assert re.match(r"C-1\s+C-1\s+done\s+\d+\.\d s\s+\d+ MB$", lines[1])
    assert lines[-1].startswith("1 orders: 1 done, 0 unchanged, 0 failed")


def _batch_cli(args: list[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main([str(arg) for arg in args])
    return int(stop.value.code or 0), capsys.readouterr().err


def test_nothing_runs_when_the_batch_file_or_the_output_folder_is_bad(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    box_stl(tmp_path / "box.stl")
    batch = slice_batch(tmp_path / "batch.toml", [{"id": "D-1", "input": "box.stl", "output": "box.gcode",
                                                   "layer-heigth": 0.2}])
    code, stderr = _batch_cli(["batch", batch, "-o", tmp_path / "out"], capsys)
    assert code == 1
    assert "layer-heigth" in stderr and "layer-height" in stderr  # the close match
    assert "Traceback" not in stderr and not (tmp_path / "out").exists()

    slice_batch(batch, [{"id": "D-1", "input": "box.stl", "output": "box.gcode"}])
    (tmp_path / "file").write_text("")
    code, stderr = _batch_cli(["batch", batch, "-o", tmp_path / "file"], capsys)
    assert code == 1 and stderr.strip().count("\n") == 0 and "is a file" in stderr

    clash = slice_batch(tmp_path / "clash.toml", [{"id": "D-1", "input": "box.stl", "output": "log.txt"}])
    code, stderr = _batch_cli(["batch", clash, "-o", tmp_path / "out"], capsys)
    assert code == 1 and "log.txt" in stderr and stderr.strip().count("\n") == 0

    code, stderr = _batch_cli(["batch", batch, "-o", tmp_path / "out", "--workers", "2", "--scheduler",
                               "tcp://127.0.0.1:1"], capsys)
    assert code == 2 and "--workers" in stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("retries", [0, 1])
def test_an_order_whose_process_is_killed_is_retried(tmp_path: Path, retries: int) -> None:
    from batch_helpers import order_processes, start_medprint

    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 1))
    out = tmp_path / "out"
    batch_process = start_medprint("batch", batch, "-o", out, "--workers", "1", "--retries", str(retries), "--json")
    try:
        deadline = time.monotonic() + 60
        while not order_processes(out / ".staging") and batch_process.poll() is None:
            assert time.monotonic() < deadline, "the order did not start"
            time.sleep(0.02)
        for pid in order_processes(out / ".staging"):
            os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
        stdout, stderr = batch_process.communicate(timeout=90)
    finally:
        batch_process.kill()
    (result,) = json.loads(stdout)["orders"]
    if retries:
        assert batch_process.returncode == 0 and result["status"] == "done", stderr
    else:
        assert batch_process.returncode == 3
        assert result["error"] == "the order's process was killed by SIGKILL (out of memory?)"
        assert check_folders_whole(out) == {"B-0": "failed"}


def test_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    batch = slice_batch(tmp_path / "batch.toml", quick_orders(tmp_path, 1))
    leader, follower = pty.openpty()
    with open(leader, "rb", buffering=0) as terminal:
        process = subprocess.Popen([sys.executable, "-m", "medprint", "batch", str(batch), "-o",
                                    str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = terminal.read(4096)
            except OSError:  # the terminal closes when the batch ends
                break
            if not chunk:
                break
            seen += chunk
        process.communicate(timeout=60)
    assert process.returncode == 0
    text = seen.decode(errors="replace")
    assert "orders" in text and "[####" in text and "100%" in text  # click's bar, drawn on the terminal
    assert "B-0  done" in text
