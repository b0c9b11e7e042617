"""The raw headers of NIfTI, NRRD and MetaImage files, read before ITK sees them.

ITK quietly repairs what it cannot use: a NIfTI ``pixdim`` of 0 or NaN becomes
1 mm, a negative one is folded into the direction (a mirrored scan), and data
that ends early is read as zeros.  A model made from such a file looks right
and is wrong, so the header fields are read here as written and judged
against each format's standard before any voxel is read.

NIfTI geometry is taken from this header, not from ITK: the sform when
``sform_code > 0``, else the qform when ``qform_code > 0`` (the choice
nibabel makes), in millimetres by its ``xyzt_units`` (as the standard and ITK
have it; nibabel ignores the unit), converted from RAS to LPS.  For NRRD and MetaImage the
header values are checked and ITK's geometry, which follows them, is used.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
from numpy.typing import NDArray

from ..errors import GeometryError, InputError
from ..geometry import RAS_TO_LPS, Geometry

#: The most header text read from a NRRD or MetaImage file (real headers are a few kB).
_MAX_TEXT_HEADER = 1 << 20

# Largest |b,c,d|^2 - 1 nibabel accepts for a NIfTI quaternion (float32 rounding).
_QUATERNION_SLACK = 3 * float(np.finfo(np.float32).eps)

# Axes whose cosine exceeds this are not orthogonal (about 0.06 degrees off).
_ORTHOGONAL_COSINE = 1e-3


@dataclass(frozen=True)
class DataLayout:
    """Where a header says the voxel bytes are, and how they are stored.

    Parameters
    ----------
    data_path : Path
        The file holding the voxels (the image file itself, or a detached one).
    offset : int
        Bytes before the voxels in ``data_path`` (before decompression for
        NIfTI's ``.nii.gz``, whose offset counts inside the stream); -1 means
        "the voxels are the last bytes of the file".
    codec : str
        ``'raw'``, ``'gzip'``, ``'bzip2'``, ``'zlib'`` or ``'other'`` (not checked).
    data_bytes : int
        Bytes of voxel data the header's sizes and type call for.
    stream_skip : int
        Bytes inside the decompressed stream before the voxels.
    packed_size : str, optional
        MetaImage's ``CompressedDataSize`` as written: ITK inflates only that
        many bytes, so it must be the stream's real length.
    """

    data_path: Path
    offset: int
    codec: str
    data_bytes: int
    stream_skip: int = 0
    packed_size: str | None = None


@dataclass(frozen=True)
class RawHeader:
    """What medprint takes from an image header itself.

    Parameters
    ----------
    format_name : str
        ``'NIfTI'``, ``'NRRD'`` or ``'MetaImage'``.
    layout : DataLayout or None
        Where the voxels are; None when the header describes a layout medprint
        does not check (a file list, ASCII data), which ITK then reads alone.
    geometry : Geometry or None
        The geometry the header defines (NIfTI); None where ITK's is used.
    voxels : NiftiVoxels or None
        How to turn the data bytes into the voxel array (NIfTI, which medprint
        reads itself); None where ITK reads the voxels.
    frame_named : bool
        False for a NRRD without a ``space`` field (only ``spacings``/``axis
        mins``): it names no patient frame, though ITK reports LPS.
    """

    format_name: str
    layout: DataLayout | None
    geometry: Geometry | None = None
    voxels: NiftiVoxels | None = None
    frame_named: bool = True


@dataclass(frozen=True)
class NiftiVoxels:
    """The voxel type, grid and scaling of a NIfTI file.

    Parameters
    ----------
    dtype : str
        numpy type of the stored values, with the file's byte order (``'>i2'``).
    shape_zyx : tuple of int
        Array shape, slowest axis first (the file stores i fastest).
    slope, intercept : float
        ``scl_slope``/``scl_inter``; stored values are ``value * slope + intercept``
        (slope 1, intercept 0 when the header leaves them unset).
    """

    dtype: str
    shape_zyx: tuple[int, int, int]
    slope: float = 1.0
    intercept: float = 0.0


def read_raw_header(path: Path) -> RawHeader:
    """Read and check the header of a NIfTI, NRRD or MetaImage file.

    Raises
    ------
    InputError
        The file is not of the format its name says, or its header is damaged.
    GeometryError
        A voxel size, direction or position is impossible (zero, negative,
        NaN, infinite, singular or sheared).
    """
    name = path.name.lower()
    with open(path, "rb") as stream:
        head = stream.read(_MAX_TEXT_HEADER)
    if not head:
        raise InputError(f"{path}: the file is empty (0 bytes); copy it again")
    if name.endswith((".nii", ".nii.gz")):
        return _read_nifti(path, head)
    if name.endswith((".nrrd", ".nhdr")):
        return _read_nrrd(path, head)
    return _read_metaimage(path, head)


def _not_format(path: Path, head: bytes, wanted: str) -> InputError:
    return InputError(f"{path}: not a {wanted} file ({_what_it_is(head)}); give a real {wanted} scan or rename it")


def _what_it_is(head: bytes) -> str:
    """A few words on what a file's first bytes look like, for an error message."""
    signatures = (
        (b"\x89PNG", "it starts like a PNG picture"),
        (b"\xff\xd8\xff", "it starts like a JPEG picture"),
        (b"PK\x03\x04", "it starts like a ZIP archive"),
        (b"%PDF", "it starts like a PDF document"),
        (b"\x1f\x8b", "it is gzip-compressed"),
        (b"BZh", "it is bzip2-compressed"),
        (b"NRRD", "it starts like a NRRD file"),
    )
    for magic, words in signatures:
        if head.startswith(magic):
            return words
    if head[128:132] == b"DICM":
        return "it is a DICOM file"
    sample = head[:512]
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in sample):
        return "it is plain text"
    return "its first bytes match no image format"


