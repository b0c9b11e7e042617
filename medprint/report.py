"""The JSON report written beside every mesh: what went in, what was chosen, what came out.

It carries no patient name, ID or birth date, and no input path unless asked,
so it can leave the hospital with the print.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import resource
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .io.atomic import atomic_path
from .io.outputs import fit_name, name_max
from .mesh.model import Mesh
from .mesh.quality import MeshQuality
from .redact import Scrubber, terminal_safe
from .volume import Mask, Volume

log = logging.getLogger("medprint")

REPORT_SCHEMA = "medprint.report/1"


_LIBRARIES = ("numpy", "scipy", "pydicom", "SimpleITK", "vtk", "trimesh", "numpy-stl", "connected-components-3d")


def build_report(
    *,
    input_facts: dict[str, Any],
    choices: list[str],
    parts: list[dict[str, Any]],
    parameters: dict[str, Any],
    timings_s: dict[str, float],
) -> dict[str, Any]:
    """Assemble the report as plain JSON-ready data.

    ``input_facts`` comes from :func:`describe_volume`, each part from
    :func:`describe_part`.  A single-part report also carries that part's
    ``mask`` and ``mesh`` at the top level.
    """
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "input": input_facts,
        "choices": choices,
        "parameters": _plain(parameters),
        "parts": parts,
    }
    if len(parts) == 1:
        if "mask" in parts[0]:
            report["mask"] = parts[0]["mask"]
        report["mesh"] = parts[0]["mesh"]
    report["timings_s"] = {**timings_s, "total": round(sum(timings_s.values()), 3)}
    report["peak_memory_mb"] = _peak_memory_mb()
    report["versions"] = _versions()
    return report


def describe_part(
    *, mask_facts: dict[str, Any], mesh: Mesh, quality: MeshQuality, surface_facts: dict[str, Any]
) -> dict[str, Any]:
    """One part's mask and mesh facts (the caller adds the mesh's ``path``); ``repairs`` is handed back."""
    low, high = mesh.bounds_mm()
    return {
        "name": mesh.name,
        "mask": mask_facts,
        "mesh": {
            "path": None,
            "frame": "LPS",
            "units": "mm",
            "triangles": mesh.face_count,
            "vertices": mesh.vertex_count,
            "volume_mm3": round(quality.volume_mm3, 2),
            "area_mm2": round(quality.area_mm2, 2),
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
            "repair_deviation_mm": surface_facts.get("repair_deviation_mm"),
        },
        "repairs": list(surface_facts.get("repairs", [])),
    }


#: Metadata the report leaves out unless ``--show-phi``: PS3.15 Basic Profile attributes (free-text
#: descriptions may carry a name; a UID leads back to the patient's study).  ``volume_sha256`` ties a
#: report to its scan instead.
PHI_METADATA = ("series_description", "series_uid")


def describe_volume(volume: Volume, *, input_path: Path | None = None, show_phi: bool = False) -> dict[str, Any]:
    """What the report says about the scan: geometry, de-identified metadata and a fingerprint.

    ``input_path`` and the :data:`PHI_METADATA` fields are included only when
    given / with ``show_phi``.
    """
    geometry = volume.geometry
    metadata = {key: value for key, value in volume.metadata.items() if show_phi or key not in PHI_METADATA}
    described: dict[str, Any] = {
        "modality": volume.modality,
        "dimensions_xyz": list(reversed(volume.shape)),
        "spacing_mm": _round3(geometry.spacing),
        "origin_lps_mm": _round3(geometry.origin),
        "direction": [round(d, 6) for d in geometry.direction],
        "orientation": geometry.describe_orientation(),
        "value_range": list(volume.value_range()),
        "metadata": metadata,
        "volume_sha256": voxel_fingerprint(volume),
    }
    if input_path is not None:
        described["path"] = str(input_path)
    return described


def describe_mask(mask: Mask) -> dict[str, Any]:
    """What the report says about the segmentation."""
    return {"label": mask.label, "voxels": mask.voxel_count, "volume_mm3": round(mask.volume_mm3, 2)}


def voxel_fingerprint(volume: Volume) -> str:
    """SHA-256 of the voxel values: ties a report to its input without naming the patient."""
    values = np.ascontiguousarray(volume.array)
    return hashlib.sha256(values.data).hexdigest()


def report_path_for(mesh_path: Path) -> Path:
    """``skull.stl`` -> ``skull.report.json`` beside it, shortened (with a hash) if the name would be too long."""
    mesh_path = Path(mesh_path)
    return mesh_path.with_name(fit_name(mesh_path.stem, ".report.json", name_max(mesh_path.parent)))


def write_report(report: dict[str, Any], path: Path, *, overwrite: bool) -> None:
    """Write the report atomically as indented, strict JSON (see :func:`to_json`).

    A value that is not a finite number is written as null, and the report's
    ``warnings`` say which field it was.
    """
    missing = non_finite_fields(report)
    if missing:
        report = {**report, "warnings": [*report.get("warnings", []), *(_non_finite_warning(f) for f in missing)]}
    text = to_json(report, what="report")
    with atomic_path(path, overwrite=overwrite) as temp:
        temp.write_text(text + "\n", encoding="utf-8")


def to_json(data: Any, *, indent: int | None = 2, what: str = "--json") -> str:
    """Strict JSON (RFC 8259) for the report and every ``--json``: no ``NaN`` or ``Infinity``.

    A value that is not a finite number is a bug (a measurement that failed),
    not a fact about the scan; it is written as null (which no reader can take
    for a number) with a warning naming ``what`` and the field, rather than
    dropping the whole record of a run whose files are already written.  NumPy
    scalars become plain numbers.
    Non-ASCII text is escaped (``\\u202e``), so no control character reaches a
    terminal that shows the JSON.
    """
    found: list[str] = []
    plain = _json_ready(data, "", found)
    for where in found:
        log.warning("%s", _non_finite_warning(where, what))
    return json.dumps(plain, indent=indent, allow_nan=False)


def non_finite_fields(data: Any) -> list[str]:
    """Where ``data`` holds NaN or an infinity, as ``mesh.volume_mm3``-style paths."""
    found: list[str] = []
    _json_ready(data, "", found)
    return found


def relative_to(path: Path | str, folder: Path | str) -> str:
    """``path`` as the report names it: relative to the report's ``folder`` (POSIX separators).

    An output folder is often named after the patient, so the report never
    holds an absolute path to what it describes.
    """
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    return Path(relative).as_posix()


def summary_line(report: dict[str, Any]) -> str:
    """A line per part for the terminal, each safe to print (see :func:`terminal_safe`)."""
    return "\n".join(
        terminal_safe(_part_line(part["mesh"], report["timings_s"]["total"])) for part in report["parts"]
    )


def _part_line(mesh: dict[str, Any], total_s: float) -> str:
    size = " x ".join(f"{s:.0f}" for s in mesh["bounding_box_mm"]["size"])
    tight = "watertight" if mesh["watertight"] else "NOT watertight"
    bodies = f"{mesh['bodies']} bod{'y' if mesh['bodies'] == 1 else 'ies'}"
    if mesh.get("cavities"):
        bodies += f", {mesh['cavities']} cavit{'y' if mesh['cavities'] == 1 else 'ies'}"
    return (
        f"{mesh['path']}: {mesh['triangles']:,} triangles, {bodies}, "
        f"{tight}, {mesh['volume_mm3'] / 1000:.1f} cm3, {size} mm, "
        f"deviation {mesh['surface_deviation_mm']:.2f} mm, {total_s:.1f} s"
    )


def _peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _versions() -> dict[str, str]:
    versions = {"medprint": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


class _Collector(logging.Handler):
    """Warnings of the thread that runs the conversion (another run in another thread has its own)."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__(logging.WARNING)
        self.scrub = scrub
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(self.scrub(record.getMessage()))


@contextmanager
def collected_warnings(scrub: Scrubber) -> Iterator[list[str]]:
    """The warnings medprint logs inside the block, scrubbed, for the report."""
    collector = _Collector(scrub)
    logger = logging.getLogger("medprint")
    logger.addHandler(collector)
    try:
        yield collector.messages
    finally:
        logger.removeHandler(collector)


def _non_finite_warning(where: str, what: str = "report") -> str:
    return f"{what}: {where or 'value'} is not a finite number; written as null"


def _json_ready(value: Any, where: str, found: list[str]) -> Any:
    """``value`` with NaN/infinities as None (their paths added to ``found``) and NumPy scalars as Python ones."""
    if isinstance(value, dict):
        return {key: _json_ready(item, f"{where}.{key}" if where else str(key), found) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item, f"{where}[{index}]", found) for index, item in enumerate(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            found.append(where)
            return None
        return float(value)
    return value


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
