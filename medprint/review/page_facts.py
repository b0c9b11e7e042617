"""Which numbers of a JSON report the sign-off page shows, in which units and words.

Pure functions from the report (a mapping, as written beside the output) to rows of a table; the page
(:mod:`medprint.review.page`) escapes and lays them out.  Reports of every command are read: ``convert`` and
``design`` (``parts``/``mesh``, ``design``, ``parameters``), ``slice`` (the G-code summary at the top level) and
``convert --gcode`` (``gcode``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Lists longer than this are shortened in a table cell (the JSON report keeps them whole).
MAX_LISTED = 12


@dataclass(frozen=True)
class Row:
    """One table row: a label, the text shown, the exact value (a number, for ``data-value``) and its key."""

    label: str
    text: str
    value: Any = None
    key: str = ""
    #: ``"bad"`` marks a fact that needs the reviewer's eye (not watertight, normals inward).
    flag: str = ""


def part_tables(report: Mapping[str, Any]) -> list[tuple[str, list[Row]]]:
    """One table per part: (part name, rows of its mesh and mask facts)."""
    parts = report.get("parts")
    if not isinstance(parts, list) or not parts:
        parts = [{"name": "model", "mesh": report["mesh"]}] if isinstance(report.get("mesh"), Mapping) else []
    tables = []
    wall = minimum_wall_mm(report)
    for index, part in enumerate(parts):
        if not isinstance(part, Mapping) or not isinstance(part.get("mesh"), Mapping):
            continue
        rows = mesh_rows(part["mesh"], f"parts.{index}.mesh")
        mask = part.get("mask")
        if isinstance(mask, Mapping) and _is_number(mask.get("volume_mm3")):
            rows.insert(1, Row("Segmented volume (voxels)", _volume(mask["volume_mm3"]), mask["volume_mm3"],
                               f"parts.{index}.mask.volume_mm3"))
        if wall is not None and len(parts) == 1:
            rows.append(Row("Thinnest wall (measured)", f"{wall:.2f} mm", wall, "design.measurements.min_wall"))
        tables.append((str(part.get("name") or f"part {index + 1}"), rows))
    return tables


def input_rows(report: Mapping[str, Any]) -> list[Row]:
    """What the run read: the scan's modality, grid and orientation and its fingerprint, or the input mesh."""
    facts = report.get("input")
    if not isinstance(facts, Mapping):
        return []
    rows: list[Row] = []
    if facts.get("kind") == "mesh":
        if _is_number(facts.get("triangles")):
            rows.append(Row("Input mesh", f"{facts['triangles']:,} triangles", facts["triangles"], "input.triangles"))
        fingerprint = facts.get("mesh_sha256")
    else:
        if facts.get("modality"):
            rows.append(Row("Modality", str(facts["modality"]), None, "input.modality"))
        if _is_vector(facts.get("dimensions_xyz")):
            rows.append(Row("Voxels (x, y, z)", " × ".join(f"{int(v)}" for v in facts["dimensions_xyz"]), None,
                            "input.dimensions_xyz"))
        if _is_vector(facts.get("spacing_mm")):
            rows.append(Row("Voxel size", " × ".join(f"{v:g}" for v in facts["spacing_mm"]) + " mm", None,
                            "input.spacing_mm"))
        if facts.get("orientation"):
            rows.append(Row("Grid orientation", str(facts["orientation"]), None, "input.orientation"))
        metadata = facts.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("body_part"):
            rows.append(Row("Body part", str(metadata["body_part"]), None, "input.metadata.body_part"))
        fingerprint = facts.get("volume_sha256")
    if isinstance(facts.get("path"), str):
        # In the report only when the run was asked for it (--show-phi).
        rows.append(Row("Input path (--show-phi)", facts["path"], None, "input.path"))
    if isinstance(fingerprint, str) and fingerprint:
        # Ties the page to its input without naming the patient.
        rows.append(Row("Fingerprint (sha256)", fingerprint[:16] + "…", None, "input.sha256"))
    return rows


