"""Single-file volumes: NIfTI, NRRD, MetaImage (MHA/MHD).

medprint reads each header itself and checks that the data is whole before
any voxel is used (ITK repairs bad headers and cut data silently).  NIfTI is
then read entirely here: voxels straight from the (verified) stream, geometry
from the header (sform, else qform, RAS -> LPS).  NRRD and MetaImage voxels and
geometry come from SimpleITK, which reports LPS, once the header values behind
them are known to be sane.
"""

from __future__ import annotations

import bz2
import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError, ParameterError
from ..geometry import Geometry
from ..volume import Volume, all_finite, describe_non_finite
from .image_headers import DataLayout, NiftiVoxels, RawHeader, read_raw_header
from .native_stderr import NativeStderr

log = logging.getLogger("medprint")

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")

# Values below this only occur in Hounsfield data (air is -1000 HU).
_HU_AIR_CEILING = -900.0

# Voxel sizes a scan can have, mm: from micro-CT (a few microns) to a very coarse scout.
_VOXEL_MM_RANGE = (1e-3, 100.0)

# Compressed bytes read, and most bytes decompressed, at a time while checking a stream.
_CHUNK = 1 << 22

# Most bytes deflate can pack into one (a run of one byte value).
_DEFLATE_MAX_RATIO = 1032


def is_image_file(path: Path) -> bool:
    """True when the file name has one of the image suffixes medprint reads."""
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in IMAGE_SUFFIXES)


def load_image_file(path: Path, *, modality: str | None = None, non_finite: float | None = None) -> Volume:
    """Read a NIfTI, NRRD or MetaImage volume.

    The header is read and checked first (see :mod:`medprint.io.image_headers`),
    then the voxel data is checked to be complete: a stream cut short or
    failing its checksum is refused.  NIfTI voxels are read by medprint in the
    same pass; NRRD and MetaImage voxels by ITK afterwards.

    Parameters
    ----------
    path : Path
    modality : str, optional
        ``'CT'`` or ``'MR'``; these formats do not record it.  When omitted,
        a scan whose values reach below -900 is taken as CT (only Hounsfield
        data has air at -1000) and the guess is recorded in the volume's notes.
    non_finite : float, optional
        The value NaN and infinite voxels stand for.  Without it such voxels
        are refused, naming how many there are and where.

    Raises
    ------
    InputError
        Not an image of the format its name says, damaged or incomplete data,
        or non-finite voxels without ``non_finite``.
    GeometryError
        Impossible voxel sizes, directions or positions in the header.
    """
    image = read_checked_image(path)
    array, geometry = image.array, image.geometry
    notes = replace_non_finite(array, non_finite, source=str(path))
    _check_float32_range(path, array)
    chosen, note = _decide_modality(array, modality)
    if note:
        notes += (note,)
        log.info("%s: %s", path.name, note)
    metadata = {"source_format": image.format_name, "modality": chosen}
    return Volume(array=array, geometry=geometry, modality=chosen, metadata=metadata, notes=notes)


@dataclass(frozen=True)
class CheckedImage:
    """The voxels and geometry of an image file whose header and data were checked.

    Parameters
    ----------
    array : ndarray, shape (z, y, x), or (z, y, x, c) for several values per voxel
        The voxels as stored (scaled by NIfTI's ``scl_slope``/``scl_inter``).
    geometry : Geometry
        LPS placement, from the checked header (NIfTI) or from ITK (NRRD, MetaImage).
    format_name : str
        ``'NIfTI'``, ``'NRRD'`` or ``'MetaImage'``.
    metadata : Mapping of str to str
        The header's key/value fields as ITK reports them (NRRD, MetaImage;
        e.g. Slicer's ``Segment0_Name``); empty for NIfTI.
    """

    array: np.ndarray
    geometry: Geometry
    format_name: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def components(self) -> int:
        """Values per voxel (1 for a scan or a label map, one per layer for a multi-layer ``.seg.nrrd``)."""
        return 1 if self.array.ndim == 3 else int(self.array.shape[-1])


