"""``medprint info``: what is in a scan folder or file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..report import terminal_safe, to_json
from ..scan_info import describe_input, format_description


@click.command(name="info")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--show-phi", is_flag=True, help="Also show patient name, ID and birth date.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@click.pass_context
def command(ctx: click.Context, input_path: Path, show_phi: bool, as_json: bool) -> None:
    """Describe the scans in INPUT (a DICOM folder, DICOM file, NIfTI, NRRD or MHA)."""
    # Names below the input folder stay off the terminal unless --show-phi (see medprint.cli.PHI_INPUT).
    ctx.ensure_object(dict)["phi_input"] = None if show_phi else input_path
    description = describe_input(input_path, show_phi=show_phi)
    if as_json:
        click.echo(to_json(description))
        return
    click.echo(format_description(_escaped(description)))


def _escaped(value: Any) -> Any:
    """Every text in the description terminal-safe: a header's newline or escape cannot start or colour a line."""
    if isinstance(value, str):
        return terminal_safe(value)
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value
