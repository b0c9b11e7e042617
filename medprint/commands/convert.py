"""``medprint convert``: scan to printable mesh in one step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..pipeline import (
    MAX_DEVIATION_MM,
    MAX_SMOOTH_ITERATIONS,
    GcodeRequest,
    LabelSettings,
    LoadSettings,
    MriPreparation,
    SeedSettings,
    SurfaceSettings,
    convert_scan,
)
from ..slice.engine import SliceSettings
from ..redact import terminal_safe
from ..report import summary_line, to_json
from ..segment import (
    CT_PRESETS,
    FalseLumen,
    MriSettings,
    RegionGrowingSettings,
    SegmentationSettings,
    VesselSettings,
)
from ..segment.checks import MAX_RADIUS_MM, MAX_VOLUME_MM3
from ..segment.seeds import Point
from .options import (
    BoundedInt,
    FiniteFloat,
    given,
    parse_decimate_option,
    parse_paths_option,
    parse_percentile_option,
    parse_points_option,
    parse_threshold_option,
    progress_reporter,
)

#: Why the radii stop at MAX_RADIUS_MM, said in the error.
_RADIUS_WHY = "mm; a larger ball merges whole organs"


@click.command(name="convert")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="Mesh to write: .stl (default binary), .obj, .ply or .3mf. A JSON report goes beside it.")
@click.option("--preset", type=str, default=None,
              help=f"CT threshold preset: {', '.join(CT_PRESETS)}. Default: bone, for CT.")
@click.option("--threshold", type=str, default=None, callback=parse_threshold_option,
              help="Intensity range LO:HI in the scan's units (HU for CT), e.g. 226:3071.")
@click.option("--seed", "seeds_lps", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="Grow a part from this point in patient mm (LPS, as a viewer shows it); repeatable.")
@click.option("--seed-voxel", "seeds_voxel", multiple=True, metavar="I,J,K", callback=parse_points_option,
              help="Grow a part from this voxel (column, row, slice); repeatable.")
@click.option("--range", "grow_range", type=str, default=None, metavar="LO:HI", callback=parse_threshold_option,
              help="With seeds: the intensity range to grow in (default: estimated around the seeds).")
@click.option("--vessel", is_flag=True,
              help="With seeds: grow one contrast-filled vessel tree (blood-pool range unless --range).")
@click.option("--tube", "tube_factor", type=FiniteFloat(1, 5, why="local vessel radii; 1.3-1.5 is usual"), default=None,
              help="With --vessel: seeds are clicks in order along one vessel; keep the lumen within this factor "
                   "of the local radius around the path through them (1.3-1.5), cut flat at the first and last.")
@click.option("--branch", "branch_paths", multiple=True, metavar="X,Y,Z;X,Y,Z[;...]", callback=parse_paths_option,
              help="With --tube: a side branch to keep, as clicks in order (patient mm, LPS) separated by ';', the "
                   "first on the vessel where the branch leaves it; repeatable, one option per branch.")
@click.option("--false-lumen", "false_lumen_lps", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="With --tube: clicks in order along a dissection's false lumen (patient mm, LPS), traced as a "
                   "second tube and joined to the first; repeatable.")
@click.option("--false-lumen-range", type=str, default=None, metavar="LO:HI", callback=parse_threshold_option,
              help="With --false-lumen: its intensity range (default: the true lumen's); lower it under the clot's "
                   "values for a thrombosed false lumen, e.g. 100:3000.")
@click.option("--max-radius", type=FiniteFloat(0, MAX_RADIUS_MM, why=_RADIUS_WHY), default=None,
              help="With seeds: cut bridges thinner than this radius in mm (default 6, vessels 2).")
@click.option("--max-volume", type=FiniteFloat(0, MAX_VOLUME_MM3, low_open=True, why="mm3"), default=None,
              help="With seeds: stop with an error past this many mm3 (leak guard; default a quarter of the scan).")
@click.option("--allow-border", is_flag=True, help="With seeds: let the region reach the edge of the scan.")
@click.option("--auto-threshold", type=click.Choice(["otsu", "percentile"]), default=None,
              help="MRI: threshold found automatically (Otsu, or --percentile of the foreground).")
@click.option("--percentile", type=str, default=None, metavar="LO:HI", callback=parse_percentile_option,
              help="With --auto-threshold percentile: foreground percentiles to keep, e.g. 50:100.")
@click.option("--bias-correction", is_flag=True, help="MRI: correct the bias field (N4) before segmenting.")
@click.option("--denoise", type=click.Choice(["curvature-flow", "anisotropic", "bilateral"]), default=None,
              help="Edge-preserving denoising before segmenting.")
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), default=None,
              help="Print parts from an existing segmentation: label map (NIfTI/NRRD/MHA), DICOM SEG or RTSTRUCT.")
@click.option("--label", "label_names", multiple=True,
              help="With --labels: a label number or name to print (repeatable; default all), one part each.")
@click.option("--labels-names", type=click.Path(path_type=Path), default=None,
              help="Names for label numbers: TotalSegmentator class map JSON (FILE#map), Slicer .seg.nrrd, text.")
@click.option("--force-geometry", is_flag=True,
              help="Accept a SEG/RTSTRUCT that references another series than the one loaded.")
@click.option("--3mf", "combined_3mf", type=click.Path(path_type=Path), default=None,
              help="Also write all parts into one 3MF as named, coloured objects (multi-material printing).")
@click.option("--gcode", "gcode_path", type=click.Path(path_type=Path), default=None,
              help="Also slice the mesh to this G-code file (needs --printer and --material).")
@click.option("--printer", "printer_name", default=None, help="With --gcode: printer profile (medprint profiles list).")
@click.option("--material", "material_name", default=None, help="With --gcode: material profile.")
@click.option("--supports/--no-supports", default=False, show_default=True, help="With --gcode: support overhangs.")
@click.option("--engine", type=click.Choice(["builtin", "prusaslicer"]), default="builtin", show_default=True,
              help="With --gcode: built-in slicer or the prusa-slicer program.")
@click.option("--profiles", "profiles_dir", type=click.Path(path_type=Path), default=None,
              help="With --gcode: a folder of extra printer/material profiles.")
@click.option("--series", type=str, default=None, help="Series number (as `medprint info` shows) or UID.")
@click.option("--modality", type=click.Choice(["CT", "MR"], case_sensitive=False), default=None,
              help="Override the modality for NIfTI/NRRD/MHA, which do not store it.")
@click.option("--allow-gaps", is_flag=True, help="Accept DICOM series with missing slices.")
@click.option("--non-finite", "non_finite", type=FiniteFloat(why="a number the voxel type can hold"), default=None,
              metavar="VALUE",
              help="All formats: the value NaN and infinite voxels stand for (default: refuse such scans).")
@click.option("--keep", type=click.Choice(["auto", "largest", "all"]), default="auto", show_default=True,
              help="Which bodies to keep; auto keeps the largest for bone (drops table, head holder).")
@click.option("--min-component", type=FiniteFloat(0, MAX_VOLUME_MM3, why="mm3"), default=0.0, show_default=True,
              help="With --keep all: drop bodies smaller than this many mm3.")
@click.option("--fill-cavities", is_flag=True, help="Fill enclosed cavities (solid model).")
@click.option("--close", "close_radius", type=FiniteFloat(0, MAX_RADIUS_MM, why=_RADIUS_WHY), default=0.0,
              show_default=True,
              help="Morphological closing radius in mm (bridges small gaps).")
@click.option("--open", "open_radius", type=FiniteFloat(0, MAX_RADIUS_MM, why=_RADIUS_WHY), default=0.0,
              show_default=True,
              help="Morphological opening radius in mm (cuts thin bridges).")
@click.option("--smooth", type=BoundedInt(0, MAX_SMOOTH_ITERATIONS, why="the filter has converged long before"),
              default=20, show_default=True,
              help="Smoothing iterations (windowed sinc, volume-preserving); 0 = none.")
@click.option("--max-deviation", type=FiniteFloat(0, MAX_DEVIATION_MM, low_open=True, why="mm"), default=None,
              help="Most that smoothing + decimation may move the surface, mm. Default: half the smallest voxel.")
@click.option("--decimate", type=str, default=None, callback=parse_decimate_option,
              help="Reduce triangles: a fraction to keep (0.25 or 25%) or a triangle count.")
@click.option("--ascii", "ascii_stl", is_flag=True, help="Write ASCII STL instead of binary.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--no-report", is_flag=True, help="Do not write the JSON report file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON to stdout.")
@click.option("--show-phi", is_flag=True,
              help="Record the input path in the report; show names from inside the input folder in messages.")
@click.pass_context
def command(ctx: click.Context, input_path: Path, output_path: Path, preset: str | None,
            threshold: tuple[float, float] | None, series: str | None, modality: str | None, allow_gaps: bool,
            keep: str, min_component: float, fill_cavities: bool, close_radius: float, open_radius: float,
            smooth: int, max_deviation: float | None, decimate: tuple[str, float] | None, ascii_stl: bool,
            overwrite: bool, no_report: bool, as_json: bool, show_phi: bool, labels_path: Path | None,
            label_names: tuple[str, ...], labels_names: Path | None, force_geometry: bool,
            combined_3mf: Path | None, seeds_lps: tuple[Point, ...], seeds_voxel: tuple[Point, ...],
            grow_range: tuple[float, float] | None, vessel: bool, max_radius: float | None, max_volume: float | None,
            allow_border: bool, auto_threshold: str | None, percentile: tuple[float, float] | None,
            bias_correction: bool,
            denoise: str | None, tube_factor: float | None, branch_paths: tuple[tuple[Point, ...], ...],
            false_lumen_lps: tuple[Point, ...],
            false_lumen_range: tuple[float, float] | None, gcode_path: Path | None, printer_name: str | None,
            material_name: str | None, supports: bool, engine: str, profiles_dir: Path | None,
            non_finite: float | None) -> None:
    """Convert a scan to a watertight mesh in one step (load, segment, surface, repair, write)."""
    # Names below the input folder stay off the terminal unless --show-phi (see medprint.cli.PHI_INPUT).
    ctx.obj["phi_input"] = None if show_phi else input_path
    _check_option_pairs(ctx, preset=preset, threshold=threshold, keep=keep, output_path=output_path,
                        gcode_path=gcode_path, auto_threshold=auto_threshold, percentile=percentile)
    if tube_factor is not None and not vessel:
        raise click.UsageError("--tube goes with --vessel")
    if tube_factor is not None and max_radius is not None:
        raise click.UsageError("--max-radius is not used with --tube (the tube replaces the opening); drop one")
    if (false_lumen_lps or false_lumen_range or branch_paths) and tube_factor is None:
        raise click.UsageError("--branch, --false-lumen and --false-lumen-range go with --vessel --tube")
    if false_lumen_range and not false_lumen_lps:
        raise click.UsageError("--false-lumen-range goes with --false-lumen X,Y,Z clicks")
    false_lumen = FalseLumen(
        seeds_lps_mm=false_lumen_lps, intensity_range=false_lumen_range,
    ) if false_lumen_lps else None
    seeds = _seed_settings(seeds_lps, seeds_voxel, grow_range, vessel, max_radius, max_volume, allow_border,
                           tube_factor, false_lumen, branch_paths)
    mri = _mri_settings(auto_threshold, percentile)
    gcode = None
    if gcode_path is not None:
        if not printer_name or not material_name:
            raise click.UsageError("--gcode needs --printer NAME and --material NAME (see `medprint profiles list`)")
        gcode = GcodeRequest(gcode_path, printer_name, material_name, SliceSettings(supports=supports),
                             engine, profiles_dir)
    if preset is None and threshold is None and labels_path is None and seeds is None and mri is None:
        preset = "bone"
    if (label_names or labels_names or force_geometry) and labels_path is None:
        raise click.UsageError("--label, --labels-names and --force-geometry go with --labels FILE")
    labels = (
        LabelSettings(labels_path, tuple(label_names), labels_names, force_geometry) if labels_path else None
    )
    segmentation = SegmentationSettings(
        preset=preset, threshold=threshold, keep=keep, min_component_mm3=min_component,
        fill_cavities=fill_cavities, close_mm=close_radius, open_mm=open_radius,
    )
    kind, amount = decimate if decimate else (None, None)
    surface = SurfaceSettings(
        smooth_iterations=smooth, max_deviation_mm=max_deviation,
        decimate_fraction=amount if kind == "fraction" else None,
        decimate_faces=int(amount) if kind == "faces" and amount is not None else None,
    )
    with progress_reporter(enabled=not as_json and not ctx.obj["quiet"]) as progress:
        result = convert_scan(
            input_path, output_path, segmentation=segmentation, labels=labels, seeds=seeds, mri=mri,
            preparation=MriPreparation(bias_correction=bias_correction, denoise=denoise), surface=surface,
            combined_3mf=combined_3mf, gcode=gcode,
            loading=LoadSettings(series=series, allow_gaps=allow_gaps, modality=modality, non_finite=non_finite),
            ascii_stl=ascii_stl, overwrite=overwrite, write_json_report=not no_report,
            include_phi_paths=show_phi, progress=progress,
        )
    if as_json:
        click.echo(to_json(result.report))
        return
    if not ctx.obj["quiet"]:
        click.echo(summary_line(result.report))
        if "gcode" in result.report:
            made = result.report["gcode"]
            # Typed paths and profile names are echoed back escaped, as every line medprint prints.
            click.echo(terminal_safe(f"{gcode_path}: {made['layer_count']} layers, {made['filament_g']:.0f} g of "
                                     f"{made['material']}, about {made['estimated_time_s'] / 3600:.1f} h on "
                                     f"{made['printer']}"))
        if result.combined_path is not None:
            click.echo(f"all parts: {terminal_safe(str(result.combined_path))}")
        if result.report_path is not None:
            click.echo(f"report: {terminal_safe(str(result.report_path))}")


def _check_option_pairs(ctx: click.Context, *, preset: str | None, threshold: tuple[float, float] | None, keep: str,
                        output_path: Path, gcode_path: Path | None, auto_threshold: str | None,
                        percentile: tuple[float, float] | None) -> None:
    """Refuse options that contradict each other, before any work (usage errors, exit 2)."""
    if preset is not None and threshold is not None:
        # The threshold would silently replace the preset's range, and the report would name both.
        raise click.UsageError("--preset and --threshold contradict each other: give a preset name or LO:HI, not both")
    if given(ctx, "min_component") and keep == "largest":
        raise click.UsageError("--min-component goes with --keep all (or auto); --keep largest keeps one body anyway")
    if percentile is not None and auto_threshold != "percentile":
        raise click.UsageError("--percentile goes with --auto-threshold percentile")
    if given(ctx, "ascii_stl") and output_path.suffix.lower() != ".stl":
        suffix = output_path.suffix or "without suffix"
        raise click.UsageError(f"--ascii writes ASCII STL, but -o/--output is {suffix}; drop --ascii or write .stl")
    if gcode_path is None:
        alone = [option for name, option in (("printer_name", "--printer"), ("material_name", "--material"),
                                             ("supports", "--supports"), ("engine", "--engine"),
                                             ("profiles_dir", "--profiles")) if given(ctx, name)]
        if alone:
            verb = "goes" if len(alone) == 1 else "go"
            raise click.UsageError(f"{', '.join(alone)} {verb} with --gcode FILE (slicing); add --gcode or drop it")


def _seed_settings(
    seeds_lps: tuple[Point, ...], seeds_voxel: tuple[Point, ...], grow_range: tuple[float, float] | None,
    vessel: bool,
    max_radius: float | None, max_volume: float | None, allow_border: bool, tube_factor: float | None = None,
    false_lumen: FalseLumen | None = None, branches: tuple[tuple[tuple[float, float, float], ...], ...] = (),
) -> SeedSettings | None:
    if not seeds_lps and not seeds_voxel:
        if grow_range or vessel or max_radius is not None or max_volume is not None or allow_border:
            raise click.UsageError("--range, --vessel, --max-radius, --max-volume and --allow-border go with --seed")
        return None
    intensity_range = grow_range
    radius: dict[str, Any] = {"max_radius_mm": max_radius} if max_radius is not None else {}
    region = RegionGrowingSettings(intensity_range=intensity_range, max_volume_mm3=max_volume,
                                   allow_border=allow_border, **radius)
    vessels = VesselSettings(intensity_range=intensity_range, max_volume_mm3=max_volume, tube_factor=tube_factor,
                             false_lumen=false_lumen, branches=branches, **radius)
    return SeedSettings(
        lps_mm=seeds_lps,
        voxels_ijk=seeds_voxel,
        vessel=vessel, region=region, vessels=vessels,
    )


def _mri_settings(auto_threshold: str | None, percentile: tuple[float, float] | None) -> MriSettings | None:
    if auto_threshold is None:
        return None
    if auto_threshold == "percentile":
        return MriSettings(method="percentile", percentiles=percentile or (50.0, 100.0))
    return MriSettings(method="otsu")
