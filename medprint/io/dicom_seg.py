"""DICOM Segmentation objects (SEG): binary and fractional, several and overlapping segments.

Each frame of a SEG belongs to one segment (SegmentIdentificationSequence) and
carries its own position (PlanePositionSequence, per frame); orientation and
pixel spacing usually sit in the shared functional groups.  The geometry is
read from the SEG itself, never from the series it references (SimpleITK gets
overlapping SEGs wrong because it treats the frames as one stack).  Frames are
placed on a grid of the SEG's own, one segment at a time, which is then
resampled onto the loaded scan by patient coordinates (nearest neighbour; an
exact copy when the grids coincide).

pydicom alone decodes SEG here: the format needs a few dozen lines, and
highdicom would add a dependency with its own pydicom pin for no gain in what
is read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from ..errors import GeometryError, InputError, ParameterError
from ..geometry import Geometry
from ..volume import Mask, Volume
from . import dicom_headers as hdr
from .labels import (
    LabelSelector,
    check_landed,
    check_referenced_series,
    mask_name,
    read_dicom,
    resample_nearest,
    resolve_selection,
)

log = logging.getLogger("medprint")

__all__ = ["load_seg_masks", "read_seg_segments"]

# Frame positions off the SEG's own grid by more than this fraction of a voxel are refused.
_GRID_TOLERANCE = 0.05


@dataclass(frozen=True)
class _Frame:
    index: int
    segment: int
    position: NDArray[np.float64]


@dataclass(frozen=True)
class _SegGrid:
    """The SEG's own grid: its geometry, array shape and where each frame goes (k, j, i)."""

    geometry: Geometry
    shape: tuple[int, int, int]
    offsets: dict[int, tuple[int, int, int]]


def read_seg_segments(path: Path | str) -> dict[int, str]:
    """Segment number -> SegmentLabel of a DICOM SEG file."""
    source = Path(path)
    return _segments(_read(source, pixels=False), source)


def load_seg_masks(
    path: Path | str,
    reference: Volume,
    *,
    labels: Sequence[LabelSelector] | None,
    force_geometry: bool = False,
    fraction_threshold: float = 0.5,
) -> list[Mask]:
    """Segments of a DICOM SEG as masks on the loaded scan's grid.

    Parameters
    ----------
    path : Path or str
        The SEG file.
    reference : Volume
        The loaded scan.
    labels : sequence of int or str, or None
        Segment numbers or SegmentLabels (case-insensitive); ``None``: all.
    force_geometry : bool
        Accept a SEG that references another series than the loaded one and
        place it by its patient coordinates.
    fraction_threshold : float
        FRACTIONAL SEGs: a voxel is in the segment when its fraction
        (value / MaximumFractionalValue) is at least this, in (0, 1].

    Returns
    -------
    list of Mask
        One per selected segment, named by its SegmentLabel.
    """
    if not 0.0 < fraction_threshold <= 1.0:
        raise ParameterError(f"fraction_threshold must be in (0, 1], got {fraction_threshold}")
    source = Path(path)
    ds = _read(source, pixels=True)
    segments = _segments(ds, source)
    chosen = resolve_selection(labels, segments, source=source, what="segment")
    referenced = [item.get("SeriesInstanceUID", "") for item in ds.get("ReferencedSeriesSequence", [])]
    check_referenced_series(source, referenced, reference, force_geometry=force_geometry, kind="SEG")
    frames = _frames(ds, source)
    grid = _seg_grid(ds, frames, source)
    masks = []
    for number in chosen:
        own = [frame for frame in frames if frame.segment == number]
        array = _segment_array(ds, own, grid, fraction_threshold)
        placed = _place(array, grid, reference)
        mask = Mask(array=placed, geometry=reference.geometry, label=mask_name(segments[number], number))
        check_landed(source, mask.label, float(np.count_nonzero(array)) * grid.geometry.voxel_volume_mm3, mask,
                     what="segment")
        log.info("%s: segment %d '%s': %d frames, %d voxels on the scan's grid", source.name, number, mask.label,
                 len(own), mask.voxel_count)
        masks.append(mask)
    return masks