# ----------------------------------------------------------------------------- NIfTI

# (name, offset, dtype, count) of the NIfTI-1 and NIfTI-2 header fields medprint uses.
_NIFTI1_FIELDS = (
    ("dim", 40, "i2", 8), ("datatype", 70, "i2", 1), ("bitpix", 72, "i2", 1), ("pixdim", 76, "f4", 8),
    ("vox_offset", 108, "f4", 1), ("scl_slope", 112, "f4", 1), ("scl_inter", 116, "f4", 1),
    ("xyzt_units", 123, "u1", 1),
    ("qform_code", 252, "i2", 1), ("sform_code", 254, "i2", 1),
    ("quatern", 256, "f4", 3), ("qoffset", 268, "f4", 3), ("srow", 280, "f4", 12), ("magic", 344, "S4", 1),
)
_NIFTI2_FIELDS = (
    ("magic", 4, "S8", 1), ("datatype", 12, "i2", 1), ("bitpix", 14, "i2", 1), ("dim", 16, "i8", 8),
    ("pixdim", 104, "f8", 8), ("vox_offset", 168, "i8", 1), ("scl_slope", 176, "f8", 1), ("scl_inter", 184, "f8", 1),
    ("qform_code", 344, "i4", 1), ("xyzt_units", 500, "i4", 1),
    ("sform_code", 348, "i4", 1), ("quatern", 352, "f8", 3), ("qoffset", 376, "f8", 3), ("srow", 400, "f8", 12),
)
# NIfTI datatype codes of single-channel real voxels, as numpy types.
_NIFTI_TYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8",
                1280: "u8"}
_NIFTI_OTHER_TYPES = {1: "1-bit", 32: "complex", 128: "RGB colour", 1536: "128-bit float", 1792: "complex",
                      2048: "complex", 2304: "RGBA colour"}
# NIFTI_UNITS_METER and NIFTI_UNITS_MICRON in mm (0, unknown, and 2, mm, need nothing).
_SPACE_UNIT_MM = {1: 1000.0, 3: 0.001}
# NIFTI_XFORM_* codes: 1 scanner, 2 aligned, 3 Talairach, 4 MNI-152, 5 template (NIfTI-2).
_XFORM_CODES = range(6)


