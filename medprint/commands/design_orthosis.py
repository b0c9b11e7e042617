"""``medprint design orthosis``: a splint or orthosis shell around the skin of a CT or a scanner's mesh."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from ..design.orthosis import OPEN_SIDES, OrthosisSettings, design_orthosis
from ..design.part import Part
from ..design.run import DesignOutputs, describe_input, run_design
from ..io.mesh_files import MESH_FORMATS, read_mesh_file
from ..mesh.model import Mesh
from ..redact import terminal_safe
from ..report import to_json
from ..volume import Volume
from .options import FiniteFloat, parse_points_option

#: Sizes are checked by OrthosisSettings (one line, exit 1, as the API refuses them); the option only refuses NaN.
_SIZE = FiniteFloat()


def _numbers(ctx: click.Context, param: click.Parameter, value: str | None, count: int,
             example: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    parts = value.split(":")
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        raise click.BadParameter(f"{value!r} is not {example}", ctx=ctx, param=param)
    return numbers


def _parse_end(word: str) -> Any:
    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> float | str | None:
        if value is None or value.strip().lower() == word:
            return None if value is None else word
        try:
            number = float(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is neither a distance in mm nor {word!r}", ctx=ctx,
                                     param=param) from None
        if not math.isfinite(number):
            raise click.BadParameter(f"{value!r} must be a finite number of mm", ctx=ctx, param=param)
        return number
    return parse


def _one_point(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    return parse_points_option(ctx, param, (value,))[0]


@click.command(name="orthosis")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="The orthosis mesh: .stl, .obj, .ply or .3mf. A JSON report goes beside it.")
@click.option("--gap", "gap_mm", required=True, type=_SIZE, help="Padding between the skin and the shell, mm (>= 0).")
@click.option("--thickness", "thickness_mm", required=True, type=_SIZE,
              help="Shell thickness, mm (> 0).")
@click.option("--from", "from_mm", callback=_parse_end("start"), metavar="MM|start",
              help="First cutting plane: distance along the limb's axis from its start (or 'start': uncut).")
@click.option("--to", "to_mm", callback=_parse_end("end"), metavar="MM|end",
              help="Second cutting plane: distance along the axis (or 'end': uncut, e.g. the top of a helmet).")
@click.option("--start", "start_point", callback=_one_point, metavar="X,Y,Z",
              help="First cutting plane through this LPS point (across the axis), instead of --from.")
@click.option("--end", "end_point", callback=_one_point, metavar="X,Y,Z",
              help="Second cutting plane through this LPS point, instead of --to.")
@click.option("--axis", "axis", callback=_one_point, metavar="X,Y,Z",
              help="The limb's direction (LPS) instead of the estimated one, e.g. 0,0,1 for a head.")
@click.option("--keep-angle", "keep_angle", metavar="FROM:TO",
              callback=lambda c, p, v: _numbers(c, p, v, 2, "FROM:TO degrees, e.g. 45:315"),
              help="Keep the shell from FROM to TO degrees counter-clockwise about the axis (0: patient anterior "
                   "projected on the cross-section).")
@click.option("--open-side", type=click.Choice(OPEN_SIDES), default=None,
              help="Open this side of the limb (keep the opposite half).")
@click.option("--holes", "holes", metavar="DIAMETER:SPACING",
              callback=lambda c, p, v: _numbers(c, p, v, 2, "DIAMETER:SPACING in mm, e.g. 6:15"),
              help="Ventilation holes: diameter and centre-to-centre spacing, mm.")
@click.option("--hole-margin", "hole_margin_mm", type=_SIZE, default=3.0, show_default=True,
              help="Smallest distance from a hole to any edge of the shell, mm.")
@click.option("--edge-radius", "edge_radius_mm", type=_SIZE, default=0.0, show_default=True,
              help="Round the shell's edges to this radius, mm (at most half the thickness).")
@click.option("--resolution", "resolution_mm", type=FiniteFloat(0.05, 2.0, why="mm"), default=None,
              help="Working grid spacing, mm (default 0.5, finer for thin walls and small holes).")
@click.option("--fit", "fit_3mf", type=click.Path(path_type=Path), default=None,
              help="Also write a 3MF with the orthosis and the skin as two coloured parts, for a fit check.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--no-report", is_flag=True, help="Do not write the JSON report.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON to stdout.")
@click.option("--show-phi", is_flag=True, help="Allow the input's path in the report.")
@click.pass_context
def command(ctx: click.Context, input_path: Path, output_path: Path, gap_mm: float, thickness_mm: float,
            from_mm: float | str | None, to_mm: float | str | None, start_point: tuple[float, float, float] | None,
            end_point: tuple[float, float, float] | None, axis: tuple[float, float, float] | None,
            keep_angle: tuple[float, float] | None, open_side: str | None, holes: tuple[float, float] | None,
            hole_margin_mm: float, edge_radius_mm: float, resolution_mm: float | None, fit_3mf: Path | None,
            overwrite: bool, no_report: bool, as_json: bool, show_phi: bool) -> None:
    """Design a splint or orthosis around the skin of INPUT (a CT, or a closed surface mesh from a 3-D scanner)."""
    ctx.obj["phi_input"] = None if show_phi else input_path
    diameter, spacing = holes if holes is not None else (0.0, 0.0)
    settings = OrthosisSettings(
        gap_mm=gap_mm, thickness_mm=thickness_mm, from_mm=from_mm, to_mm=to_mm, start_point=start_point,
        end_point=end_point, axis=axis, keep_angle_deg=keep_angle, open_side=open_side, hole_diameter_mm=diameter,
        hole_spacing_mm=spacing, hole_margin_mm=hole_margin_mm, edge_radius_mm=edge_radius_mm,
        resolution_mm=resolution_mm,
    )
    source = _load(input_path)
    outputs = DesignOutputs(mesh=output_path, report=not no_report, fit_3mf=fit_3mf, overwrite=overwrite)

    def make() -> Part:
        return design_orthosis(source, settings)

    part, report = run_design(outputs, make, input_facts=describe_input(source, path=input_path, show_phi=show_phi),
                              parameters=settings, show_phi=show_phi, input_path=input_path)
    if as_json:
        click.echo(to_json(report))
        return
    if not ctx.obj.get("quiet"):
        click.echo(terminal_safe(summary(output_path, part)))


def summary(path: Path, part: Part) -> str:
    """One line: the file, its size and what was measured."""
    m = part.measurements
    holes = m["holes"]["placed"]
    return (f"{path}: orthosis, {part.mesh.face_count:,} triangles, 1 body, watertight, "
            f"{m['volume_mm3'] / 1000:.1f} cm3; gap {m['gap_mm'].get('median', float('nan')):.2f} mm, thickness "
            f"{m['thickness_mm'].get('median', float('nan')):.2f} mm, {m['angle']['covered_deg']} degrees covered"
            + (f", {holes} holes" if holes else ""))


def _load(path: Path) -> Volume | Mesh:
    from ..io import load_volume

    if path.suffix.lower() in MESH_FORMATS:
        return read_mesh_file(path)
    return load_volume(path)