def _read(source: Path, *, pixels: bool) -> Dataset:
    ds = read_dicom(source, pixels=pixels, what="DICOM SEG")
    if str(ds.get("Modality", "")).upper() != "SEG":
        raise InputError(f"{source}: not a DICOM SEG (Modality {ds.get('Modality', 'missing')})")
    kind = str(ds.get("SegmentationType", "")).upper()
    if kind not in ("BINARY", "FRACTIONAL"):
        raise InputError(f"{source}: SegmentationType '{kind}' is neither BINARY nor FRACTIONAL; cannot decode it")
    return ds


def _segments(ds: Dataset, source: Path) -> dict[int, str]:
    segments = {}
    for item in ds.get("SegmentSequence", []):
        number = int(item.SegmentNumber)
        segments[number] = str(item.get("SegmentLabel", "") or item.get("SegmentDescription", "")).strip()
    if not segments:
        raise InputError(f"{source}: the SEG declares no segments (empty SegmentSequence)")
    return segments


def _frames(ds: Dataset, source: Path) -> list[_Frame]:
    count = int(ds.get("NumberOfFrames", 1) or 1)
    frames = []
    for index in range(count):
        ident = hdr.functional_item(ds, index, "SegmentIdentificationSequence")
        position = hdr.functional_item(ds, index, "PlanePositionSequence")
        if ident is None or position is None or "ImagePositionPatient" not in position:
            raise InputError(
                f"{source}: frame {index + 1} has no segment number or no ImagePositionPatient; "
                "this SEG cannot be placed in space"
            )
        frames.append(_Frame(index, int(ident.ReferencedSegmentNumber),
                             np.asarray([float(v) for v in position.ImagePositionPatient])))
    return frames


def _seg_grid(ds: Dataset, frames: list[_Frame], source: Path) -> _SegGrid:
    """A grid of the SEG's own holding every frame (shared orientation and spacing)."""
    orientation, pixel_spacing, slice_spacing = _shared_geometry(ds, frames, source)
    row, col = hdr.orthonormal_axes(orientation)
    normal = np.cross(row, col)
    axes = np.stack([row, col, normal])
    steps = np.array([pixel_spacing[1], pixel_spacing[0], slice_spacing])
    anchor = frames[0].position
    raw = np.array([(axes @ (frame.position - anchor)) / steps for frame in frames])
    rounded = np.rint(raw)
    worst = float(np.abs(raw - rounded).max()) if len(frames) else 0.0
    if worst > _GRID_TOLERANCE:
        raise GeometryError(
            f"{source}: frame positions are not on one regular grid (off by {worst:.2f} voxel); "
            "this SEG layout is not supported"
        )
    low = rounded.min(axis=0)
    index = (rounded - low).astype(int)
    origin = anchor + (low * steps) @ axes
    rows, columns = int(ds.Rows), int(ds.Columns)
    shape = (int(index[:, 2].max()) + 1, int(index[:, 1].max()) + rows, int(index[:, 0].max()) + columns)
    direction = np.column_stack([row, col, normal])
    geometry = Geometry(spacing=tuple(steps), origin=tuple(origin), direction=tuple(direction.ravel()))  # type: ignore[arg-type]
    offsets = {frame.index: (int(k), int(j), int(i)) for frame, (i, j, k) in zip(frames, index)}
    return _SegGrid(geometry, shape, offsets)


def _shared_geometry(
    ds: Dataset, frames: list[_Frame], source: Path
) -> tuple[tuple[float, ...], tuple[float, float], float]:
    orientations = set()
    spacings = set()
    for frame in frames:
        ori = hdr.functional_item(ds, frame.index, "PlaneOrientationSequence")
        meas = hdr.functional_item(ds, frame.index, "PixelMeasuresSequence")
        if ori is None or meas is None or "PixelSpacing" not in meas:
            raise InputError(
                f"{source}: frame {frame.index + 1} has no ImageOrientationPatient or PixelSpacing; "
                "this SEG cannot be placed in space"
            )
        orientations.add(tuple(round(float(v), 4) for v in ori.ImageOrientationPatient))
        spacings.add(tuple(round(float(v), 6) for v in meas.PixelSpacing))
    if len(orientations) > 1 or len(spacings) > 1:
        raise GeometryError(
            f"{source}: frames differ in orientation or pixel spacing; this SEG layout is not supported"
        )
    pixel_spacing = spacings.pop()
    return orientations.pop(), (pixel_spacing[0], pixel_spacing[1]), _slice_spacing(ds, frames)


