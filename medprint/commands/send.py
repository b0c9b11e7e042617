"""``medprint send``: C-STORE DICOM files (such as ``--dicom-stl`` outputs) to a PACS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..io.pacs import (
    DEFAULT_CALLING_AET,
    PacsAddress,
    check_ae_title,
    parse_pacs_address,
    store_files,
)
from ..report import to_json
from .options import FiniteFloat


class _Address(click.ParamType):
    """``AET@HOST:PORT``, read by :func:`~medprint.io.pacs.parse_pacs_address` (a bad one: exit 2)."""

    name = "AET@HOST:PORT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> PacsAddress:
        if isinstance(value, PacsAddress):
            return value
        try:
            return parse_pacs_address(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class _AeTitle(click.ParamType):
    name = "AET"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_ae_title(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command(name="send")
@click.argument("paths", metavar="FILE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--to", "address", required=True, type=_Address(),
              help="The PACS: its AE title, host and DICOM port, e.g. ORTHANC@pacs.hospital.org:4242 "
                   "(IPv6: ORTHANC@[::1]:104).")
@click.option("--calling-aet", default=DEFAULT_CALLING_AET, show_default=True, type=_AeTitle(),
              help="medprint's own AE title, as the PACS knows it.")
@click.option("--timeout", "timeout_s", type=FiniteFloat(0, 3600, low_open=True, why="seconds"), default=30.0,
              show_default=True, help="Seconds to wait for the PACS's answers (connecting: at most 10).")
@click.option("--json", "as_json", is_flag=True, help="Print what was sent as JSON to stdout.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[Path, ...], address: PacsAddress, calling_aet: str,
            timeout_s: float, as_json: bool) -> None:
    """Send FILE... (DICOM Part 10, e.g. the .dcm of --dicom-stl) to a PACS by C-STORE, in one association.

    \b
    Exit codes:
      0  every file sent (status Success or Warning)
      1  a file that is not DICOM, no DICOM service at the address, the
         association or the object refused (the files stay where they are)
      2  command-line usage errors (an address that cannot be read)
    """
    stored = store_files(paths, address, calling_aet=calling_aet, timeout_s=timeout_s, option="--to")
    if as_json:
        click.echo(to_json({"to": str(address), "calling_aet": calling_aet,
                            "sent": [file.as_dict() for file in stored]}))
    elif not ctx.obj["quiet"]:
        for file in stored:
            click.echo(file.line(address))
