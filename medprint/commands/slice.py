"""``medprint slice``: a mesh to printer-ready G-code."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import OutputError
from ..io.outputs import RunOutputs
from ..io.mesh_files import read_mesh_file
from ..redact import terminal_safe
from ..report import to_json
from ..slice.engine import (
    DEFAULT_MAX_REPAIR_MOVE_MM,
    ENGINES,
    MAX_BRIM_MM,
    MAX_SCALE,
    MIN_SCALE,
    SliceSettings,
    slice_to_gcode,
    write_gcode,
)
from ..slice.placement import ORIENT_CHOICES
from ..slice.profiles import check_compatible, load_profiles
from ..slice.toolpaths import INFILL_PATTERNS
from .options import BoundedInt, FiniteFloat, given, parse_fraction_option, progress_reporter


#: The option's own bound is loose; the printer profile's nozzle sets the real one (0.04 mm to 80 % of it).
_LAYER_WHY = "mm; the printer's nozzle sets the exact range"


@click.command(name="slice")
@click.argument("mesh_path", metavar="MESH", type=click.Path(path_type=Path))
@click.option("--printer", "printer_name", required=True, help="Printer profile (see `medprint profiles list`).")
@click.option("--material", "material_name", required=True, help="Material profile (see `medprint profiles list`).")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="G-code file to write.")
@click.option("--engine", type=click.Choice(ENGINES), default="builtin", show_default=True,
              help="builtin (no external program) or prusaslicer (needs the prusa-slicer command).")
@click.option("--layer-height", type=FiniteFloat(0, 2, low_open=True, why=_LAYER_WHY), default=None, help="Layer height in mm (default: the printer's).")
@click.option("--first-layer-height", type=FiniteFloat(0, 2, low_open=True, why=_LAYER_WHY), default=None, help="First layer height in mm.")
@click.option("--perimeters", type=BoundedInt(1, 20, why="loops"), default=2, show_default=True, help="Perimeter loops.")
@click.option("--top-layers", type=BoundedInt(0, 50, why="layers"), default=4, show_default=True, help="Solid layers at the top.")
@click.option("--bottom-layers", type=BoundedInt(0, 50, why="layers"), default=3, show_default=True, help="Solid layers at the bottom.")
@click.option("--infill-density", type=str, default="15%", show_default=True, callback=parse_fraction_option,
              help="Sparse infill density, 0.15 or 15%.")
@click.option("--infill-pattern", type=click.Choice(INFILL_PATTERNS), default="grid", show_default=True)
@click.option("--supports/--no-supports", default=False, show_default=True,
              help="Support under overhangs flatter than --support-angle.")
@click.option("--support-angle", type=FiniteFloat(0, 90, low_open=True, high_open=True, why="degrees from horizontal"),
              default=45.0, show_default=True,
              help="Down-facing surfaces flatter than this (degrees from horizontal) get support.")
@click.option("--brim", "brim_mm", type=FiniteFloat(0, MAX_BRIM_MM, why="mm"), default=0.0, show_default=True, help="Brim width in mm (0: skirt).")
@click.option("--orient", type=click.Choice(ORIENT_CHOICES), default="none", show_default=True,
              help="Auto-orient for least support or least height.")
@click.option("--scale", type=FiniteFloat(MIN_SCALE, MAX_SCALE, why="times life-size"), default=1.0, show_default=True, help="Scale factor (1 = life-size).")
@click.option("--profiles", "profiles_dir", type=click.Path(path_type=Path), default=None,
              help="Extra folder of *.toml profiles (also: $MEDPRINT_PROFILES).")
@click.option("--job-name", type=str, default=None,
              help="Order/job label for the G-code header (sanitised; do not put patient identifiers here).")
@click.option("--max-repair-move", "max_repair_move", type=FiniteFloat(0, 1000, why="mm"),
              default=DEFAULT_MAX_REPAIR_MOVE_MM, show_default=True,
              help="Refuse a mesh whose repair would move its surface more than this (mm).")
@click.option("--no-repair", is_flag=True, help="Refuse a mesh that is not watertight instead of repairing it.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def command(ctx: click.Context, mesh_path: Path, printer_name: str, material_name: str, output_path: Path,
            engine: str, layer_height: float | None, first_layer_height: float | None, perimeters: int,
            top_layers: int, bottom_layers: int, infill_density: float, infill_pattern: str, supports: bool,
            support_angle: float, brim_mm: float, orient: str, scale: float, profiles_dir: Path | None,
            job_name: str | None, max_repair_move: float, no_repair: bool, overwrite: bool, as_json: bool) -> None:
    """Slice MESH (.stl, .obj, .ply, .3mf; mm) into G-code for a printer and material."""
    if given(ctx, "support_angle") and not supports:
        raise click.UsageError("--support-angle goes with --supports; add --supports or drop it")
    library = load_profiles(profiles_dir)
    printer = library.printer(printer_name)
    material = library.material(material_name)
    settings = SliceSettings(
        layer_height_mm=layer_height, first_layer_height_mm=first_layer_height, perimeters=perimeters,
        top_layers=top_layers, bottom_layers=bottom_layers, infill_density=infill_density,
        infill_pattern=infill_pattern, supports=supports, support_angle_deg=support_angle, brim_width_mm=brim_mm,
        orient=orient, scale=scale, repair=not no_repair, max_repair_move_mm=max_repair_move, job_name=job_name,
    )
    # Profiles and options are checked before the mesh is read, so a typo costs nothing.
    check_compatible(printer, material)
    settings.validated(printer)
    with RunOutputs(overwrite=overwrite) as outputs:
        if os.path.realpath(output_path) == os.path.realpath(mesh_path):
            raise OutputError(f"-o/--output: {output_path} is the input MESH; give the G-code a file name of its own")
        outputs.reserve(output_path, "-o/--output")
        mesh = read_mesh_file(mesh_path)
        with progress_reporter(enabled=not as_json and not ctx.obj["quiet"]) as progress:
            result = slice_to_gcode(mesh, printer, material, settings, engine=engine, progress=progress)
        write_gcode(result, output_path, overwrite=overwrite)
        outputs.commit()
    summary = result.summary()
    summary["output"] = str(output_path)
    if as_json:
        click.echo(to_json(summary))
    elif not ctx.obj["quiet"]:
        hours, rest = divmod(int(result.estimated_time_s), 3600)
        click.echo(terminal_safe(
            f"{output_path}: {result.layer_count} layers, {hours}h {rest // 60:02d}m, "
            f"{result.filament_mm / 1000:.2f} m / {result.filament_g:.1f} g filament, "
            f"{result.filament_cost:.2f} {result.currency} ({result.engine}, {printer.name}, {material.name})"
        ))
