"""Find DICOM image series in a folder and load one as a :class:`~medprint.volume.Volume`.

Slices are ordered by their position along the slice normal (never by file name
or InstanceNumber); rescale slope/intercept are applied (CT in HU); gantry tilt
and uneven slice spacing are resampled onto an orthogonal, regular grid; gaps
(a step of twice the median spacing or more, as one missing slice leaves) and
conflicting duplicates are refused unless asked for.  A file that cannot be
read or decoded is skipped with a warning, and the hole it leaves is judged
like any other.  Patient identity never reaches :attr:`Volume.metadata`, and
messages point at files by their number in the folder ("file 12 of 300"),
never by name: hospitals name files and folders after the patient.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter, defaultdict
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
from .dicom_stack import (
    WIDE_STEP_FACTOR,
    StackLayout,
    analyse_positions,
    describe_problems,
    resample_stack,
)
from .image_files import replace_non_finite

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
_SKIPPED_PREFIX = "skipped unreadable "
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
    ``file_numbers`` gives each of ``files`` its place (1..) among the
    ``folder_files`` files of the scanned folder, so that messages can point at
    a file without its name, which may carry the patient's.
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
    file_numbers: tuple[int, ...] = ()
    folder_files: int = 0

    def file_label(self, index: int) -> str:
        """'file 12 of 300' for ``files[index]``: where it is, without its name."""
        if len(self.file_numbers) == len(self.files) and self.folder_files:
            return f"file {self.file_numbers[index]} of {self.folder_files}"
        return f"file {index + 1} of the series' {len(self.files)}"


@dataclass(frozen=True)
class DicomFolderScan:
    """What :func:`scan_dicom_folder` found.

    ``unreadable`` lists damaged files (names for ``--show-phi`` and ``-vv``
    only); ``unreadable_numbers`` their places (1..) among ``file_count`` files.
    """

    series: tuple[SeriesInfo, ...]
    skipped_not_dicom: int
    skipped_not_image: int
    unreadable: tuple[Path, ...]
    folder: Path = Path(".")
    file_count: int = 0
    unreadable_numbers: tuple[int, ...] = ()
    not_image_reasons: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- scanning


@dataclass
class _Group:
    uid: str
    header: Dataset  # the first file's header, for description, modality, PHI
    kind: dict[str, str]  # what files must share to be one stack (see _kind)
    planes: list[hdr.Plane] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@hdr.quiet_pydicom()  # pydicom converts values lazily: its warnings can come at any access
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
    numbers = {path: number for number, path in enumerate(files, start=1)}
    groups: dict[tuple[object, ...], _Group] = {}
    not_dicom = 0
    not_image: Counter[str] = Counter()
    unreadable: list[tuple[Path, str]] = []
    damaged: list[tuple[Path, Dataset, str]] = []  # a header was read: its series hears of the file
    for path in files:
        ds: Dataset | None = None
        try:
            ds = hdr.read_header(path)
            planes = hdr.planes_of(ds, path)
        except hdr.NotDicom:
            not_dicom += 1
            continue
        except hdr.NotImage as reason:
            logger.debug("skipping file %d (%s): %s", numbers[path], path, reason)
            not_image[str(reason).split(" (")[0]] += 1
            continue
        except hdr.TruncatedPixels as exc:
            logger.debug("skipping truncated DICOM file %d (%s): %s", numbers[path], path, exc)
            unreadable.append((path, "pixel data cut short (file truncated)"))
            damaged.append((path, exc.header, unreadable[-1][1]))
            continue
        except hdr.READ_ERRORS as exc:
            logger.debug("skipping unreadable DICOM file %d (%s): %s", numbers[path], path, exc)
            unreadable.append((path, _reason(exc)))
            header = ds if ds is not None else getattr(exc, "header", None)
            if header is not None:
                damaged.append((path, header, unreadable[-1][1]))
            continue
        _add_to_groups(groups, ds, planes)
    _note_skipped(groups, damaged, numbers)
    series = _number_series([_series_info(g, numbers) for g in _split_groups(groups)])
    skipped = f"{len(unreadable)} of the {len(files)} files"
    if unreadable and series:
        # One line for the lot: a damaged copy can hold hundreds of cut files.
        first, why = unreadable[0]
        logger.warning(
            "skipping %d truncated or unreadable DICOM file(s) in %s, e.g. file %d of %d: %s (-vv lists them)",
            len(unreadable), folder, numbers[first], len(files), why,
        )
    if not series and unreadable:
        first, why = unreadable[0]
        raise InputError(
            f"no usable DICOM image in {folder}: {skipped} are damaged, e.g. file {numbers[first]}: {why}; "
            "export or copy the series again from the PACS or scanner"
        )
    if not series:
        raise InputError(_no_images_message(folder, len(files), not_dicom, not_image))
    return DicomFolderScan(
        tuple(series), not_dicom, sum(not_image.values()), tuple(p for p, _ in unreadable), folder,
        len(files), tuple(numbers[p] for p, _ in unreadable), dict(not_image),
    )


def _reason(exc: BaseException) -> str:
    """One short line of why a file cannot be used, without its path (an OSError's text carries it)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, hdr.BytesLengthException):
        return "damaged header: an element's length does not fit its value type"
    return text if len(text) <= 160 else text[:157] + "..."


def _no_images_message(folder: Path, count: int, not_dicom: int, not_image: Counter[str]) -> str:
    if not_dicom == count:
        found = "none is DICOM"
    else:
        kinds = ", ".join(f"{n} {reason}" for reason, n in not_image.most_common())
        found = f"{not_dicom} not DICOM" + (f", {kinds}" if kinds else "")
    fix = "point to the folder with the CT/MR image series"
    if set(not_image) == {"DICOMDIR"}:
        fix = "a DICOMDIR is only an index: point to the folder with the image files it lists"
    elif "colour image" in not_image:
        fix += " (greyscale slices: colour images such as screenshots or photos cannot be stacked)"
    else:
        fix += " (not a report or a DICOMDIR alone)"
    return f"no DICOM image files in {folder} ({count} files looked at: {found}): {fix}"


def _kind(ds: Dataset, plane: hdr.Plane) -> dict[str, str]:
    """What the files of one stack must share; differences under one UID split the series."""
    return {
        "modalities": hdr.text(ds, "Modality") or "OT",
        "frames of reference": hdr.text(ds, "FrameOfReferenceUID"),
        # A broken anonymiser can give two patients' or studies' series one UID.
        "studies": hdr.text(ds, "StudyInstanceUID"),
        "patients": hashlib.sha1("|".join(
            hdr.text(ds, k) for k in ("PatientID", "PatientName", "PatientBirthDate")).encode()).hexdigest()[:12],
        "orientations": "\\".join(f"{v:.3f}" for v in plane.orientation),
        "image sizes": f"{plane.columns}x{plane.rows}",
        "pixel spacings": "x".join(f"{v:.4g}" for v in reversed(plane.pixel_spacing)),
    }


def _group_key(uid: str, kind: dict[str, str]) -> tuple[object, ...]:
    return ("uid", uid, *kind.values())


def _add_to_groups(groups: dict[tuple[object, ...], _Group], ds: Dataset, planes: list[hdr.Plane]) -> None:
    uid, note = _series_key(ds)
    if hdr.is_multiframe(ds):
        # Each multi-frame file is its own series, split further by plane orientation.
        for plane in planes:
            key = ("file", str(plane.path), plane.stack_key())
            groups.setdefault(key, _Group(uid, ds, _kind(ds, plane), notes=[note] if note else [])).planes.append(plane)
        return
    kind = _kind(ds, planes[0])
    groups.setdefault(_group_key(uid, kind), _Group(uid, ds, kind, notes=[note] if note else [])).planes.extend(planes)


def _note_skipped(
    groups: dict[tuple[object, ...], _Group], damaged: list[tuple[Path, Dataset, str]], numbers: dict[Path, int]
) -> None:
    """Tell the series a skipped file belonged to, so its notes (and a gap's error) say a slice is missing."""
    for path, ds, why in damaged:
        uid, _ = _series_key(ds)
        try:
            planes = hdr.planes_of(ds, path)
            candidates = [groups.get(_group_key(uid, _kind(ds, planes[0])))]
        except (hdr.NotImage, *hdr.READ_ERRORS):
            # Its geometry is what is damaged: every stack of its series may miss it.
            candidates = [group for group in groups.values() if group.uid == uid]
        for group in candidates:
            if group is not None:
                group.notes.append(f"{_SKIPPED_PREFIX}file {numbers[path]} of {len(numbers)}: {why}")


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
            mixed = _mixture(members)
            for index, group in enumerate(members, start=1):
                group.uid = f"{uid}#{index}"
                group.notes.append(
                    f"one of {len(members)} multi-frame files of one series UID"
                    if len(files) == len(members) and group.planes[0].frame is not None
                    else f"{_SPLIT_PREFIX}({len(group.planes)} of its "
                    f"{sum(len(g.planes) for g in members)} images): it mixes {mixed}"
                )
        result.extend(members)
    return result


_SPLIT_PREFIX = "split from one series UID "


#: Stack keys whose values identify a patient or study (PS3.15): messages count them, never show them.
_IDENTIFYING_KINDS = frozenset({"frames of reference", "studies", "patients"})


def _mixture(members: list[_Group]) -> str:
    """'2 modalities (CT, MR)': what differs between the parts of one UID."""
    parts = []
    for key in members[0].kind:
        values = sorted({g.kind[key] for g in members})
        if len(values) > 1 and key in _IDENTIFYING_KINDS:
            parts.append(f"{len(values)} {key}")  # UIDs and patients are counted, never shown
        elif len(values) > 1:
            shown = ", ".join(v if len(v) < 40 else v[:37] + "..." for v in values[:4])
            parts.append(f"{len(values)} {key} ({shown}{', ...' if len(values) > 4 else ''})")
    return " and ".join(parts) or "stacks of different orientation"


def _series_info(group: _Group, numbers: dict[Path, int]) -> SeriesInfo:
    planes = group.planes
    row, col = hdr.orthonormal_axes(planes[0].orientation)
    layout = analyse_positions(np.array([p.position for p in planes]), row, col)
    ordered = [planes[k] for k in layout.order]
    names = [
        f"file {numbers.get(p.path, 0)} of {len(numbers)}" if p.frame is None else f"frame {p.frame + 1}" for p in ordered
    ]
    assumed = [planes[0].assumed] if planes[0].assumed else []
    problems = list(group.notes) + assumed + describe_problems(layout, names)
    if len(planes) == 1:
        problems.append("a single slice: a 3D model needs a stack of at least 2 parallel slices")
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
        file_numbers=(numbers.get(ordered[0].path, 0),) if multiframe else tuple(numbers.get(p.path, 0) for p in ordered),
        folder_files=len(numbers),
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
    if selector is not None and not str(selector).strip():
        raise ParameterError("--series is empty: give a series number as `medprint info` lists them, or leave it out")
    if selector is None:
        info, reason = _default_series(scan.series)
    else:
        info, reason = _select(scan.series, str(selector).strip())
    logger.info("using DICOM series %d: %s", info.number, reason)
    split = next((p for p in info.problems if p.startswith(_SPLIT_PREFIX)), None)
    if split is not None:
        # Files under one UID that cannot be one stack: the user should know a part was left out.
        others = [s.number for s in scan.series if s is not info and s.uid.split("#")[0] == info.uid.split("#")[0]]
        logger.warning(
            "series %d is %s; the other part(s) are series %s: pick one with --series if this is the wrong one",
            info.number, split, ", ".join(map(str, others)),
        )
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
        return matches[0], f"series {matches[0].number} (by its UID) as asked"
    # UIDs are PS3.15 data: the listing gives numbers (`medprint info --show-phi` shows the UIDs).
    listing = "; ".join(f"{s.number} ({s.modality}, {s.slice_count} slices)" for s in series)
    problem = "matches several series" if matches else "matches no series"
    raise ParameterError(f"--series {selector!r} {problem}: give one of the series numbers: {listing}")


# ----------------------------------------------------------------------------- loading


@dataclass
class _Planes:
    """Decoded planes in preallocated storage, plus their geometry and notes."""

    array: NDArray[np.generic]
    planes: list[hdr.Plane | None]
    header: Dataset | None = None
    notes: list[str] = field(default_factory=list)


@hdr.quiet_pydicom()  # pydicom converts values lazily: its warnings can come at any access
def load_dicom_series(
    series: SeriesInfo, *, allow_gaps: bool = False, non_finite: float | None = None,
    progress: ProgressCallback = no_progress,
) -> Volume:
    """Load a series found by :func:`scan_dicom_folder` as a Volume.

    Parameters
    ----------
    series : SeriesInfo
    allow_gaps : bool
        Interpolate across missing slices instead of refusing the series (and
        say so at WARNING level).
    non_finite : float, optional
        What NaN and infinite voxels of Float or Double Float Pixel Data stand
        for (they are set to it and the count is noted).  Without it they are
        refused.
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
        Fewer than 2 usable slices, slices that cannot be stacked, or NaN/Inf
        voxels without ``non_finite``.
    GeometryError
        Missing slices, skipped unreadable files among them (without
        ``allow_gaps``), or conflicting duplicates.
    """
    source = f"series {series.number}"
    if series.frames:
        return _load_multiframe(
            series.files[0], series.frames, allow_gaps=allow_gaps, non_finite=non_finite, progress=progress,
            source=f"{source}, a multi-frame {series.file_label(0)}",
        )
    decoded = _decode_files(series, progress)
    decoded.notes[:0] = [p for p in series.problems if p.startswith(_SKIPPED_PREFIX)]
    return _build_volume(decoded, source=source, allow_gaps=allow_gaps, non_finite=non_finite, progress=progress)


def is_dicom_file(path: str | Path) -> bool:
    """True when a file looks like DICOM by content (preamble or raw tag start), whatever its name."""
    path = Path(path)
    return path.is_file() and hdr.looks_like_dicom(path)


@hdr.quiet_pydicom()  # pydicom converts values lazily: its warnings can come at any access
def load_dicom_file(
    path: str | Path, *, allow_gaps: bool = False, non_finite: float | None = None,
    progress: ProgressCallback = no_progress,
) -> Volume:
    """Load one multi-frame DICOM file (enhanced CT/MR, or any multi-frame volume).

    Geometry comes from the per-frame and shared functional groups (plane
    position, orientation, pixel measures, pixel value transformation).
    ``allow_gaps`` and ``non_finite`` act as in :func:`load_dicom_series`.

    Raises
    ------
    InputError
        Not a readable DICOM image, fewer than 2 frames in a stack, or NaN/Inf
        voxels without ``non_finite``.
    GeometryError
        Missing frames (without ``allow_gaps``), or conflicting duplicates.
    """
    path = Path(path)
    try:
        ds = hdr.read_header(path)
        planes = hdr.planes_of(ds, path)
    except hdr.NotDicom as exc:
        raise InputError(f"{path} is not a DICOM file: give a DICOM image file or a folder of them") from exc
    except hdr.NotImage as exc:
        raise InputError(f"{path} is DICOM but not an image volume ({exc}): give a CT or MR image file") from exc
    except hdr.HeaderError as exc:
        raise InputError(f"DICOM file {path}: {exc}; export the scan again from the PACS or scanner") from exc
    except hdr.READ_ERRORS as exc:
        raise InputError(f"cannot read DICOM file {path} ({_reason(exc)}): the file is damaged; copy it again") from exc
    if len(planes) < 2:
        raise InputError(
            f"{path} holds a single image, not a volume: a 3D model needs a stack of at least 2 slices; "
            "load the folder with the whole series"
        )
    stacks: dict[object, list[int]] = defaultdict(list)
    for index, plane in enumerate(planes):
        stacks[plane.stack_key()].append(index)
    frames = max(stacks.values(), key=len)
    volume = _load_multiframe(
        path, tuple(frames), allow_gaps=allow_gaps, non_finite=non_finite, progress=progress, source=str(path)
    )
    if len(stacks) > 1:
        note = f"{path.name} holds {len(stacks)} stacks of different orientation; loaded the largest ({len(frames)} frames)"
        logger.info(note)
        volume = Volume(volume.array, volume.geometry, volume.modality, volume.metadata, volume.notes + (note,))
    return volume


def _load_multiframe(
    path: Path, frames: tuple[int, ...], *, allow_gaps: bool, non_finite: float | None, progress: ProgressCallback,
    source: str,
) -> Volume:
    """Load frames of one file; ``source`` names it in messages (the path only where the user typed it)."""
    try:
        with hdr.quiet_pydicom():
            ds = pydicom.dcmread(path)
        planes = hdr.planes_of(ds, path)
        pixels = hdr.apply_modality_lut(ds, hdr.decode_pixels(ds, label=source))
        rescales = [hdr.rescale_of(ds, frame) for frame in frames]
    except (hdr.NotImage, *hdr.READ_ERRORS) as exc:
        raise InputError(
            f"cannot read the pixel data of {source} ({_reason(exc)}): the file is damaged, cut short or its "
            "compression unsupported; copy it again from the PACS or scanner"
        ) from exc
    if pixels.ndim == 2:
        pixels = pixels[None]
    store = _Storage(len(frames), planes[frames[0]].rows, planes[frames[0]].columns)
    for slot, frame in enumerate(frames):
        store.put(slot, pixels[frame], *rescales[slot])
        progress("read DICOM", slot + 1, len(frames))
    decoded = _Planes(store.array, [planes[f] for f in frames], header=ds)
    del pixels
    return _build_volume(decoded, source=source, allow_gaps=allow_gaps, non_finite=non_finite, progress=progress)


class _Storage:
    """Preallocated (n, rows, cols) output; int16 until a plane needs float32."""

    def __init__(self, count: int, rows: int, columns: int) -> None:
        self.array: NDArray[np.generic] = np.zeros((count, rows, columns), dtype=np.int16)

    def put(self, slot: int, raw: NDArray[np.generic], slope: float, intercept: float) -> None:
        if raw.shape != self.array.shape[1:]:
            raise InputError(f"image size {raw.shape} differs from the series' {self.array.shape[1:]}")
        # Float Pixel Data must never take the integer path: astype would truncate (and NaN become garbage).
        integral = float(slope).is_integer() and float(intercept).is_integer() and raw.dtype.kind in "iu"
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


def _decode_files(series: SeriesInfo, progress: ProgressCallback) -> _Planes:
    """Read each file once: header and pixels into a preallocated stack.

    A file that cannot be read or decoded is skipped with a warning; the hole
    it leaves is judged with the others (a gap is refused unless allowed).
    """
    files = series.files
    store: _Storage | None = None
    planes: list[hdr.Plane | None] = []
    notes: list[str] = []
    first_header: Dataset | None = None
    with hdr.NativeStderr() as stderr:  # one capture file for the series, not one per slice
        for slot, path in enumerate(files):
            try:
                with hdr.quiet_pydicom():
                    ds = pydicom.dcmread(path)
                plane = hdr.planes_of(ds, path)[0]
                raw = hdr.apply_modality_lut(ds, hdr.decode_pixels(ds, stderr=stderr, label=series.file_label(slot)))
                rescale = hdr.rescale_of(ds, None)
            except (hdr.NotImage, *hdr.READ_ERRORS) as exc:
                note = f"{_SKIPPED_PREFIX}{series.file_label(slot)}: {_reason(exc)}"
                logger.debug("%s is %s", series.file_label(slot), path)
                logger.warning(
                    "%s (slice %d of %d by position); if that leaves a gap, the series is refused unless --allow-gaps",
                    note, slot + 1, len(files),
                )
                notes.append(note)
                planes.append(None)
                continue
            if store is None:
                store = _Storage(len(files), plane.rows, plane.columns)
            if (plane.rows, plane.columns) != store.array.shape[1:]:
                raise InputError(
                    f"{series.file_label(slot)} of series {series.number} is {plane.rows}x{plane.columns} pixels, unlike "
                    "the rest of its series (it changed since the folder was scanned): scan the folder again"
                )
            store.put(slot, raw, *rescale)
            if first_header is None:
                first_header = ds
                for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
                    if keyword in first_header:
                        del first_header[keyword]  # keep the header only, not the pixels
            planes.append(plane)
            del ds, raw
            progress("read DICOM", slot + 1, len(files))
    if store is None:
        raise InputError(
            f"none of the {len(files)} files of series {series.number} could be read ({notes[0] if notes else ''}): "
            "copy the files again from the PACS or scanner"
        )
    return _Planes(store.array, planes, header=first_header, notes=notes)


def _build_volume(
    decoded: _Planes, *, source: str, allow_gaps: bool, non_finite: float | None, progress: ProgressCallback
) -> Volume:
    keep = [k for k, plane in enumerate(decoded.planes) if plane is not None]
    if len(keep) < 2:
        raise InputError(
            f"{source} has {len(keep)} usable slice(s); a 3D model needs a stack of at least 2 parallel slices: "
            "load the complete series (all its files) or pick another with --series"
        )
    array = decoded.array if len(keep) == len(decoded.planes) else decoded.array[keep]
    planes: list[hdr.Plane] = [decoded.planes[k] for k in keep]  # type: ignore[misc]
    _check_stackable(planes, source)
    row, col = hdr.orthonormal_axes(planes[0].orientation)
    layout = analyse_positions(np.array([p.position for p in planes]), row, col)
    if not np.array_equal(layout.order, np.arange(len(planes))):
        array = array[layout.order]
        planes = [planes[k] for k in layout.order]
    # Before duplicates are compared (NaN equals nothing) and slices resampled (NaN spreads): k is by position.
    finite_notes = list(replace_non_finite(array, non_finite, source=source))
    array, planes, layout, notes = _drop_duplicates(array, planes, layout, row, col)
    notes = decoded.notes + ([planes[0].assumed] if planes[0].assumed else []) + notes
    skipped = sum(note.startswith(_SKIPPED_PREFIX) for note in decoded.notes)
    _check_gaps(layout, planes, source, allow_gaps, skipped=skipped)
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
    notes += finite_notes  # replace_non_finite has logged its own
    _warn_interpolation(layout, source)
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
    for index, plane in enumerate(planes[1:], start=2):
        if plane.stack_key() != first.stack_key() or plane.pixel_spacing != first.pixel_spacing:
            raise InputError(
                f"image {index} of {len(planes)} in {source} has another orientation, size or pixel spacing than "
                "the first: these are different stacks; scan the folder again and pick one series"
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
            logger.debug("different images at one position: %s and %s", planes[first].path, planes[second].path)
            raise GeometryError(
                f"two different images lie at the same position ({_where(planes[first])}, slices {first + 1} and "
                f"{second + 1} of {len(planes)} by position): the folder mixes two acquisitions (echoes, phases or a "
                "repeat); remove one set or pick another series (-vv names the files)"
            )
        drop.add(second)
    keep = [k for k in range(len(planes)) if k not in drop]
    notes = [f"dropped {len(drop)} duplicate slice(s) identical to another at the same position"]
    planes = [planes[k] for k in keep]
    new_layout = analyse_positions(np.array([p.position for p in planes]), row, col)
    return array[keep], planes, new_layout, notes


def _check_gaps(
    layout: StackLayout, planes: list[hdr.Plane], source: str, allow_gaps: bool, *, skipped: int = 0
) -> None:
    """Refuse missing slices (a step of twice the median or more), or warn what --allow-gaps does."""
    gaps = layout.gaps()
    if not gaps:
        return
    where = "; ".join(
        f"{layout.steps[k]:.3g} mm after slice {k + 1} of {layout.distances.size} "
        f"({_where(planes[k])}, next at {_where(planes[k + 1])})"
        for k in gaps[:3]
    ) + ("; ..." if len(gaps) > 3 else "")
    cause = f" ({skipped} unreadable file(s) were skipped)" if skipped else ""
    if not allow_gaps:
        raise GeometryError(
            f"gap of {where} in {source}, where slices are {layout.median_step:.3g} mm apart: slices are missing"
            f"{cause}; copy the complete series or use --allow-gaps to interpolate across the gap"
        )
    logger.warning(
        "%s: --allow-gaps: interpolating linearly across %d gap(s) of missing slices (%s), where slices are "
        "%.3g mm apart%s; the model is guessed there", source, len(gaps), where, layout.median_step, cause,
    )


def _warn_interpolation(layout: StackLayout, source: str) -> None:
    """Wide uneven steps (short of a gap) are interpolated too: say so louder than a note."""
    ratio = layout.widest_step_ratio()
    if layout.gaps() or ratio < WIDE_STEP_FACTOR:
        return
    logger.warning(
        "%s: slices up to %.3g mm apart where most are %.3g mm (%.2g times): interpolated linearly onto an even grid",
        source, float(layout.steps.max()), layout.median_step, ratio,
    )


def _where(plane: hdr.Plane) -> str:
    return "LPS " + ", ".join(f"{v:.1f}" for v in plane.position) + " mm"


def _metadata(header: Dataset | None) -> dict[str, str]:
    """De-identified description; never names, IDs or dates."""
    if header is None:
        return {}
    metadata = {key: hdr.text(header, keyword) for key, keyword in _METADATA_KEYWORDS.items()}
    if metadata["slice_thickness_mm"] and not _positive_number(metadata["slice_thickness_mm"]):
        # Geometry comes from the positions; a nonsense thickness must not reach the report.
        metadata["slice_thickness_mm"] = ""
    series_uid = hdr.text(header, "SeriesInstanceUID")
    if series_uid:
        metadata["series_uid"] = series_uid
    return {key: value for key, value in metadata.items() if value}



def _positive_number(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number > 0
