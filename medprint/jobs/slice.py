"""The ``slice`` job: a mesh to printer-ready G-code (``medprint slice``, ``command = "slice"`` in an order)."""

from __future__ import annotations

import os
from typing import Any

from ..deliver.products import RunProducts
from ..errors import OutputError
from ..io.mesh_files import read_mesh_file
from ..io.outputs import RunOutputs
from ..review.types import Shown
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
from .deliver import (
    GCODE_DELIVERY,
    delivery_lines,
    extra_outputs,
    with_delivery_conflicts,
    written_by,
)
from .kinds import FRACTION
from .spec import (
    OVERWRITE,
    Argument,
    Choice,
    Conflict,
    FilePath,
    Flag,
    JobRequest,
    JobResult,
    JobSpec,
    Number,
    Opt,
    Text,
    Whole,
    output_option,
    settings_conflicts,
)

#: The option's own bound is loose; the printer profile's nozzle sets the real one (0.04 mm to 80 % of it).
_LAYER_WHY = "mm; the printer's nozzle sets the exact range"

OPTIONS = (
    Opt("printer", "printer_name", Text(), "Printer profile (see `medprint profiles list`).", required=True),
    Opt("material", "material_name", Text(), "Material profile (see `medprint profiles list`).", required=True),
    output_option("G-code file to write."),
    Opt("engine", "engine", Choice(ENGINES), "builtin (no external program) or prusaslicer (needs the prusa-slicer "
        "command).", default="builtin", show_default=True),
    Opt("layer-height", "layer_height", Number(0, 2, low_open=True, why=_LAYER_WHY),
        "Layer height in mm (default: the printer's)."),
    Opt("first-layer-height", "first_layer_height", Number(0, 2, low_open=True, why=_LAYER_WHY),
        "First layer height in mm."),
    Opt("perimeters", "perimeters", Whole(1, 20, why="loops"), "Perimeter loops.", default=2, show_default=True),
    Opt("top-layers", "top_layers", Whole(0, 50, why="layers"), "Solid layers at the top.", default=4,
        show_default=True),
    Opt("bottom-layers", "bottom_layers", Whole(0, 50, why="layers"), "Solid layers at the bottom.", default=3,
        show_default=True),
    Opt("infill-density", "infill_density", FRACTION, "Sparse infill density, 0.15 or 15%.", default=0.15,
        show_default=True),
    Opt("infill-pattern", "infill_pattern", Choice(INFILL_PATTERNS), "Sparse infill pattern.", default="grid",
        show_default=True),
    Opt("supports", "supports", Flag(), "Support under overhangs flatter than --support-angle.", default=False,
        secondary="no-supports", show_default=True),
    Opt("support-angle", "support_angle", Number(0, 90, low_open=True, high_open=True, why="degrees from horizontal"),
        "Down-facing surfaces flatter than this (degrees from horizontal) get support.", default=45.0,
        show_default=True),
    Opt("brim", "brim_mm", Number(0, MAX_BRIM_MM, why="mm"), "Brim width in mm (0: skirt).", default=0.0,
        show_default=True),
    Opt("orient", "orient", Choice(ORIENT_CHOICES), "Auto-orient for least support or least height.",
        default="none", show_default=True),
    Opt("scale", "scale", Number(MIN_SCALE, MAX_SCALE, why="times life-size"), "Scale factor (1 = life-size).",
        default=1.0, show_default=True),
    Opt("profiles", "profiles_dir", FilePath("input"), "Extra folder of *.toml profiles (also: $MEDPRINT_PROFILES)."),
    Opt("job-name", "job_name", Text(),
        "Order/job label for the G-code header (sanitised; do not put patient identifiers here)."),
    Opt("max-repair-move", "max_repair_move", Number(0, 1000, why="mm"),
        "Refuse a mesh whose repair would move its surface more than this (mm).", default=DEFAULT_MAX_REPAIR_MOVE_MM,
        show_default=True),
    Opt("no-repair", "no_repair", Flag(), "Refuse a mesh that is not watertight instead of repairing it.",
        default=False),
    *GCODE_DELIVERY,
    OVERWRITE,
)


