"""The ``design implant`` job: the cranial implant that fills a skull defect, from a CT (``medprint design
implant``, ``command = "design implant"`` in an order)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..design.implant import (
    DEFAULT_GAP_MM,
    DEFAULT_MIN_WALL_MM,
    MAX_GAP_MM,
    MAX_MIN_WALL_MM,
    MAX_RESOLUTION_MM,
    MAX_THICKNESS_MM,
    METHODS,
    MIN_RESOLUTION_MM,
    ImplantSettings,
    design_implant,
)
from ..design.run import DesignOutputs, describe_input, run_design
from ..io import load_volume
from ..segment import CT_PRESETS
from . import kinds
from .deliver import (
    SCAN_DELIVERY,
    delivery_lines,
    extra_outputs,
    send_written,
    with_delivery_conflicts,
    written_by,
)
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
    output_option,
)

#: Millimetres whose range ImplantSettings checks (one line, exit 1, as a design refusal), so the library, the
#: command and an order refuse the same values with the same words; the option itself only refuses NaN.
_MM = Number()

OPTIONS = (
    output_option("Implant mesh to write (.stl, .obj, .ply, .3mf); a JSON report goes beside it."),
    Opt("near", "near", kinds.point("--near"),
        "A point in or at the edge of the defect (patient mm, LPS). Default: the largest defect found in the vault.",
        multiple=True),
    Opt("plane", "plane", kinds.plane("--plane"),
        "The mid-sagittal plane (a point and its normal, LPS). Default: estimated by registering the skull to its "
        "mirror image."),
    Opt("thickness", "thickness_mm", _MM,
        f"Implant thickness in mm (at most {MAX_THICKNESS_MM:g}). Default: follow the surrounding bone (both tables "
        "reconstructed).", metavar="MM"),
    Opt("gap", "gap_mm", _MM,
        f"Clearance to the skull at the rim in mm (> 0 a gap, < 0 an overlap, 0 the exact missing bone; "
        f"|gap| <= {MAX_GAP_MM:g}).", default=DEFAULT_GAP_MM, show_default=True, metavar="MM"),
    Opt("method", "method", Choice(METHODS),
        "mirror: the healthy side mirrored; rim: tables interpolated from the defect's rim; auto: mirror unless the "
        "defect crosses the mid-sagittal plane or its mirror image is not bone.", default="auto", show_default=True),
    Opt("solid", "solid", Flag(), "Fill between the tables (no frontal sinus carried across the defect).",
        default=False),
    Opt("min-wall", "min_wall_mm", _MM,
        f"Thinnest wall the implant may have anywhere, rim and sinus skins included, in mm (at most "
        f"{MAX_MIN_WALL_MM:g}); {DEFAULT_MIN_WALL_MM:g} mm is a printable bone-implant wall. The implant is opened "
        "by a ball of this diameter; its measured thinnest wall is in the report.", default=DEFAULT_MIN_WALL_MM,
        show_default=True, metavar="MM"),
    Opt("resolution", "resolution_mm", _MM,
        f"Working grid spacing in mm ({MIN_RESOLUTION_MM:g}..{MAX_RESOLUTION_MM:g}).", default=0.5,
        show_default=True, metavar="MM"),
    Opt("preset", "preset", Choice(tuple(sorted(CT_PRESETS))), "Bone threshold preset.", default="bone",
        show_default=True),
    Opt("threshold", "threshold", kinds.intensity_range("--threshold"),
        "Bone range LO:HI in the scan's units instead of the preset."),
    Opt("fit", "fit_path", FilePath("output"),
        "Also write the skull and the implant as two coloured objects in one 3MF (a fit check)."),
    Opt("rim", "rim_path", FilePath("output"), "Also write the defect's rim as a thin band on the outer table."),
    *SCAN_DELIVERY,
    OVERWRITE,
    NO_REPORT,
    SHOW_PHI,
)


def check(request: JobRequest) -> list[Conflict]:
    """Usage errors found before any file is read (every one, not only the first)."""
    conflicts = []
    if len(request["near"]) > 1:
        # Worded as click words a bad value, as the command has always said it.
        conflicts.append(Conflict("Invalid value for --near: give one point in the defect", ("near",)))
    return conflicts


def implant_settings(request: JobRequest) -> ImplantSettings:
    """The request's options as :class:`ImplantSettings` (which refuses values out of range, naming the option)."""
    v = request.values
    near = v["near"]
    return ImplantSettings(near=near[0] if near else None, plane=v["plane"], thickness_mm=v["thickness_mm"],
                           rim_gap_mm=v["gap_mm"], resolution_mm=v["resolution_mm"], preset=v["preset"],
                           threshold=v["threshold"], method=v["method"], solid=v["solid"],
                           min_wall_mm=v["min_wall_mm"])


def implant_outputs(request: JobRequest) -> DesignOutputs:
    """The files the request asks for: the implant, its report, and the fit check and rim when given."""
    v = request.values
    return DesignOutputs(mesh=v["output_path"], report=not v["no_report"], overwrite=v["overwrite"],
                         fit_3mf=v["fit_path"], extras={"rim": v["rim_path"]} if v["rim_path"] is not None else {})


def run(request: JobRequest) -> JobResult:
    """Design the implant; every file is written, or none."""
    settings = implant_settings(request)  # before the scan is read, so a typo costs nothing
    outputs = implant_outputs(request)
    input_path, show_phi = request["input_path"], request["show_phi"]
    extras = extra_outputs(request.values, outputs.mesh, scan_input=input_path)
    volume = load_volume(input_path)
    part, report = run_design(outputs, lambda: design_implant(volume, settings),
                              input_facts=describe_input(volume, path=input_path, show_phi=show_phi),
                              parameters=asdict(settings), show_phi=show_phi, input_path=input_path,
                              order=request.order, extras=extras, scan=volume)
    m = part.measurements
    line = (f"{outputs.mesh}: implant by {m['method']}, defect {m['defect_diameter_mm']:.0f} mm across, "
            f"{m['implant_volume_mm3'] / 1000:.1f} cm3, thinnest wall {_wall_text(m['min_wall_mm'])}, "
            f"{part.mesh.face_count:,} triangles, watertight")
    sent = send_written(request.values, extras)
    return JobResult(outputs=outputs.files() + written_by(extras), report=report,
                     summary=(line,) + delivery_lines(extras) + sent)


def _wall_text(wall: dict[str, Any]) -> str:
    measured = wall.get("measured")
    return "not measured" if measured is None else f"{measured:.2f} mm (asked {wall['asked']:g})"


def validate(request: JobRequest) -> list[Conflict]:
    """What :class:`ImplantSettings` refuses, found before the scan is read (for orders)."""
    from .spec import every_refusal

    return every_refusal(implant_settings, request, OPTIONS)


SPEC = JobSpec(
    name="design implant",
    help="Design the cranial implant that fills a skull defect in CT.",
    argument=Argument("input_path", "CT"),
    options=OPTIONS,
    run=run,
    check=with_delivery_conflicts(check),
    validate=validate,
)
