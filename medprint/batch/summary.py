"""What a batch did: one :class:`OrderResult` per order, the :class:`BatchSummary`, and their text forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: done: finished in this run; unchanged: finished before, skipped; failed: its error is in ``error``.
OrderStatus = Literal["done", "unchanged", "failed"]


@dataclass(frozen=True)
class OrderResult:
    """One order's outcome; ``folder`` is its folder name inside the output folder."""

    order_id: str
    folder: str
    status: OrderStatus
    error: str | None = None
    seconds: float | None = None
    peak_memory_mb: float | None = None
    outputs: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class BatchEvent:
    """Progress for ``run_batch(on_event=...)``: ``kind`` is "started" (total known) or "finished" (``result`` set).

    ``index`` counts finished orders (1-based) out of ``total``.
    """

    kind: Literal["started", "finished"]
    index: int
    total: int
    result: OrderResult | None = None


@dataclass(frozen=True)
class BatchSummary:
    """Every order's result, in the batch's order."""

    output_dir: str
    results: tuple[OrderResult, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[OrderResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def counts(self) -> dict[str, int]:
        counts = {"done": 0, "unchanged": 0, "failed": 0}
        for result in self.results:
            counts[result.status] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {"output_dir": self.output_dir, "counts": self.counts(),
                "orders": [asdict(result) | {"outputs": list(result.outputs)} for result in self.results]}


def status_line(event: BatchEvent) -> str:
    """``[ 3/20] A-1  done  12.3 s  412 MB`` or ``[ 4/20] A-2  failed: <error>``."""
    result = event.result
    assert result is not None
    width = len(str(event.total))
    head = f"[{event.index:>{width}}/{event.total}] {result.order_id}"
    if result.status == "failed":
        return f"{head}  failed: {result.error}"
    if result.status == "unchanged":
        return f"{head}  unchanged"
    return f"{head}  done  {_seconds(result.seconds)}  {_megabytes(result.peak_memory_mb)}"


def summary_table(summary: BatchSummary) -> list[str]:
    """The end-of-batch table: one row per order (a failed order's error last), then the counts."""
    rows = [("order", "folder", "status", "time", "memory", "")]
    for r in summary.results:
        ran = r.status == "done"
        rows.append((r.order_id, r.folder, r.status, _seconds(r.seconds) if ran else "",
                     _megabytes(r.peak_memory_mb) if ran else "", r.error or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[5]]).rstrip() for row in rows]
    counts = summary.counts()
    lines.append(f"{len(summary.results)} orders: {counts['done']} done, {counts['unchanged']} unchanged, "
                 f"{counts['failed']} failed; results in {summary.output_dir}")
    return lines


def _seconds(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f} s"


def _megabytes(megabytes: float | None) -> str:
    return "" if megabytes is None else f"{megabytes:.0f} MB"