def read_checked_image(path: Path, *, channels: bool = False) -> CheckedImage:
    """Read a NIfTI, NRRD or MetaImage file once its header and data are known to be sane.

    The one checked reading path of scans and label maps: the header is
    judged first (see :mod:`medprint.io.image_headers`), compressed data is
    verified to its end, and impossible voxel sizes are refused.  Non-finite
    voxels are left for the caller to judge (a scan may replace them, a label
    map never).

    Parameters
    ----------
    path : Path
        A regular file (the caller refuses pipes and folders before this opens it).
    channels : bool
        Accept several values per voxel (NRRD/MetaImage vector images such as
        Slicer's multi-layer ``.seg.nrrd``); without it they are refused.

    Raises
    ------
    InputError
        Not an image of the format its name says, damaged or incomplete data,
        not 3-D, or several values per voxel without ``channels``.
    GeometryError
        Impossible voxel sizes, directions or positions in the header.
    """
    header = read_raw_header(path)
    metadata: Mapping[str, str] = {}
    if header.voxels is not None and header.layout is not None and header.geometry is not None:
        array, geometry = read_nifti_voxels(path, header.layout, header.voxels), header.geometry
    else:
        array, geometry, metadata = _read_with_itk(path, header, channels=channels)
    _check_voxel_size(path, geometry)
    try:
        geometry.check_extent(array.shape)
    except GeometryError as error:
        raise GeometryError(f"{path}: {error}") from None
    return CheckedImage(array, geometry, header.format_name, metadata)


def read_nifti_voxels(path: Path, layout: DataLayout, voxels: NiftiVoxels) -> np.ndarray:
    """The voxel array ``(z, y, x)`` of a NIfTI file, scaled by its ``scl_slope``/``scl_inter``.

    medprint reads NIfTI voxels itself: ITK reads NaN and Inf as 0 and a cut
    ``.nii.gz`` as zeros, and never checks the gzip checksum.  A ``.nii.gz`` is
    decompressed once, with its checksum and length verified, straight into
    the array, so the checks cost no second pass.
    """
    dtype = np.dtype(voxels.dtype)
    count = layout.data_bytes // dtype.itemsize
    if layout.codec == "raw":
        _check_raw_size(path, layout)
        array = np.fromfile(layout.data_path, dtype=dtype, count=count, offset=layout.offset)
    else:
        _check_packable(path, layout)  # before the buffer: a damaged size must not cost gigabytes first
        buffer = bytearray(layout.data_bytes)
        _check_stream(path, layout, _Filler(buffer, layout.stream_skip))
        array = np.frombuffer(buffer, dtype=dtype)
    array = array.reshape(voxels.shape_zyx)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    if voxels.slope != 1.0 or voxels.intercept != 0.0:
        array = array.astype(np.float64 if dtype.itemsize == 8 and dtype.kind == "f" else np.float32)
        array *= voxels.slope
        array += voxels.intercept
    return array


