"""The ``convert`` job: a scan to a printable mesh in one step (``medprint convert``, ``command = "convert"``).

The options are those ``medprint convert`` has always had (same names, defaults and bounds); :func:`check`
lists every pair that contradicts itself, :func:`run` builds the pipeline's settings and calls
:func:`~medprint.pipeline.convert_scan`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from ..pipeline import (
    MAX_DEVIATION_MM,
    MAX_SMOOTH_ITERATIONS,
    ConvertResult,
    GcodeRequest,
    LabelSettings,
    LoadSettings,
    MriPreparation,
    SeedSettings,
    SurfaceSettings,
    convert_scan,
)
from ..report import summary_line
from ..segment import (
    CT_PRESETS,
    FalseLumen,
    MriSettings,
    RegionGrowingSettings,
    SegmentationSettings,
    VesselSettings,
)
from ..segment.checks import MAX_RADIUS_MM, MAX_VOLUME_MM3
from ..segment.mri import AUTO_METHODS, DENOISE_METHODS
from ..slice.engine import ENGINES, SliceSettings
from .deliver import (
    SCAN_DELIVERY,
    delivery_lines,
    extra_outputs,
    send_written,
    with_delivery_conflicts,
)
from .kinds import DECIMATE, intensity_range, percentiles, point, points_path
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
    Whole,
    option_flag,
    output_option,
)
from .typed import typed_values

#: Why the radii stop at MAX_RADIUS_MM, said in the error.
_RADIUS_WHY = "mm; a larger ball merges whole organs"

OPTIONS = (
    output_option("Mesh to write: .stl (default binary), .obj, .ply or .3mf. A JSON report goes beside it."),
    Opt("preset", "preset", Text(), f"CT threshold preset: {', '.join(CT_PRESETS)}. Default: bone, for CT."),
    Opt("threshold", "threshold", intensity_range("--threshold"),
        "Intensity range LO:HI in the scan's units (HU for CT), e.g. 226:3071."),
    Opt("seed", "seeds_lps", point("--seed"),
        "Grow a part from this point in patient mm (LPS, as a viewer shows it); repeatable.", multiple=True),
    Opt("seed-voxel", "seeds_voxel", point("--seed-voxel"),
        "Grow a part from this voxel (column, row, slice); repeatable.", multiple=True, metavar="I,J,K"),
    Opt("range", "grow_range", intensity_range("--range"),
        "With seeds: the intensity range to grow in (default: estimated around the seeds)."),
    Opt("vessel", "vessel", Flag(), "With seeds: grow one contrast-filled vessel tree (blood-pool range unless "
        "--range).", default=False),
    Opt("tube", "tube_factor", Number(1, 5, why="local vessel radii; 1.3-1.5 is usual"),
        "With --vessel: seeds are clicks in order along one vessel; keep the lumen within this factor of the local "
        "radius around the path through them (1.3-1.5), cut flat at the first and last."),
    Opt("branch", "branch_paths", points_path("--branch"),
        "With --tube: a side branch to keep, as clicks in order (patient mm, LPS) separated by ';', the first on "
        "the vessel where the branch leaves it; repeatable, one option per branch.", multiple=True),
    Opt("false-lumen", "false_lumen_lps", point("--false-lumen"),
        "With --tube: clicks in order along a dissection's false lumen (patient mm, LPS), traced as a second tube "
        "and joined to the first; repeatable.", multiple=True),
    Opt("false-lumen-range", "false_lumen_range", intensity_range("--false-lumen-range"),
        "With --false-lumen: its intensity range (default: the true lumen's); lower it under the clot's values for "
        "a thrombosed false lumen, e.g. 100:3000."),
    Opt("max-radius", "max_radius", Number(0, MAX_RADIUS_MM, why=_RADIUS_WHY),
        "With seeds: cut bridges thinner than this radius in mm (default 6, vessels 2)."),
    Opt("max-volume", "max_volume", Number(0, MAX_VOLUME_MM3, low_open=True, why="mm3"),
        "With seeds: stop with an error past this many mm3 (leak guard; default a quarter of the scan)."),
    Opt("allow-border", "allow_border", Flag(), "With seeds: let the region reach the edge of the scan.",
        default=False),
    Opt("auto-threshold", "auto_threshold", Choice(AUTO_METHODS),
        "MRI: threshold found automatically (Otsu, or --percentile of the foreground)."),
    Opt("percentile", "percentile", percentiles("--percentile"),
        "With --auto-threshold percentile: foreground percentiles to keep, e.g. 50:100."),
    Opt("bias-correction", "bias_correction", Flag(), "MRI: correct the bias field (N4) before segmenting.",
        default=False),
    Opt("denoise", "denoise", Choice(DENOISE_METHODS), "Edge-preserving denoising before segmenting."),
    Opt("labels", "labels_path", FilePath("input"),
        "Print parts from an existing segmentation: label map (NIfTI/NRRD/MHA), DICOM SEG or RTSTRUCT."),
    Opt("label", "label_names", Text(),
        "With --labels: a label number or name to print (repeatable; default all), one part each.", multiple=True),
    Opt("labels-names", "labels_names", FilePath("input", fragment=True),
        "Names for label numbers: TotalSegmentator class map JSON (FILE#map), Slicer .seg.nrrd, text."),
    Opt("force-geometry", "force_geometry", Flag(),
        "Accept a SEG/RTSTRUCT that references another series than the one loaded.", default=False),
    Opt("3mf", "combined_3mf", FilePath("output"),
        "Also write all parts into one 3MF as named, coloured objects (multi-material printing)."),
    Opt("gcode", "gcode_path", FilePath("output"),
        "Also slice the mesh to this G-code file (needs --printer and --material)."),
    Opt("printer", "printer_name", Text(), "With --gcode: printer profile (medprint profiles list)."),
    Opt("material", "material_name", Text(), "With --gcode: material profile."),
    Opt("supports", "supports", Flag(), "With --gcode: support overhangs.", default=False, secondary="no-supports",
        show_default=True),
    Opt("engine", "engine", Choice(ENGINES), "With --gcode: built-in slicer or the prusa-slicer program.",
        default="builtin", show_default=True),
    Opt("profiles", "profiles_dir", FilePath("input"), "With --gcode: a folder of extra printer/material profiles."),
    Opt("series", "series", Text(), "Series number (as `medprint info` shows) or UID."),
    Opt("modality", "modality", Choice(("CT", "MR"), case_sensitive=False),
        "Override the modality for NIfTI/NRRD/MHA, which do not store it."),
    Opt("allow-gaps", "allow_gaps", Flag(), "Accept DICOM series with missing slices.", default=False),
    Opt("non-finite", "non_finite", Number(why="a number the voxel type can hold"),
        "All formats: the value NaN and infinite voxels stand for (default: refuse such scans).", metavar="VALUE"),
    Opt("keep", "keep", Choice(("auto", "largest", "all")),
        "Which bodies to keep; auto keeps the largest for bone (drops table, head holder).", default="auto",
        show_default=True),
    Opt("min-component", "min_component", Number(0, MAX_VOLUME_MM3, why="mm3"),
        "With --keep all: drop bodies smaller than this many mm3.", default=0.0, show_default=True),
    Opt("fill-cavities", "fill_cavities", Flag(), "Fill enclosed cavities (solid model).", default=False),
    Opt("close", "close_radius", Number(0, MAX_RADIUS_MM, why=_RADIUS_WHY),
        "Morphological closing radius in mm (bridges small gaps).", default=0.0, show_default=True),
    Opt("open", "open_radius", Number(0, MAX_RADIUS_MM, why=_RADIUS_WHY),
        "Morphological opening radius in mm (cuts thin bridges).", default=0.0, show_default=True),
    Opt("smooth", "smooth", Whole(0, MAX_SMOOTH_ITERATIONS, why="the filter has converged long before"),
        "Smoothing iterations (windowed sinc, volume-preserving); 0 = none.", default=20, show_default=True),
    Opt("max-deviation", "max_deviation", Number(0, MAX_DEVIATION_MM, low_open=True, why="mm"),
        "Most that smoothing + decimation may move the surface, mm. Default: half the smallest voxel."),
    Opt("decimate", "decimate", DECIMATE,
        "Reduce triangles: a fraction to keep (0.25 or 25%) or a triangle count."),
    Opt("ascii", "ascii_stl", Flag(), "Write ASCII STL instead of binary.", default=False),
    *SCAN_DELIVERY,
    OVERWRITE,
    NO_REPORT,
    SHOW_PHI,
)

#: ``--printer`` & co. only mean something when slicing (``--gcode``).
_SLICING = (("printer_name", "printer"), ("material_name", "material"), ("supports", "supports"),
            ("engine", "engine"), ("profiles_dir", "profiles"))
#: What only region growing uses, refused without a seed.
_GROWING = ("grow_range", "vessel", "max_radius", "max_volume", "allow_border")


def check(request: JobRequest) -> list[Conflict]:
    """Every pair of options that contradicts itself, in the order ``medprint convert`` has always checked them
    (the CLI shows the first; a usage error, exit 2)."""
    v = request.values
    conflicts: list[Conflict] = []

    def refuse(message: str, *names: str) -> None:
        conflicts.append(Conflict(message, names))

    if v["preset"] is not None and v["threshold"] is not None:
        # The threshold would silently replace the preset's range, and the report would name both.
        refuse("--preset and --threshold contradict each other: give a preset name or LO:HI, not both",
               "preset", "threshold")
    if request.was_given("min_component") and v["keep"] == "largest":
        refuse("--min-component goes with --keep all (or auto); --keep largest keeps one body anyway",
               "min-component", "keep")
    if v["percentile"] is not None and v["auto_threshold"] != "percentile":
        refuse("--percentile goes with --auto-threshold percentile", "percentile", "auto-threshold")
    output = v["output_path"]
    if request.was_given("ascii_stl") and output is not None and Path(output).suffix.lower() != ".stl":
        suffix = Path(output).suffix or "without suffix"
        refuse(f"--ascii writes ASCII STL, but -o/--output is {suffix}; drop --ascii or write .stl", "ascii", "output")
    if v["gcode_path"] is None:
        alone = [name for dest, name in _SLICING if request.was_given(dest)]
        if alone:
            verb = "goes" if len(alone) == 1 else "go"
            refuse(f"{', '.join(map(option_flag, alone))} {verb} with --gcode FILE (slicing); add --gcode or drop it",
                   *alone, "gcode")
    conflicts += _vessel_conflicts(request)
    if not v["seeds_lps"] and not v["seeds_voxel"] and _growing(v):
        refuse("--range, --vessel, --max-radius, --max-volume and --allow-border go with --seed",
               *(_name(dest) for dest in _GROWING if _growing(v, dest)), "seed")
    if v["gcode_path"] is not None and (not v["printer_name"] or not v["material_name"]):
        refuse("--gcode needs --printer NAME and --material NAME (see `medprint profiles list`)",
               "gcode", "printer", "material")
    if (v["label_names"] or v["labels_names"] or v["force_geometry"]) and v["labels_path"] is None:
        named = [name for dest, name in (("label_names", "label"), ("labels_names", "labels-names"),
                                         ("force_geometry", "force-geometry")) if v[dest]]
        refuse("--label, --labels-names and --force-geometry go with --labels FILE", *named, "labels")
    return conflicts


def _vessel_conflicts(request: JobRequest) -> list[Conflict]:
    v = request.values
    conflicts = []
    tube = v["tube_factor"]
    if tube is not None and not v["vessel"]:
        conflicts.append(Conflict("--tube goes with --vessel", ("tube", "vessel")))
    if tube is not None and v["max_radius"] is not None:
        conflicts.append(Conflict("--max-radius is not used with --tube (the tube replaces the opening); drop one",
                                  ("max-radius", "tube")))
    tube_only = [name for dest, name in (("branch_paths", "branch"), ("false_lumen_lps", "false-lumen"),
                                         ("false_lumen_range", "false-lumen-range")) if v[dest]]
    if tube_only and tube is None:
        conflicts.append(Conflict("--branch, --false-lumen and --false-lumen-range go with --vessel --tube",
                                  (*tube_only, "tube", "vessel")))
    if v["false_lumen_range"] and not v["false_lumen_lps"]:
        conflicts.append(Conflict("--false-lumen-range goes with --false-lumen X,Y,Z clicks",
                                  ("false-lumen-range", "false-lumen")))
    return conflicts


def _growing(values: Any, dest: str | None = None) -> bool:
    """Whether a region-growing option (``dest``, or any) is set."""
    dests = _GROWING if dest is None else (dest,)
    return any(values[d] is not None if d in ("max_radius", "max_volume") else bool(values[d]) for d in dests)


def _name(dest: str) -> str:
    for opt in OPTIONS:
        if opt.dest == dest:
            return opt.name
    raise KeyError(dest)


def validate(request: JobRequest) -> list[Conflict]:
    """What the run's settings refuse before the scan is read (for orders): the segmentation, surface, seed
    and MRI settings, and the printer and material of ``--gcode``."""
    from .spec import settings_conflicts

    v = request.values

    def profiles() -> None:
        if v["gcode_path"] is not None:
            from ..slice.profiles import check_compatible, load_profiles

            library = load_profiles(v["profiles_dir"])
            printer, material = library.printer(v["printer_name"]), library.material(v["material_name"])
            check_compatible(printer, material)

    return settings_conflicts(lambda: _seed_settings(v), lambda: _mri_settings(v["auto_threshold"], v["percentile"]),
                              lambda: _segmentation_settings(v, _preset(v)), lambda: _surface_settings(v), profiles)


def _preset(v: Any) -> str | None:
    """The preset the run uses: the given one, or bone when nothing else chooses what to segment."""
    if v["preset"] is None and v["threshold"] is None and v["labels_path"] is None and _seed_settings(v) is None \
            and _mri_settings(v["auto_threshold"], v["percentile"]) is None:
        return "bone"
    return v["preset"]


def _segmentation_settings(v: Any, preset: str | None) -> SegmentationSettings:
    return SegmentationSettings(
        preset=preset, threshold=v["threshold"], keep=v["keep"], min_component_mm3=v["min_component"],
        fill_cavities=v["fill_cavities"], close_mm=v["close_radius"], open_mm=v["open_radius"],
    )


def _surface_settings(v: Any) -> SurfaceSettings:
    kind, amount = v["decimate"] if v["decimate"] else (None, None)
    return SurfaceSettings(
        smooth_iterations=v["smooth"], max_deviation_mm=v["max_deviation"],
        decimate_fraction=amount if kind == "fraction" else None,
        decimate_faces=int(amount) if kind == "faces" and amount is not None else None,
    )


def run(request: JobRequest) -> JobResult:
    """Convert the scan; every file of the run (meshes, report, 3MF, G-code) is written, or none is.

    A Python caller may give values as the CLI's text or an order's TOML value as well as typed; a bad value
    or a contradiction is a :class:`~medprint.errors.ParameterError` naming the option.
    """
    values = typed_values(OPTIONS, request)
    if values.get("input_path") is None:
        raise ParameterError("INPUT: missing; give the scan to convert (a DICOM folder or an image file)")
    values["input_path"] = Path(values["input_path"])
    request = replace(request, values=values)
    conflicts = check(request)
    if conflicts:
        raise ParameterError("; ".join(conflict.message for conflict in conflicts))
    v = request.values
    seeds = _seed_settings(v)
    mri = _mri_settings(v["auto_threshold"], v["percentile"])
    gcode = None
    if v["gcode_path"] is not None:
        gcode = GcodeRequest(v["gcode_path"], v["printer_name"], v["material_name"],
                             SliceSettings(supports=v["supports"]), v["engine"], v["profiles_dir"])
    preset = v["preset"]
    if preset is None and v["threshold"] is None and v["labels_path"] is None and seeds is None and mri is None:
        preset = "bone"
    labels = (
        LabelSettings(v["labels_path"], tuple(v["label_names"]), v["labels_names"], v["force_geometry"])
        if v["labels_path"] is not None else None
    )
    segmentation = _segmentation_settings(v, preset)
    surface = _surface_settings(v)
    extras = extra_outputs(v, v["output_path"], scan_input=v["input_path"])
    result = convert_scan(
        v["input_path"], v["output_path"], segmentation=segmentation, labels=labels, seeds=seeds, mri=mri,
        preparation=MriPreparation(bias_correction=v["bias_correction"], denoise=v["denoise"]), surface=surface,
        combined_3mf=v["combined_3mf"], gcode=gcode,
        loading=LoadSettings(series=v["series"], allow_gaps=v["allow_gaps"], modality=v["modality"],
                             non_finite=v["non_finite"]),
        ascii_stl=v["ascii_stl"], overwrite=v["overwrite"], write_json_report=not v["no_report"],
        include_phi_paths=v["show_phi"], progress=request.progress, order=request.order, extras=extras,
    )
    sent = send_written(v, extras)
    return JobResult(outputs=result.written, report=result.report,
                     summary=_summary(result) + delivery_lines(extras) + sent)


def _summary(result: ConvertResult) -> tuple[str, ...]:
    """The lines ``medprint convert`` prints: one per part, the G-code, the 3MF and the report."""
    report = result.report
    # summary_line escapes each part's line, so a newline in it only ever separates parts.
    lines = summary_line(report).split("\n")
    if "gcode" in report and result.gcode_path is not None:
        made = report["gcode"]
        lines.append(f"{result.gcode_path}: {made['layer_count']} layers, {made['filament_g']:.0f} g of "
                     f"{made['material']}, about {made['estimated_time_s'] / 3600:.1f} h on {made['printer']}")
    if result.combined_path is not None:
        lines.append(f"all parts: {result.combined_path}")
    if result.report_path is not None:
        lines.append(f"report: {result.report_path}")
    return tuple(lines)


def _seed_settings(v: Any) -> SeedSettings | None:
    if not v["seeds_lps"] and not v["seeds_voxel"]:
        return None
    false_lumen = FalseLumen(
        seeds_lps_mm=v["false_lumen_lps"], intensity_range=v["false_lumen_range"],
    ) if v["false_lumen_lps"] else None
    intensity = v["grow_range"]
    radius: dict[str, Any] = {"max_radius_mm": v["max_radius"]} if v["max_radius"] is not None else {}
    region = RegionGrowingSettings(intensity_range=intensity, max_volume_mm3=v["max_volume"],
                                   allow_border=v["allow_border"], **radius)
    vessels = VesselSettings(intensity_range=intensity, max_volume_mm3=v["max_volume"], tube_factor=v["tube_factor"],
                             false_lumen=false_lumen, branches=v["branch_paths"], **radius)
    return SeedSettings(lps_mm=v["seeds_lps"], voxels_ijk=v["seeds_voxel"], vessel=v["vessel"], region=region,
                        vessels=vessels)


def _mri_settings(auto_threshold: str | None, percentile: tuple[float, float] | None) -> MriSettings | None:
    if auto_threshold is None:
        return None
    if auto_threshold == "percentile":
        return MriSettings(method="percentile", percentiles=percentile or (50.0, 100.0))
    return MriSettings(method="otsu")


SPEC = JobSpec(
    name="convert",
    help="Convert a scan to a watertight mesh in one step (load, segment, surface, repair, write).",
    argument=Argument("input_path", "INPUT"),
    options=OPTIONS,
    run=run,
    check=with_delivery_conflicts(check),
    validate=validate,
)
