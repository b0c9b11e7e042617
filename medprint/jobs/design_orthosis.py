"""The ``design orthosis`` job: a splint or orthosis shell around the skin of a CT or a scanner's mesh
(``medprint design orthosis``, ``command = "design orthosis"`` in an order)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..design.orthosis import OPEN_SIDES, OrthosisSettings, design_orthosis
from ..design.part import Part
from ..design.run import DesignOutputs, describe_input, run_design
from ..io import load_volume
from ..io.mesh_files import MESH_FORMATS, read_mesh_file
from ..mesh.model import Mesh
from ..volume import Volume
from . import kinds
from .deliver import (
    PART_DELIVERY,
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
    Custom,
    FilePath,
    JobRequest,
    JobResult,
    JobSpec,
    Number,
    Opt,
    ValueProblem,
    output_option,
)

#: Sizes are checked by OrthosisSettings (one line, exit 1, as the API refuses them); the option only refuses NaN.
_SIZE = Number()


def _pair(example: str) -> Custom:
    """Two finite numbers ``A:B`` (or ``[A, B]`` in an order); ``example`` says what they are."""

    def finite_pair(numbers: tuple[float, ...], value: Any) -> tuple[float, float]:
        if len(numbers) != 2 or not all(math.isfinite(n) for n in numbers):
            raise ValueProblem(f"{value!r} is not {example}")
        return numbers[0], numbers[1]

    def from_text(text: str) -> tuple[float, float]:
        try:
            numbers = tuple(float(p) for p in text.split(":"))
        except ValueError:
            numbers = ()
        return finite_pair(numbers, text)

    def from_value(value: Any) -> tuple[float, float]:
        numbers = tuple(float(v) for v in value) if isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) else ()
        return finite_pair(numbers, value)

    return Custom(from_text, example.split()[0], parse_value=from_value,
                  format_value=lambda v: [float(v[0]), float(v[1])])


def _end(word: str) -> Custom:
    """A distance in mm along the limb's axis, or ``word`` (``start``/``end``): that end left uncut."""

    def finite(number: float, value: Any) -> float:
        if not math.isfinite(number):
            raise ValueProblem(f"{value!r} must be a finite number of mm")
        return number

    def from_text(text: str) -> float | str:
        if text.strip().lower() == word:
            return word
        try:
            number = float(text)
        except ValueError:
            raise ValueProblem(f"{text!r} is neither a distance in mm nor {word!r}") from None
        return finite(number, text)

    def from_value(value: Any) -> float | str:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueProblem(f"{value!r} is neither a distance in mm nor {word!r}")
        return finite(float(value), value)

    return Custom(from_text, f"MM|{word}", parse_value=from_value)


OPTIONS = (
    output_option("The orthosis mesh: .stl, .obj, .ply or .3mf. A JSON report goes beside it."),
    Opt("gap", "gap_mm", _SIZE, "Padding between the skin and the shell, mm (>= 0).", required=True),
    Opt("thickness", "thickness_mm", _SIZE, "Shell thickness, mm (> 0).", required=True),
    Opt("from", "from_mm", _end("start"),
        "First cutting plane: distance along the limb's axis from its start (or 'start': uncut)."),
    Opt("to", "to_mm", _end("end"),
        "Second cutting plane: distance along the axis (or 'end': uncut, e.g. the top of a helmet)."),
    Opt("start", "start_point", kinds.point("--start"),
        "First cutting plane through this LPS point (across the axis), instead of --from."),
    Opt("end", "end_point", kinds.point("--end"), "Second cutting plane through this LPS point, instead of --to."),
    Opt("axis", "axis", kinds.point("--axis"),
        "The limb's direction (LPS) instead of the estimated one, e.g. 0,0,1 for a head."),
    Opt("keep-angle", "keep_angle", _pair("FROM:TO degrees, e.g. 45:315"),
        "Keep the shell from FROM to TO degrees counter-clockwise about the axis (0: patient anterior projected on "
        "the cross-section)."),
    Opt("open-side", "open_side", Choice(OPEN_SIDES), "Open this side of the limb (keep the opposite half)."),
    Opt("holes", "holes", _pair("DIAMETER:SPACING in mm, e.g. 6:15"),
        "Ventilation holes: diameter and centre-to-centre spacing, mm."),
    Opt("hole-margin", "hole_margin_mm", _SIZE, "Smallest distance from a hole to any edge of the shell, mm.",
        default=3.0, show_default=True),
    Opt("edge-radius", "edge_radius_mm", _SIZE,
        "Round the shell's edges to this radius, mm (at most half the thickness).", default=0.0, show_default=True),
    Opt("resolution", "resolution_mm", Number(0.05, 2.0, why="mm"),
        "Working grid spacing, mm (default 0.5, finer for thin walls and small holes)."),
    Opt("fit", "fit_3mf", FilePath("output"),
        "Also write a 3MF with the orthosis and the skin as two coloured parts, for a fit check."),
    *PART_DELIVERY,
    OVERWRITE,
    NO_REPORT,
    SHOW_PHI,
)


