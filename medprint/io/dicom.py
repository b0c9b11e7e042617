"""Find DICOM image series in a folder and load one as a :class:`~medprint.volume.Volume`.

Slices are ordered by their position along the slice normal (never by file name
or InstanceNumber); rescale slope/intercept are applied (CT in HU); gantry tilt
and uneven slice spacing are resampled onto an orthogonal, regular grid; gaps
and conflicting duplicates are refused unless asked for.  Patient identity never
reaches :attr:`Volume.metadata`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from ..errors import GeometryError, InputError, ParameterError
from ..geometry import Geometry
from ..progress import ProgressCallback, no_progress
from ..volume import Volume
from . import dicom_headers as hdr
from .dicom_stack import StackLayout, analyse_positions, describe_problems, resample_stack

__all__ = [
    "SeriesInfo",
    "DicomFolderScan",
    "scan_dicom_folder",
    "choose_series",
    "load_dicom_series",
    "load_dicom_file",
    "is_dicom_file",
]

logger = logging.getLogger("medprint")

_PREFERRED_MODALITIES = ("CT", "MR")
_SKIPPED_PREFIX = "skipped unreadable file "
#: De-identified header fields copied into Volume.metadata (no names, IDs or dates).
_METADATA_KEYWORDS = {
    "modality": "Modality",
    "series_description": "SeriesDescription",
    "manufacturer": "Manufacturer",
    "model": "ManufacturerModelName",
    "body_part": "BodyPartExamined",
    "kvp": "KVP",
    "convolution_kernel": "ConvolutionKernel",
    "slice_thickness_mm": "SliceThickness",
}


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM image series (one stack of parallel planes) found in a folder.

    ``phi`` holds patient name, ID and birth date for explicit display only
    (``--show-phi``); it never goes into a Volume.  ``frames`` lists the frames
    used when the series is (part of) one multi-frame file, else it is empty.
    """

    number: int
    uid: str
    modality: str
    description: str
    rows: int
    columns: int
    slice_count: int
    spacing: tuple[float, float, float]
    orientation: str
    problems: tuple[str, ...]
    files: tuple[Path, ...]
    phi: dict[str, str] = field(default_factory=dict, repr=False)
    frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class DicomFolderScan:
    """What :func:`scan_dicom_folder` found."""

    series: tuple[SeriesInfo, ...]
    skipped_not_dicom: int
    skipped_not_image: int
    unreadable: tuple[Path, ...]
    folder: Path = Path(".")


# ----------------------------------------------------------------------------- scanning