def _read_with_itk(
    path: Path, header: RawHeader, *, channels: bool
) -> tuple[np.ndarray, Geometry, dict[str, str]]:
    """NRRD and MetaImage voxels and geometry, read by ITK once the header and data are known sane."""
    if header.layout is not None:
        check_data_complete(path, header.layout)
        _check_packed_size(path, header.layout)
        if header.format_name == "NRRD" and header.layout.codec == "bzip2":
            raise InputError(
                f"{path}: bzip2-encoded NRRD data cannot be read (ITK's NRRD reader lacks bzip2); "
                "save it again with gzip or raw encoding (e.g. unu save -e gzip)"
            )
    image = _read(path)
    if image.GetDimension() != 3:
        raise InputError(f"{path}: medprint needs a 3-D volume, this image is {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1 and not channels:
        raise InputError(
            f"{path}: has {image.GetNumberOfComponentsPerPixel()} values per voxel (colour or vector image); "
            "give a single-channel scan"
        )
    if not header.frame_named:
        # Without "space" (only spacings/axis mins) NRRD names no patient frame, so left and
        # right are unknown; ITK would call it LPS, and a mirrored model would look right.
        raise GeometryError(
            f"{path}: NRRD has no space field (only spacings/axis mins), so the file does not say where left, "
            "right, front and back are; set the orientation (space: left-posterior-superior and space directions, "
            "e.g. with Slicer or unu) and try again"
        )
    metadata = {key: image.GetMetaData(key) for key in image.GetMetaDataKeys()}
    return sitk.GetArrayFromImage(image), _itk_geometry(path, image), metadata


def _itk_geometry(path: Path, image: sitk.Image) -> Geometry:
    try:
        return Geometry(spacing=image.GetSpacing(), origin=image.GetOrigin(), direction=image.GetDirection())
    except GeometryError as error:
        raise GeometryError(f"{path}: {error}") from None


def _check_packed_size(path: Path, layout: DataLayout) -> None:
    """Refuse a MetaImage ``CompressedDataSize`` other than the stream's real length.

    ITK inflates only the declared bytes and leaves the rest of the image as
    whatever memory held, so a stream verified whole would still give a model
    that is partly garbage.
    """
    if layout.packed_size is None:
        return
    real = layout.data_path.stat().st_size - layout.offset
    if layout.packed_size.strip() != str(real):
        raise InputError(
            f"{path}: MetaImage CompressedDataSize = {layout.packed_size} but the compressed data is {real} bytes; "
            f"the header is damaged: set CompressedDataSize = {real} (or copy the file again)"
        )


def _check_voxel_size(path: Path, geometry: Geometry) -> None:
    """Refuse voxel sizes no scanner makes (1e30 mm, 1e-30 mm): a damaged header or a wrong unit."""
    low, high = _VOXEL_MM_RANGE
    if min(geometry.spacing) < low or max(geometry.spacing) > high:
        sizes = " x ".join(f"{s:g}" for s in geometry.spacing)
        raise GeometryError(
            f"{path}: voxel size {sizes} mm is outside {low:g}..{high:g} mm, which no scanner makes; "
            "fix the header's voxel sizes (or their unit)"
        )


def _read(path: Path) -> sitk.Image:
    """ITK's read, with its warnings off and MetaIO's raw stderr text caught (it writes past Python)."""
    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    with NativeStderr() as stderr:
        try:
            with stderr.capture(path.name):
                return sitk.ReadImage(str(path))
        except RuntimeError as error:
            reason = _itk_reason(str(error), stderr.last)
            raise InputError(
                f"{path}: cannot read this image ({reason}); is the file (and each data file it lists) complete?"
            ) from None


def _itk_reason(error: str, native: str) -> str:
    """One short reason from ITK's exception and MetaIO's stderr text ("Reason: ..." is only errno, often stale)."""
    for text in (native, error):
        for line in text.replace(" | ", "\n").splitlines():
            line = line.strip()
            if line and not line.startswith(("Reason:", "(Reason:")) and "itk::ERROR" not in line:
                return line.removeprefix("sitk::ERROR:").strip()[:200]
    return "unreadable"


def replace_non_finite(array: np.ndarray, value: float | None, *, source: str) -> tuple[str, ...]:
    """Refuse NaN/Inf voxels, or set them to ``value`` in place; returns the note to record.

    Parameters
    ----------
    array : ndarray, shape (z, y, x)
        Voxels, changed in place when ``value`` is given.
    value : float, optional
        What a non-finite voxel stands for (``--non-finite``).
    source : str
        The file, for messages.
    """
    if not np.issubdtype(array.dtype, np.floating) or all_finite(array):
        return ()
    bad = ~np.isfinite(array)
    count = int(np.count_nonzero(bad))
    if value is None:
        raise InputError(f"{source}: {describe_non_finite(bad)}; pass --non-finite VALUE to say what they stand for")
    if abs(value) > np.finfo(array.dtype).max:
        raise ParameterError(
            f"--non-finite {value:g} does not fit this scan's {array.dtype} voxels; give a smaller value"
        )
    array[bad] = value
    note = f"{count} non-finite (NaN/Inf) voxels set to {value:g} as --non-finite asked"
    log.info("%s: %s", Path(source).name, note)
    return (note,)


def _check_float32_range(path: Path, array: np.ndarray) -> None:
    """Refuse float64 voxels beyond float32's range: segmentation and meshing work in float32, where they become Inf."""
    if array.dtype != np.float64:
        return
    limit = float(np.finfo(np.float32).max)
    low, high = float(array.min()), float(array.max())
    if max(-low, high) > limit:
        raise InputError(
            f"{path}: voxel values reach {low:g}..{high:g}, beyond the {limit:.3g} a float32 can hold "
            "(the damaged header or data of a float64 scan); fix the values or rescale the scan"
        )


def _decide_modality(array: np.ndarray, modality: str | None) -> tuple[str, str]:
    if modality:
        return modality.upper(), ""
    minimum = float(array.min())
    if minimum <= _HU_AIR_CEILING:
        return "CT", f"modality taken as CT: values reach {minimum:g} (Hounsfield air); pass --modality MR if wrong"
    return "OT", f"modality unknown (values {minimum:g}..{float(array.max()):g}); pass --modality CT to use CT presets"


def check_data_complete(path: Path, layout: DataLayout) -> None:
    """Refuse voxel data that ends early or, when compressed, fails its checksum.

    ITK reads cut data as zeros and never verifies a gzip checksum, so a
    damaged file would become a model that looks right.  Raw data is checked
    by its size; compressed data is decompressed once in chunks and thrown
    away, which is the only way to know it is whole (about as long as ITK's own
    read; NIfTI avoids the second pass, see :func:`read_nifti_voxels`).
    """
    if layout.codec == "raw":
        _check_raw_size(path, layout)
    elif layout.codec != "other":
        _check_stream(path, layout, lambda piece: None)


def _check_packable(path: Path, layout: DataLayout) -> None:
    """Refuse a header that asks for more bytes than the compressed file could ever hold.

    Deflate packs at most 1032 bytes into one, so a 10 kB ``.nii.gz`` whose
    header says 64 GB is damaged or cut: refused before the voxel buffer is made.
    """
    packed = layout.data_path.stat().st_size - max(layout.offset, 0)
    needed = layout.stream_skip + layout.data_bytes
    if needed > _DEFLATE_MAX_RATIO * packed + _CHUNK:
        raise InputError(
            f"{path}: its header asks for {needed} bytes of voxels, more than its {packed} compressed bytes can hold; "
            "the file is incomplete or its header damaged: copy it again"
        )


def _check_raw_size(path: Path, layout: DataLayout) -> None:
    size = layout.data_path.stat().st_size
    needed = layout.data_bytes if layout.offset < 0 else layout.offset + layout.data_bytes
    if size < needed:
        raise InputError(
            f"{path}: {_data_words(path, layout.data_path)} is {size} bytes, its header needs {needed}; "
            "the file is incomplete: copy it again"
        )


def _check_stream(path: Path, layout: DataLayout, sink: Callable[[bytes], None]) -> None:
    try:
        total = _decompressed_size(layout.data_path, layout.offset, layout.codec, sink)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise InputError(
            f"{path}: the {layout.codec} data in {_data_words(path, layout.data_path)} is damaged ({_why(error)}); "
            "the file is incomplete or corrupt: copy it again"
        ) from None
    needed = layout.stream_skip + layout.data_bytes
    if total < needed:
        raise InputError(
            f"{path}: {_data_words(path, layout.data_path)} holds {total} bytes once decompressed, its header "
            f"needs {needed}; the file is incomplete: copy it again"
        )


class _Filler:
    """Copies the voxel bytes of a decompressed stream into a buffer as they pass."""

    def __init__(self, buffer: bytearray, skip: int) -> None:
        self.view = memoryview(buffer)
        self.start = skip
        self.position = 0

    def __call__(self, piece: bytes) -> None:
        low, self.position = self.position, self.position + len(piece)
        first, last = max(low, self.start), min(self.position, self.start + len(self.view))
        if first < last:
            self.view[first - self.start: last - self.start] = piece[first - low: last - low]


def _data_words(path: Path, data_path: Path) -> str:
    return "the file" if data_path == path else f"its data file {data_path.name}"


def _why(error: BaseException) -> str:
    if isinstance(error, EOFError):
        return "the compressed stream ends early"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _decompressed_size(data_path: Path, offset: int, codec: str, sink: Callable[[bytes], None]) -> int:
    """Bytes a compressed stream holds, verified to its end (checksum and length), none of them kept."""
    total = 0
    decoder = _decoder(codec)
    with open(data_path, "rb") as stream:
        stream.seek(offset)
        while chunk := stream.read(_CHUNK):
            while chunk:
                if decoder.eof:
                    # Another gzip member may follow; zero padding after the stream is harmless.
                    if codec != "gzip" or not chunk.strip(b"\0"):
                        chunk = b""
                        break
                    decoder = _decoder(codec)
                total += _pass(decoder.decompress(chunk, _CHUNK), sink)
                chunk = _leftover(decoder)
            while not decoder.eof and not _needs_input(decoder):
                total += _pass(decoder.decompress(b"", _CHUNK), sink)
    while not decoder.eof and (pending := decoder.decompress(b"", _CHUNK)):
        total += _pass(pending, sink)  # output zlib still held back by the limit
    if not decoder.eof:
        raise EOFError("the compressed stream ends early")
    return total


def _pass(piece: bytes, sink: Callable[[bytes], None]) -> int:
    sink(piece)
    return len(piece)


def _decoder(codec: str) -> Any:
    if codec == "bzip2":
        return bz2.BZ2Decompressor()
    # 16+: gzip wrapper; 32+: zlib or gzip, whichever the stream has (MetaImage writes zlib).
    return zlib.decompressobj(16 + zlib.MAX_WBITS if codec == "gzip" else 32 + zlib.MAX_WBITS)


def _leftover(decoder: Any) -> bytes:
    """Input the decoder has not used yet: held back by the output limit, or past the stream's end."""
    if isinstance(decoder, bz2.BZ2Decompressor):
        return decoder.unused_data if decoder.eof else b""
    return decoder.unused_data if decoder.eof else decoder.unconsumed_tail


def _needs_input(decoder: Any) -> bool:
    if isinstance(decoder, bz2.BZ2Decompressor):
        return bool(decoder.needs_input)
    return not decoder.unconsumed_tail