def _read_nifti(path: Path, head: bytes) -> RawHeader:
    compressed = path.name.lower().endswith(".gz")
    if compressed:
        if not head.startswith(b"\x1f\x8b"):
            raise _not_format(path, head, "gzip-compressed NIfTI (.nii.gz)")
        try:
            with gzip.open(path, "rb") as stream:
                head = stream.read(540)
        except (OSError, EOFError, zlib.error) as error:  # zlib.error: a bit flipped in the deflate stream
            raise InputError(
                f"{path}: the compressed NIfTI header cannot be read ({error}); copy the file again"
            ) from None
    fields = _nifti_fields(path, head)
    voxels = _nifti_voxels(path, fields)
    vox_offset = float(fields["vox_offset"][0])
    if not np.isfinite(vox_offset) or vox_offset < int(fields["sizeof_hdr"][0]):  # voxels inside the header
        raise InputError(f"{path}: NIfTI vox_offset = {vox_offset:g} is not a byte offset; the header is damaged")
    # Python ints: 2^21 x 2^21 x 2^22 voxels overflow int64 to 0 bytes.
    data_bytes = math.prod(voxels.shape_zyx) * np.dtype(voxels.dtype).itemsize
    layout = DataLayout(
        data_path=path, offset=0 if compressed else int(vox_offset), codec="gzip" if compressed else "raw",
        data_bytes=data_bytes, stream_skip=int(vox_offset) if compressed else 0,
    )
    return RawHeader("NIfTI", layout, nifti_geometry(path, fields), voxels)


def _nifti_fields(path: Path, head: bytes) -> dict[str, NDArray]:
    order: Literal["<", ">"]
    for order in ("<", ">"):
        size = int(np.frombuffer(head[:4].ljust(4, b"\0"), dtype=f"{order}i4")[0])
        if size in (348, 540):
            break
    else:
        raise _not_format(path, head, "NIfTI")
    if len(head) < size:
        raise InputError(f"{path}: the NIfTI header is cut short ({len(head)} of {size} bytes); copy the file again")
    table = _NIFTI1_FIELDS if size == 348 else _NIFTI2_FIELDS
    fields = {
        name: np.frombuffer(head, dtype=np.dtype(kind).newbyteorder(order) if kind[0] != "S" else kind,
                            count=count, offset=offset)
        for name, offset, kind, count in table
    }
    fields["sizeof_hdr"] = np.array([size])
    magic = bytes(fields["magic"][0])
    if not magic.startswith((b"n+1", b"n+2")):
        raise InputError(
            f"{path}: NIfTI magic is {magic!r}, not 'n+1' or 'n+2' (a .hdr/.img pair or damaged header); "
            "convert it to a single .nii file"
        )
    return fields


def _nifti_voxels(path: Path, fields: dict[str, NDArray]) -> NiftiVoxels:
    code = int(fields["datatype"][0])
    if code not in _NIFTI_TYPES:
        kind = _NIFTI_OTHER_TYPES.get(code, "unknown")
        raise InputError(
            f"{path}: NIfTI datatype = {code} ({kind}) is not a single-channel scan medprint can read; "
            "save the scan as integers or floats"
        )
    order = cast(Literal["<", ">", "=", "|"], fields["dim"].dtype.byteorder)
    dtype = np.dtype(_NIFTI_TYPES[code]).newbyteorder(order)
    dims = _nifti_dims(path, fields)
    if len(dims) < 3 or any(size != 1 for size in dims[3:]):
        raise InputError(
            f"{path}: medprint needs a 3-D volume, this image is {len(dims)}-D ({' x '.join(map(str, dims))}); "
            "give one 3-D volume (e.g. one time point, fslroi)"
        )
    slope, intercept = float(fields["scl_slope"][0]), float(fields["scl_inter"][0])
    if slope == 0 or not np.isfinite(slope):
        slope, intercept = 1.0, 0.0  # the standard (and nibabel): an unset slope means unscaled
    if not np.isfinite(intercept):
        intercept = 0.0
    return NiftiVoxels(dtype.str, (dims[2], dims[1], dims[0]), slope, intercept)


