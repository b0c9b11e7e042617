"""``run_batch``: orders -> order folders and a manifest, resumable, whether orders run here or on a cluster.

The batch logic (which orders to run, staging, moving into place, the manifest) is the same for both
executors; only where an order's subprocess runs changes (:mod:`.local`, :mod:`.cluster`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from .. import __version__
from ..errors import ParameterError
from ..jobs.orders import Order, folder_names, order_text, parameters_digest
from ..threads import cpu_count
from .execute import Execution, OrderTask, record_failure
from .folders import (
    BATCH_FILES,
    batch_lock,
    move_into_place,
    prepare_output_dir,
    remove_stale_staging,
    staging_root,
)
from .hashing import InputHasher
from .local import LocalExecutor, worker_count
from .manifest import Manifest, OrderKey
from .summary import BatchEvent, BatchSummary, OrderResult

EventCallback = Callable[[BatchEvent], None]


class Executor(Protocol):
    """Where orders run (:class:`LocalExecutor`, :class:`~medprint.batch.cluster.ClusterExecutor`): a context
    manager whose ``run`` yields each task's execution as it finishes."""

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None: ...

    def run(self, tasks: list[OrderTask]) -> Iterable[Execution]: ...


@dataclass(frozen=True)
class Plan:
    """One order of the batch: its folder name, what decides a rerun, and the task that runs it."""

    order: Order
    folder: str
    key: OrderKey
    task: OrderTask


def run_batch(orders: Iterable[Order], output_dir: Path, *, workers: int | None = None, scheduler: str | None = None,
              retries: int = 2, threads_per_order: int | None = None,
              on_event: EventCallback | None = None) -> BatchSummary:
    """Run every order into its own folder of ``output_dir``, skipping orders already done and unchanged.

    Parameters
    ----------
    orders : the batch (:func:`medprint.jobs.orders.load_batch`).
    output_dir : the batch's folder: ``<folder>/`` per order, ``manifest.json``, ``.staging/``.
    workers : orders at once on this machine (default: the CPU count); ignored with ``scheduler``.
    scheduler : a Dask scheduler address (``tcp://host:8786``): run the orders on that cluster.
    retries : times an order whose process was killed (crash, out-of-memory killer) is tried again.
    threads_per_order : threads each order's process may use. Default: the cores divided among ``workers`` here
        (orders that each start a thread per core slow each other down), 1 on a cluster (one order per
        single-threaded worker process, as ``dask worker --nthreads 1`` runs them).
    on_event : called with a :class:`BatchEvent` once at the start and as each order finishes.

    A failed order does not stop the others; it is in the summary and its folder. Raises MedprintError when
    nothing can run (bad orders, output folder, scheduler), and SchedulerLost if the scheduler goes away.
    """
    orders = list(orders)
    names = folder_names(orders)
    _check_output_names(orders)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ParameterError(f"--retries: {retries!r} is not a whole number of at least 0")
    count = worker_count(workers)
    threads = _threads_per_order(threads_per_order, count, scheduler)
    with _executor(count, scheduler, retries) as executor:
        output_dir = prepare_output_dir(output_dir)
        with batch_lock(output_dir):
            remove_stale_staging(output_dir)
            return _run_locked(orders, names, output_dir, executor, on_event or _ignore, threads)


