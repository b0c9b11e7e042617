"""Batches of orders: ``medprint batch ORDERS -o OUTDIR`` and :func:`run_batch`.

Each order runs in a subprocess of its own, in ``OUTDIR/.staging/``, and is moved into ``OUTDIR/<name>/`` whole
when it is complete.  ``OUTDIR/manifest.json`` records what is done and from which input bytes, parameters and
medprint version, so a batch can be stopped (even by SIGKILL) and run again: finished, unchanged orders are
skipped, the rest run.  Orders run in a local pool or on a Dask cluster (:mod:`.cluster`).
"""

from __future__ import annotations

from .runner import run_batch
from .summary import BatchEvent, BatchSummary, OrderResult

__all__ = ["BatchEvent", "BatchSummary", "OrderResult", "run_batch"]
