"""The ``design label`` job: emboss or engrave text (an order id, a side marker, a date) on a part
(``medprint design label``, ``command = "design label"`` in an order)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
from ..design.part import Part
from ..design.run import DesignOutputs, describe_input, run_design
from ..errors import OutputError
from ..io.mesh_files import read_mesh_file
from .deliver import (
    PART_DELIVERY,
    delivery_lines,
    extra_outputs,
    send_written,
    with_delivery_conflicts,
    written_by,
)
from .kinds import point
from .spec import (
    NO_REPORT,
    OVERWRITE,
    SHOW_PHI,
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
    output_option,
)

OPTIONS = (
    Opt("text", "text", Text(), "The text: printable ASCII and °±µ×·–—→←↑↓ (an order id, L/R, a date; no patient "
        "names).", required=True),
    output_option("Labelled mesh to write (.stl, .obj, .ply, .3mf). A JSON report goes beside it."),
    Opt("at", "at_lps", point("--at"),
        "Centre of the label: a point on or near the surface (LPS mm, within 5 mm). Default: the flattest spot "
        "found.", multiple=True),
    Opt("up", "up_lps", point("--up"),
        "The text's up direction (LPS), projected onto the surface. Default: the patient's superior axis "
        "(anterior where the surface faces up or down).", multiple=True),
    Opt("size", "size_mm", Number(0, MAX_SIZE_MM, low_open=True, why="mm, capital height"),
        "Character (capital) height in mm.", default=DEFAULT_SIZE_MM, show_default=True),
    Opt("height", "height_mm", Number(0, MAX_RELIEF_MM, low_open=True, why="mm"),
        f"Emboss: raised letters this high (mm; default {DEFAULT_HEIGHT_MM:g})."),
    Opt("depth", "depth_mm", Number(0, MAX_RELIEF_MM, low_open=True, why="mm"),
        f"Engrave: letters cut this deep (mm; {DEFAULT_DEPTH_MM:g} is usual) instead of embossing."),
    Opt("font", "font", Choice(tuple(FONTS)), "DejaVu Sans Bold or regular (shipped with matplotlib).",
        default="bold", show_default=True),
    Opt("printer", "printer_name", Text(),
        "Printer profile whose line width is the thinnest stroke allowed (medprint profiles list)."),
    Opt("profiles", "profiles_dir", FilePath("input"), "With --printer: a folder of extra printer profiles."),
    Opt("thicken", "thicken", Flag(),
        "With --printer: widen strokes thinner than the line instead of refusing the text.", default=False),
    Opt("flatness", "flatness_mm", Number(0, 50, low_open=True, why="mm"),
        "How far the surface under the label may depart from its plane (mm; default 15 % of the label's half "
        "diagonal, at least 1)."),
    Opt("max-repair-move", "max_repair_move", Number(0, 100, why="mm"),
        "A mesh with holes is closed only if that moves its surface at most this far (mm).",
        default=DEFAULT_MAX_REPAIR_MOVE_MM, show_default=True),
    *PART_DELIVERY,
    OVERWRITE,
    NO_REPORT,
    SHOW_PHI,
)


def check(request: JobRequest) -> list[Conflict]:
    """Every pair of options that do not go together, in the order the command has always reported them."""
    v = request.values
    conflicts = []
    if v["height_mm"] is not None and v["depth_mm"] is not None:
        conflicts.append(Conflict("--height (emboss) and --depth (engrave) contradict each other; give one",
                                  ("height", "depth")))
    for name, points in (("at", v["at_lps"]), ("up", v["up_lps"])):
        if len(points) > 1:
            conflicts.append(Conflict(f"--{name} is given {len(points)} times; give it once", (name,)))
    if (v["thicken"] or v["profiles_dir"] is not None) and v["printer_name"] is None:
        conflicts.append(Conflict("--thicken and --profiles go with --printer NAME", ("thicken", "profiles", "printer")))
    return conflicts


def label_settings(values: Mapping[str, Any]) -> LabelSettings:
    """The label's settings from the job's values; the printer profile (if any) sets the thinnest stroke."""
    min_stroke, stroke_source = 0.0, "minimum stroke"
    if values["printer_name"] is not None:
        from ..slice.profiles import load_profiles

        printer = load_profiles(values["profiles_dir"]).printer(values["printer_name"])
        min_stroke, stroke_source = printer.line_width_mm, f"{printer.name} line width"
    depth_mm, height_mm = values["depth_mm"], values["height_mm"]
    relief_mm = depth_mm if depth_mm is not None else height_mm if height_mm is not None else DEFAULT_HEIGHT_MM
    at_lps, up_lps = values["at_lps"], values["up_lps"]
    return LabelSettings(
        text=values["text"], mode="engrave" if depth_mm is not None else "emboss", relief_mm=relief_mm,
        size_mm=values["size_mm"], at_lps=at_lps[0] if at_lps else None, up_lps=up_lps[0] if up_lps else None,
        min_stroke_mm=min_stroke, stroke_source=stroke_source, thicken=values["thicken"], font=values["font"],
        flatness_mm=values["flatness_mm"], max_repair_move_mm=values["max_repair_move"],
    )


def run(request: JobRequest) -> JobResult:
    """Label the part and write it with its report (all or nothing)."""
    v = request.values
    mesh_path, output_path, show_phi = v["mesh_path"], v["output_path"], v["show_phi"]
    # The settings (and the printer profile) are checked before the mesh is read, so a typo costs nothing.
    settings = label_settings(v)
    if os.path.realpath(output_path) == os.path.realpath(mesh_path):
        raise OutputError(f"-o/--output: {output_path} is the input MESH; give the labelled part a file name of "
                          "its own")
    mesh = read_mesh_file(mesh_path)
    parameters = {
        "text": settings.text, "mode": settings.mode, "relief_mm": settings.relief_mm, "size_mm": settings.size_mm,
        "at_lps": list(settings.at_lps) if settings.at_lps else None,
        "up_lps": list(settings.up_lps) if settings.up_lps else None, "font": settings.font,
        "printer": v["printer_name"], "min_stroke_mm": settings.min_stroke_mm, "thicken": settings.thicken,
        "flatness_mm": settings.flatness_mm, "max_repair_move_mm": settings.max_repair_move_mm,
    }
    outputs = DesignOutputs(mesh=output_path, report=not v["no_report"], overwrite=v["overwrite"])
    extras = extra_outputs(v, output_path)
    part, report = run_design(outputs, lambda: label_part(mesh, settings),
                              input_facts=describe_input(mesh, path=mesh_path, show_phi=show_phi),
                              parameters=parameters, show_phi=show_phi, input_path=mesh_path, order=request.order,
                              extras=extras)
    sent = send_written(v, extras)
    return JobResult(outputs=outputs.files() + written_by(extras), report=report,
                     summary=(_summary(part, report, settings, output_path),) + delivery_lines(extras) + sent)


def _summary(part: Part, report: Mapping[str, Any], settings: LabelSettings, output_path: Path) -> str:
    measured = part.measurements
    centre = ",".join(f"{c:.1f}" for c in measured["placement"]["centre_lps"])
    verb = "embossed" if settings.mode == "emboss" else "engraved"
    bodies = report["mesh"]["bodies"]
    return (f"{output_path}: {settings.text!r} {verb} {measured['relief_measured_mm']:.2f} mm, capitals "
            f"{settings.size_mm:g} mm, {measured['footprint_mm'][0]:.1f} x {measured['footprint_mm'][1]:.1f} mm at "
            f"{centre} (LPS), {report['mesh']['triangles']:,} triangles, watertight, {bodies} body"
            + ("" if bodies == 1 else "s"))


def validate(request: JobRequest) -> list[Conflict]:
    """What :class:`LabelSettings` (and the printer profile) refuse, found before the mesh is read (for orders)."""
    from .spec import every_refusal

    return every_refusal(lambda r: label_settings(r.values), request, OPTIONS)


SPEC = JobSpec(
    name="design label",
    help="Emboss or engrave TEXT on the closed surface MESH (mm, LPS), where asked or at a flat spot.",
    argument=Argument("mesh_path", "MESH"),
    options=OPTIONS,
    run=run,
    check=with_delivery_conflicts(check),
    validate=validate,
)