def mesh_rows(mesh: Mapping[str, Any], key: str) -> list[Row]:
    """The rows of one mesh's facts (volume, area, size, bodies, closedness, deviation)."""
    rows: list[Row] = []

    def add(label: str, name: str, text: str) -> None:
        rows.append(Row(label, text, mesh.get(name), f"{key}.{name}"))

    if _is_number(mesh.get("volume_mm3")):
        add("Volume", "volume_mm3", _volume(mesh["volume_mm3"]))
    if _is_number(mesh.get("area_mm2")):
        add("Surface area", "area_mm2", f"{mesh['area_mm2']:,.1f} mm² ({mesh['area_mm2'] / 100:,.1f} cm²)")
    box = mesh.get("bounding_box_mm")
    if isinstance(box, Mapping) and _is_vector(box.get("size")):
        size = box["size"]
        rows.append(Row("Size (x, y, z)", " × ".join(f"{s:.1f}" for s in size) + " mm", None,
                        f"{key}.bounding_box_mm.size"))
        if _is_vector(box.get("min")) and _is_vector(box.get("max")):
            rows.append(Row("Bounding box (LPS mm)", f"from {_point(box['min'])} to {_point(box['max'])}", None,
                            f"{key}.bounding_box_mm"))
    for name, label in (("triangles", "Triangles"), ("bodies", "Bodies"), ("cavities", "Cavities")):
        if _is_number(mesh.get(name)):
            add(label, name, f"{mesh[name]:,}")
    for name, label in (("watertight", "Watertight"), ("manifold", "Manifold"), ("outward", "Normals outward")):
        if isinstance(mesh.get(name), bool):
            rows.append(Row(label, "yes" if mesh[name] else "NO", None, f"{key}.{name}", "" if mesh[name] else "bad"))
    if _is_number(mesh.get("surface_deviation_mm")):
        limit = mesh.get("deviation_limit_mm")
        text = f"{mesh['surface_deviation_mm']:.2f} mm" + (f" (limit {limit:.2f} mm)" if _is_number(limit) else "")
        add("Surface deviation from the segmentation", "surface_deviation_mm", text)
    if _is_number(mesh.get("repair_deviation_mm")):
        add("Repair moved the surface by", "repair_deviation_mm", f"{mesh['repair_deviation_mm']:.2f} mm")
    if mesh.get("frame") or mesh.get("units"):
        rows.append(Row("Coordinates", f"{mesh.get('frame', '?')}, {mesh.get('units', '?')}", None, f"{key}.frame"))
    return rows


def minimum_wall_mm(report: Mapping[str, Any]) -> float | None:
    """The thinnest wall a design measured (implant: ``min_wall_mm.measured``; hollow: ``wall_measured_mm.min``).

    >>> minimum_wall_mm({"design": {"measurements": {"min_wall_mm": {"asked": 1.0, "measured": 1.2}}}})
    1.2
    >>> minimum_wall_mm({"design": {"measurements": {"wall_measured_mm": {"min": 1.4, "median": 1.5}}}})
    1.4
    """
    design = report.get("design")
    measured = design.get("measurements") if isinstance(design, Mapping) else None
    if not isinstance(measured, Mapping):
        return None
    for name, value in measured.items():
        if "wall" not in name:
            continue
        if _is_number(value) and name.startswith("min"):
            return float(value)
        if isinstance(value, Mapping):
            # hollow: {"min": ..., "median": ...}; implant: {"asked": ..., "measured": ...}
            for key in ("min", "measured"):
                if _is_number(value.get(key)):
                    return float(value[key])
    return None