@dataclass
class _Group:
    uid: str
    header: Dataset  # the first file's header, for description, modality, PHI
    planes: list[hdr.Plane] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def scan_dicom_folder(folder: str | Path) -> DicomFolderScan:
    """List the image series in a folder and its sub-folders (any file names).

    Parameters
    ----------
    folder : path
        Searched recursively; files are recognised by content, not suffix.

    Returns
    -------
    DicomFolderScan
        Series numbered 1.. with CT/MR first, then by slice count (descending).

    Raises
    ------
    InputError
        The folder does not exist, is empty, or holds no DICOM image files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"DICOM folder {folder} does not exist or is not a folder: check the path")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise InputError(f"folder {folder} is empty: point to the folder that holds the scan's DICOM files")
    groups: dict[tuple[object, ...], _Group] = {}
    not_dicom = not_image = 0
    unreadable: list[Path] = []
    truncated: list[tuple[Path, Dataset]] = []
    for path in files:
        try:
            ds = hdr.read_header(path)
            planes = hdr.planes_of(ds, path)
        except hdr.NotDicom:
            not_dicom += 1
            continue
        except hdr.NotImage as reason:
            logger.debug("skipping %s: %s", path, reason)
            not_image += 1
            continue
        except hdr.TruncatedPixels as exc:
            logger.debug("skipping truncated DICOM file %s: %s", path, exc)
            unreadable.append(path)
            truncated.append((path, exc.header))
            continue
        except hdr.READ_ERRORS as exc:
            logger.debug("skipping unreadable DICOM file %s: %s", path, exc)
            unreadable.append(path)
            continue
        _add_to_groups(groups, ds, planes)
    _note_truncated(groups, truncated)
    if unreadable and len(unreadable) < len(files):
        # One line for the lot: a damaged copy can hold hundreds of cut files.
        logger.warning(
            "skipping %d truncated or unreadable DICOM file(s) in %s, e.g. %s (-vv lists them)",
            len(unreadable), folder, unreadable[0].name,
        )
    series = _number_series([_series_info(g) for g in _split_groups(groups)])
    if not series and unreadable and len(unreadable) + not_dicom + not_image == len(files):
        raise InputError(
            f"every DICOM image file in {folder} is truncated or unreadable ({len(unreadable)} files, e.g. "
            f"{unreadable[0].name}): copy the series again from the PACS or scanner"
        )
    if not series:
        raise InputError(
            f"no DICOM image files in {folder} ({len(files)} files looked at, "
            f"{'none DICOM' if not_dicom == len(files) else f'{not_dicom} not DICOM, {not_image} DICOM without images, {len(unreadable)} unreadable'}): "
            "point to the folder with the CT/MR image series (not a report or a DICOMDIR alone)"
        )
    return DicomFolderScan(tuple(series), not_dicom, not_image, tuple(unreadable), folder)


def _add_to_groups(groups: dict[tuple[object, ...], _Group], ds: Dataset, planes: list[hdr.Plane]) -> None:
    uid, note = _series_key(ds)
    if hdr.is_multiframe(ds):
        # Each multi-frame file is its own series, split further by plane orientation.
        for plane in planes:
            key = ("file", str(plane.path), plane.stack_key())
            groups.setdefault(key, _Group(uid, ds, notes=[note] if note else [])).planes.append(plane)
        return
    key = ("uid", uid, planes[0].stack_key())
    groups.setdefault(key, _Group(uid, ds, notes=[note] if note else [])).planes.extend(planes)


def _note_truncated(groups: dict[tuple[object, ...], _Group], truncated: list[tuple[Path, Dataset]]) -> None:
    """Tell the series a cut-short file belonged to, so its load notes say a slice is missing."""
    for path, ds in truncated:
        try:
            planes = hdr.planes_of(ds, path)
        except hdr.NotImage:
            continue
        uid, _ = _series_key(ds)
        group = groups.get(("uid", uid, planes[0].stack_key()))
        if group is not None:
            group.notes.append(f"{_SKIPPED_PREFIX}{path.name}: pixel data cut short (file truncated)")


def _series_key(ds: Dataset) -> tuple[str, str]:
    uid = hdr.text(ds, "SeriesInstanceUID")
    if uid:
        return uid, ""
    # Some exports strip the UID (the Siemens example has none): group by what is left.
    parts = [hdr.text(ds, k) for k in ("StudyInstanceUID", "SeriesNumber", "FrameOfReferenceUID", "Modality", "SeriesDescription")]
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]
    return f"nouid-{digest}", "no SeriesInstanceUID: grouped by study, series number, orientation and size"


def _split_groups(groups: dict[tuple[object, ...], _Group]) -> list[_Group]:
    """Give groups sharing a UID (different orientation or size) distinct UIDs."""
    by_uid: dict[str, list[_Group]] = defaultdict(list)
    for group in groups.values():
        by_uid[group.uid].append(group)
    result = []
    for uid, members in by_uid.items():
        if len(members) > 1:
            members.sort(key=lambda g: -len(g.planes))
            files = {g.planes[0].path for g in members}
            for index, group in enumerate(members, start=1):
                group.uid = f"{uid}#{index}"
                group.notes.append(
                    f"one of {len(members)} multi-frame files of series {uid}"
                    if len(files) == len(members) and group.planes[0].frame is not None
                    else f"split from series {uid}: it mixes {len(members)} orientations or image sizes"
                )
        result.extend(members)
    return result


def _series_info(group: _Group) -> SeriesInfo:
    planes = group.planes
    row, col = hdr.orthonormal_axes(planes[0].orientation)
    layout = analyse_positions(np.array([p.position for p in planes]), row, col)
    ordered = [planes[k] for k in layout.order]
    names = [p.path.name if p.frame is None else f"frame {p.frame + 1}" for p in ordered]
    assumed = [planes[0].assumed] if planes[0].assumed else []
    problems = list(group.notes) + assumed + describe_problems(layout, names)
    geometry = Geometry(spacing=(1.0, 1.0, 1.0), direction=tuple(np.column_stack([row, col, layout.normal]).ravel()))
    row_spacing, col_spacing = planes[0].pixel_spacing
    ds = group.header
    multiframe = ordered[0].frame is not None
    return SeriesInfo(
        number=0,
        uid=group.uid,
        modality=hdr.text(ds, "Modality") or "OT",
        description=hdr.text(ds, "SeriesDescription"),
        rows=planes[0].rows,
        columns=planes[0].columns,
        slice_count=len(planes),
        spacing=(col_spacing, row_spacing, layout.median_step),
        orientation=geometry.describe_orientation(),
        problems=tuple(problems),
        files=(ordered[0].path,) if multiframe else tuple(p.path for p in ordered),
        phi={k: hdr.text(ds, k) for k in hdr.PHI_KEYWORDS},
        frames=tuple(int(p.frame) for p in ordered) if multiframe else (),  # type: ignore[arg-type]
    )


def _number_series(series: list[SeriesInfo]) -> list[SeriesInfo]:
    def rank(info: SeriesInfo) -> tuple[int, int, str]:
        return (0 if info.modality in _PREFERRED_MODALITIES else 1, -info.slice_count, info.uid)

    ordered = sorted(series, key=rank)
    return [replace(info, number=n) for n, info in enumerate(ordered, start=1)]


# ----------------------------------------------------------------------------- choosing


def choose_series(scan: DicomFolderScan, selector: str | None) -> tuple[SeriesInfo, str]:
    """Pick the series to load.

    Parameters
    ----------
    scan : DicomFolderScan
    selector : str or None
        None picks the largest CT/MR series; else a series number as listed, or
        a SeriesInstanceUID (a unique prefix is enough).

    Returns
    -------
    (SeriesInfo, str)
        The series and why it was chosen, for the log and the report.

    Raises
    ------
    ParameterError
        The selector matches no series, or several; the message lists them.
    """
    if not scan.series:
        raise InputError(f"no DICOM image series in {scan.folder}: point to the folder with the scan")
    if selector is None or not str(selector).strip():
        info, reason = _default_series(scan.series)
    else:
        info, reason = _select(scan.series, str(selector).strip())
    logger.info("using DICOM series %d (%s): %s", info.number, info.uid, reason)
    return info, reason


def _default_series(series: tuple[SeriesInfo, ...]) -> tuple[SeriesInfo, str]:
    scans = [s for s in series if s.modality in _PREFERRED_MODALITIES and s.slice_count >= 2]
    pool = scans or [s for s in series if s.slice_count >= 2] or list(series)
    best = max(pool, key=lambda s: (s.slice_count, -s.number))
    kind = f"{best.modality} " if scans else ""
    reason = f"largest {kind}series ({best.slice_count} slices) of {len(series)}"
    if not scans:
        reason += " (no CT or MR series with 2 or more slices found)"
    return best, reason


def _select(series: tuple[SeriesInfo, ...], selector: str) -> tuple[SeriesInfo, str]:
    if selector.isdigit():
        for info in series:
            if info.number == int(selector):
                return info, f"series {info.number} as asked"
    exact = [s for s in series if s.uid == selector]
    matches = exact or [s for s in series if s.uid.startswith(selector)]
    if len(matches) == 1:
        return matches[0], f"series {matches[0].number} (UID {matches[0].uid}) as asked"
    listing = "; ".join(f"{s.number}: {s.uid} ({s.modality}, {s.slice_count} slices)" for s in series)
    problem = "matches several series" if matches else "matches no series"
    raise ParameterError(f"--series {selector!r} {problem}: give a number or UID from: {listing}")


# ----------------------------------------------------------------------------- loading


@dataclass
class _Planes:
    """Decoded planes in preallocated storage, plus their geometry and notes."""

    array: NDArray[np.generic]
    planes: list[hdr.Plane | None]
    header: Dataset | None = None
    notes: list[str] = field(default_factory=list)


def load_dicom_series(
    series: SeriesInfo, *, allow_gaps: bool = False, progress: ProgressCallback = no_progress
) -> Volume:
    """Load a series found by :func:`scan_dicom_folder` as a Volume.

    Parameters
    ----------
    series : SeriesInfo
    allow_gaps : bool
        Interpolate across missing slices instead of refusing the series.
    progress : callable
        Called as ``progress(stage, done, total)``.

    Returns
    -------
    Volume
        Array ``(slice, row, column)`` in HU for CT (int16 when the rescale is
        integral and fits, else float32) on an orthogonal grid in LPS mm.

    Raises
    ------
    InputError
        Fewer than 2 usable slices, or slices that cannot be stacked.
    GeometryError
        Missing slices (without ``allow_gaps``) or conflicting duplicates.
    """
    if series.frames:
        return _load_multiframe(series.files[0], series.frames, allow_gaps=allow_gaps, progress=progress)
    decoded = _decode_files(series.files, progress)
    decoded.notes[:0] = [p for p in series.problems if p.startswith(_SKIPPED_PREFIX)]
    return _build_volume(decoded, source=f"series {series.number} ({series.uid})", allow_gaps=allow_gaps, progress=progress)


def is_dicom_file(path: str | Path) -> bool:
    """True when a file looks like DICOM by content (preamble or raw tag start), whatever its name."""
    path = Path(path)
    return path.is_file() and hdr.looks_like_dicom(path)


def load_dicom_file(path: str | Path, *, allow_gaps: bool = False, progress: ProgressCallback = no_progress) -> Volume:
    """Load one multi-frame DICOM file (enhanced CT/MR, or any multi-frame volume).

    Geometry comes from the per-frame and shared functional groups (plane
    position, orientation, pixel measures, pixel value transformation).

    Raises
    ------
    InputError
        Not a readable DICOM image, or fewer than 2 frames in a stack.
    """
    path = Path(path)
    try:
        ds = hdr.read_header(path)
        planes = hdr.planes_of(ds, path)
    except hdr.NotDicom as exc:
        raise InputError(f"{path} is not a DICOM file: give a DICOM image file or a folder of them") from exc
    except hdr.NotImage as exc:
        raise InputError(f"{path} is DICOM but not an image volume ({exc}): give a CT or MR image file") from exc
    except hdr.READ_ERRORS as exc:
        raise InputError(f"cannot read DICOM file {path} ({exc}): the file is damaged; copy it again") from exc
    if len(planes) < 2:
        raise InputError(f"{path} holds a single image, not a volume: load the folder with the whole series")
    stacks: dict[object, list[int]] = defaultdict(list)
    for index, plane in enumerate(planes):
        stacks[plane.stack_key()].append(index)
    frames = max(stacks.values(), key=len)
    volume = _load_multiframe(path, tuple(frames), allow_gaps=allow_gaps, progress=progress)
    if len(stacks) > 1:
        note = f"{path.name} holds {len(stacks)} stacks of different orientation; loaded the largest ({len(frames)} frames)"
        logger.info(note)
        volume = Volume(volume.array, volume.geometry, volume.modality, volume.metadata, volume.notes + (note,))
    return volume


def _load_multiframe(path: Path, frames: tuple[int, ...], *, allow_gaps: bool, progress: ProgressCallback) -> Volume:
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except hdr.READ_ERRORS as exc:
        raise InputError(f"cannot decode DICOM file {path} ({exc}): the file is damaged or its compression unsupported") from exc
    planes = hdr.planes_of(ds, path)
    if pixels.ndim == 2:
        pixels = pixels[None]
    store = _Storage(len(frames), planes[frames[0]].rows, planes[frames[0]].columns)
    for slot, frame in enumerate(frames):
        store.put(slot, pixels[frame], *hdr.rescale_of(ds, frame))
        progress("read DICOM", slot + 1, len(frames))
    decoded = _Planes(store.array, [planes[f] for f in frames], header=ds)
    del pixels
    return _build_volume(decoded, source=str(path), allow_gaps=allow_gaps, progress=progress)


class _Storage:
    """Preallocated (n, rows, cols) output; int16 until a plane needs float32."""

    def __init__(self, count: int, rows: int, columns: int) -> None:
        self.array: NDArray[np.generic] = np.zeros((count, rows, columns), dtype=np.int16)

    def put(self, slot: int, raw: NDArray[np.generic], slope: float, intercept: float) -> None:
        if raw.shape != self.array.shape[1:]:
            raise InputError(f"image size {raw.shape} differs from the series' {self.array.shape[1:]}")
        integral = float(slope).is_integer() and float(intercept).is_integer()
        if integral and self.array.dtype == np.int16:
            values = raw.astype(np.int32)
            if slope != 1:
                values *= int(slope)
            values += int(intercept)
            if values.size == 0 or (values.min() >= -32768 and values.max() <= 32767):
                self.array[slot] = values
                return
        if self.array.dtype != np.float32:
            # One-time promotion: a fractional rescale or values beyond int16.
            self.array = self.array.astype(np.float32)
        self.array[slot] = raw.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _decode_files(files: tuple[Path, ...], progress: ProgressCallback) -> _Planes:
    """Read each file once: header and pixels into a preallocated stack."""
    store: _Storage | None = None
    planes: list[hdr.Plane | None] = []
    notes: list[str] = []
    first_header: Dataset | None = None
    for slot, path in enumerate(files):
        try:
            ds = pydicom.dcmread(path)
            plane = hdr.planes_of(ds, path)[0]
            raw = ds.pixel_array
        except (hdr.NotImage, *hdr.READ_ERRORS) as exc:
            note = f"{_SKIPPED_PREFIX}{path.name}: {exc}"
            logger.warning("%s (in %s)", note, path.parent)
            notes.append(note)
            planes.append(None)
            continue
        if store is None:
            store = _Storage(len(files), plane.rows, plane.columns)
        if (plane.rows, plane.columns) != store.array.shape[1:]:
            raise InputError(
                f"{path} is {plane.rows}x{plane.columns} pixels, unlike the rest of its series: "
                "remove it or pick the series by number"
            )
        store.put(slot, raw, *hdr.rescale_of(ds, None))
        if first_header is None:
            first_header = ds
            first_header.PixelData = b""  # keep the header only, not the pixels
        planes.append(plane)
        del ds, raw
        progress("read DICOM", slot + 1, len(files))
    if store is None:
        raise InputError(f"none of the {len(files)} files of the series could be read ({notes[0] if notes else ''}): copy the files again")
    return _Planes(store.array, planes, header=first_header, notes=notes)


def _build_volume(decoded: _Planes, *, source: str, allow_gaps: bool, progress: ProgressCallback) -> Volume:
    keep = [k for k, plane in enumerate(decoded.planes) if plane is not None]
    if len(keep) < 2:
        raise InputError(
            f"{source} has {len(keep)} usable slice(s); a volume needs at least 2: "
            "load the complete series (or another series)"
        )
    array = decoded.array if len(keep) == len(decoded.planes) else decoded.array[keep]
    planes: list[hdr.Plane] = [decoded.planes[k] for k in keep]  # type: ignore[misc]
    _check_stackable(planes, source)
    row, col = hdr.orthonormal_axes(planes[0].orientation)
    layout = analyse_positions(np.array([p.position for p in planes]), row, col)
    if not np.array_equal(layout.order, np.arange(len(planes))):
        array = array[layout.order]
        planes = [planes[k] for k in layout.order]
    array, planes, layout, notes = _drop_duplicates(array, planes, layout, row, col)
    notes = decoded.notes + ([planes[0].assumed] if planes[0].assumed else []) + notes
    _check_gaps(layout, planes, source, allow_gaps)
    row_spacing, col_spacing = planes[0].pixel_spacing
    origin = np.asarray(planes[0].position, dtype=float)
    needs_resampling = layout.is_shifted() or layout.is_uneven() or bool(layout.gaps())
    if needs_resampling:
        notes += describe_problems(layout)
        result = resample_stack(
            array, layout, (col_spacing, row_spacing), fill_value=float(array.min()),
            progress=lambda done, total: progress("resample", done, total),
        )
        array, dz = result.array, result.slice_spacing
        origin = origin + result.corner_mm[0] * row + result.corner_mm[1] * col
        notes.append(
            f"resampled onto an orthogonal grid with {dz:.3g} mm slice spacing (linear interpolation along the "
            f"slice normal; smallest acquired spacing, at least half the median) to correct "
            + " and ".join(
                reason
                for reason, present in (
                    ("gantry tilt", layout.is_shifted()),
                    ("uneven spacing", layout.is_uneven()),
                    ("gaps", bool(layout.gaps())),
                )
                if present
            )
        )
    else:
        dz = float(layout.distances[-1]) / (len(planes) - 1)
    for note in notes:
        logger.info("%s: %s", source, note)
    geometry = Geometry(
        spacing=(col_spacing, row_spacing, dz),
        origin=tuple(origin),  # type: ignore[arg-type]
        direction=tuple(np.column_stack([row, col, layout.normal]).ravel()),
    )
    header = decoded.header
    modality = hdr.text(header, "Modality") if header is not None else ""
    return Volume(array=array, geometry=geometry, modality=modality or "OT", metadata=_metadata(header), notes=tuple(notes))


def _check_stackable(planes: list[hdr.Plane], source: str) -> None:
    first = planes[0]
    for plane in planes[1:]:
        if plane.stack_key() != first.stack_key():
            raise InputError(
                f"{plane.path} has another orientation or size than {first.path.name} in {source}: "
                "these are different stacks; scan the folder again and pick one series"
            )


def _drop_duplicates(
    array: NDArray[np.generic], planes: list[hdr.Plane], layout: StackLayout, row: NDArray[np.float64], col: NDArray[np.float64]
) -> tuple[NDArray[np.generic], list[hdr.Plane], StackLayout, list[str]]:
    pairs = layout.duplicate_pairs()
    if not pairs:
        return array, planes, layout, []
    drop = set()
    for first, second in pairs:
        if not np.array_equal(array[first], array[second]):
            raise GeometryError(
                f"{_name(planes[first])} and {_name(planes[second])} lie at the same position but differ: "
                "the folder mixes two acquisitions (echoes, phases or a repeat); remove one set or pick another series"
            )
        drop.add(second)
    keep = [k for k in range(len(planes)) if k not in drop]
    notes = [f"dropped {len(drop)} duplicate slice(s) identical to another at the same position"]
    planes = [planes[k] for k in keep]
    new_layout = analyse_positions(np.array([p.position for p in planes]), row, col)
    return array[keep], planes, new_layout, notes


def _check_gaps(layout: StackLayout, planes: list[hdr.Plane], source: str, allow_gaps: bool) -> None:
    gaps = layout.gaps()
    if not gaps or allow_gaps:
        return
    k = gaps[0]
    raise GeometryError(
        f"gap of {layout.steps[k]:.3g} mm after slice {k + 1} ({_name(planes[k])}, at {layout.distances[k]:.1f} mm) "
        f"in {source}, where slices are {layout.median_step:.3g} mm apart: slices are missing; "
        "copy the complete series or use --allow-gaps to interpolate across the gap"
    )


def _name(plane: hdr.Plane) -> str:
    return str(plane.path) if plane.frame is None else f"{plane.path} frame {plane.frame + 1}"


def _metadata(header: Dataset | None) -> dict[str, str]:
    """De-identified description; never names, IDs or dates."""
    if header is None:
        return {}
    metadata = {key: hdr.text(header, keyword) for key, keyword in _METADATA_KEYWORDS.items()}
    series_uid = hdr.text(header, "SeriesInstanceUID")
    if series_uid:
        metadata["series_uid"] = series_uid
    return {key: value for key, value in metadata.items() if value}