def _nifti_dims(path: Path, fields: dict[str, NDArray]) -> list[int]:
    dim = [int(d) for d in fields["dim"]]
    if not 1 <= dim[0] <= 7:
        raise InputError(f"{path}: NIfTI dim[0] = {dim[0]} is not a number of axes (1-7); the header is damaged")
    for axis in range(1, dim[0] + 1):
        if dim[axis] < 1:
            raise InputError(f"{path}: NIfTI dim[{axis}] = {dim[axis]} is not a size; the header is damaged")
    return dim[1: dim[0] + 1]


def nifti_geometry(path: Path, fields: dict[str, NDArray]) -> Geometry:
    """The LPS geometry a NIfTI header defines (sform, else qform), refused when impossible."""
    sform_code = int(fields["sform_code"][0])
    qform_code = int(fields["qform_code"][0])
    for name, code in (("sform_code", sform_code), ("qform_code", qform_code)):
        if code not in _XFORM_CODES:
            raise GeometryError(f"{path}: NIfTI {name} = {code} is not a NIfTI code (0-5); the header is damaged")
    spacing = _nifti_voxel_size(path, fields["pixdim"])
    if sform_code > 0:
        ras = _sform(path, fields["srow"])
    elif qform_code > 0:
        ras = _qform(path, fields, spacing)
    else:
        # Both 0: NIfTI's "method 1" gives no patient frame at all, so left and right
        # are unknown; a mirrored model would look right, so refuse instead of guessing.
        raise GeometryError(
            f"{path}: NIfTI qform_code and sform_code are both 0, so the file does not say where left, right, "
            "front and back are; set the orientation (e.g. fslorient or nibabel) and try again"
        )
    # The standard gives pixdim, qoffset and srow in xyzt_units (as ITK reads them; nibabel ignores the unit).
    ras[:3] *= _SPACE_UNIT_MM.get(int(fields["xyzt_units"][0]) & 0x07, 1.0)
    lps = RAS_TO_LPS @ ras[:3, :3]
    sizes = np.linalg.norm(lps, axis=0)
    origin = RAS_TO_LPS @ ras[:3, 3]
    if not np.all(np.isfinite(origin)):
        raise GeometryError(f"{path}: NIfTI position {_numbers(ras[:3, 3])} is not finite; the header is damaged")
    try:
        return Geometry(spacing=tuple(sizes), origin=tuple(origin), direction=tuple((lps / sizes).ravel()))
    except GeometryError as error:
        raise GeometryError(f"{path}: {error}") from None


def _nifti_voxel_size(path: Path, pixdim: NDArray) -> NDArray[np.float64]:
    sizes = np.asarray(pixdim[1:4], dtype=float)
    for axis, size in enumerate(sizes, start=1):
        if not np.isfinite(size) or size <= 0:
            raise GeometryError(
                f"{path}: NIfTI pixdim[{axis}] = {size:g} is not a voxel size (the standard needs a positive "
                "number of mm); fix the header's voxel sizes (e.g. with nibabel or fsledithd)"
            )
    return sizes


def _sform(path: Path, srow: NDArray) -> NDArray[np.float64]:
    ras = np.eye(4)
    ras[:3, :] = np.asarray(srow, dtype=float).reshape(3, 4)
    if not np.all(np.isfinite(ras)):
        raise GeometryError(f"{path}: NIfTI sform (srow_x/y/z) holds NaN or infinite values; the header is damaged")
    _check_axes(path, ras[:3, :3], f"NIfTI sform (srow_x/y/z {_numbers(ras[:3])})")
    return ras


