"""Reading DICOM headers: is a file DICOM, is it an image, where are its planes.

Covers classic single-frame images and enhanced multi-frame images, whose
per-frame geometry lives in the functional group sequences.
"""

from __future__ import annotations

import contextlib
import math
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import apply_modality_lut as _pydicom_modality_lut
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from .native_stderr import NativeStderr

#: Errors pydicom raises on damaged or foreign files (no bare except: anything else is a bug).
#: HeaderError and DecodeError below are ValueErrors, so they are among them.
READ_ERRORS = (
    InvalidDicomError, BytesLengthException, OSError, EOFError, ValueError, KeyError, IndexError, TypeError, struct.error,
    AttributeError, OverflowError, NotImplementedError, zlib.error,
)
#: Never turned into "this file is damaged": the user or the machine asked to stop.
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)
#: Bits per pixel value medprint stacks (CT/MR greyscale).
_BITS_ALLOCATED = (8, 16, 32)
#: How far ImageOrientationPatient may stray from two perpendicular unit vectors (it is stored rounded).
ORIENTATION_TOLERANCE = 0.01

#: SOP classes that carry pixel data but are not scans to stack.
_NOT_SCANS = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation",
    "1.2.840.10008.1.3.10": "DICOMDIR",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT dose",
}
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
#: Float Pixel Data and Double Float Pixel Data (parametric maps): the bits each value must have.
_FLOAT_BITS = {0x7FE00008: 32, 0x7FE00009: 64}
_FLOAT_KEYWORDS = {0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
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


class UnusableImage(ValueError):
    """A DICOM image file that cannot be used; ``header`` is its dataset when that was read.

    The message names what is wrong and the value found; callers add the file
    and the fix.
    """

    def __init__(self, message: str, header: Dataset | None = None) -> None:
        super().__init__(message)
        self.header = header


class HeaderError(UnusableImage):
    """A header value that makes the image unusable (NaN position, zero spacing, ...)."""


class DecodeError(UnusableImage):
    """The pixel data could not be decoded (damaged or cut-short compressed data)."""


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
    HeaderError
        Pixel description (Rows, Columns, BitsAllocated, rescale) unusable or
        not matching the pixel data's length.
    InvalidDicomError, OSError, ...
        Damaged or truncated file (see ``READ_ERRORS``).
    """
    size = path.stat().st_size
    with open(path, "rb") as handle, quiet_pydicom():
        head = handle.read(132)
        preamble = len(head) == 132 and head[128:132] == b"DICM"
        if not preamble and not _looks_like_raw_dicom(head):
            raise NotDicom(path)
        handle.seek(0)
        ds = pydicom.dcmread(handle, stop_before_pixels=True, force=not preamble)
        sop_class = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", ""))
        if sop_class in _NOT_SCANS or path.name.upper() == "DICOMDIR" or "DirectoryRecordSequence" in ds:
            raise NotImage(_NOT_SCANS.get(sop_class, "DICOMDIR"))
        try:
            length, tag = _pixel_data_length(handle, size, ds) if not _is_deflated(ds) else _deflated_pixel_length(path)
        except EOFError as exc:
            raise TruncatedPixels(str(exc), ds) from exc
        except zlib.error as exc:
            raise DecodeError(f"deflated data cannot be inflated ({exc})", ds) from exc
        if length is None:
            if not sop_class:
                raise HeaderError("no SOPClassUID in the header: the header is damaged")
            if "Rows" in ds or "ImagePositionPatient" in ds:
                # An image header with nothing after it: a copy cut short at the pixel data.
                raise TruncatedPixels("no pixel data after an image header (file cut short)", ds)
            raise NotImage("no pixel data")
        samples = ds.get("SamplesPerPixel", 1)
        if samples not in (None, "", 1):
            raise NotImage(f"colour image (SamplesPerPixel {samples})")
        try:
            check_pixel_module(ds, length, pixel_tag=tag)
        except HeaderError as exc:
            exc.header = ds
            raise
    return ds


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Keep pydicom's warnings about odd values off the terminal: medprint judges them itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def check_pixel_module(ds: Dataset, length: int, *, pixel_tag: int = 0x7FE00010) -> None:
    """Refuse a pixel description medprint cannot read right.

    ``length`` is the pixel data element's length in bytes (0xFFFFFFFF when
    encapsulated, whose frames are checked when decoded); ``pixel_tag`` the
    element's tag (Pixel Data, Float Pixel Data or Double Float Pixel Data).

    Raises
    ------
    HeaderError
        Rows or Columns below 1, BitsAllocated other than 8, 16 or 32 (32 for
        Float, 64 for Double Float Pixel Data), native
        pixel data whose length does not match Rows x Columns x frames, or a
        rescale slope/intercept that is not a finite number (slope 0 included).
    """
    rows, columns = _integer(ds, "Rows"), _integer(ds, "Columns")
    if rows < 1 or columns < 1:
        raise HeaderError(f"Rows x Columns is {rows}x{columns}: an image needs at least 1x1 pixels")
    bits = _integer(ds, "BitsAllocated")
    if pixel_tag in _FLOAT_BITS:
        if bits != _FLOAT_BITS[pixel_tag]:
            raise HeaderError(
                f"BitsAllocated is {bits} for {_FLOAT_KEYWORDS[pixel_tag]}, which holds {_FLOAT_BITS[pixel_tag]}-bit "
                "values: the header does not match the image"
            )
    elif bits not in _BITS_ALLOCATED:
        raise HeaderError(f"BitsAllocated is {bits}: medprint reads greyscale images of 8, 16 or 32 bits")
    frames = _integer(ds, "NumberOfFrames", 1) or 1
    if length != 0xFFFFFFFF:
        expected = rows * columns * frames * bits // 8
        if length not in (expected, expected + 1):  # +1: the pad byte of an odd length
            raise HeaderError(
                f"pixel data hold {length} bytes, but Rows x Columns x frames x BitsAllocated "
                f"({rows}x{columns}x{frames}x{bits} bits) need {expected}: the header does not match the image"
            )
    if not is_multiframe(ds):
        rescale_of(ds, None, float_pixels=pixel_tag in _FLOAT_BITS)


def _integer(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, None)
    if value in (None, ""):
        if default is None:
            raise HeaderError(f"{keyword} is missing")
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"{keyword} is {value!r}, not a whole number") from exc


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


def _is_deflated(ds: Dataset) -> bool:
    return str(ds.file_meta.get("TransferSyntaxUID", "")) == DeflatedExplicitVRLittleEndian


def _deflated_pixel_length(path: Path) -> tuple[int | None, int]:
    """Pixel data length and tag of a deflated file, whose bytes on disk say nothing about them (rare, small files)."""
    full = pydicom.dcmread(path)
    for tag in sorted(_PIXEL_TAGS):
        if tag in full:
            return len(full[tag].value), tag
    return None, 0


def _pixel_data_length(handle: Any, size: int, ds: Dataset) -> tuple[int | None, int]:
    """Length (None when there are none) and tag of the pixel data after the header.

    0xFFFFFFFF for encapsulated (compressed) data.  Raises EOFError when the
    pixel data are cut short.

    pydicom leaves the file positioned at the pixel data tag after
    ``stop_before_pixels``; walking the element (and its fragments when
    encapsulated) costs a few reads and catches half-copied files at scan time.
    """
    start = handle.tell()
    tag_bytes = handle.read(4)
    if len(tag_bytes) < 4:
        return None, 0
    little = ds.original_encoding[1] if ds.original_encoding[1] is not None else True
    endian = "<" if little else ">"
    group, element = struct.unpack(endian + "HH", tag_bytes)
    tag = group << 16 | element
    if tag not in _PIXEL_TAGS:
        return None, 0
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
        return int(length), tag
    while True:  # encapsulated: item headers until the sequence delimiter
        group, element, item_length = struct.unpack(endian + "HHI", _read_exact(handle, 8))
        if (group << 16 | element) == _SEQUENCE_DELIMITER:
            return 0xFFFFFFFF, tag
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
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) != count:
        # Items are matched to frames by their place: one short shifts or drops a frame's geometry.
        raise HeaderError(
            f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for {count} frames (NumberOfFrames): "
            "the header does not match the image"
        )
    planes: list[Plane] = []
    missing: list[int] = []
    for frame in range(count):
        position = functional_item(ds, frame, "PlanePositionSequence") or ds
        orientation = functional_item(ds, frame, "PlaneOrientationSequence") or ds
        measures = functional_item(ds, frame, "PixelMeasuresSequence") or ds
        try:
            planes.append(_plane(ds, path, frame, position, orientation, measures))
        except NotImage:
            missing.append(frame)
    if len(missing) == count:
        return _planes_without_geometry(ds, path, count)
    if missing:
        # Only a file with no geometry at all may be assumed axial; a hole in it is damage.
        shown = ", ".join(str(frame + 1) for frame in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise HeaderError(
            f"frame {shown} of {count} has no usable image position, orientation or pixel spacing while the "
            "other frames have them: the header is damaged"
        )
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
        if value not in (None, "") and math.isfinite(float(value)) and float(value) > 0:
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
    _check_plane(position, orientation, spacing)
    return Plane(path, frame, position, orientation, spacing, int(ds.Rows), int(ds.Columns))  # type: ignore[arg-type]


def _check_plane(position: tuple[float, ...], orientation: tuple[float, ...], spacing: tuple[float, ...]) -> None:
    """Refuse geometry that would place the image wrongly (NaN, zero spacing, skewed axes)."""
    if len(position) != 3 or not all(math.isfinite(v) for v in position):
        raise HeaderError(f"ImagePositionPatient is {_values(position)}: it needs 3 finite numbers (mm)")
    if len(spacing) != 2 or not all(math.isfinite(v) and v > 0 for v in spacing):
        raise HeaderError(
            f"PixelSpacing is {_values(spacing)} mm: the pixel spacing must be 2 numbers above 0 "
            "(a damaged header, or an image that is not a scan)"
        )
    if len(orientation) != 6 or not all(math.isfinite(v) for v in orientation):
        raise HeaderError(f"ImageOrientationPatient is {_values(orientation)}: it needs 6 finite numbers")
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    lengths = (float(np.linalg.norm(row)), float(np.linalg.norm(col)))
    cosine = float(row @ col)
    if max(abs(n - 1) for n in lengths) > ORIENTATION_TOLERANCE or abs(cosine) > ORIENTATION_TOLERANCE:
        raise HeaderError(
            f"ImageOrientationPatient is {_values(orientation)}: row and column directions must be perpendicular "
            f"unit vectors (lengths {lengths[0]:.3g} and {lengths[1]:.3g}, cosine between them {cosine:.3g})"
        )


def _values(values: tuple[float, ...]) -> str:
    return "\\".join(f"{v:g}" for v in values)


def orthonormal_axes(orientation: tuple[float, ...]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Row and column cosines, re-orthonormalised (IOP is stored rounded to a few digits)."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    row /= np.linalg.norm(row)
    col -= (col @ row) * row
    col /= np.linalg.norm(col)
    return row, col


def rescale_of(ds: Dataset, frame: int | None, *, float_pixels: bool | None = None) -> tuple[float, float]:
    """(slope, intercept) for a plane: the frame's Pixel Value Transformation, else the top level."""
    source: Dataset = ds
    if frame is not None:
        source = functional_item(ds, frame, "PixelValueTransformationSequence") or ds
    raw_slope = source.get("RescaleSlope", None)
    raw_intercept = source.get("RescaleIntercept", None)
    if "ModalityLUTSequence" in source:
        return 1.0, 0.0  # the LUT maps stored values (see apply_modality_lut), not a rescale
    absent = [name for name, value in (("RescaleIntercept", raw_intercept), ("RescaleSlope", raw_slope))
              if value in (None, "")]
    if float_pixels is None:
        float_pixels = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    # Float Pixel Data hold real-world values already: no rescale duty.
    if absent and not float_pixels and text(ds, "Modality").upper() == "CT":
        # Type 1 in the CT Image module: without it the stored values (HU + 1024, often) pass for HU.
        raise HeaderError(
            f"CT image without {' and '.join(absent)} (an anonymiser may have stripped it): its stored values "
            "are not Hounsfield units; export the scan again with the rescale kept"
        )
    try:
        slope = float(raw_slope) if raw_slope not in (None, "") else 1.0
        intercept = float(raw_intercept) if raw_intercept not in (None, "") else 0.0
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"RescaleSlope/RescaleIntercept {raw_slope!r}/{raw_intercept!r} are not numbers") from exc
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0:
        raise HeaderError(
            f"RescaleSlope is {slope:g} and RescaleIntercept {intercept:g}: values are computed as stored x slope "
            "+ intercept, so the slope must be a finite number other than 0 and the intercept finite"
        )
    return slope, intercept


