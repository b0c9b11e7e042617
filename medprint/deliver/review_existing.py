"""The sign-off report of an output made earlier (``medprint report``): a mesh or a G-code file.

A mesh's numbers come from the JSON report beside it (``<stem>.report.json``) when there is one, else they
are measured from the mesh, and the page says which.  A G-code file's estimates are read from its header
comments (medprint's and PrusaSlicer's).  With ``source`` the mesh's sections are outlined over the scan.
The page is written through a :class:`~medprint.io.outputs.RunOutputs`: whole, or not at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.dicom_identity import IdentitySource
from ..io.mesh_files import MESH_FORMATS, read_mesh_file
from ..io.outputs import RunOutputs
from ..mesh import assess_mesh
from ..mesh.model import Mesh
from ..report import report_path_for
from ..review.types import Shown
from .html_output import HtmlReport, html_report_path, preset_in
from .products import RunProducts

GCODE_SUFFIXES = (".gcode", ".gco", ".g")
PART_COLOUR = (230, 120, 40)
ANATOMY_COLOUR = (205, 200, 185)

#: The largest G-code read (the estimates are in the header; the layers picture reads the moves).
MAX_GCODE_BYTES = 1 << 30


@dataclass(frozen=True)
class ReviewResult:
    """What :func:`review_output` wrote and what it said about it."""

    html_path: Path
    report: Mapping[str, Any]
    notes: tuple[str, ...]
    scan_shown: bool


def review_output(output: Path | str, *, html_path: Path | str | None = None, source: Path | str | None = None,
                  source_series: str | None = None, anatomy: Path | str | None = None,
                  overwrite: bool = False) -> ReviewResult:
    """Write the HTML sign-off report of an existing mesh or G-code file.

    Parameters
    ----------
    output : path
        The mesh (.stl, .obj, .ply, .3mf) or G-code (.gcode) to review.
    html_path : path, optional
        Where to write the page (default ``<stem>.report.html`` beside ``output``).
    source : path, optional
        The scan the mesh was made from (DICOM folder or file, NIfTI, NRRD): the mesh is outlined on it.
    source_series : str, optional
        With ``source``: which series of the folder.
    anatomy : path, optional
        A mesh of the anatomy the part fits (drawn paler, under the part).
    overwrite : bool
        Replace an existing page.

    Raises
    ------
    InputError
        ``output`` is missing or neither a mesh nor G-code; its JSON report is unreadable; a scan is unreadable.
    OutputError
        The page cannot be written, or exists and ``overwrite`` is False.
    """
    output = Path(output)
    kind = _kind(output)
    if source_series is not None and source is None:
        raise InputError("--source-series needs --source SCAN")
    if anatomy is not None and kind == "gcode":
        raise InputError("--anatomy: a G-code report shows the layers only; give --anatomy with a mesh")
    if source is not None and not Path(source).exists():
        raise InputError(f"--source: {source} does not exist; give the scan the model was made from")
    target = Path(html_path) if html_path is not None else html_report_path(output)
    identity = IdentitySource(Path(source), source_series) if source is not None else None
    page = HtmlReport(target, source=identity)
    with RunOutputs(overwrite=overwrite) as run:
        run.reserve(target, "-o/--output")
        if kind == "gcode":
            products = _gcode_products(output, run)
        else:
            products = _mesh_products(output, run, anatomy=None if anatomy is None else Path(anatomy))
        page.write(products)
        run.commit()
    return ReviewResult(target, products.report, page.notes, scan_shown=source is not None)


def _kind(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix not in (*MESH_FORMATS, *GCODE_SUFFIXES):
        raise InputError(f"OUTPUT: {output} is neither a mesh ({', '.join(MESH_FORMATS)}) nor G-code (.gcode); "
                         "give the file medprint wrote")
    if not output.is_file():
        raise InputError(f"OUTPUT: {output} does not exist or is not a file; give the mesh or G-code to review")
    return "gcode" if suffix in GCODE_SUFFIXES else "mesh"


# ---------------------------------------------------------------------------------------------------------------
# A mesh
# ---------------------------------------------------------------------------------------------------------------


def _mesh_products(output: Path, run: RunOutputs, *, anatomy: Path | None) -> RunProducts:
    mesh = read_mesh_file(output).with_name(output.stem)
    report_path = report_path_for(output)
    notes: list[str] = []
    if report_path.is_file():
        report = read_json_report(report_path)
        notes += _mismatches(report, mesh, output)
        command = _report_command(report)
    else:
        report = measured_report(mesh, output.name)
        notes.append(f"no JSON report beside {output.name} ({report_path.name}): the numbers below were measured "
                     "from the mesh; the segmentation, its parameters and choices are not known")
        command = "report"
    shown = [Shown(output.stem, mesh, PART_COLOUR)]
    if anatomy is not None:
        shown.append(Shown(anatomy.stem, read_mesh_file(anatomy), ANATOMY_COLOUR, role="anatomy"))
    return RunProducts(command=command, main_output=output, report=report, shown=tuple(shown),
                       part_files={output.stem: output}, outputs=run, window_preset=preset_in(report),
                       notes=tuple(notes))





def read_json_report(path: Path) -> dict[str, Any]:
    """A medprint JSON report; InputError naming the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error).split("\n")[0][:100]
        raise InputError(f"{path}: the JSON report beside the mesh cannot be read ({reason}); fix or remove it "
                         "(without it the numbers are measured from the mesh)") from None
    if not isinstance(data, dict) or not (isinstance(data.get("mesh"), dict) or isinstance(data.get("parts"), list)):
        raise InputError(f"{path}: not a medprint report (no mesh or parts in it); fix or remove it "
                         "(without it the numbers are measured from the mesh)")
    return data