def _threads_per_order(asked: int | None, workers: int, scheduler: str | None) -> int:
    if asked is not None:
        if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
            raise ParameterError(f"--threads-per-order: {asked!r} is not a whole number of at least 1")
        return asked
    return 1 if scheduler is not None else max(1, cpu_count() // workers)


def _executor(workers: int, scheduler: str | None, retries: int) -> Executor:
    if scheduler is None:
        return LocalExecutor(workers, retries)
    # distributed is an optional extra: imported only when a scheduler is asked for.
    from .cluster import ClusterExecutor

    return ClusterExecutor(scheduler, retries)


def _run_locked(orders: list[Order], names: dict[str, str], output_dir: Path, executor: Executor,
                on_event: EventCallback, threads: int) -> BatchSummary:
    manifest = Manifest.load(output_dir)
    hasher = InputHasher(manifest.input_hashes)
    plans = [_plan(order, names[order.id], hasher, output_dir, threads) for order in orders]
    manifest.input_hashes = hasher.used
    results: dict[str, OrderResult] = {}

    def finished(result: OrderResult) -> None:
        results[result.order_id] = result
        on_event(BatchEvent("finished", len(results), len(plans), result))

    on_event(BatchEvent("started", 0, len(plans)))
    to_run = _skip_unchanged(plans, manifest, output_dir, finished)
    manifest.save()  # the input digests, and output mtimes found unchanged by content
    by_id = {plan.order.id: plan for plan in to_run}
    for execution in executor.run([plan.task for plan in to_run]):
        finished(_finish(by_id[execution.order_id], execution, output_dir, manifest))
    remove_stale_staging(output_dir)  # attempts of orders whose worker died; every order has reported back
    return BatchSummary(str(output_dir), tuple(results[plan.order.id] for plan in plans))


def _skip_unchanged(plans: list[Plan], manifest: Manifest, output_dir: Path,
                    finished: Callable[[OrderResult], None]) -> list[Plan]:
    """Report the orders done before and unchanged as such; return the others, which must run."""
    to_run = []
    for plan in plans:
        if manifest.finished_unchanged(plan.order.id, output_dir / plan.folder, plan.key):
            finished(_unchanged_result(plan, manifest.orders[plan.order.id]))
        else:
            to_run.append(plan)
    return to_run


def _plan(order: Order, folder: str, hasher: InputHasher, output_dir: Path, threads: int) -> Plan:
    key = OrderKey(hasher.inputs_digest(order.input_paths()), parameters_digest(order), __version__)
    task = OrderTask(order.id, folder, order_text(order), str(staging_root(output_dir)), threads)
    return Plan(order, folder, key, task)


def _finish(plan: Plan, execution: Execution, output_dir: Path, manifest: Manifest) -> OrderResult:
    """Move the order's staging folder into place, then record it in the manifest (in that order: a folder the
    manifest lists is always complete)."""
    if not execution.staging or not Path(execution.staging).is_dir():
        if execution.staging:
            execution.error = (f"the worker on {execution.host or 'another host'} wrote the order where this "
                               f"machine does not see it; the output folder must be on a file system that the "
                               f"client and every worker share")
        execution = record_failure(plan.task, execution)
    move_into_place(Path(execution.staging), output_dir / plan.folder)
    manifest.record(plan.order.id, {
        "folder": plan.folder, "status": execution.status, "error": execution.error,
        "inputs_sha256": plan.key.inputs_sha256, "parameters_sha256": plan.key.parameters_sha256,
        # The version that ran the order (a cluster worker may have another): a mismatch reruns it next time.
        "medprint_version": execution.medprint_version, "outputs": execution.outputs,
        "seconds": execution.seconds, "peak_memory_mb": execution.peak_memory_mb,
        "finished_at": execution.finished_at,
    })
    return OrderResult(plan.order.id, plan.folder, "done" if execution.status == "done" else "failed",
                       execution.error, execution.seconds, execution.peak_memory_mb, tuple(execution.outputs))


def _unchanged_result(plan: Plan, entry: dict[str, Any]) -> OrderResult:
    return OrderResult(plan.order.id, plan.folder, "unchanged", None, entry.get("seconds"),
                       entry.get("peak_memory_mb"), tuple(entry.get("outputs", {})))


def _check_output_names(orders: list[Order]) -> None:
    for order in orders:
        for name in order.output_names():
            first = Path(name).parts[0] if Path(name).parts else ""
            if first in BATCH_FILES:
                raise ParameterError(f"order {order.id!r}: output {str(name)!r} is a name the batch keeps for its "
                                     f"own records ({', '.join(BATCH_FILES)}); give it another name")


def _ignore(event: BatchEvent) -> None:
    pass
