"""Reading DICOM headers: is a file DICOM, is it an image, where are its planes.

Covers classic single-frame images and enhanced multi-frame images, whose
per-frame geometry lives in the functional group sequences.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

#: Errors pydicom raises on damaged or foreign files (no bare except: anything else is a bug).
READ_ERRORS = (InvalidDicomError, OSError, EOFError, ValueError, KeyError, IndexError, TypeError, struct.error)

#: SOP classes that carry pixel data but are not scans to stack.
_NOT_SCANS = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation",
    "1.2.840.10008.1.3.10": "DICOMDIR",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT dose",
}
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_SEQUENCE_DELIMITER = 0xFFFEE0DD

PHI_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate")


@dataclass(frozen=True)
class Plane:
    """Geometry of one image plane (a file, or one frame of a multi-frame file)."""

    path: Path
    frame: int | None
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    pixel_spacing: tuple[float, float]  # DICOM order: (between rows, between columns)
    rows: int
    columns: int
    assumed: str = ""  # what was assumed when the file holds no geometry

    def stack_key(self) -> tuple[Any, ...]:
        """Planes with equal keys can be stacked (same orientation and size)."""
        return (tuple(round(v, 3) for v in self.orientation), self.rows, self.columns)


class NotDicom(Exception):
    """The file is not DICOM (internal signal)."""


class NotImage(Exception):
    """The file is DICOM but not an image we can stack (internal signal)."""


class TruncatedPixels(EOFError):
    """The header is fine but the pixel data are cut short; carries the header."""

    def __init__(self, message: str, header: Dataset) -> None:
        super().__init__(message)
        self.header = header


def read_header(path: Path) -> Dataset:
    """Read a file's header without pixel data, checking the pixel data is complete.

    Raises
    ------
    NotDicom
        No 'DICM' preamble and no plausible raw DICOM start.
    NotImage
        DICOM without (stackable) pixel data.
    InvalidDicomError, OSError, ...
        Damaged or truncated file (see ``READ_ERRORS``).
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(132)
        preamble = len(head) == 132 and head[128:132] == b"DICM"
        if not preamble and not _looks_like_raw_dicom(head):
            raise NotDicom(path)
        handle.seek(0)
        ds = pydicom.dcmread(handle, stop_before_pixels=True, force=not preamble)
        sop_class = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", ""))
        if sop_class in _NOT_SCANS or path.name.upper() == "DICOMDIR":
            raise NotImage(_NOT_SCANS.get(sop_class, "DICOMDIR"))
        try:
            complete = _has_complete_pixel_data(handle, size, ds)
        except EOFError as exc:
            raise TruncatedPixels(str(exc), ds) from exc
        if not complete:
            raise NotImage("no pixel data")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise NotImage("colour image")
    return ds