def measured_report(mesh: Mesh, name: str) -> dict[str, Any]:
    """The mesh facts of a report (as ``describe_part`` writes them), measured from the mesh alone."""
    quality = assess_mesh(mesh)
    low, high = mesh.bounds_mm()
    facts = {
        "path": name, "frame": "LPS", "units": "mm", "triangles": mesh.face_count, "vertices": mesh.vertex_count,
        "volume_mm3": round(quality.volume_mm3, 2), "area_mm2": round(quality.area_mm2, 2),
        "bounding_box_mm": {"min": [round(v, 3) for v in low], "max": [round(v, 3) for v in high],
                            "size": [round(h - lo, 3) for lo, h in zip(low, high)]},
        "watertight": quality.watertight, "manifold": quality.manifold,
        "winding_consistent": quality.winding_consistent, "outward": quality.outward,
        "bodies": quality.shells if quality.watertight else quality.bodies, "cavities": quality.cavities,
    }
    warnings = [] if quality.is_printable else [f"the mesh is not printable as it is: {quality.describe()}"]
    return {"parts": [{"name": mesh.name, "mesh": facts}], "mesh": facts, "warnings": warnings,
            "measured_from": "mesh"}


def _mismatches(report: Mapping[str, Any], mesh: Mesh, output: Path) -> list[str]:
    """Said on the page when the report beside the mesh may not describe it (renamed, edited since)."""
    described = [part.get("mesh", {}) for part in report.get("parts", []) if isinstance(part, Mapping)]
    described = [facts for facts in described if isinstance(facts, Mapping)] or [report.get("mesh") or {}]
    named = [facts for facts in described if Path(str(facts.get("path", ""))).name == output.name]
    if not named:
        return [(f"the JSON report beside {output.name} names no part of that file name; its numbers may be of "
                 "another mesh")]
    triangles = named[0].get("triangles")
    if isinstance(triangles, int) and triangles != mesh.face_count:
        return [(f"{output.name} has {mesh.face_count:,} triangles, its JSON report says {triangles:,}: the mesh "
                 "was changed after the report was written; its numbers are of the mesh as it was")]
    return []


def _report_command(report: Mapping[str, Any]) -> str:
    design = report.get("design")
    if isinstance(design, Mapping) and design.get("kind"):
        return f"design {design['kind']}"
    order = report.get("order")
    command = order.get("command") if isinstance(order, Mapping) else None
    return command if isinstance(command, str) else "convert"