def apply_modality_lut(ds: Dataset, pixels: NDArray[Any]) -> NDArray[Any]:
    """Stored values through the dataset's Modality LUT, when it has one (else unchanged).

    Raises
    ------
    HeaderError
        The LUT is damaged (its descriptor does not match its data).
    """
    if "ModalityLUTSequence" not in ds:
        return pixels
    try:
        with quiet_pydicom():
            mapped = _pydicom_modality_lut(pixels, ds)
    except (*READ_ERRORS,) as exc:
        raise HeaderError(f"the ModalityLUTSequence cannot be applied ({exc}): the header is damaged") from exc
    if mapped.shape != pixels.shape:
        raise HeaderError(f"the ModalityLUTSequence maps {pixels.shape} pixels to {mapped.shape}: the header is damaged")
    return mapped


#: JPEG, JPEG-LS, JPEG 2000 and HTJ2K transfer syntaxes: their codestreams end with FFD9.
_JPEG_FAMILY = "1.2.840.10008.1.2.4."
_END_OF_IMAGE = b"\xff\xd9"


def _check_jpeg_frames_end(ds: Dataset, syntax: UID, frames: int) -> None:
    """Refuse a frame cut short before its end marker.

    A codestream without its end marker is cut short whatever a decoder makes
    of it, and decoders are slow to say so (CharLS took 16 s on a cut 32x32
    frame); the check reads only the frame's last bytes.
    """
    for index, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=frames)):
        if not frame.rstrip(b"\0").endswith(_END_OF_IMAGE):
            raise DecodeError(
                f"{syntax.name} frame {index + 1} of {frames} ends early (no end-of-image marker): "
                "the compressed data are cut short"
            )




