"""The ``design hollow`` job: a hollow vessel (or valve root) model of given wall thickness, open at its ends
(``medprint design hollow``, ``command = "design hollow"`` in an order)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..design.hollow import HollowSettings, design_hollow
from ..design.hollow_lumen import LumenSource, load_lumen
from ..design.part import Part
from ..design.run import DesignOutputs, run_design
from ..io.mesh_files import MESH_FORMATS
from ..mesh.model import Mesh
from ..segment import CT_PRESETS
from ..volume import Mask
from .deliver import (
    PART_DELIVERY,
    delivery_lines,
    extra_outputs,
    send_written,
    with_delivery_conflicts,
    written_by,
)
from .kinds import intensity_range, point
from .spec import (
    NO_REPORT,
    OVERWRITE,
    SHOW_PHI,
    Argument,
    Choice,
    Conflict,
    FilePath,
    JobRequest,
    JobResult,
    JobSpec,
    Number,
    Opt,
    Text,
    Whole,
    output_option,
)

OPTIONS = (
    output_option("Mesh to write: .stl, .obj, .ply or .3mf. A JSON report goes beside it."),
    Opt("wall", "wall_mm", Number(), "Wall thickness, mm.", default=1.5, show_default=True),
    Opt("side", "side", Choice(("outside", "inside")),
        "outside: the lumen keeps its size and the wall is added around it; inside: the wall is taken from the "
        "lumen.", default="outside", show_default=True),
    Opt("ends", "open_ends", Choice(("auto", "none")),
        "auto: open the vessel where its segmentation stops (scan border, flat cut face of the mask); none: only "
        "at --cut points.", default="auto", show_default=True),
    Opt("cut", "cuts", point("--cut"),
        "Open the vessel at this point on it (patient mm, LPS), square to its local centreline; the smaller side "
        "goes. Repeatable.", multiple=True),
    Opt("drain", "drain_mm", Number(),
        "Drain holes for resin printing, this diameter in mm (>= 2), at the lowest point of each pocket that would "
        "hold resin.", metavar="DIAMETER"),
    Opt("up", "up", point("--up"),
        "With --drain: the direction (LPS) that points up on the printer (default 0,0,1: superior).", multiple=True),
    Opt("resolution", "resolution_mm", Number(), "Working grid spacing, mm.", default=0.5, show_default=True),
    Opt("smooth", "smooth", Whole(0, 500, why="the filter has converged long before"),
        "Smoothing of the lumen's surface (each point moves at most half the coarsest voxel size).", default=20,
        show_default=True),
    Opt("labels", "labels_path", FilePath("input"),
        "A label map, DICOM SEG or RTSTRUCT on the scan MASK_OR_SCAN; pick the lumen with --label."),
    Opt("label", "label_name", Text(),
        "The lumen's label number or name (in --labels, or in MASK_OR_SCAN when it is a label map)."),
    Opt("labels-names", "labels_names", FilePath("input", fragment=True),
        "Names for label numbers: TotalSegmentator class map JSON, Slicer .seg.nrrd, text."),
    Opt("preset", "preset", Text(),
        f"MASK_OR_SCAN is a CT: the lumen by this preset ({', '.join(CT_PRESETS)}), largest body."),
    Opt("threshold", "threshold", intensity_range("--threshold"),
        "MASK_OR_SCAN is a scan: the lumen by this intensity range LO:HI, largest body."),
    Opt("seed", "seeds", point("--seed"),
        "MASK_OR_SCAN is a contrast CT: grow the vessel from this point (LPS mm), as convert --vessel.",
        multiple=True),
    Opt("range", "grow_range", intensity_range("--range"),
        "With --seed: the blood pool's intensity range (default: the blood-pool preset, 200:700 HU).",
        metavar="LO:HI"),
    *PART_DELIVERY,
    OVERWRITE,
    NO_REPORT,
    SHOW_PHI,
)


def check(request: JobRequest) -> list[Conflict]:
    """Every pair of options that do not go together, in the order the command has always reported them."""
    v = request.values
    conflicts = []
    sources = [name for name, value in (("labels", v["labels_path"]), ("preset", v["preset"]),
                                        ("threshold", v["threshold"]), ("seed", v["seeds"])) if value]
    if len(sources) > 1:
        conflicts.append(Conflict(f"{' and '.join('--' + name for name in sources)} each choose the lumen: give one",
                                  tuple(sources)))
    if len(v["up"]) > 1:
        conflicts.append(Conflict("--up is one direction X,Y,Z: give it once", ("up",)))
    if v["grow_range"] is not None and not v["seeds"]:
        conflicts.append(Conflict("--range goes with --seed X,Y,Z", ("range", "seed")))
    if v["labels_names"] is not None and v["label_name"] is None:
        conflicts.append(Conflict("--labels-names goes with --label NAME", ("labels-names", "label")))
    return conflicts


def run(request: JobRequest) -> JobResult:
    """Find the lumen, hollow it and write the model and its report (all or nothing)."""
    v = request.values
    input_path, output_path, show_phi = v["input_path"], v["output_path"], v["show_phi"]
    cuts, up = v["cuts"], (v["up"][0] if v["up"] else None)
    # The settings are checked before the input is read, so a typo costs nothing.
    settings = HollowSettings(wall_mm=v["wall_mm"], side=v["side"], open_ends=v["open_ends"], cuts_lps=cuts,
                              drain_mm=v["drain_mm"], up=up, resolution_mm=v["resolution_mm"],
                              smooth_iterations=v["smooth"])
    source = LumenSource(labels_path=v["labels_path"], label_name=v["label_name"], labels_names=v["labels_names"],
                         preset=v["preset"], threshold=v["threshold"], seeds=v["seeds"], grow_range=v["grow_range"])
    lumen, facts, steps = load_lumen(input_path, source, show_phi=show_phi)

    def make() -> Part:
        part = design_hollow(lumen, settings)
        return replace(part, choices=tuple(steps) + part.choices)

    parameters = {"wall_mm": v["wall_mm"], "side": v["side"], "open_ends": v["open_ends"],
                  "cuts_lps_mm": [list(c) for c in cuts], "drain_mm": v["drain_mm"],
                  "up": list(up) if up is not None else None, "resolution_mm": v["resolution_mm"],
                  "smooth_iterations": v["smooth"]}
    outputs = DesignOutputs(mesh=output_path, report=not v["no_report"], overwrite=v["overwrite"])
    scan_input = None if Path(input_path).suffix.lower() in MESH_FORMATS else input_path
    extras = extra_outputs(v, output_path, scan_input=scan_input)
    part, report = run_design(outputs, make, input_facts=facts, parameters=parameters, show_phi=show_phi,
                              input_path=input_path, order=request.order, extras=extras)
    sent = send_written(v, extras)
    return JobResult(outputs=outputs.files() + written_by(extras), report=report,
                     summary=(_summary(part, lumen, output_path, v["wall_mm"]),) + delivery_lines(extras) + sent)


def _summary(part: Part, lumen: Mask | Mesh, output_path: Path, wall_mm: float) -> str:
    measured = part.measurements
    wall = measured.get("wall_measured_mm", {})
    wall_text = f"wall {wall['median']:.2f} mm (asked {wall_mm:g})" if wall else f"wall {wall_mm:g} mm"
    name = lumen.label if isinstance(lumen, Mask) else lumen.name
    return (f"{output_path}: hollow {name}, {wall_text}, {len(measured['openings'])} open end(s), "
            f"{len(measured['drains'])} drain(s), {part.mesh.volume_mm3() / 1000:.1f} cm3, "
            f"{part.mesh.face_count} triangles")


def validate(request: JobRequest) -> list[Conflict]:
    """What :class:`HollowSettings` and the lumen's source refuse, found before the input is read (for orders)."""
    from .spec import settings_conflicts

    v = request.values
    return settings_conflicts(
        lambda: HollowSettings(wall_mm=v["wall_mm"], side=v["side"], open_ends=v["open_ends"], cuts_lps=v["cuts"],
                               drain_mm=v["drain_mm"], up=v["up"][0] if v["up"] else None,
                               resolution_mm=v["resolution_mm"], smooth_iterations=v["smooth"]),
        lambda: LumenSource(labels_path=v["labels_path"], label_name=v["label_name"],
                            labels_names=v["labels_names"], preset=v["preset"], threshold=v["threshold"],
                            seeds=v["seeds"], grow_range=v["grow_range"]))


SPEC = JobSpec(
    name="design hollow",
    help="Hollow a vessel's lumen into a printable model: a wall of --wall mm, open where the vessel leaves the "
         "scan or its segmentation, and at --cut points.\n\n"
         "MASK_OR_SCAN is a mask or label map (--label N|NAME when it holds several), a scan with --labels FILE "
         "--label NAME, --preset, --threshold or --seed, or a closed lumen surface (.stl, .obj, .ply, .3mf).",
    # MASK_OR_SCAN may also be a closed lumen surface (.stl/.obj/.ply/.3mf): a valve root or vessel from another tool.
    argument=Argument("input_path", "MASK_OR_SCAN"),
    options=OPTIONS,
    run=run,
    check=with_delivery_conflicts(check),
    validate=validate,
)
