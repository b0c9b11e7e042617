"""``medprint batch``: many orders, in parallel, resumable (the library is :func:`medprint.batch.run_batch`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..batch import BatchEvent, run_batch
from ..batch.summary import status_line, summary_table
from ..redact import terminal_safe
from ..report import to_json

#: Exit code when the batch ran but some orders failed (the others are done).
EXIT_SOME_FAILED = 3


@click.command("batch")
@click.argument("orders_path", metavar="ORDERS", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(path_type=Path), metavar="OUTDIR",
              help="Folder for the results: one folder per order, and manifest.json (created if missing).")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Orders run at once on this machine (default: the number of CPUs); not with --scheduler.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the orders on the Dask cluster of this scheduler (tcp://host:8786); the output folder and "
                   "inputs must be at the same paths on every worker. Needs `pip install 'medprint[cluster]'`.")
@click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True, metavar="N",
              help="Times an order whose process was killed (crash, out of memory) is tried again.")
@click.option("--threads-per-order", type=click.IntRange(1, 1024), default=None, metavar="N",
              help="Threads each order may use (default: the CPUs divided among --workers; 1 on a cluster).")
@click.option("--report", "report_format", type=click.Choice(("json", "html")), default=None,
              help="The report of every order that sets none itself: json (the JSON report), html (also the "
                   "HTML sign-off report, <stem>.report.html, in each order's folder).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON to stdout.")
@click.pass_context
def command(ctx: click.Context, orders_path: Path, output_dir: Path, workers: int | None, scheduler: str | None,
            retries: int, threads_per_order: int | None, report_format: str | None, as_json: bool) -> None:
    """Run every order of ORDERS (.toml with [[order]] tables, or .csv) into its own folder of OUTDIR.

    Run it again to resume: orders done with unchanged inputs, parameters and medprint version are skipped;
    the others (new, changed, interrupted, failed) run. Exit code 0: all orders done; 3: some failed (the
    others are done); 1: nothing could run.
    """
    from ..jobs.order_batch import with_report_format
    from ..jobs.orders import OrderError, load_batch

    quiet = bool((ctx.obj or {}).get("quiet"))
    if scheduler is not None and workers is not None:
        raise click.UsageError("--workers is for a batch on this machine; with --scheduler the cluster's workers "
                               "decide (start them with --nworkers N --nthreads 1)", ctx=ctx)
    if scheduler is not None and not (ctx.obj or {}).get("debug"):
        _quiet_dask_logs()
    try:
        orders = load_batch(orders_path)
        if report_format is not None:
            orders = with_report_format(orders, report_format)
        with _progress(enabled=not quiet) as on_event:
            summary = run_batch(orders, output_dir, workers=workers, scheduler=scheduler, retries=retries,
                                threads_per_order=threads_per_order, on_event=on_event)
    except OrderError as error:  # the batch file's problems (ids that collide as folder names included)
        _refuse(ctx, error)
        return
    if as_json:
        click.echo(to_json(summary.as_json()))
    elif not quiet:
        for line in summary_table(summary):
            click.echo(terminal_safe(line))
    ctx.exit(EXIT_SOME_FAILED if summary.failed else 0)


def _quiet_dask_logs() -> None:
    """Dask logs a lost connection as a page of tracebacks; the batch says it in one line (-vv shows them)."""
    from ..batch.cluster import dask_distributed

    dask_distributed()  # configures its loggers on import; then they are turned down
    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] in ("distributed", "tornado")]
    for name in ["distributed", *names]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _refuse(ctx: click.Context, error: Exception) -> None:
    """Every problem of the batch file, one line each, and exit 1: nothing ran."""
    head, *problems = str(error).split("\n")
    click.echo(terminal_safe(f"medprint: error: {head}"), err=True)
    for problem in problems:
        click.echo(terminal_safe(f"  {problem}"), err=True)
    ctx.exit(1)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Any]:
    """An ``on_event`` that prints a status line per finished order (orders skipped as unchanged: one line for
    all), and a bar when stderr is a terminal."""
    state: dict[str, Any] = {"bar": None, "unchanged": 0}
    show_bar = enabled and sys.stderr.isatty()

    def echo(line: str) -> None:
        if state["bar"] is not None:
            click.echo("\r\033[K", nl=False, err=True)  # the bar's line makes way for the status line
        click.echo(terminal_safe(line), err=True)

    def flush_unchanged() -> None:
        if state["unchanged"]:
            echo(f"{state['unchanged']} orders done before and unchanged: skipped")
            state["unchanged"] = 0

    def on_event(event: BatchEvent) -> None:
        if not enabled:
            return
        if event.kind == "started":
            if show_bar and event.total:
                state["bar"] = click.progressbar(length=event.total, label="orders", file=sys.stderr)
                state["bar"].__enter__()
            return
        assert event.result is not None
        if event.result.status == "unchanged":
            state["unchanged"] += 1
        else:
            flush_unchanged()
            echo(status_line(event))
        if state["bar"] is not None:
            state["bar"].update(1)

    try:
        yield on_event
    finally:
        flush_unchanged()
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