def gcode_facts(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The G-code summary of a report: ``gcode`` (convert --gcode) or the report itself (slice), else None."""
    gcode = report.get("gcode")
    if isinstance(gcode, Mapping):
        return gcode
    if "layer_count" in report or "estimated_time_s" in report:
        return report
    return None


def estimate_rows(facts: Mapping[str, Any]) -> list[Row]:
    """Time, filament (m and g), cost, layers, printer, material, engine."""
    rows: list[Row] = []
    if _is_number(facts.get("estimated_time_s")):
        rows.append(Row("Print time", duration_text(facts["estimated_time_s"]), facts["estimated_time_s"],
                        "estimated_time_s"))
    if _is_number(facts.get("filament_mm")):
        rows.append(Row("Filament length", f"{facts['filament_mm'] / 1000:.2f} m", facts["filament_mm"],
                        "filament_mm"))
    if _is_number(facts.get("filament_g")):
        rows.append(Row("Filament weight", f"{facts['filament_g']:.1f} g", facts["filament_g"], "filament_g"))
    if _is_number(facts.get("filament_cost")):
        currency = facts.get("currency") or ""
        rows.append(Row("Filament cost", f"{facts['filament_cost']:.2f} {currency}".strip(), facts["filament_cost"],
                        "filament_cost"))
    if _is_number(facts.get("layer_count")):
        rows.append(Row("Layers", f"{facts['layer_count']:,}", facts["layer_count"], "layer_count"))
    settings = facts.get("settings")
    if isinstance(settings, Mapping) and _is_number(settings.get("layer_height_mm")):
        rows.append(Row("Layer height", f"{settings['layer_height_mm']:g} mm", settings["layer_height_mm"],
                        "settings.layer_height_mm"))
    for name, label in (("printer", "Printer"), ("material", "Material"), ("engine", "Slicer")):
        if facts.get(name):
            rows.append(Row(label, str(facts[name]), None, name))
    return rows


def duration_text(seconds: float) -> str:
    """``4520`` -> ``'1 h 15 min 20 s'``.

    >>> duration_text(4520)
    '1 h 15 min 20 s'
    >>> duration_text(59.6)
    '1 min 0 s'
    """
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours} h " if hours else "") + f"{minutes} min {secs} s"


def design_rows(report: Mapping[str, Any]) -> list[Row]:
    """What a design says of itself: kind, method, and its measurements."""
    design = report.get("design")
    if not isinstance(design, Mapping):
        return []
    rows = [Row(label, str(design[name]), None, f"design.{name}")
            for name, label in (("kind", "Kind of part"), ("method", "Method")) if design.get(name)]
    measured = design.get("measurements")
    if isinstance(measured, Mapping):
        rows += flat_rows(measured, "design.measurements")
    return rows


def parameter_groups(report: Mapping[str, Any]) -> list[tuple[str, list[Row]]]:
    """The parameters used, one table per group (``segmentation``, ``surface`` ...; single settings first)."""
    parameters = report.get("parameters")
    key = "parameters"
    if not isinstance(parameters, Mapping):
        parameters, key = report.get("settings"), "settings"  # a slice report: its settings are its parameters
    if not isinstance(parameters, Mapping):
        return []
    single = {name: value for name, value in parameters.items() if not (isinstance(value, Mapping) and value)}
    groups = [("settings", flat_rows(single, key))] if single else []
    groups += [(_words(name), flat_rows(value, f"{key}.{name}")) for name, value in parameters.items()
               if name not in single]
    return groups


def flat_rows(data: Mapping[str, Any], key: str, label: str = "") -> list[Row]:
    """Rows of a nested mapping: ``{"surface": {"smooth_iterations": 20}}`` -> ``surface: smooth iterations``."""
    rows: list[Row] = []
    for name, value in data.items():
        here = f"{label}: {_words(name)}" if label else _words(name)
        if isinstance(value, Mapping) and value:
            rows += flat_rows(value, f"{key}.{name}", here)
        else:
            rows.append(Row(here, value_text(value), value if _is_number(value) else None, f"{key}.{name}"))
    return rows


def value_text(value: Any) -> str:
    """A report value in words: None -> ``not set``, booleans yes/no, lists joined, numbers as written.

    >>> value_text(None), value_text(True), value_text([1.5, 2]), value_text(0.15)
    ('not set', 'yes', '1.5, 2', '0.15')
    """
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{_words(k)} {value_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        shown = [value_text(item) for item in value[:MAX_LISTED]]
        more = f" ... and {len(value) - MAX_LISTED} more" if len(value) > MAX_LISTED else ""
        separator = " | " if any(isinstance(item, Mapping) for item in value) else ", "
        return separator.join(shown) + more
    return str(value)


def _volume(mm3: float) -> str:
    return f"{mm3:,.1f} mm³ ({mm3 / 1000:,.2f} ml)"


def _point(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in values) + ")"


def _words(name: str) -> str:
    return str(name).replace("_", " ")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_vector(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 3 and all(_is_number(v) for v in value)
