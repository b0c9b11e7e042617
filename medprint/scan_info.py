"""What ``medprint info`` shows: the series in a folder or the volume in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InputError
from .io import load_volume
from .io.image_files import is_image_file


def describe_input(path: Path, *, show_phi: bool = False) -> dict[str, Any]:
    """Describe every image series in ``path`` without loading pixel data where avoidable.

    Patient name, ID and birth date, and the series' free text and UID (the DICOM confidentiality profile,
    PS3.15 E.1-1, removes both: a description can carry a name, a UID is traceable), are included only with
    ``show_phi``; ``--series`` takes the number shown.
    """
    from .io import dicom

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        scan = dicom.scan_dicom_folder(path)
        # File names below the folder may carry the patient's name: places by default, names on request.
        unreadable = (
            [str(p) for p in scan.unreadable]
            if show_phi
            else [f"file {n} of {scan.file_count}" for n in scan.unreadable_numbers]
        )
        return {
            "input": str(path),
            "series": [_describe_series(series, show_phi) for series in scan.series],
            "skipped_not_dicom": scan.skipped_not_dicom,
            "skipped_not_image": scan.skipped_not_image,
            "not_image_reasons": dict(scan.not_image_reasons),
            "unreadable": unreadable,
        }
    if not is_image_file(path) and not dicom.is_dicom_file(path):
        raise InputError(f"{path}: not a DICOM file nor a NIfTI/NRRD/MHA image; give a scan")
    volume = load_volume(path)
    geometry = volume.geometry
    return {
        "input": str(path),
        "series": [
            {
                "number": 1,
                **_identifying(volume.metadata.get("series_uid", ""), volume.metadata.get("series_description", ""),
                               show_phi),
                "modality": volume.modality,
                "dimensions_xyz": list(reversed(volume.shape)),
                "spacing_mm": [round(s, 4) for s in geometry.spacing],
                "orientation": geometry.describe_orientation(),
                "slices": volume.shape[0],
                "problems": list(volume.notes),
            }
        ],
        "skipped_not_dicom": 0,
        "skipped_not_image": 0,
        "unreadable": [],
    }


def _describe_series(series: Any, show_phi: bool) -> dict[str, Any]:
    described = {
        "number": series.number,
        **_identifying(series.uid, series.description, show_phi),
        "modality": series.modality,
        "dimensions_xyz": [series.columns, series.rows, series.slice_count],
        "spacing_mm": [round(s, 4) for s in series.spacing],
        "orientation": series.orientation,
        "slices": series.slice_count,
        "problems": list(series.problems),
    }
    if show_phi:
        described["patient"] = dict(series.phi)
    return described


def _identifying(uid: str, description: str, show_phi: bool) -> dict[str, str]:
    return {"uid": uid, "description": description} if show_phi else {}


def format_description(description: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe_input`'s result."""
    lines = [f"{description['input']}: {len(description['series'])} image series"]
    for series in description["series"]:
        dims = "x".join(str(d) for d in series["dimensions_xyz"])
        spacing = "x".join(f"{s:g}" for s in series["spacing_mm"])
        lines.append(
            f"  [{series['number']}] {series['modality']} {_description_text(series)}: "
            f"{dims} voxels, {spacing} mm, {series['orientation']}, {series['slices']} slices"
        )
        if series.get("uid"):
            lines.append(f"      uid {series['uid']}")
        for problem in series["problems"]:
            lines.append(f"      ! {problem}")
        for key, value in series.get("patient", {}).items():
            lines.append(f"      {key}: {value}")
    skipped = description["skipped_not_dicom"] + description["skipped_not_image"]
    if skipped:
        reasons = description.get("not_image_reasons") or {}
        why = f" ({', '.join(f'{n} {reason}' for reason, n in reasons.items())})" if reasons else ""
        lines.append(
            f"  skipped {description['skipped_not_dicom']} non-DICOM and "
            f"{description['skipped_not_image']} non-image DICOM files{why}"
        )
    for path in description["unreadable"]:
        lines.append(f"  unreadable: {path}")
    return "\n".join(lines)


def _description_text(series: dict[str, Any]) -> str:
    if "description" not in series:
        return "(description withheld; --show-phi shows it)"
    return series["description"] or "(no description)"