def _qform(path: Path, fields: dict[str, NDArray], spacing: NDArray[np.float64]) -> NDArray[np.float64]:
    qfac = float(fields["pixdim"][0])
    if qfac == 0:
        qfac = 1.0  # the NIfTI-1 standard: "if pixdim[0] is 0, treat it as 1"
    if qfac not in (-1.0, 1.0):
        raise GeometryError(f"{path}: NIfTI qfac (pixdim[0]) = {qfac:g} must be 1 or -1; the header is damaged")
    bcd = np.asarray(fields["quatern"], dtype=float)
    offset = np.asarray(fields["qoffset"], dtype=float)
    if not np.all(np.isfinite(bcd)) or not np.all(np.isfinite(offset)):
        raise GeometryError(
            f"{path}: NIfTI qform (quatern_b/c/d {_numbers(bcd)}, qoffset {_numbers(offset)}) is not finite; "
            "the header is damaged"
        )
    w_squared = 1.0 - float(bcd @ bcd)
    if w_squared < -_QUATERNION_SLACK:
        raise GeometryError(
            f"{path}: NIfTI quatern_b/c/d {_numbers(bcd)} is longer than 1, not a rotation; the header is damaged"
        )
    rotation = _quaternion_matrix(np.sqrt(max(w_squared, 0.0)), *bcd)
    ras = np.eye(4)
    ras[:3, :3] = rotation * (spacing * [1.0, 1.0, qfac])
    ras[:3, 3] = offset
    return ras


def _quaternion_matrix(w: float, x: float, y: float, z: float) -> NDArray[np.float64]:
    """Rotation of a quaternion, normalised first (as nibabel's ``quat2mat`` does)."""
    norm = w * w + x * x + y * y + z * z
    s = 2.0 / norm
    X, Y, Z = x * s, y * s, z * s
    wX, wY, wZ = w * X, w * Y, w * Z
    xX, xY, xZ = x * X, x * Y, x * Z
    yY, yZ, zZ = y * Y, y * Z, z * Z
    return np.array([
        [1.0 - (yY + zZ), xY - wZ, xZ + wY],
        [xY + wZ, 1.0 - (xX + zZ), yZ - wX],
        [xZ - wY, yZ + wX, 1.0 - (xX + yY)],
    ])


def _check_axes(path: Path, matrix: NDArray[np.float64], field: str) -> None:
    """Refuse index axes that are zero or not at right angles (columns of ``matrix``)."""
    sizes = np.linalg.norm(matrix, axis=0)
    if not np.all(sizes > 0):
        raise GeometryError(f"{path}: {field} gives an index axis zero length (singular); the header is damaged")
    unit = matrix / sizes
    cosines = np.abs(unit.T @ unit - np.eye(3))
    if cosines.max() > _ORTHOGONAL_COSINE:
        raise GeometryError(
            f"{path}: {field} axes are not at right angles (sheared grid, cosine {cosines.max():.3g}); "
            "resample the image to an orthogonal grid first"
        )


def _numbers(values: NDArray) -> str:
    return " ".join(f"{float(v):g}" for v in np.ravel(values))


# ----------------------------------------------------------------------------- NRRD and MetaImage

# Bytes per voxel of the NRRD and MetaImage scalar types.
_NRRD_TYPES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                     "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
                     "float"), 4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int",
                     "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64",
                     "uint64_t", "double"), 8),
}
_NRRD_CODECS = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2"}
_META_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
               "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
               "MET_DOUBLE": 8}
_NRRD_SPATIAL_KINDS = frozenset({"domain", "space"})
_VECTOR = re.compile(r"\(([^)]*)\)|none", re.IGNORECASE)


def _header_lines(head: bytes, end: bytes) -> tuple[list[str], int]:
    """Text lines of a header up to ``end`` (a blank line) and the offset just after it (-1: no end)."""
    stop = head.find(end)
    text = head if stop < 0 else head[:stop]
    lines = text.decode("latin-1").splitlines()
    return lines, (-1 if stop < 0 else stop + len(end))