def _slice_spacing(ds: Dataset, frames: list[_Frame]) -> float:
    """SpacingBetweenSlices, else the smallest gap between frame planes, else SliceThickness, else 1 mm."""
    meas = hdr.functional_item(ds, frames[0].index, "PixelMeasuresSequence") if frames else None
    between = _positive(meas, "SpacingBetweenSlices")
    if between is not None:
        return between
    gap = _smallest_gap(ds, frames)
    if gap is not None:
        return gap
    return _positive(meas, "SliceThickness") or 1.0


def _positive(item: Dataset | None, keyword: str) -> float | None:
    value = item.get(keyword) if item is not None else None
    return float(value) if value not in (None, "") and float(value) > 0 else None


def _smallest_gap(ds: Dataset, frames: list[_Frame]) -> float | None:
    orientation = hdr.functional_item(ds, frames[0].index, "PlaneOrientationSequence")
    if orientation is None:
        return None
    row, col = hdr.orthonormal_axes(tuple(float(v) for v in orientation.ImageOrientationPatient))
    distances = np.unique(np.round([float(np.cross(row, col) @ f.position) for f in frames], 3))
    gaps = np.diff(distances)
    return float(gaps.min()) if gaps.size else None


def _segment_array(ds: Dataset, frames: list[_Frame], grid: _SegGrid, fraction_threshold: float) -> NDArray[np.uint8]:
    """One segment's frames pasted on the SEG grid, as 0/1."""
    array = np.zeros(grid.shape, dtype=np.uint8)
    if not frames:
        return array
    fractional = str(ds.SegmentationType).upper() == "FRACTIONAL"
    cut = fraction_threshold * float(ds.get("MaximumFractionalValue", 255) or 255)
    rows, columns = int(ds.Rows), int(ds.Columns)
    pixels = _decoded_frames(ds, [frame.index for frame in frames])
    for frame, plane in zip(frames, pixels):
        selected = plane >= cut if fractional else plane != 0
        k, j, i = grid.offsets[frame.index]
        array[k, j:j + rows, i:i + columns] |= selected.astype(np.uint8)
    return array


def _decoded_frames(ds: Dataset, indices: list[int]) -> list[NDArray[Any]]:
    """The frames asked for, decoded one at a time (a large SEG would not fit decoded whole)."""
    from pydicom.pixels import iter_pixels

    syntax = ds.file_meta.TransferSyntaxUID
    if int(ds.BitsAllocated) == 1 and not syntax.is_compressed and syntax.is_little_endian:
        return [_unpacked_frame(ds, index) for index in indices]
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        return [ds.pixel_array.reshape(int(ds.Rows), int(ds.Columns))]
    return [plane for plane in iter_pixels(ds, indices=indices)]


def _unpacked_frame(ds: Dataset, index: int) -> NDArray[np.uint8]:
    """One frame of native 1-bit pixel data.

    Frames follow each other bit by bit, without padding to whole bytes (pydicom
    3.0's per-frame decoding fails on such frames when their size is not a
    multiple of 8 pixels).
    """
    rows, columns = int(ds.Rows), int(ds.Columns)
    size = rows * columns
    first_bit = index * size
    data = ds.PixelData
    chunk = np.frombuffer(data[first_bit // 8:(first_bit + size + 7) // 8 + 1], dtype=np.uint8)
    bits = np.unpackbits(chunk, bitorder="little")[first_bit % 8:first_bit % 8 + size]
    if bits.size != size:
        raise InputError(f"frame {index + 1}: pixel data ends early ({bits.size} of {size} pixels); is the SEG complete?")
    return bits.reshape(rows, columns)


def _place(array: NDArray[np.uint8], grid: _SegGrid, reference: Volume) -> NDArray[np.bool_]:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(grid.geometry.spacing)
    image.SetOrigin(grid.geometry.origin)
    image.SetDirection(grid.geometry.direction)
    return resample_nearest(image, reference.geometry, reference.shape).astype(bool)