def check(request: JobRequest) -> list[Conflict]:
    """No usage errors beyond each option's own: options that do not go together (``--from`` with ``--start``,
    ``--keep-angle`` with ``--open-side``) are :class:`OrthosisSettings`' refusals, one line and exit 1, the
    same for the API, the command and an order."""
    return []


def orthosis_settings(request: JobRequest) -> OrthosisSettings:
    """The request's options as :class:`OrthosisSettings` (which refuses sizes out of range and options that
    do not go together, naming them)."""
    v = request.values
    diameter, spacing = v["holes"] if v["holes"] is not None else (0.0, 0.0)
    return OrthosisSettings(
        gap_mm=v["gap_mm"], thickness_mm=v["thickness_mm"], from_mm=v["from_mm"], to_mm=v["to_mm"],
        start_point=v["start_point"], end_point=v["end_point"], axis=v["axis"], keep_angle_deg=v["keep_angle"],
        open_side=v["open_side"], hole_diameter_mm=diameter, hole_spacing_mm=spacing,
        hole_margin_mm=v["hole_margin_mm"], edge_radius_mm=v["edge_radius_mm"], resolution_mm=v["resolution_mm"],
    )


def load_limb(path: Path) -> Volume | Mesh:
    """What an orthosis is built around: a surface mesh from a 3-D scanner (by its suffix), or else a CT."""
    if Path(path).suffix.lower() in MESH_FORMATS:
        return read_mesh_file(path)
    return load_volume(path)


def run(request: JobRequest) -> JobResult:
    """Design the orthosis; every file is written, or none."""
    v = request.values
    settings = orthosis_settings(request)  # before the input is read, so a typo costs nothing
    source = load_limb(v["input_path"])
    scan = source if isinstance(source, Volume) else None
    extras = extra_outputs(v, v["output_path"], scan_input=v["input_path"] if scan is not None else None)
    outputs = DesignOutputs(mesh=v["output_path"], report=not v["no_report"], fit_3mf=v["fit_3mf"],
                            overwrite=v["overwrite"])
    part, report = run_design(outputs, lambda: design_orthosis(source, settings),
                              input_facts=describe_input(source, path=v["input_path"], show_phi=v["show_phi"]),
                              parameters=settings, show_phi=v["show_phi"], input_path=v["input_path"],
                              order=request.order, extras=extras, scan=scan)
    sent = send_written(v, extras)
    return JobResult(outputs=outputs.files() + written_by(extras), report=report,
                     summary=(summary(outputs.mesh, part),) + delivery_lines(extras) + sent)


def summary(path: Path, part: Part) -> str:
    """One line: the file, its size and what was measured."""
    m = part.measurements
    holes = m["holes"]["placed"]
    return (f"{path}: orthosis, {part.mesh.face_count:,} triangles, 1 body, watertight, "
            f"{m['volume_mm3'] / 1000:.1f} cm3; gap {m['gap_mm'].get('median', float('nan')):.2f} mm, thickness "
            f"{m['thickness_mm'].get('median', float('nan')):.2f} mm, {m['angle']['covered_deg']} degrees covered"
            + (f", {holes} holes" if holes else ""))


def validate(request: JobRequest) -> list[Conflict]:
    """What :class:`OrthosisSettings` refuses, found before the input is read (for orders)."""
    from .spec import every_refusal

    return every_refusal(orthosis_settings, request, OPTIONS)


SPEC = JobSpec(
    name="design orthosis",
    help="Design a splint or orthosis around the skin of INPUT (a CT, or a closed surface mesh from a 3-D scanner).",
    argument=Argument("input_path", "INPUT"),
    options=OPTIONS,
    run=run,
    check=with_delivery_conflicts(check),
    validate=validate,
)
