"""A real Dask cluster for tests: scheduler and workers as processes on 127.0.0.1, stopped by the fixture."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    """Starts schedulers and workers (one thread each, no nanny: a killed worker stays dead) in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        local = self.folder / name
        local.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DASK_TEMPORARY_DIRECTORY": str(local), **(env or {})}
        with open(self.folder / f"{name}.log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=local, env=env)
        self.processes.append(process)
        return process

    def scheduler(self, name: str = "scheduler",
                  env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[bytes]]:
        """Start a scheduler (``env``: extra environment, e.g. Dask settings as ``DASK_...`` variables)."""
        port = free_port()
        process = self._start(name, [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                     "--port", str(port), "--no-dashboard"], env)
        deadline = time.monotonic() + 30
        while not port_answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the scheduler did not start; see {self.folder / f'{name}.log'}")
            time.sleep(0.1)
        return f"tcp://127.0.0.1:{port}", process

    def worker(self, address: str, name: str) -> subprocess.Popen[bytes]:
        return self._start(name, [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--name", name, "--local-directory",
                                  str(self.folder / name), "--death-timeout", "60"])

    def wait_for_workers(self, address: str, count: int) -> None:
        from distributed import Client

        with Client(address, timeout="20s", set_as_default=False) as client:
            client.wait_for_workers(count, timeout=60)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait(timeout=30)