def decode_pixels(ds: Dataset, *, stderr: NativeStderr | None = None, label: str = "pixel data") -> NDArray[Any]:
    """The dataset's pixel array, checked against Rows, Columns and NumberOfFrames.

    Decoder plugins fail in many ways on damaged data, some (pyo3 panics from
    the Rust RLE decoder) outside ``Exception``: all become :class:`DecodeError`,
    except requests to stop and out-of-memory.  What native decoders write to
    file descriptor 2 is captured (into ``stderr``, or a capture of this call's
    own) and logged at DEBUG under ``label``; native (uncompressed) pixel data
    need no capture.

    Raises
    ------
    DecodeError
        The pixel data cannot be decoded, or decode to another shape or a
        type other than integers (floats for Float/Double Float Pixel Data).
    """
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    floats = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    try:
        if syntax.startswith(_JPEG_FAMILY):
            _check_jpeg_frames_end(ds, syntax, frames)
        if not syntax.is_compressed:
            with quiet_pydicom():
                pixels = ds.pixel_array
        else:
            with contextlib.ExitStack() as stack:
                capture = stderr if stderr is not None else stack.enter_context(NativeStderr())
                with quiet_pydicom(), capture.capture(label):
                    pixels = ds.pixel_array
    except DecodeError:
        raise
    except BaseException as exc:  # noqa: BLE001 - decoder panics derive from BaseException
        if isinstance(exc, _FATAL):
            raise
        reason = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), type(exc).__name__)
        raise DecodeError(f"{syntax.name} pixel data cannot be decoded ({reason[:120]})") from exc
    expected = (int(ds.Rows), int(ds.Columns)) if frames == 1 else (frames, int(ds.Rows), int(ds.Columns))
    kinds = "f" if floats else "iu"
    if pixels.shape != expected or pixels.dtype.kind not in kinds:
        wanted = "floats" if floats else "integers"
        raise DecodeError(f"{syntax.name} pixel data decode to {pixels.shape} {pixels.dtype}, not {expected} {wanted}")
    return pixels


def text(ds: Dataset, keyword: str) -> str:
    """A header value as a stripped string ('' when absent or empty)."""
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()
