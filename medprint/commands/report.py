"""``medprint report``: the HTML sign-off report of a mesh or G-code written earlier (the library is
:func:`medprint.deliver.review_existing.review_output`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..redact import terminal_safe
from ..report import to_json


@click.command(name="report")
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "html_path", type=click.Path(path_type=Path), default=None, metavar="OUT.html",
              help="The page to write (default: <stem>.report.html beside OUTPUT).")
@click.option("--source", "source_path", type=click.Path(path_type=Path), default=None, metavar="SCAN",
              help="The scan the mesh was made from (DICOM folder or file, NIfTI, NRRD): the mesh's outline is "
                   "drawn over its slices.")
@click.option("--source-series", default=None, metavar="N",
              help="With --source: which series of the folder (number or UID, as medprint info lists them).")
@click.option("--anatomy", "anatomy_path", type=click.Path(path_type=Path), default=None, metavar="MESH",
              help="The anatomy the part fits (a skull for an implant): drawn paler, under the part.")
@click.option("--overwrite", is_flag=True, help="Replace an existing report page.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON to stdout.")
@click.option("--show-phi", is_flag=True, help="Show names from inside the scan's and the output's folders in "
                                              "messages.")
@click.pass_context
def command(ctx: click.Context, output_path: Path, html_path: Path | None, source_path: Path | None,
            source_series: str | None, anatomy_path: Path | None, overwrite: bool, as_json: bool,
            show_phi: bool) -> None:
    """Write the HTML sign-off report of OUTPUT, a mesh (.stl, .obj, .ply, .3mf) or G-code (.gcode) made
    earlier.

    A mesh's numbers come from its JSON report (<stem>.report.json beside it), or are measured from the mesh
    when there is none. G-code's estimates come from its header comments. Without --source the report
    shows the model only, and says so.
    """
    from ..deliver.review_existing import review_output

    if source_series is not None and source_path is None:
        raise click.UsageError("--source-series needs --source SCAN", ctx=ctx)
    ctx.obj["phi_input"] = None if show_phi else (source_path or output_path)
    result = review_output(output_path, html_path=html_path, source=source_path, source_series=source_series,
                           anatomy=anatomy_path, overwrite=overwrite)
    if as_json:
        click.echo(to_json({"html": str(result.html_path), "scan_shown": result.scan_shown,
                            "notes": list(result.notes)}))
        return
    if ctx.obj.get("quiet"):
        return
    click.echo(terminal_safe(f"html report: {result.html_path}"))
    for note in result.notes:
        click.echo(terminal_safe(f"note: {note}"), err=True)