# ---------------------------------------------------------------------------------------------------------------
# G-code
# ---------------------------------------------------------------------------------------------------------------


def _gcode_products(output: Path, run: RunOutputs) -> RunProducts:
    size = output.stat().st_size
    if size > MAX_GCODE_BYTES:
        raise InputError(f"OUTPUT: {output} is {size / 2**30:.1f} GB, more G-code than medprint reads "
                         f"({MAX_GCODE_BYTES / 2**30:.0f} GB); is it the right file?")
    try:
        text = output.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"OUTPUT: {output} cannot be read ({error.strerror})") from None
    facts = gcode_estimates(text)
    stated = facts.get("layer_count") is not None or facts.get("estimated_time_s") is not None
    notes = [] if stated else [(f"{output.name} carries no estimates in its comments (layer count, time, "
                                "filament): only the layers are shown")]
    return RunProducts(command="slice", main_output=output, report=facts, shown=(), part_files={}, outputs=run,
                       gcode_text=text, notes=tuple(notes))


_NUMBER = r"([-+]?\d+(?:\.\d+)?)"
#: Header comments of medprint's G-code (``; key: value``) and PrusaSlicer's (``; key = value``).
_PATTERNS = {
    "layer_count": [rf"^;\s*layer count:\s*{_NUMBER}"],
    "estimated_time_s": [r"^;\s*estimated printing time[^\n(]*\((\d+(?:\.\d+)?) s\)",
                         r"^;\s*estimated printing time \(normal mode\)\s*=\s*(.+)$"],
    "filament_mm": [rf"^;\s*filament used \[mm\]\s*[:=]\s*{_NUMBER}"],
    "filament_g": [rf"^;\s*filament used \[g\]\s*[:=]\s*{_NUMBER}"],
    "filament_cost": [rf"^;\s*filament cost:\s*{_NUMBER}", rf"^;\s*total filament cost\s*=\s*{_NUMBER}"],
    "currency": [r"^;\s*filament cost:\s*[-+]?\d+(?:\.\d+)?\s+([A-Za-z]{3})\b"],
    "printer": [r"^;\s*printer:\s*([\w.+-]+)", r"^;\s*printer_settings_id\s*=\s*(.+)$"],
    "material": [r"^;\s*material:\s*([\w.+-]+)", r"^;\s*filament_settings_id\s*=\s*(.+)$"],
    "engine": [r"^;\s*generated by\s+(.+)$"],
}


def gcode_estimates(text: str) -> dict[str, Any]:
    """The estimates a G-code file states in its comments (None where it states none).

    >>> facts = gcode_estimates("; layer count: 12\\n; filament used [g] = 3.5\\n")
    >>> facts["layer_count"], facts["filament_g"], facts["printer"]
    (12, 3.5, None)
    """
    # The header and (PrusaSlicer) the footer hold them; the moves in between need not be searched.
    ends = text[:20000] + "\n" + text[-40000:]
    facts: dict[str, Any] = {}
    for name, patterns in _PATTERNS.items():
        facts[name] = None
        for pattern in patterns:
            found = re.search(pattern, ends, flags=re.MULTILINE | re.IGNORECASE)
            if found:
                facts[name] = _value(name, found.group(1).strip())
                break
    if facts["layer_count"] is None:
        layers = len(re.findall(r"^;LAYER:\d+", text, flags=re.MULTILINE)) or len(
            re.findall(r"^;LAYER_CHANGE", text, flags=re.MULTILINE))
        facts["layer_count"] = layers or None
    return facts


def _value(name: str, text: str) -> Any:
    if name == "estimated_time_s" and not re.fullmatch(r"\d+(?:\.\d+)?", text):
        return _prusa_duration_s(text)
    if name == "layer_count":
        return int(float(text))
    if name in ("filament_mm", "filament_g", "filament_cost", "estimated_time_s"):
        return float(text)
    return text[:80]


def _prusa_duration_s(text: str) -> float | None:
    """``'1d 2h 3m 4s'`` -> seconds (PrusaSlicer's estimated printing time)."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)\s*([dhms])", text)
    return float(sum(int(n) * units[u] for n, u in parts)) if parts else None
