"""``medprint design label``: emboss or engrave text (an order id, a side marker, a date) on a part."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..design.label import (
    DEFAULT_DEPTH_MM,
    DEFAULT_HEIGHT_MM,
    DEFAULT_MAX_REPAIR_MOVE_MM,
    DEFAULT_SIZE_MM,
    MAX_RELIEF_MM,
    MAX_SIZE_MM,
    LabelSettings,
    label_part,
)
from ..design.label_text import FONTS
from ..design.run import DesignOutputs, describe_input, run_design
from ..errors import OutputError
from ..io.mesh_files import read_mesh_file
from ..redact import terminal_safe
from ..report import to_json
from ..segment.seeds import Point
from .options import FiniteFloat, parse_points_option


@click.command(name="label")
@click.argument("mesh_path", metavar="MESH", type=click.Path(path_type=Path))
@click.option("--text", required=True, help="The text: printable ASCII and °±µ×·–—→←↑↓ (an order id, L/R, a date; "
                                            "no patient names).")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="Labelled mesh to write (.stl, .obj, .ply, .3mf). A JSON report goes beside it.")
@click.option("--at", "at_lps", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="Centre of the label: a point on or near the surface (LPS mm, within 5 mm). "
                   "Default: the flattest spot found.")
@click.option("--up", "up_lps", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="The text's up direction (LPS), projected onto the surface. Default: the patient's superior "
                   "axis (anterior where the surface faces up or down).")
@click.option("--size", "size_mm", type=FiniteFloat(0, MAX_SIZE_MM, low_open=True, why="mm, capital height"),
              default=DEFAULT_SIZE_MM, show_default=True, help="Character (capital) height in mm.")
@click.option("--height", "height_mm", type=FiniteFloat(0, MAX_RELIEF_MM, low_open=True, why="mm"), default=None,
              help=f"Emboss: raised letters this high (mm; default {DEFAULT_HEIGHT_MM:g}).")
@click.option("--depth", "depth_mm", type=FiniteFloat(0, MAX_RELIEF_MM, low_open=True, why="mm"), default=None,
              help=f"Engrave: letters cut this deep (mm; {DEFAULT_DEPTH_MM:g} is usual) instead of embossing.")
@click.option("--font", type=click.Choice(list(FONTS)), default="bold", show_default=True,
              help="DejaVu Sans Bold or regular (shipped with matplotlib).")
@click.option("--printer", "printer_name", default=None,
              help="Printer profile whose line width is the thinnest stroke allowed (medprint profiles list).")
@click.option("--profiles", "profiles_dir", type=click.Path(path_type=Path), default=None,
              help="With --printer: a folder of extra printer profiles.")
@click.option("--thicken", is_flag=True,
              help="With --printer: widen strokes thinner than the line instead of refusing the text.")
@click.option("--flatness", "flatness_mm", type=FiniteFloat(0, 50, low_open=True, why="mm"), default=None,
              help="How far the surface under the label may depart from its plane (mm; default 15 % of the "
                   "label's half diagonal, at least 1).")
@click.option("--max-repair-move", type=FiniteFloat(0, 100, why="mm"), default=DEFAULT_MAX_REPAIR_MOVE_MM,
              show_default=True, help="A mesh with holes is closed only if that moves its surface at most this "
                                      "far (mm).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--no-report", is_flag=True, help="Do not write the JSON report.")
@click.option("--show-phi", is_flag=True, help="Name the input file in the report.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def command(ctx: click.Context, mesh_path: Path, text: str, output_path: Path, at_lps: tuple[Point, ...],
            up_lps: tuple[Point, ...], size_mm: float, height_mm: float | None, depth_mm: float | None,
            font: str, printer_name: str | None, profiles_dir: Path | None, thicken: bool,
            flatness_mm: float | None, max_repair_move: float, overwrite: bool, no_report: bool, show_phi: bool,
            as_json: bool) -> None:
    """Emboss or engrave TEXT on the closed surface MESH (mm, LPS), where asked or at a flat spot."""
    ctx.obj["phi_input"] = None if show_phi else mesh_path
    if height_mm is not None and depth_mm is not None:
        raise click.UsageError("--height (emboss) and --depth (engrave) contradict each other; give one")
    for option, points in (("--at", at_lps), ("--up", up_lps)):
        if len(points) > 1:
            raise click.UsageError(f"{option} is given {len(points)} times; give it once")
    if (thicken or profiles_dir is not None) and printer_name is None:
        raise click.UsageError("--thicken and --profiles go with --printer NAME")
    min_stroke, stroke_source = 0.0, "minimum stroke"
    if printer_name is not None:
        from ..slice.profiles import load_profiles

        printer = load_profiles(profiles_dir).printer(printer_name)
        min_stroke, stroke_source = printer.line_width_mm, f"{printer.name} line width"
    engrave = depth_mm is not None
    relief_mm = depth_mm if depth_mm is not None else height_mm if height_mm is not None else DEFAULT_HEIGHT_MM
    settings = LabelSettings(
        text=text, mode="engrave" if engrave else "emboss", relief_mm=relief_mm,
        size_mm=size_mm, at_lps=at_lps[0] if at_lps else None, up_lps=up_lps[0] if up_lps else None,
        min_stroke_mm=min_stroke, stroke_source=stroke_source, thicken=thicken, font=font, flatness_mm=flatness_mm,
        max_repair_move_mm=max_repair_move,
    )
    if os.path.realpath(output_path) == os.path.realpath(mesh_path):
        raise OutputError(f"-o/--output: {output_path} is the input MESH; give the labelled part a file name of "
                          "its own")
    mesh = read_mesh_file(mesh_path)
    parameters = {
        "text": text, "mode": settings.mode, "relief_mm": settings.relief_mm, "size_mm": size_mm,
        "at_lps": list(settings.at_lps) if settings.at_lps else None,
        "up_lps": list(settings.up_lps) if settings.up_lps else None, "font": font, "printer": printer_name,
        "min_stroke_mm": min_stroke, "thicken": thicken, "flatness_mm": flatness_mm,
        "max_repair_move_mm": max_repair_move,
    }
    outputs = DesignOutputs(mesh=output_path, report=not no_report, overwrite=overwrite)
    part, report = run_design(outputs, lambda: label_part(mesh, settings),
                              input_facts=describe_input(mesh, path=mesh_path, show_phi=show_phi),
                              parameters=parameters, show_phi=show_phi, input_path=mesh_path)
    if as_json:
        click.echo(to_json(report))
        return
    if not ctx.obj["quiet"]:
        measured = part.measurements
        where = measured["placement"]
        centre = ",".join(f"{v:.1f}" for v in where["centre_lps"])
        verb = "embossed" if settings.mode == "emboss" else "engraved"
        click.echo(terminal_safe(
            f"{output_path}: {text!r} {verb} {measured['relief_measured_mm']:.2f} mm, capitals {size_mm:g} mm, "
            f"{measured['footprint_mm'][0]:.1f} x {measured['footprint_mm'][1]:.1f} mm at {centre} (LPS), "
            f"{report['mesh']['triangles']:,} triangles, watertight, {report['mesh']['bodies']} body"
            + ("" if report["mesh"]["bodies"] == 1 else "s")
        ))
