"""``medprint run ORDER.toml``: run one order file (:mod:`medprint.jobs.orders`) into a folder.

An order that cannot run is refused whole, before anything is written: every problem on stderr, one line
each, and exit code 2 (a usage error of the order); a job that fails while running exits 1, as any command.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..jobs.orders import OrderError, load_order, run_order
from ..redact import terminal_safe
from ..report import to_json
from .options import progress_reporter

EXIT_USAGE = 2


@click.command("run")
@click.argument("order_path", metavar="ORDER.toml", type=click.Path(path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              metavar="DIR", help="Folder the order's outputs go into (made if missing).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON to stdout.")
@click.pass_context
def command(ctx: click.Context, order_path: Path, output_dir: Path, overwrite: bool, as_json: bool) -> None:
    """Run the order in ORDER.toml: its command on its input, the outputs into DIR.

    The order's keys are the command's long options (`medprint slice --save-order FILE` writes one).
    """
    ctx.ensure_object(dict)
    if order_path.suffix.lower() == ".csv":
        _refuse(ctx, OrderError([f"{order_path}: a CSV file is a batch of orders; run it with "
                                 f"`medprint batch {order_path} -o DIR`"], source=order_path))
        return
    try:
        order = load_order(order_path)
        # Names below the input folder stay off the terminal unless the order sets show-phi.
        ctx.obj["phi_input"] = None if order.values.get("show_phi") else order.input
        with progress_reporter(enabled=not as_json and not ctx.obj.get("quiet")) as progress:
            result = run_order(order, output_dir, overwrite=overwrite, progress=progress)
    except OrderError as error:
        _refuse(ctx, error)
        return
    if as_json:
        click.echo(to_json(result.report))
        return
    if not ctx.obj.get("quiet"):
        for line in result.summary:
            click.echo(terminal_safe(line))


def _refuse(ctx: click.Context, error: OrderError) -> None:
    head = str(error).split("\n", 1)[0]
    click.echo(terminal_safe(f"medprint: error: {head}"), err=True)
    for problem in error.problems:
        # The library's words name its function; on the command line the command is `medprint batch`.
        problem = problem.replace("read it with load_batch (medprint batch)", "run it with `medprint batch`")
        click.echo(terminal_safe(f"  {problem}"), err=True)
    ctx.exit(EXIT_USAGE)
