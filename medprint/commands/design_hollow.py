"""``medprint design hollow``: a hollow vessel (or valve root) model of given wall thickness, open at its ends."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..design.hollow import HollowSettings, design_hollow
from ..design.part import Part
from ..design.run import DesignOutputs, describe_input, run_design
from ..errors import InputError, ParameterError
from ..redact import terminal_safe
from ..report import to_json
from ..segment import CT_PRESETS, SegmentationSettings
from ..segment.seeds import Point
from ..mesh.model import Mesh
from ..volume import Mask
from .options import FiniteFloat, BoundedInt, parse_points_option, parse_threshold_option


@click.command(name="hollow")
@click.argument("input_path", metavar="MASK_OR_SCAN", type=click.Path(path_type=Path))
# MASK_OR_SCAN may also be a closed lumen surface (.stl/.obj/.ply/.3mf): a valve root or vessel from another tool.
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="Mesh to write: .stl, .obj, .ply or .3mf. A JSON report goes beside it.")
@click.option("--wall", "wall_mm", type=FiniteFloat(), default=1.5, show_default=True,
              help="Wall thickness, mm.")
@click.option("--side", type=click.Choice(["outside", "inside"]), default="outside", show_default=True,
              help="outside: the lumen keeps its size and the wall is added around it; inside: the wall is taken "
                   "from the lumen.")
@click.option("--ends", "open_ends", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: open the vessel where its segmentation stops (scan border, flat cut face of the mask); "
                   "none: only at --cut points.")
@click.option("--cut", "cuts", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="Open the vessel at this point on it (patient mm, LPS), square to its local centreline; the "
                   "smaller side goes. Repeatable.")
@click.option("--drain", "drain_mm", type=FiniteFloat(), default=None, metavar="DIAMETER",
              help="Drain holes for resin printing, this diameter in mm (>= 2), at the lowest point of each pocket "
                   "that would hold resin.")
@click.option("--up", "up", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="With --drain: the direction (LPS) that points up on the printer (default 0,0,1: superior).")
@click.option("--resolution", "resolution_mm", type=FiniteFloat(), default=0.5, show_default=True,
              help="Working grid spacing, mm.")
@click.option("--smooth", type=BoundedInt(0, 500, why="the filter has converged long before"), default=20,
              show_default=True,
              help="Smoothing of the lumen's surface (each point moves at most half the coarsest voxel size).")
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), default=None,
              help="A label map, DICOM SEG or RTSTRUCT on the scan MASK_OR_SCAN; pick the lumen with --label.")
@click.option("--label", "label_name", default=None,
              help="The lumen's label number or name (in --labels, or in MASK_OR_SCAN when it is a label map).")
@click.option("--labels-names", type=click.Path(path_type=Path), default=None,
              help="Names for label numbers: TotalSegmentator class map JSON, Slicer .seg.nrrd, text.")
@click.option("--preset", type=str, default=None,
              help=f"MASK_OR_SCAN is a CT: the lumen by this preset ({', '.join(CT_PRESETS)}), largest body.")
@click.option("--threshold", type=str, default=None, callback=parse_threshold_option,
              help="MASK_OR_SCAN is a scan: the lumen by this intensity range LO:HI, largest body.")
@click.option("--seed", "seeds", multiple=True, metavar="X,Y,Z", callback=parse_points_option,
              help="MASK_OR_SCAN is a contrast CT: grow the vessel from this point (LPS mm), as convert --vessel.")
@click.option("--range", "grow_range", type=str, default=None, metavar="LO:HI", callback=parse_threshold_option,
              help="With --seed: the blood pool's intensity range (default: the blood-pool preset, 200:700 HU).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--no-report", is_flag=True, help="Do not write the JSON report file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON to stdout.")
@click.option("--show-phi", is_flag=True, help="Record the input path in the report; show names from the input folder.")
@click.pass_context
def command(ctx: click.Context, input_path: Path, output_path: Path, wall_mm: float, side: str, open_ends: str,
            cuts: tuple[Point, ...], drain_mm: float | None, up: tuple[Point, ...], resolution_mm: float, smooth: int,
            labels_path: Path | None, label_name: str | None, labels_names: Path | None, preset: str | None,
            threshold: tuple[float, float] | None, seeds: tuple[Point, ...], grow_range: tuple[float, float] | None,
            overwrite: bool, no_report: bool,
            as_json: bool, show_phi: bool) -> None:
    """Hollow a vessel's lumen into a printable model: a wall of --wall mm, open where the vessel leaves the scan
    or its segmentation, and at --cut points.

    MASK_OR_SCAN is a mask or label map (--label N|NAME when it holds several), a scan with --labels FILE
    --label NAME, --preset, --threshold or --seed, or a closed lumen surface (.stl, .obj, .ply, .3mf)."""
    ctx.obj["phi_input"] = None if show_phi else input_path
    sources = [name for name, given in (("--labels", labels_path), ("--preset", preset), ("--threshold", threshold),
                                        ("--seed", seeds)) if given]
    if len(sources) > 1:
        raise click.UsageError(f"{' and '.join(sources)} each choose the lumen: give one")
    if len(up) > 1:
        raise click.UsageError("--up is one direction X,Y,Z: give it once")
    if grow_range is not None and not seeds:
        raise click.UsageError("--range goes with --seed X,Y,Z")
    if labels_names is not None and label_name is None:
        raise click.UsageError("--labels-names goes with --label NAME")
    settings = HollowSettings(wall_mm=wall_mm, side=side, open_ends=open_ends, cuts_lps=cuts, drain_mm=drain_mm,
                              up=up[0] if up else None, resolution_mm=resolution_mm, smooth_iterations=smooth)
    lumen, facts, steps = _load_lumen(input_path, labels_path, label_name, labels_names, preset, threshold, seeds,
                                      grow_range, show_phi=show_phi)

    def make() -> Part:
        part = design_hollow(lumen, settings)
        return replace(part, choices=tuple(steps) + part.choices)

    parameters = {"wall_mm": wall_mm, "side": side, "open_ends": open_ends, "cuts_lps_mm": [list(c) for c in cuts],
                  "drain_mm": drain_mm, "up": list(up[0]) if up else None, "resolution_mm": resolution_mm,
                  "smooth_iterations": smooth}
    outputs = DesignOutputs(mesh=output_path, report=not no_report, overwrite=overwrite)
    part, report = run_design(outputs, make, input_facts=facts, parameters=parameters, show_phi=show_phi,
                              input_path=input_path)
    if as_json:
        click.echo(to_json(report))
        return
    if not ctx.obj.get("quiet"):
        measured = part.measurements
        wall = measured.get("wall_measured_mm", {})
        wall_text = f"wall {wall['median']:.2f} mm (asked {wall_mm:g})" if wall else f"wall {wall_mm:g} mm"
        click.echo(terminal_safe(
            f"{output_path}: hollow {lumen.label if isinstance(lumen, Mask) else lumen.name}, {wall_text}, "
            f"{len(measured['openings'])} open end(s), "
            f"{len(measured['drains'])} drain(s), {part.mesh.volume_mm3() / 1000:.1f} cm3, "
            f"{part.mesh.face_count} triangles"))


def _load_lumen(input_path: Path, labels_path: Path | None, label_name: str | None, labels_names: Path | None,
                preset: str | None, threshold: tuple[float, float] | None, seeds: tuple[Point, ...],
                grow_range: tuple[float, float] | None, *,
                show_phi: bool) -> tuple[Mask | Mesh, dict[str, Any], list[str]]:
    """The lumen from a label map, a mask file, a threshold, seeds or a surface mesh; input facts; steps taken."""
    from ..io import MESH_FORMATS, load_volume
    from ..io.labels import load_label_mask
    from ..io.mesh_files import read_mesh_file

    if input_path.suffix.lower() in MESH_FORMATS:
        given = [name for name, value in (("--labels", labels_path), ("--label", label_name), ("--preset", preset),
                                          ("--threshold", threshold), ("--seed", seeds)) if value]
        if given:
            raise ParameterError(f"{given[0]}: MASK_OR_SCAN is a mesh (the lumen's surface), which has no labels "
                                 "or voxels to select from; drop it")
        mesh = read_mesh_file(input_path)
        return mesh, describe_input(mesh, path=input_path, show_phi=show_phi), ["lumen: the surface given"]
    volume = load_volume(input_path)
    facts = describe_input(volume, path=input_path, show_phi=show_phi)
    selected = [label_name] if label_name is not None else None
    if labels_path is not None:
        masks = load_label_mask(labels_path, volume, labels=selected, names_file=labels_names)
        return _one(masks, "--labels"), facts, [f"lumen: label {masks[0].label!r} of --labels"]
    if preset is not None or threshold is not None:
        from ..segment import select_by_threshold

        mask, steps = select_by_threshold(volume, SegmentationSettings(preset=preset, threshold=threshold))
        return mask, facts, [f"lumen: {step}" for step in steps]
    if seeds:
        from ..segment import VesselSettings, segment_vessel

        mask, steps = segment_vessel(volume, seeds, VesselSettings(intensity_range=grow_range))
        return mask, facts, [f"lumen: {step}" for step in steps]
    # MASK_OR_SCAN is itself a mask or label map: its nonzero voxels, or the one label asked.
    try:
        masks = load_label_mask(input_path, volume, labels=selected, names_file=labels_names)
    except InputError:
        if _looks_like_scan(volume.array, named=labels_names is not None):
            raise InputError(
                "MASK_OR_SCAN is a scan, not a mask or label map, and nothing chose the lumen in it; choose it "
                "with --labels FILE --label NAME (a segmentation of this scan), --preset NAME, --threshold LO:HI "
                "or --seed X,Y,Z (a contrast CT's vessel)"
            ) from None
        raise
    facts = {**facts, "kind": "label map"}
    return _one(masks, "MASK_OR_SCAN"), facts, [f"lumen: label {masks[0].label!r} of the input"]


def _looks_like_scan(array: Any, *, named: bool) -> bool:
    """Intensities rather than labels: negative or fractional values, or more values than unnamed labels."""
    from ..io.labels import MAX_UNNAMED_LABELS

    values = np.asarray(array)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        return False  # NaN/Inf: the label reader's own message says what is wrong
    if values.size and float(values.min()) < 0:
        return True
    if values.dtype.kind == "f" and np.any(values != np.round(values)):
        return True
    return not named and len(np.unique(values)) > MAX_UNNAMED_LABELS + 1


def _one(masks: list[Mask], where: str) -> Mask:
    if len(masks) != 1:
        names = ", ".join(m.label for m in masks[:8])
        raise ParameterError(f"--label: {where} holds {len(masks)} labels ({names}); choose the lumen with --label "
                             "NAME or N")
    return masks[0]
