"""``medprint info``: what is in a scan folder or file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..scan_info import describe_input, format_description


@click.command(name="info")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--show-phi", is_flag=True, help="Also show patient name, ID and birth date.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def command(input_path: Path, show_phi: bool, as_json: bool) -> None:
    """Describe the scans in INPUT (a DICOM folder, DICOM file, NIfTI, NRRD or MHA)."""
    description = describe_input(input_path, show_phi=show_phi)
    click.echo(json.dumps(description, indent=2) if as_json else format_description(description))
