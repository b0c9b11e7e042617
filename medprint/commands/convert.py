"""``medprint convert``: scan to printable mesh in one step."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..pipeline import LabelSettings, LoadSettings, SurfaceSettings, convert_scan
from ..report import summary_line
from ..segment import CT_PRESETS, SegmentationSettings
from .options import parse_decimate_option, parse_threshold_option, progress_reporter


@click.command(name="convert")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="Mesh to write: .stl (default binary), .obj, .ply or .3mf. A JSON report goes beside it.")
@click.option("--preset", type=str, default=None,
              help=f"CT threshold preset: {', '.join(CT_PRESETS)}. Default: bone, for CT.")
@click.option("--threshold", type=str, default=None, callback=parse_threshold_option,
              help="Intensity range LO:HI in the scan's units (HU for CT), e.g. 226:3071.")
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
@click.option("--series", type=str, default=None, help="Series number (as `medprint info` shows) or UID.")
@click.option("--modality", type=click.Choice(["CT", "MR"], case_sensitive=False), default=None,
              help="Override the modality for NIfTI/NRRD/MHA, which do not store it.")
@click.option("--allow-gaps", is_flag=True, help="Accept DICOM series with missing slices.")
@click.option("--keep", type=click.Choice(["auto", "largest", "all"]), default="auto", show_default=True,
              help="Which bodies to keep; auto keeps the largest for bone (drops table, head holder).")
@click.option("--min-component", type=float, default=0.0, show_default=True,
              help="With --keep all: drop bodies smaller than this many mm3.")
@click.option("--fill-cavities", is_flag=True, help="Fill enclosed cavities (solid model).")
@click.option("--close", "close_radius", type=float, default=0.0, show_default=True,
              help="Morphological closing radius in mm (bridges small gaps).")
@click.option("--open", "open_radius", type=float, default=0.0, show_default=True,
              help="Morphological opening radius in mm (cuts thin bridges).")
@click.option("--smooth", type=int, default=20, show_default=True,
              help="Smoothing iterations (windowed sinc, volume-preserving); 0 = none.")
@click.option("--max-deviation", type=float, default=None,
              help="Most that smoothing + decimation may move the surface, mm. Default: half the smallest voxel.")
@click.option("--decimate", type=str, default=None, callback=parse_decimate_option,
              help="Reduce triangles: a fraction to keep (0.25 or 25%) or a triangle count.")
@click.option("--ascii", "ascii_stl", is_flag=True, help="Write ASCII STL instead of binary.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--no-report", is_flag=True, help="Do not write the JSON report file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON to stdout.")
@click.option("--show-phi", is_flag=True, help="Record the input path in the report.")
@click.pass_context
def command(ctx: click.Context, input_path: Path, output_path: Path, preset: str | None,
            threshold: tuple[float, float] | None, series: str | None, modality: str | None, allow_gaps: bool,
            keep: str, min_component: float, fill_cavities: bool, close_radius: float, open_radius: float,
            smooth: int, max_deviation: float | None, decimate: tuple[str, float] | None, ascii_stl: bool,
            overwrite: bool, no_report: bool, as_json: bool, show_phi: bool, labels_path: Path | None,
            label_names: tuple[str, ...], labels_names: Path | None, force_geometry: bool,
            combined_3mf: Path | None) -> None:
    """Convert a scan to a watertight mesh in one step (load, segment, surface, repair, write)."""
    if preset is None and threshold is None and labels_path is None:
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
        decimate_faces=int(amount) if kind == "faces" else None,
    )
    with progress_reporter(enabled=not as_json and not ctx.obj["quiet"]) as progress:
        result = convert_scan(
            input_path, output_path, segmentation=segmentation, labels=labels, surface=surface,
            combined_3mf=combined_3mf,
            loading=LoadSettings(series=series, allow_gaps=allow_gaps, modality=modality),
            ascii_stl=ascii_stl, overwrite=overwrite, write_json_report=not no_report,
            include_phi_paths=show_phi, progress=progress,
        )
    if as_json:
        click.echo(json.dumps(result.report, indent=2))
        return
    if not ctx.obj["quiet"]:
        click.echo(summary_line(result.report))
        if result.combined_path is not None:
            click.echo(f"all parts: {result.combined_path}")
        if result.report_path is not None:
            click.echo(f"report: {result.report_path}")