def _read_nrrd(path: Path, head: bytes) -> RawHeader:
    if not head.startswith(b"NRRD000"):
        raise _not_format(path, head, "NRRD")
    newline = b"\r\n" if head.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    lines, data_start = _header_lines(head, newline * 2)
    detached = any(line.lower().startswith(("data file:", "datafile:")) for line in lines)
    if data_start < 0 and not detached:
        raise InputError(f"{path}: the NRRD header never ends (no blank line before the data); the file is damaged")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.lstrip("=").strip()
    sizes = _whole_numbers(path, fields, "sizes")
    _check_nrrd_geometry(path, fields, len(sizes))
    layout = _nrrd_layout(path, fields, sizes, data_start)
    return RawHeader("NRRD", layout, frame_named="space" in fields)


def _whole_numbers(path: Path, fields: dict[str, str], key: str) -> list[int]:
    text = fields.get(key, "")
    try:
        numbers = [int(word) for word in text.split()]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        raise InputError(f"{path}: header field {key} = {text!r} is not a list of sizes; the header is damaged")
    return numbers


def _floats(path: Path, key: str, text: str) -> NDArray[np.float64]:
    try:
        return np.array([float(word) for word in text.replace(",", " ").split()], dtype=float)
    except ValueError:
        raise GeometryError(f"{path}: header field {key} = {text!r} is not a list of numbers; fix the header") from None


def _check_nrrd_geometry(path: Path, fields: dict[str, str], axes: int) -> None:
    if "spacings" in fields:
        spacings = _floats(path, "spacings", fields["spacings"])
        kinds = fields.get("kinds", "").lower().split()
        if len(kinds) == axes == spacings.size:
            # A list or vector axis (a channel, a time point) has no spacing: NaN is its right value.
            spacings = spacings[[kind in _NRRD_SPATIAL_KINDS for kind in kinds]]
        _check_spacing(path, "NRRD spacings", fields["spacings"], spacings)
    if "space directions" in fields:
        text = fields["space directions"]
        vectors = [_floats(path, "space directions", match.group(1) or "")
                   for match in _VECTOR.finditer(text) if match.group(1) is not None]
        if not vectors or len({len(v) for v in vectors}) != 1 or len(vectors[0]) == 0:
            raise GeometryError(f"{path}: NRRD space directions {text!r} is not a list of vectors; fix the header")
        matrix = np.column_stack(vectors)
        if not np.all(np.isfinite(matrix)):
            raise GeometryError(f"{path}: NRRD space directions {text!r} holds NaN or infinite values; fix the header")
        if matrix.shape[0] == matrix.shape[1]:
            _check_axes(path, matrix, f"NRRD space directions {text!r}")
    if "space origin" in fields:
        origin = _floats(path, "space origin", fields["space origin"].strip("()"))
        if not np.all(np.isfinite(origin)):
            raise GeometryError(f"{path}: NRRD space origin {fields['space origin']!r} is not finite; fix the header")


def _check_spacing(path: Path, field: str, text: str, spacing: NDArray[np.float64]) -> None:
    if spacing.size == 0 or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise GeometryError(
            f"{path}: {field} = {text} is not a voxel size (each must be a positive number of mm); fix the header"
        )


def _data_file(path: Path, name: str) -> Path:
    data_path = Path(name)
    if not data_path.is_absolute():
        data_path = path.parent / data_path
    if not data_path.exists():
        raise InputError(f"{path}: its data file {name} is missing; copy it beside the header")
    if not data_path.is_file():
        raise InputError(
            f"{path}: its data file {name} is not a regular file (a pipe, device or folder); give a real file"
        )
    return data_path


