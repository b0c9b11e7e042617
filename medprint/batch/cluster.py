"""Orders on a Dask distributed cluster (``--scheduler ADDRESS``; ``pip install 'medprint[cluster]'``).

The client submits one task per order; the task (:func:`medprint.batch.execute.cluster_task`) runs the same
subprocess a local batch runs, so the worker keeps answering heartbeats while the order works.  Start workers
as processes with one thread each, e.g. ``dask worker ADDRESS --nworkers 4 --nthreads 1``.

The client, and every worker, must see the output folder and the orders' inputs at the same paths (a shared
file system, e.g. NFS): workers read inputs and write the order into ``OUTDIR/.staging``; the client moves
finished orders into place and keeps the manifest.  Every worker needs medprint (and its Python packages)
installed; the manifest records the version that ran each order, so an order a worker ran with another version
than the client's is redone by the next run.

Failures: a task whose order process was killed (a crash, the out-of-memory killer) is retried ``retries`` times
(``Client.submit(retries=...)``); a task whose worker died is rescheduled by Dask on another worker, up to
``distributed.scheduler.allowed-failures`` times (default 3), after which the order fails.  A worker that hangs
(its connection open, its heartbeats stopped) is only dropped once the worker TTL passes, so set
``distributed.scheduler.worker-ttl`` on the scheduler (e.g. ``DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL=60s``)
longer than a heartbeat can be late; the hung worker's orders are then rescheduled on the others.  A scheduler that
stops answering ends the batch (:class:`SchedulerLost`); the finished orders are in the manifest, and the next run
resumes from there.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self

from ..errors import MedprintError, ParameterError
from .execute import Execution, OrderTask, cluster_task, failed_execution

#: How long the scheduler may take to answer the first time, and to show its first worker.
CONNECT_TIMEOUT_S = 5
WORKER_TIMEOUT_S = 60
#: How long the client may be without its scheduler mid-batch before the batch gives up.
LOST_SCHEDULER_S = 10
_POLL_S = 0.2


class SchedulerError(MedprintError, ConnectionError):
    """The Dask scheduler cannot be reached, or was lost during the batch."""


class SchedulerLost(SchedulerError):
    """The scheduler stopped answering while orders ran."""


def dask_distributed() -> Any:
    """The ``distributed`` module, or a ParameterError that says how to install it."""
    try:
        import distributed
    except ImportError:
        raise ParameterError("--scheduler needs Dask distributed: pip install 'medprint[cluster]'") from None
    return distributed


class ClusterExecutor:
    """Runs orders as tasks on the cluster whose scheduler is at ``address``; connects on entry."""

    def __init__(self, address: str, retries: int) -> None:
        self.address = address
        self.retries = retries
        self._client: Any = None

    def __enter__(self) -> Self:
        self._client = connect(self.address)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            _close_quietly(client)

    def run(self, tasks: Sequence[OrderTask]) -> Iterator[Execution]:
        """Each task's execution, as they finish; raises SchedulerLost when the scheduler goes away."""
        if not tasks:
            return
        self._wait_for_a_worker()
        batch = secrets.token_hex(4)
        pending = {self._client.submit(cluster_task, task, key=f"medprint-order-{task.folder_name}-{batch}",
                                       pure=False, retries=self.retries): task for task in tasks}
        lost_since: float | None = None
        while pending:
            # Polled, not distributed.wait(): that needs a default client, and the API must not set one.
            done = [future for future in pending if future.done()]
            for future in done:
                yield self._execution_of(future, pending.pop(future))
            lost_since = self._check_scheduler(lost_since)
            if not done:
                time.sleep(_POLL_S)

    def _wait_for_a_worker(self) -> None:
        try:
            self._client.wait_for_workers(1, timeout=WORKER_TIMEOUT_S)
        except TimeoutError:
            raise SchedulerError(f"--scheduler {self.address}: no worker joined within {WORKER_TIMEOUT_S} s; start "
                                 f"workers with `dask worker {self.address} --nthreads 1`") from None

    def _check_scheduler(self, lost_since: float | None) -> float | None:
        if self._client.status == "running":
            return None
        now = time.monotonic()
        if lost_since is not None and now - lost_since > LOST_SCHEDULER_S:
            raise SchedulerLost(f"--scheduler {self.address}: the scheduler stopped answering during the batch; "
                                f"finished orders are in the manifest, run the batch again to resume")
        return now if lost_since is None else lost_since

    def _execution_of(self, future: Any, task: OrderTask) -> Execution:
        if future.status == "finished":
            return Execution(**future.result())
        if future.status == "cancelled":
            raise SchedulerLost(f"--scheduler {self.address}: the scheduler dropped the batch's tasks; finished "
                                f"orders are in the manifest, run the batch again to resume")
        return failed_execution(task, _task_error(future.exception()))


def connect(address: str) -> Any:
    """A client of the scheduler at ``address``, or one SchedulerError line when it does not answer in time."""
    distributed = dask_distributed()
    try:
        return distributed.Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SchedulerError(f"--scheduler {address}: no Dask scheduler answers there within {CONNECT_TIMEOUT_S} "
                             f"s ({reason}); start one with `dask scheduler` or check the address") from None


def _close_quietly(client: Any) -> None:
    # A lost scheduler makes close() wait for it; the batch has already said what happened.
    try:
        client.close(timeout=2)
    except (OSError, TimeoutError, RuntimeError):
        pass


def _task_error(error: BaseException | None) -> str:
    name = type(error).__name__
    if name == "KilledWorker":
        return ("its worker died while running it, on every try (distributed.scheduler.allowed-failures); the order "
                "may need more memory than a worker has")
    return str(error) if error is not None and str(error) else name
