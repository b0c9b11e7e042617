"""``medprint design implant``: the cranial implant that fills a skull defect, from a CT."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from ..design.implant import (
    DEFAULT_GAP_MM,
    MAX_GAP_MM,
    MAX_RESOLUTION_MM,
    MAX_THICKNESS_MM,
    METHODS,
    MIN_RESOLUTION_MM,
    ImplantSettings,
    design_implant,
)
from ..design.run import DesignOutputs, describe_input, run_design
from ..errors import MedprintError
from ..io import load_volume
from ..redact import terminal_safe
from ..report import to_json
from ..segment import CT_PRESETS, parse_point
from .options import parse_points_option, parse_threshold_option


class _Millimetres(click.ParamType):
    """A finite number of mm; its range is checked by :class:`ImplantSettings` (one line, exit 1, as a design
    refusal), so the library and the command refuse the same values with the same words."""

    name = "mm"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} must be a finite number", param, ctx)
        return number


MM = _Millimetres()


def _parse_plane(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``X,Y,Z:NX,NY,NZ``: a point on the plane and its normal (LPS)."""
    if value is None:
        return None
    point_text, colon, normal_text = value.partition(":")
    if not colon:
        raise click.BadParameter(f"{value!r}: give a point and a normal as X,Y,Z:NX,NY,NZ (e.g. 0,0,0:1,0,0)",
                                 ctx=ctx, param=param)
    try:
        point = parse_point(point_text, option="--plane")
        normal = parse_point(normal_text, option="--plane")
    except MedprintError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1], ctx=ctx, param=param) from None
    return point, normal


@click.command(name="implant")
@click.argument("input_path", metavar="CT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="Implant mesh to write (.stl, .obj, .ply, .3mf); a JSON report goes beside it.")
@click.option("--near", "near", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="A point in or at the edge of the defect (patient mm, LPS). Default: the largest defect found "
                   "in the vault.")
@click.option("--plane", type=str, default=None, metavar="X,Y,Z:NX,NY,NZ", callback=_parse_plane,
              help="The mid-sagittal plane (a point and its normal, LPS). Default: estimated by registering the "
                   "skull to its mirror image.")
@click.option("--thickness", "thickness_mm", default=None,
              type=MM,
              help=f"Implant thickness in mm (at most {MAX_THICKNESS_MM:g}). Default: follow the surrounding bone (both tables reconstructed).")
@click.option("--gap", "gap_mm", default=DEFAULT_GAP_MM, show_default=True,
              type=MM,
              help=f"Clearance to the skull at the rim in mm (> 0 a gap, < 0 an overlap, 0 the exact missing bone; "
                   f"|gap| <= {MAX_GAP_MM:g}).")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="mirror: the healthy side mirrored; rim: tables interpolated from the defect's rim; auto: mirror "
                   "unless the defect crosses the mid-sagittal plane or its mirror image is not bone.")
@click.option("--solid", is_flag=True, help="Fill between the tables (no frontal sinus carried across the defect).")
@click.option("--resolution", "resolution_mm", default=0.5, show_default=True,
              type=MM,
              help=f"Working grid spacing in mm ({MIN_RESOLUTION_MM:g}..{MAX_RESOLUTION_MM:g}).")
@click.option("--preset", type=click.Choice(sorted(CT_PRESETS)), default="bone", show_default=True,
              help="Bone threshold preset.")
@click.option("--threshold", type=str, default=None, callback=parse_threshold_option,
              help="Bone range LO:HI in the scan's units instead of the preset.")
@click.option("--fit", "fit_path", type=click.Path(path_type=Path), default=None,
              help="Also write the skull and the implant as two coloured objects in one 3MF (a fit check).")
@click.option("--rim", "rim_path", type=click.Path(path_type=Path), default=None,
              help="Also write the defect's rim as a thin band on the outer table.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--no-report", is_flag=True, help="Do not write the JSON report file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON to stdout.")
@click.option("--show-phi", is_flag=True, help="Record the input path in the report.")
@click.pass_context
def command(ctx: click.Context, input_path: Path, output_path: Path, near: tuple[tuple[float, float, float], ...],
            plane: Any, thickness_mm: float | None, gap_mm: float, method: str, solid: bool, resolution_mm: float,
            preset: str, threshold: tuple[float, float] | None, fit_path: Path | None, rim_path: Path | None,
            overwrite: bool, no_report: bool, as_json: bool, show_phi: bool) -> None:
    """Design the cranial implant that fills a skull defect in CT."""
    ctx.ensure_object(dict)
    ctx.obj["phi_input"] = None if show_phi else input_path
    if len(near) > 1:
        raise click.BadParameter("give one point in the defect", param_hint="--near")
    settings = ImplantSettings(near=near[0] if near else None, plane=plane, thickness_mm=thickness_mm,
                               rim_gap_mm=gap_mm, resolution_mm=resolution_mm, preset=preset, threshold=threshold,
                               method=method, solid=solid)
    outputs = DesignOutputs(mesh=output_path, report=not no_report, overwrite=overwrite, fit_3mf=fit_path,
                            extras={"rim": rim_path} if rim_path is not None else {})
    volume = load_volume(input_path)
    part, report = run_design(outputs, lambda: design_implant(volume, settings),
                              input_facts=describe_input(volume, path=input_path, show_phi=show_phi),
                              parameters=asdict(settings), show_phi=show_phi, input_path=input_path)
    if as_json:
        click.echo(to_json(report))
    elif not ctx.obj.get("quiet"):
        m = part.measurements
        click.echo(terminal_safe(
            f"{output_path}: implant by {m['method']}, defect {m['defect_diameter_mm']:.0f} mm across, "
            f"{m['implant_volume_mm3'] / 1000:.1f} cm3, {part.mesh.face_count:,} triangles, watertight"))