def _nrrd_layout(path: Path, fields: dict[str, str], sizes: list[int], data_start: int) -> DataLayout | None:
    codec = _NRRD_CODECS.get(fields.get("encoding", "raw").lower(), "other")
    voxel_bytes = _NRRD_TYPES.get(fields.get("type", "").lower())
    detached = fields.get("data file", fields.get("datafile"))
    listed = detached is not None and bool(detached) and (" " in detached.strip() or detached.strip().upper().startswith("LIST"))
    if codec == "other" or voxel_bytes is None or listed:
        return None  # ASCII/hex data, block types or a file list: ITK reads those alone
    try:
        skip = int(fields.get("byte skip", "0"))
    except ValueError:
        raise InputError(f"{path}: NRRD byte skip = {fields['byte skip']!r} is not a number; fix the header") from None
    data_bytes = math.prod(sizes) * voxel_bytes
    data_path = _data_file(path, detached.strip()) if detached else path
    offset = 0 if detached else data_start
    if codec == "raw":
        return DataLayout(data_path, -1 if skip == -1 else offset + skip, codec, data_bytes)
    return DataLayout(data_path, offset, codec, data_bytes, stream_skip=max(skip, 0))


def _read_metaimage(path: Path, head: bytes) -> RawHeader:
    fields: dict[str, str] = {}
    data_start = 0
    for line in head.splitlines(keepends=True):
        data_start += len(line)
        key, equals, value = line.decode("latin-1").partition("=")
        if not equals:
            break
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break
    if "NDims" not in fields or "ElementDataFile" not in fields:
        raise _not_format(path, head, "MetaImage (.mha/.mhd)")
    sizes = _whole_numbers(path, fields, "DimSize")
    _check_metaimage_geometry(path, fields)
    return RawHeader("MetaImage", _metaimage_layout(path, fields, sizes, data_start))


def _check_metaimage_geometry(path: Path, fields: dict[str, str]) -> None:
    for key in ("ElementSpacing", "ElementSize"):
        if key in fields:
            _check_spacing(path, f"MetaImage {key}", fields[key], _floats(path, key, fields[key]))
    for key in ("TransformMatrix", "Rotation", "Orientation"):
        if key in fields:
            values = _floats(path, key, fields[key])
            side = int(round(np.sqrt(values.size)))
            if side * side != values.size or not np.all(np.isfinite(values)):
                raise GeometryError(
                    f"{path}: MetaImage {key} = {fields[key]} is not a finite square matrix; fix the header"
                )
            _check_axes(path, values.reshape(side, side), f"MetaImage {key} = {fields[key]}")
    for key in ("Offset", "Position", "Origin"):
        if key in fields and not np.all(np.isfinite(_floats(path, key, fields[key]))):
            raise GeometryError(f"{path}: MetaImage {key} = {fields[key]} is not finite; fix the header")


def _metaimage_layout(path: Path, fields: dict[str, str], sizes: list[int], data_start: int) -> DataLayout | None:
    voxel_bytes = _META_TYPES.get(fields.get("ElementType", ""))
    name = fields["ElementDataFile"]
    if voxel_bytes is None or name.upper().startswith("LIST") or " " in name:
        return None  # unknown types or slice lists: ITK reads those alone
    try:
        channels = int(fields.get("ElementNumberOfChannels", "1"))
        header_size = int(fields.get("HeaderSize", "0"))
    except ValueError:
        raise InputError(
            f"{path}: MetaImage ElementNumberOfChannels/HeaderSize is not a number; fix the header"
        ) from None
    if channels < 1:
        raise InputError(
            f"{path}: MetaImage ElementNumberOfChannels = {channels} is not a number of values per voxel; "
            "set it to 1 (or fix the header)"
        )
    data_bytes = math.prod(sizes) * voxel_bytes * channels
    local = name.upper() == "LOCAL"
    data_path = path if local else _data_file(path, name)
    offset = data_start if local else 0
    if fields.get("CompressedData", "False").lower() == "true":
        declared = fields.get("CompressedDataSize")
        return DataLayout(data_path, offset, "zlib", data_bytes, packed_size=declared)
    return DataLayout(data_path, -1 if header_size == -1 else offset + header_size, "raw", data_bytes)

