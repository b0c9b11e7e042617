"""Orders on this machine: a pool of threads, each waiting on one order's subprocess."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from types import TracebackType
from typing import Self

from ..errors import ParameterError
from ..threads import cpu_count
from .execute import Execution, OrderTask, execute_order
from .folders import remove_tree


def worker_count(workers: int | None) -> int:
    """``workers`` checked, or the number of CPUs when None."""
    if workers is None:
        return cpu_count()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"--workers: {workers!r} is not a whole number of at least 1")
    return workers


class LocalExecutor:
    """Runs up to ``workers`` orders at once; an order whose process was killed is tried up to ``retries`` more times.

    An order that reports an error is not tried again: the same input gives the same error.
    """

    def __init__(self, workers: int, retries: int) -> None:
        self.workers = workers
        self.retries = retries
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Self:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="medprint-order")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is not None:
            self._stop_children()
        assert self._pool is not None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: Sequence[OrderTask]) -> Iterator[Execution]:
        """Each task's execution, as they finish."""
        assert self._pool is not None, "use LocalExecutor as a context manager"
        futures: list[Future[Execution]] = [self._pool.submit(self._attempts, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()

    def _attempts(self, task: OrderTask) -> Execution:
        for _ in range(self.retries):
            execution = execute_order(task, on_start=self._started)
            if not execution.killed or self._stopping:
                return execution
            remove_tree(Path(execution.staging))
        return execute_order(task, on_start=self._started)

    def _started(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children = {child for child in self._children if child.returncode is None}
            self._children.add(process)
            if self._stopping:
                process.kill()

    def _stop_children(self) -> None:
        # The batch is stopping (Ctrl-C, SIGTERM): end the orders under way; their staging folders are removed at
        # the next start.
        with self._lock:
            self._stopping = True
            for child in self._children:
                if child.returncode is None:
                    child.kill()