def looks_like_dicom(path: Path) -> bool:
    """Cheap content check: a 'DICM' preamble, or the start of a preamble-less DICOM file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return (len(head) == 132 and head[128:132] == b"DICM") or _looks_like_raw_dicom(head)


def _looks_like_raw_dicom(head: bytes) -> bool:
    # Old files without preamble start with a group 0x0002 or 0x0008 tag, little endian.
    return len(head) >= 8 and head[1] == 0 and head[0] in (0x02, 0x08) and head[3] == 0


def _has_complete_pixel_data(handle: Any, size: int, ds: Dataset) -> bool:
    """Whether pixel data follow the header; raises EOFError when they are cut short.

    pydicom leaves the file positioned at the pixel data tag after
    ``stop_before_pixels``; walking the element (and its fragments when
    encapsulated) costs a few reads and catches half-copied files at scan time.
    """
    start = handle.tell()
    tag_bytes = handle.read(4)
    if len(tag_bytes) < 4:
        return False
    little = ds.original_encoding[1] if ds.original_encoding[1] is not None else True
    endian = "<" if little else ">"
    group, element = struct.unpack(endian + "HH", tag_bytes)
    if (group << 16 | element) not in _PIXEL_TAGS:
        return False
    implicit = ds.original_encoding[0]
    if implicit is None:
        implicit = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")) == "1.2.840.10008.1.2"
    if implicit:
        (length,) = struct.unpack(endian + "I", _read_exact(handle, 4))
    else:
        _read_exact(handle, 4)  # VR + reserved bytes
        (length,) = struct.unpack(endian + "I", _read_exact(handle, 4))
    if length != 0xFFFFFFFF:
        if handle.tell() + length > size:
            raise EOFError(f"pixel data cut short at {size} bytes (element at byte {start} needs {length})")
        return True
    while True:  # encapsulated: item headers until the sequence delimiter
        group, element, item_length = struct.unpack(endian + "HHI", _read_exact(handle, 8))
        if (group << 16 | element) == _SEQUENCE_DELIMITER:
            return True
        if handle.tell() + item_length > size:
            raise EOFError(f"compressed pixel data cut short at {size} bytes")
        handle.seek(item_length, 1)


def _read_exact(handle: Any, count: int) -> bytes:
    data = handle.read(count)
    if len(data) < count:
        raise EOFError("file ends inside the pixel data")
    return data


def is_multiframe(ds: Dataset) -> bool:
    """True for enhanced (functional-group) or other multi-frame images."""
    return "PerFrameFunctionalGroupsSequence" in ds or int(ds.get("NumberOfFrames", 1) or 1) > 1


def planes_of(ds: Dataset, path: Path) -> list[Plane]:
    """Geometry of every plane in a dataset (one for classic files).

    Raises
    ------
    NotImage
        Position, orientation or pixel spacing missing: nothing to place in space.
    """
    if not is_multiframe(ds):
        return [_plane(ds, path, None, ds, ds, ds)]
    count = int(ds.get("NumberOfFrames", 1) or 1)
    planes = []
    try:
        for frame in range(count):
            position = functional_item(ds, frame, "PlanePositionSequence") or ds
            orientation = functional_item(ds, frame, "PlaneOrientationSequence") or ds
            measures = functional_item(ds, frame, "PixelMeasuresSequence") or ds
            planes.append(_plane(ds, path, frame, position, orientation, measures))
    except NotImage:
        return _planes_without_geometry(ds, path, count)
    return planes


def _planes_without_geometry(ds: Dataset, path: Path, count: int) -> list[Plane]:
    """Frames of a multi-frame file that carries no plane geometry (some MR exports).

    A single file's frames are one volume in file order, so it can still be
    loaded; the assumption is spelled out, because sizes may be wrong.
    """
    spacing = _first_number(ds, ("SpacingBetweenSlices", "SliceThickness"), 1.0)
    pixel = [float(v) for v in ds.get("PixelSpacing", None) or ds.get("ImagerPixelSpacing", None) or (1.0, 1.0)]
    assumed = (
        f"no plane position/orientation in the file: assumed axial frames in file order, "
        f"{pixel[1]:g}x{pixel[0]:g} mm pixels, {spacing:g} mm apart; sizes may be wrong"
    )
    return [
        Plane(path, frame, (0.0, 0.0, frame * spacing), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (pixel[0], pixel[1]),
              int(ds.Rows), int(ds.Columns), assumed)
        for frame in range(count)
    ]


def _first_number(ds: Dataset, keywords: tuple[str, ...], default: float) -> float:
    for keyword in keywords:
        value = ds.get(keyword, None)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return default


def functional_item(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    """The item of a functional group for a frame: per-frame first, then shared."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        sequence = ds.get(groups)
        if sequence is not None and len(sequence) > index and keyword in sequence[index]:
            items = sequence[index].get(keyword)
            if items is not None and len(items):
                return items[0]
    return None


def _plane(ds: Dataset, path: Path, frame: int | None, pos: Dataset, ori: Dataset, meas: Dataset) -> Plane:
    try:
        position = tuple(float(v) for v in pos.ImagePositionPatient)
        orientation = tuple(float(v) for v in ori.ImageOrientationPatient)
        spacing = tuple(float(v) for v in meas.PixelSpacing)
    except (AttributeError, TypeError, ValueError) as exc:
        raise NotImage(f"no usable image position, orientation or pixel spacing ({exc})") from exc
    if len(position) != 3 or len(orientation) != 6 or len(spacing) != 2 or min(spacing) <= 0:
        raise NotImage("malformed image position, orientation or pixel spacing")
    return Plane(path, frame, position, orientation, spacing, int(ds.Rows), int(ds.Columns))  # type: ignore[arg-type]


def orthonormal_axes(orientation: tuple[float, ...]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Row and column cosines, re-orthonormalised (IOP is stored rounded to a few digits)."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    row /= np.linalg.norm(row)
    col -= (col @ row) * row
    col /= np.linalg.norm(col)
    return row, col


def rescale_of(ds: Dataset, frame: int | None) -> tuple[float, float]:
    """(slope, intercept) for a plane: the frame's Pixel Value Transformation, else the top level."""
    source: Dataset = ds
    if frame is not None:
        source = functional_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope = source.get("RescaleSlope", None)
    intercept = source.get("RescaleIntercept", None)
    return (float(slope) if slope not in (None, "") else 1.0, float(intercept) if intercept not in (None, "") else 0.0)


def text(ds: Dataset, keyword: str) -> str:
    """A header value as a stripped string ('' when absent or empty)."""
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()
