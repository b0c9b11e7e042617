"""``medprint info``: what is in a scan folder or file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..redact import Scrubber, names_below, terminal_safe
from ..report import to_json
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
    # The listing names unreadable files below the folder (patient-named, often): stand-ins unless --show-phi.
    scrub = Scrubber({} if show_phi else names_below(input_path))
    if as_json:
        click.echo(to_json(_each_text(description, scrub)))
        return
    # Every header text escaped before the lines are built: a description's newline cannot start a line.
    click.echo(format_description(_each_text(description, lambda text: terminal_safe(scrub(text)))))


def _each_text(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string in it (keys stay)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _each_text(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_each_text(item, change) for item in value]
    return value