def check(request: JobRequest) -> list[Conflict]:
    if request.was_given("support_angle") and not request["supports"]:
        return [Conflict("--support-angle goes with --supports; add --supports or drop it",
                         ("support-angle", "supports"))]
    return []


def validate(request: JobRequest) -> list[Conflict]:
    """What the run would refuse before reading the mesh: unknown printer or material, a pair that does not
    go together, settings the printer cannot take (each reported, not only the first)."""
    v = request.values
    found: dict[str, Any] = {}

    def library() -> None:
        found["library"] = load_profiles(v["profiles_dir"])

    def printer() -> None:
        if "library" in found:
            found["printer"] = found["library"].printer(v["printer_name"])

    def material() -> None:
        if "library" in found:
            found["material"] = found["library"].material(v["material_name"])

    def together() -> None:
        if "printer" in found and "material" in found:
            check_compatible(found["printer"], found["material"])
            slice_settings(v).validated(found["printer"])

    return settings_conflicts(library, fallback=("profiles",)) + \
        settings_conflicts(printer, fallback=("printer",)) + \
        settings_conflicts(material, fallback=("material",)) + \
        settings_conflicts(together, fallback=("printer", "material"))


def slice_settings(v: Any) -> SliceSettings:
    """The request's values as :class:`SliceSettings`."""
    return SliceSettings(
        layer_height_mm=v["layer_height"], first_layer_height_mm=v["first_layer_height"],
        perimeters=v["perimeters"], top_layers=v["top_layers"], bottom_layers=v["bottom_layers"],
        infill_density=v["infill_density"], infill_pattern=v["infill_pattern"], supports=v["supports"],
        support_angle_deg=v["support_angle"], brim_width_mm=v["brim_mm"], orient=v["orient"], scale=v["scale"],
        repair=not v["no_repair"], max_repair_move_mm=v["max_repair_move"], job_name=v["job_name"],
    )


def run(request: JobRequest) -> JobResult:
    """Slice the mesh; the G-code is written whole or not at all."""
    v = request.values
    library = load_profiles(v["profiles_dir"])
    printer = library.printer(v["printer_name"])
    material = library.material(v["material_name"])
    settings = slice_settings(v)
    # Profiles and options are checked before the mesh is read, so a typo costs nothing.
    check_compatible(printer, material)
    settings.validated(printer)
    mesh_path, output_path = v["mesh_path"], v["output_path"]
    extras = extra_outputs(v, output_path)
    with RunOutputs(overwrite=v["overwrite"]) as outputs:
        if os.path.realpath(output_path) == os.path.realpath(mesh_path):
            raise OutputError(f"-o/--output: {output_path} is the input MESH; give the G-code a file name of its own")
        outputs.reserve(output_path, "-o/--output")
        for extra in extras:
            extra.reserve(outputs)
        mesh = read_mesh_file(mesh_path)
        result = slice_to_gcode(mesh, printer, material, settings, engine=v["engine"], progress=request.progress)
        write_gcode(result, output_path, overwrite=v["overwrite"])
        summary = result.summary()
        summary["output"] = str(output_path)
        if request.order is not None:
            summary["order"] = dict(request.order)
        for extra in extras:
            extra.write(RunProducts(
                command="slice", main_output=output_path, report=summary, outputs=outputs,
                shown=(Shown(mesh_path.stem, mesh, (230, 120, 40)),), part_files={}, gcode_text="".join(result.chunks),
            ))
        outputs.commit()
    hours, rest = divmod(int(result.estimated_time_s), 3600)
    line = (f"{output_path}: {result.layer_count} layers, {hours}h {rest // 60:02d}m, "
            f"{result.filament_mm / 1000:.2f} m / {result.filament_g:.1f} g filament, "
            f"{result.filament_cost:.2f} {result.currency} ({result.engine}, {printer.name}, {material.name})")
    return JobResult(outputs=(output_path, *written_by(extras)), report=summary, summary=(line,) + delivery_lines(extras))


SPEC = JobSpec(
    name="slice",
    help="Slice MESH (.stl, .obj, .ply, .3mf; mm) into G-code for a printer and material.",
    argument=Argument("mesh_path", "MESH"),
    options=OPTIONS,
    run=run,
    check=with_delivery_conflicts(check),
    validate=validate,
)
