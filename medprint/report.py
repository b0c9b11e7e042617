"""The JSON report written beside every mesh: what went in, what was chosen, what came out.

It carries no patient name, ID or birth date, and no input path unless asked,
so it can leave the hospital with the print.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from . import __version__
from .io.atomic import atomic_path
from .mesh.model import Mesh
from .mesh.quality import MeshQuality
from .volume import Mask, Volume

REPORT_SCHEMA = "medprint.report/1"

_LIBRARIES = ("numpy", "scipy", "pydicom", "SimpleITK", "vtk", "trimesh", "numpy-stl", "connected-components-3d")


def build_report(
    *,
    volume: Volume,
    mask: Mask,
    mesh: Mesh,
    quality: MeshQuality,
    segment_steps: list[str],
    surface_facts: dict[str, Any],
    parameters: dict[str, Any],
    timings_s: dict[str, float],
    output_path: Path,
    volume_sha256: str,
    input_path: Path | None = None,
) -> dict[str, Any]:
    """Assemble the report as plain JSON-ready data."""
    low, high = mesh.bounds_mm()
    return {
        "schema": REPORT_SCHEMA,
        "input": _describe_input(volume, input_path, volume_sha256),
        "choices": list(volume.notes) + segment_steps + list(surface_facts.get("repairs", [])),
        "parameters": _plain(parameters),
        "mask": {
            "label": mask.label,
            "voxels": mask.voxel_count,
            "volume_mm3": round(mask.volume_mm3, 2),
        },
        "mesh": {
            "path": str(output_path),
            "frame": "LPS",
            "units": "mm",
            "triangles": mesh.face_count,
            "vertices": mesh.vertex_count,
            "volume_mm3": round(mesh.volume_mm3(), 2),
            "area_mm2": round(mesh.area_mm2(), 2),
            "bounding_box_mm": {"min": _round3(low), "max": _round3(high), "size": _round3(
                tuple(h - lo for lo, h in zip(low, high)))},
            "watertight": quality.watertight,
            "manifold": quality.manifold,
            "winding_consistent": quality.winding_consistent,
            "outward": quality.outward,
            # What a technologist picks up off the bed; cavity walls are counted apart.
            "bodies": quality.shells,
            "cavities": quality.cavities,
            "raw_triangles": surface_facts.get("raw_triangles"),
            "deviation_limit_mm": round(surface_facts["deviation_limit_mm"], 4),
            "surface_deviation_mm": surface_facts["surface_deviation_mm"],
            "smoothing_deviation_mm": surface_facts.get("smoothing_deviation_mm"),
            "decimation_deviation_mm": surface_facts.get("decimation_deviation_mm"),
        },
        "timings_s": {**timings_s, "total": round(sum(timings_s.values()), 3)},
        "versions": _versions(),
    }


def write_report(report: dict[str, Any], path: Path, *, overwrite: bool) -> None:
    """Write the report atomically as indented JSON."""
    with atomic_path(path, overwrite=overwrite) as temp:
        temp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def summary_line(report: dict[str, Any]) -> str:
    """One line for the terminal."""
    mesh = report["mesh"]
    size = " x ".join(f"{s:.0f}" for s in mesh["bounding_box_mm"]["size"])
    tight = "watertight" if mesh["watertight"] else "NOT watertight"
    bodies = f"{mesh['bodies']} bod{'y' if mesh['bodies'] == 1 else 'ies'}"
    if mesh.get("cavities"):
        bodies += f", {mesh['cavities']} cavit{'y' if mesh['cavities'] == 1 else 'ies'}"
    return (
        f"{mesh['path']}: {mesh['triangles']:,} triangles, {bodies}, "
        f"{tight}, {mesh['volume_mm3'] / 1000:.1f} cm3, {size} mm, "
        f"deviation {mesh['surface_deviation_mm']:.2f} mm, {report['timings_s']['total']:.1f} s"
    )


def _describe_input(volume: Volume, input_path: Path | None, volume_sha256: str) -> dict[str, Any]:
    geometry = volume.geometry
    described: dict[str, Any] = {
        "modality": volume.modality,
        "dimensions_xyz": list(reversed(volume.shape)),
        "spacing_mm": _round3(geometry.spacing),
        "origin_lps_mm": _round3(geometry.origin),
        "direction": [round(d, 6) for d in geometry.direction],
        "orientation": geometry.describe_orientation(),
        "value_range": list(volume.value_range()),
        "metadata": dict(volume.metadata),
        "volume_sha256": volume_sha256,
    }
    if input_path is not None:
        described["path"] = str(input_path)
    return described


def _versions() -> dict[str, str]:
    versions = {"medprint": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _plain(item) for key, item in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _round3(values: Any) -> list[float]:
    return [round(float(v), 3) for v in values]
