"""The ``medprint`` command: a thin layer over the library.

Every subcommand parses options, calls the same public functions a script
would, and prints a summary.  Deliberate errors (:class:`MedprintError`)
become one line on stderr and exit code 1; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import MedprintError
from .pipeline import LoadSettings, SurfaceSettings, convert_scan
from .progress import ProgressCallback, no_progress
from .report import summary_line
from .segment import CT_PRESETS, SegmentationSettings, parse_threshold

log = logging.getLogger("medprint")

EXIT_ERROR = 1
EXIT_USAGE = 2


class MedprintGroup(click.Group):
    """Turns library errors into one clear line instead of a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("medprint: aborted", err=True)
            sys.exit(EXIT_ERROR)
        except click.UsageError as error:
            # One line, as for every other bad input; click's usage block is noise here.
            hint = f" (see {error.ctx.command_path} --help)" if error.ctx else ""
            click.echo(f"medprint: error: {error.format_message()}{hint}", err=True)
            sys.exit(EXIT_USAGE)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MedprintError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"medprint: error: {error}", err=True)
            sys.exit(EXIT_ERROR)
        except MemoryError:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("medprint: error: out of memory; crop the scan or use a machine with more RAM", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=MedprintGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medprint")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Turn CT and MRI scans into printer-ready 3D models."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug or verbose >= 2
    ctx.obj["quiet"] = quiet
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    _configure_logging(level)


def _configure_logging(level: int) -> None:
    logger = logging.getLogger("medprint")
    logger.setLevel(level)
    if not any(getattr(h, "_medprint_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("medprint: %(levelname)s: %(message)s"))
        handler._medprint_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--show-phi", is_flag=True, help="Also show patient name, ID and birth date.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(input_path: Path, show_phi: bool, as_json: bool) -> None:
    """Describe the scans in INPUT (a DICOM folder, DICOM file, NIfTI, NRRD or MHA)."""
    from .inspect import describe_input, format_description

    description = describe_input(input_path, show_phi=show_phi)
    click.echo(json.dumps(description, indent=2) if as_json else format_description(description))


def _parse_threshold_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_threshold(value)
    except MedprintError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1], ctx=ctx, param=param) from None


def _parse_decimate_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``0.25`` or ``25%`` is a fraction to keep; ``200000`` a triangle count."""
    if value is None:
        return None
    text = value.strip()
    try:
        if text.endswith("%"):
            return ("fraction", float(text[:-1]) / 100.0)
        number = float(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a fraction (0.25, 25%) nor a triangle count (200000)", ctx=ctx, param=param
        ) from None
    return ("fraction", number) if number < 1 else ("faces", int(number))


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="Mesh to write: .stl (default binary), .obj, .ply or .3mf. A JSON report goes beside it.")
@click.option("--preset", type=str, default=None,
              help=f"CT threshold preset: {', '.join(CT_PRESETS)}. Default: bone, for CT.")
@click.option("--threshold", type=str, default=None, callback=_parse_threshold_option,
              help="Intensity range LO:HI in the scan's units (HU for CT), e.g. 226:3071.")
@click.option("--series", type=str, default=None, help="Series number (as `medprint info` shows) or UID.")
@click.option("--modality", type=click.Choice(["CT", "MR"], case_sensitive=False), default=None,
              help="Override the modality for NIfTI/NRRD/MHA, which do not store it.")
@click.option("--allow-gaps", is_flag=True, help="Accept DICOM series with missing slices.")
@click.option("--keep", type=click.Choice(["auto", "largest", "all"]), default="auto", show_default=True,
              help="Which bodies to keep; auto keeps the largest for bone (drops table, head holder).")
@click.option("--min-component", type=float, default=0.0, show_default=True,
              help="With --keep all: drop bodies smaller than this many mm3.")
@click.option("--fill-cavities", is_flag=True, help="Fill enclosed cavities (solid model).")
@click.option("--close", "close_radius", type=float, default=0.0, show_default=True,
              help="Morphological closing radius in mm (bridges small gaps).")
@click.option("--open", "open_radius", type=float, default=0.0, show_default=True,
              help="Morphological opening radius in mm (cuts thin bridges).")
@click.option("--smooth", type=int, default=20, show_default=True,
              help="Smoothing iterations (windowed sinc, volume-preserving); 0 = none.")
@click.option("--max-deviation", type=float, default=None,
              help="Most that smoothing + decimation may move the surface, mm. Default: half the smallest voxel.")
@click.option("--decimate", type=str, default=None, callback=_parse_decimate_option,
              help="Reduce triangles: a fraction to keep (0.25 or 25%) or a triangle count.")
@click.option("--ascii", "ascii_stl", is_flag=True, help="Write ASCII STL instead of binary.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--no-report", is_flag=True, help="Do not write the JSON report file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON to stdout.")
@click.option("--show-phi", is_flag=True, help="Record the input path in the report.")
@click.pass_context
def convert(ctx: click.Context, input_path: Path, output_path: Path, preset: str | None,
            threshold: tuple[float, float] | None, series: str | None, modality: str | None, allow_gaps: bool,
            keep: str, min_component: float, fill_cavities: bool, close_radius: float, open_radius: float,
            smooth: int, max_deviation: float | None, decimate: tuple[str, float] | None, ascii_stl: bool,
            overwrite: bool, no_report: bool, as_json: bool, show_phi: bool) -> None:
    """Convert a scan to a watertight mesh in one step (load, segment, surface, repair, write)."""
    if preset is None and threshold is None:
        preset = "bone"
    segmentation = SegmentationSettings(
        preset=preset, threshold=threshold, keep=keep, min_component_mm3=min_component,
        fill_cavities=fill_cavities, close_mm=close_radius, open_mm=open_radius,
    )
    kind, amount = decimate if decimate else (None, None)
    surface = SurfaceSettings(
        smooth_iterations=smooth, max_deviation_mm=max_deviation,
        decimate_fraction=amount if kind == "fraction" else None,
        decimate_faces=int(amount) if kind == "faces" else None,
    )
    with _progress_reporter(enabled=not as_json and not ctx.obj["quiet"]) as progress:
        result = convert_scan(
            input_path, output_path, segmentation=segmentation, surface=surface,
            loading=LoadSettings(series=series, allow_gaps=allow_gaps, modality=modality),
            ascii_stl=ascii_stl, overwrite=overwrite, write_json_report=not no_report,
            include_phi_paths=show_phi, progress=progress,
        )
    if as_json:
        click.echo(json.dumps(result.report, indent=2))
        return
    if not ctx.obj["quiet"]:
        click.echo(summary_line(result.report))
        if result.report_path is not None:
            click.echo(f"report: {result.report_path}")


class _progress_reporter:
    """A progress bar on an interactive terminal; silence when piped."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._stage = ""

    def __enter__(self) -> ProgressCallback:
        return self.update if self.enabled else no_progress

    def __exit__(self, *exc: object) -> None:
        self._close()

    def update(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self._close()
            self._stage = stage
            self._bar = click.progressbar(length=total, label=stage, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def main(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; tests call it with a list of arguments."""
    cli.main(args=list(args) if args is not None else None, prog_name="medprint")
