"""Run one order in a subprocess of its own, in a staging folder, and describe what it made.

The same function runs in a local thread pool and as a Dask task on a cluster worker, so an order behaves the
same wherever it runs.  The child is ``python -m medprint -q run order.toml -o out --json``: the code path of
``medprint run``, and a crash in native code (VTK, a segfault, the out-of-memory killer) ends one order, not the
batch.  The child dies with the thread that started it (Linux ``PR_SET_PDEATHSIG``), so a batch or worker that
is killed leaves no order running.  Its peak memory comes from ``os.wait4``'s resource usage.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..threads import thread_environment
from .folders import (
    BATCH_FILES,
    LOG_FILE,
    ORDER_FILE,
    REPORT_FILE,
    RESULT_FILE,
    new_staging_folder,
    remove_tree,
)
from .hashing import sha256_file

#: The child's output folder inside the staging folder; its files are lifted into the order folder when done.
CHILD_OUTPUT = "out"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class OrderTask:
    """Everything a worker needs to run one order: plain data, so it pickles to a cluster."""

    order_id: str
    folder_name: str
    order_toml: str
    staging_root: str
    #: Threads the order's process may use (MEDPRINT_THREADS and the libraries' variables); 0: not limited.
    threads: int = 0


@dataclass
class Execution:
    """One attempt at an order, as ``result.json`` records it (``killed``: the process died by a signal)."""

    order_id: str
    folder_name: str
    staging: str
    status: str
    error: str | None
    started_at: str
    finished_at: str
    seconds: float
    peak_memory_mb: float | None
    exit_code: int | None
    host: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    killed: bool = False
    #: The process that ran the order's subprocess (the batch, or a cluster worker), and its medprint version.
    worker_pid: int = field(default_factory=os.getpid)
    medprint_version: str = __version__

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def result_json(self) -> str:
        """``result.json``: the execution without the staging path (the folder has moved on by then)."""
        record = {key: value for key, value in self.as_json().items() if key != "staging"}
        return json.dumps(record, indent=2) + "\n"


class OrderProcessKilled(RuntimeError):
    """The order's process died by a signal; raised in a cluster task so Dask's ``retries`` try it again."""


def execute_order(task: OrderTask, *, on_start: Callable[[subprocess.Popen[bytes]], None] | None = None) -> Execution:
    """Run ``task`` in a new staging folder and return what happened; never raises for a failed order.

    On success the staging folder holds the outputs, ``report.json`` (the child's JSON report), ``order.toml``,
    ``log.txt`` and ``result.json``; on failure only the last three (no partial outputs).
    """
    staging = new_staging_folder(Path(task.staging_root), task.folder_name)
    (staging / ORDER_FILE).write_text(task.order_toml, encoding="utf-8")
    started, clock = _now(), time.monotonic()
    exit_code, peak_mb = run_child(_child_command(), staging, on_start=on_start, threads=task.threads)
    seconds = round(time.monotonic() - clock, 3)
    error = _outcome_error(staging, exit_code)
    if error is None:
        error = _lift_outputs(staging)
    if error is not None:
        _drop_outputs(staging)
    execution = Execution(
        order_id=task.order_id, folder_name=task.folder_name, staging=str(staging),
        status="failed" if error else "done", error=error, started_at=started, finished_at=_now(), seconds=seconds,
        peak_memory_mb=peak_mb, exit_code=exit_code, host=socket.gethostname(),
        outputs={} if error else hash_outputs(staging), killed=exit_code is not None and exit_code < 0,
    )
    (staging / RESULT_FILE).write_text(execution.result_json(), encoding="utf-8")
    return execution


def cluster_task(task: OrderTask) -> dict[str, Any]:
    """The function a Dask worker runs for an order: :func:`execute_order`, retried by Dask if its process was killed."""
    execution = execute_order(task)
    if execution.killed:
        remove_tree(Path(execution.staging))
        raise OrderProcessKilled(f"{task.order_id}: {execution.error}")
    return execution.as_json()


def _child_command() -> list[str]:
    return [sys.executable, "-m", "medprint", "-q", "run", ORDER_FILE, "-o", CHILD_OUTPUT, "--json"]


def run_child(command: list[str], folder: Path, *,
              on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
              threads: int = 0) -> tuple[int, float | None]:
    """Run ``command`` in ``folder`` (stdout to report.json, stderr to log.txt); its exit code and peak memory (MB).

    ``threads`` > 0 holds the child and its libraries to that many threads (:func:`~medprint.threads.thread_environment`).

    The exit code is negative for a death by signal, as :mod:`subprocess` reports it.
    """
    with open(folder / f"{REPORT_FILE}.part", "wb") as stdout, open(folder / LOG_FILE, "wb") as stderr:
        environment = {**os.environ, **thread_environment(threads)} if threads > 0 else None
        process = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                   env=environment, preexec_fn=_die_with_parent())  # noqa: PLW1509 (see _die_with_parent)
        if on_start is not None:
            on_start(process)
        if not hasattr(os, "wait4"):  # Windows: no resource usage of a child
            return process.wait(), None
        # os.wait4, not process.wait(): only it returns the child's resource usage (peak memory).
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, _peak_memory_mb(usage.ru_maxrss)


def _peak_memory_mb(max_rss: int) -> float | None:
    if max_rss <= 0:
        return None
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    return round(max_rss / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGKILL when the thread that started it ends (Linux only).

    ``preexec_fn`` is unsafe with threads when it takes locks or allocates; this one only calls two system
    calls through a ctypes function looked up before the fork.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return die_with_parent


def _outcome_error(staging: Path, exit_code: int) -> str | None:
    """None when the child succeeded and printed a JSON report; else the error line for the summary."""
    if exit_code < 0:
        name = signal.Signals(-exit_code).name if -exit_code in signal.valid_signals() else str(-exit_code)
        hint = " (out of memory?)" if exit_code == -signal.SIGKILL else ""
        return f"the order's process was killed by {name}{hint}"
    if exit_code != 0:
        return first_error_line(staging / LOG_FILE) or f"the order's process exited with code {exit_code}"
    part = staging / f"{REPORT_FILE}.part"
    try:
        json.loads(part.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "the order finished but printed no JSON report"
    os.replace(part, staging / REPORT_FILE)
    return None


def first_error_line(log: Path) -> str | None:
    """The error line of a child's log (``medprint: error: ...``, with the first problem it lists below it),
    else its last line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for index, line in enumerate(lines):
        if line.startswith("medprint: error: "):
            error = line.removeprefix("medprint: error: ").strip()
            below = lines[index + 1] if index + 1 < len(lines) else ""
            return f"{error}: {below.strip()}" if below.startswith("  ") else error
    lines = [line.strip() for line in lines if line.strip()]
    return lines[-1] if lines else None


def _lift_outputs(staging: Path) -> str | None:
    """Move the child's outputs up into the staging folder (renames inside it); an error if a name is taken."""
    out = staging / CHILD_OUTPUT
    if not out.is_dir():
        return None
    for entry in sorted(out.iterdir()):
        if entry.name in BATCH_FILES or entry.name == CHILD_OUTPUT:
            return f"the order writes {entry.name}, a name the batch keeps for itself; give that output another name"
    for entry in sorted(out.iterdir()):
        os.rename(entry, staging / entry.name)
    out.rmdir()
    return None


def _drop_outputs(staging: Path) -> None:
    for entry in staging.iterdir():
        if entry.name not in (ORDER_FILE, LOG_FILE):
            remove_tree(entry)


def hash_outputs(folder: Path) -> dict[str, dict[str, Any]]:
    """sha256, size and mtime of every file in ``folder`` but the batch's own records, by relative POSIX name."""
    outputs = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name not in (ORDER_FILE, LOG_FILE, RESULT_FILE):
            stat = path.stat()
            outputs[name] = {"sha256": sha256_file(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return outputs


def failed_execution(task: OrderTask, error: str) -> Execution:
    """An execution for an order that never reported back (no staging folder of its own)."""
    now = _now()
    return Execution(order_id=task.order_id, folder_name=task.folder_name, staging="", status="failed", error=error,
                     started_at=now, finished_at=now, seconds=0.0, peak_memory_mb=None, exit_code=None, host="")


def record_failure(task: OrderTask, execution: Execution) -> Execution:
    """Give a failed order that has no staging folder one: its order.toml, the error in log.txt, result.json."""
    staging = new_staging_folder(Path(task.staging_root), task.folder_name)
    (staging / ORDER_FILE).write_text(task.order_toml, encoding="utf-8")
    (staging / LOG_FILE).write_text(f"medprint: error: {execution.error}\n", encoding="utf-8")
    execution.staging = str(staging)
    execution.status = "failed"
    (staging / RESULT_FILE).write_text(execution.result_json(), encoding="utf-8")
    return execution


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
