"""Segmentations made by other tools, imported as masks on a loaded scan.

Three families of files hold them:

- label maps (NIfTI, NRRD, MHA): one integer per voxel; names come from a names
  file (TotalSegmentator class map JSON, a Slicer ``.seg.nrrd`` header, or a
  plain ``number name`` text file) or, for ``.seg.nrrd``, from the file itself;
- DICOM SEG (:mod:`medprint.io.dicom_seg`);
- DICOM RTSTRUCT (:mod:`medprint.io.rtstruct`).

:func:`load_label_mask` is the single entry point.  Whatever the source, each
selected label becomes one :class:`~medprint.volume.Mask` on the reference
volume's grid, placed by patient (LPS) coordinates: when the grids differ, the
labels are resampled with nearest neighbour, never voxel for voxel (unless
``force_geometry`` is given for a label map that does not overlap the scan).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

from ..errors import GeometryError, InputError, ParameterError
from ..geometry import Geometry
from ..volume import Mask, Volume, all_finite, describe_non_finite
from .image_files import is_image_file, read_checked_image

log = logging.getLogger("medprint")

__all__ = [
    "FORCE_OPTION",
    "LABELS_OPTION",
    "LABEL_OPTION",
    "NAMES_OPTION",
    "list_labels",
    "load_label_mask",
    "read_names_file",
    "resample_nearest",
]

#: Command-line spellings named in error messages (one place, so the CLI and messages agree).
LABEL_OPTION = "--label"
LABELS_OPTION = "--labels"
NAMES_OPTION = "--labels-names"
FORCE_OPTION = "--force-geometry"

LabelSelector = int | str

# Geometry of two grids counts as the same below these differences (mm, cosine).
_SAME_GRID_MM = 1e-3
_SAME_GRID_COS = 1e-5
_LISTED_AT_MOST = 12
# Below this share of its own volume kept on the scan's grid, a label is reported as cut.
_KEPT_WARNING = 0.8
#: More distinct labels than this need a names file: segmentations hold tens to hundreds of structures
#: (TotalSegmentator 117, brain atlases a few hundred), a scan thousands of intensities.
MAX_UNNAMED_LABELS = 1000
#: Largest names file read (a TotalSegmentator class map is a few kB; an atlas table well under 1 MB).
MAX_NAMES_BYTES = 10 * 1024 * 1024
# Label values a float label map may hold: they become int32.
_INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class _Segment:
    """One named label of a label map: its value, and its layer for multi-layer ``.seg.nrrd``."""

    value: int
    name: str
    layer: int = 0


@dataclass(frozen=True)
class _LabelMap:
    """A label map read through the checked path: integer labels, one layer per component, and the header keys."""

    array: NDArray[np.integer]
    geometry: Geometry
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def layers(self) -> list[NDArray[np.integer]]:
        """Each layer ``(z, y, x)`` (one, except for Slicer's multi-layer ``.seg.nrrd``)."""
        if self.array.ndim == 3:
            return [self.array]
        return [self.array[..., c] for c in range(self.array.shape[-1])]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape[:3])  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------


def load_label_mask(
    path: Path | str,
    reference: Volume,
    *,
    labels: Sequence[LabelSelector] | None,
    names_file: Path | str | None = None,
    force_geometry: bool = False,
) -> list[Mask]:
    """Import labels from a label map, DICOM SEG or RTSTRUCT as masks on a scan.

    Parameters
    ----------
    path : Path or str
        A label map (``.nii``, ``.nii.gz``, ``.nrrd``, ``.seg.nrrd``, ``.mha``,
        ``.mhd``), a DICOM SEG file or a DICOM RTSTRUCT file.
    reference : Volume
        The loaded scan; every mask is returned on its grid.
    labels : sequence of int or str, or None
        What to import: label values / segment numbers / ROI numbers, or names
        (case-insensitive; ``_``, ``-`` and spaces are interchangeable).  Digit
        strings count as numbers.  ``None``: every label present.
    names_file : Path or str, optional
        Names for a label map: TotalSegmentator class map JSON (``{"1": "spleen"}``
        or ``{"total": {...}, ...}``; pick a map with ``file.json#total_mr``,
        default the first), a Slicer ``.seg.nrrd`` (its header is read), or a
        text file of ``number name`` lines.
    force_geometry : bool
        DICOM SEG/RTSTRUCT made on another series than the one loaded: place it
        by its patient coordinates anyway.  Label map that does not overlap the
        scan in patient space but has its shape: take it voxel for voxel.

    Returns
    -------
    list of Mask
        One per selected label, in the order asked, each a boolean ``(z, y, x)``
        array on ``reference.geometry`` named after the label.

    Label maps are read through the same checked path as scans
    (:func:`medprint.io.image_files.read_checked_image`): a damaged or cut
    file, impossible geometry and NaN/Inf labels are refused, each message
    naming ``--labels``.

    Raises
    ------
    InputError
        Unreadable, damaged or incomplete file, not a regular file, not a label
        map, NaN/Inf or fractional labels, a names file that is empty, over
        :data:`MAX_NAMES_BYTES`, not UTF-8 or not a names JSON object, no
        contours for an ROI.
    ParameterError
        A label that is not in the file or names file (close matches listed).
    GeometryError
        Impossible voxel sizes or orientation in the label map's header, the
        labels lie outside the scan, or a SEG/RTSTRUCT references another series.
    """
    source = _regular_file(path, LABELS_OPTION, "label file")
    kind = _kind_of(source)
    if kind != "labelmap" and names_file is not None:
        raise ParameterError(
            f"{NAMES_OPTION} {names_file}: {source.name} is a DICOM {kind.upper()} that names its own segments; "
            f"drop {NAMES_OPTION}"
        )
    if kind == "seg":
        from .dicom_seg import load_seg_masks

        return load_seg_masks(source, reference, labels=labels, force_geometry=force_geometry)
    if kind == "rtstruct":
        from .rtstruct import load_rtstruct_masks

        return load_rtstruct_masks(source, reference, labels=labels, force_geometry=force_geometry)
    return _load_labelmap_masks(source, reference, labels, names_file, force_geometry)


def list_labels(path: Path | str, names_file: Path | str | None = None) -> dict[int, str]:
    """The labels a file holds, for listing (``medprint info``-style).

    Parameters
    ----------
    path : Path or str
        Label map, DICOM SEG or RTSTRUCT.
    names_file : Path or str, optional
        Names for a label map (see :func:`load_label_mask`).

    Returns
    -------
    dict of int to str
        Label maps: every non-zero value present -> its name (``label_N`` when
        unnamed).  SEG: segment number -> SegmentLabel.  RTSTRUCT: ROI number -> ROIName.
    """
    source = _regular_file(path, LABELS_OPTION, "label file")
    kind = _kind_of(source)
    if kind == "seg":
        from .dicom_seg import read_seg_segments

        return read_seg_segments(source)
    if kind == "rtstruct":
        from .rtstruct import read_rtstruct_rois

        return read_rtstruct_rois(source)
    named = _read_names(names_file) if names_file is not None else None
    labelmap = _read_labelmap(source)
    segments = named if named is not None else _slicer_segments(labelmap.metadata, _labels_file(source))
    present = _present_values(labelmap)
    _check_label_values(source, present, named=bool(segments))
    return _as_dict(_available(segments, present))


def read_names_file(path: Path | str) -> dict[int, str]:
    """Label value -> name from a names file.

    Parameters
    ----------
    path : Path or str
        ``.json`` (TotalSegmentator class map; ``file.json#key`` picks one of
        several maps), ``.seg.nrrd``/``.nrrd``/``.nhdr`` (Slicer segment header),
        anything else: text lines ``number name [r g b a]`` (``#`` comments;
        ITK-SNAP label files with quoted names work too).
    """
    return {seg.value: seg.name for seg in _read_names(path)}


def resample_nearest(image: sitk.Image, geometry: Geometry, shape_zyx: tuple[int, int, int]) -> NDArray[np.generic]:
    """Sample an image on another grid by patient coordinates, nearest neighbour.

    Parameters
    ----------
    image : SimpleITK.Image
        Source (LPS geometry, as SimpleITK keeps it).
    geometry : Geometry
        Target grid.
    shape_zyx : tuple of int
        Target array shape.

    Returns
    -------
    ndarray, shape ``shape_zyx``
        Same dtype as the image; 0 where the target lies outside the source.
    """
    size_zyx = tuple(reversed(image.GetSize()))
    if _same_grid_values(image.GetSpacing(), image.GetOrigin(), image.GetDirection(), size_zyx, geometry, shape_zyx):
        return sitk.GetArrayFromImage(image)
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(n) for n in reversed(shape_zyx)])
    resampler.SetOutputSpacing(geometry.spacing)
    resampler.SetOutputOrigin(geometry.origin)
    resampler.SetOutputDirection(geometry.direction)
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    resampler.SetDefaultPixelValue(0)
    resampler.SetOutputPixelType(image.GetPixelID())
    return sitk.GetArrayFromImage(resampler.Execute(image))


# ---------------------------------------------------------------------------------------------
# shared with dicom_seg and rtstruct
# ---------------------------------------------------------------------------------------------


def resolve_selection(
    requested: Sequence[LabelSelector] | None, available: Mapping[int, str], *, source: Path, what: str
) -> list[int]:
    """Numbers of the requested labels; every one must be in ``available``.

    ``what`` names the kind of label in messages (``'label'``, ``'segment'``, ``'ROI'``).
    """
    if requested is None:
        if not available:
            raise InputError(f"{source}: holds no {what}s")
        return list(available)
    if len(requested) == 0:
        raise ParameterError(f"{LABEL_OPTION}: none given; {source.name} has {_listing(available)}")
    chosen: list[int] = []
    for item in requested:
        number = _resolve_one(item, available, source=source, what=what)
        if number in chosen:
            log.info("%s %s asked twice; imported once", what, item)
            continue
        chosen.append(number)
    return chosen


def check_referenced_series(
    source: Path, referenced: Iterable[str], reference: Volume, *, force_geometry: bool, kind: str
) -> None:
    """Refuse a DICOM SEG/RTSTRUCT made on another series than the loaded one (unless forced)."""
    referenced_uids = sorted({uid for uid in referenced if uid})
    loaded = reference.metadata.get("series_uid", "")
    if not referenced_uids:
        log.info("%s: the %s names no referenced series; placed by its patient coordinates", source.name, kind)
        return
    if not loaded:
        log.info(
            "%s: the loaded scan has no SeriesInstanceUID, so it cannot be checked against the %s's series %s; "
            "placed by patient coordinates", source.name, kind, referenced_uids[0],
        )
        return
    if loaded in referenced_uids:
        return
    message = (
        f"{source}: this {kind} was made on series {', '.join(referenced_uids)}, but the loaded scan is series "
        f"{loaded}"
    )
    if not force_geometry:
        raise GeometryError(
            f"{message}; load the series it references, or pass {FORCE_OPTION} to place it by its patient "
            "coordinates anyway"
        )
    log.warning("%s; placed by its patient coordinates (%s)", message, FORCE_OPTION)


def check_landed(source: Path, name: str, before_mm3: float, mask: Mask, *, what: str) -> None:
    """Refuse a label that lies wholly outside the scan; log when part of it was cut off."""
    after_mm3 = mask.volume_mm3
    if before_mm3 > 0 and after_mm3 == 0:
        raise GeometryError(
            f"{source}: {what} '{name}' ({before_mm3:.0f} mm3) lies wholly outside the loaded scan in patient space; "
            "is it from another scan? load the scan it was made on"
        )
    if before_mm3 > 0 and after_mm3 < _KEPT_WARNING * before_mm3:
        log.warning(
            "%s: %s '%s' keeps %.0f of its %.0f mm3 on the scan's grid: part of it lies outside the scan, or its "
            "voxels are much finer than the scan's", source.name, what, name, after_mm3, before_mm3,
        )
    if after_mm3 == 0:
        log.warning("%s: %s '%s' is empty", source.name, what, name)


def mask_name(name: str, number: int) -> str:
    """A label's name for outputs: the name given, else ``label_<number>``."""
    return name.strip() or f"label_{number}"


# ---------------------------------------------------------------------------------------------
# label maps
# ---------------------------------------------------------------------------------------------


def _load_labelmap_masks(
    source: Path,
    reference: Volume,
    labels: Sequence[LabelSelector] | None,
    names_file: Path | str | None,
    force_geometry: bool,
) -> list[Mask]:
    named = _read_names(names_file) if names_file is not None else None  # validate options before the work
    labelmap = _read_labelmap(source)
    segments = named if named is not None else _slicer_segments(labelmap.metadata, _labels_file(source))
    present = _present_values(labelmap)
    _check_label_values(source, present, named=bool(segments))
    available = _available(segments, present)
    wanted = _resolve_labelmap(labels, segments, available, present, source, names_file)
    layers = _on_reference_grid(source, labelmap, reference, force_geometry)
    voxel_mm3 = labelmap.geometry.voxel_volume_mm3
    masks = []
    for seg in wanted:
        layer = layers[seg.layer] if len(layers) > 1 else layers[0]
        mask = Mask(array=layer == seg.value, geometry=reference.geometry, label=mask_name(seg.name, seg.value))
        check_landed(source, mask.label, present.get((seg.layer, seg.value), 0) * voxel_mm3, mask, what="label")
        log.info("%s: label %d '%s': %d voxels on the scan's grid", source.name, seg.value, mask.label,
                 mask.voxel_count)
        masks.append(mask)
    return masks


def _read_labelmap(source: Path) -> _LabelMap:
    """A label map through the same checked reading path as scans, its labels as integers.

    A label map gets every check a scan gets (header, complete and
    uncorrupted data, possible geometry): a ``.nii.gz`` cut in half would
    otherwise give an organ with its missing part as background.
    """
    if not is_image_file(source):
        raise InputError(
            f"{_labels_file(source)}: not a label map (.nii, .nii.gz, .nrrd, .mha, .mhd), DICOM SEG or RTSTRUCT; "
            "give one of those"
        )
    try:
        image = read_checked_image(source, channels=True)  # several components: Slicer's layers
    except InputError as error:  # GeometryError too, kept as such
        raise type(error)(f"{LABELS_OPTION} {error}") from None
    return _LabelMap(_as_integer_labels(source, image.array), image.geometry, image.metadata)


def _as_integer_labels(source: Path, array: NDArray[np.generic]) -> NDArray[np.integer]:
    """Integer labels; a float map whose values are all whole numbers is converted.

    There is no ``--non-finite`` for labels: a label is a category, and a NaN
    in one says the file was not a label map or was damaged.
    """
    if array.dtype.kind not in "f":
        return array  # type: ignore[return-value]
    if not all_finite(array):
        bad: NDArray[np.bool_] = ~np.isfinite(array)
        raise InputError(
            f"{_labels_file(source)}: {describe_non_finite(bad if bad.ndim == 3 else np.asarray(bad.any(axis=-1)))}; "
            "a label map holds whole-number labels, never NaN or Inf: export the segmentation again as integers"
        )
    low, high = float(array.min()), float(array.max())
    floats = cast("NDArray[np.floating]", array)  # kind 'f', checked above
    if np.any(floats != np.round(floats)) or low < _INT32.min or high > _INT32.max:
        raise InputError(
            f"{_labels_file(source)}: holds fractional values ({array.dtype}, {low:g}..{high:g}), not integer labels; "
            "is it a scan or a probability map? give a label map"
        )
    return array.astype(np.int32)


def _present_values(labelmap: _LabelMap) -> dict[tuple[int, int], int]:
    """(layer, value) -> voxel count of every non-zero label present."""
    present: dict[tuple[int, int], int] = {}
    for index, layer in enumerate(labelmap.layers):
        values, counts = np.unique(layer, return_counts=True)
        present.update({(index, int(v)): int(c) for v, c in zip(values, counts) if v != 0})
    return present


def _check_label_values(source: Path, present: Mapping[tuple[int, int], int], *, named: bool) -> None:
    """Refuse a scan given as a label map: labels are non-negative, and few unless a names file lists them.

    A CT passed as ``--labels`` would otherwise become one part per intensity
    (hundreds of plausible-looking "organs").  Negative values are never labels;
    more than :data:`MAX_UNNAMED_LABELS` distinct values are accepted only when
    names (a names file, or the Slicer header) say what they are.
    """
    values = {value for _, value in present}
    if not values:
        return
    negative = min(values) < 0
    if not negative and (named or len(values) <= MAX_UNNAMED_LABELS):
        return
    hint = "" if negative else f" (more than {MAX_UNNAMED_LABELS} labels need names: {NAMES_OPTION})"
    raise InputError(
        f"{_labels_file(source)}: looks like a scan, not a label map (values {min(values)}..{max(values)}, "
        f"{len(values)} distinct non-zero); give the segmentation file{hint}"
    )


def _available(segments: list[_Segment], present: Mapping[tuple[int, int], int]) -> list[_Segment]:
    """Labels present in the map, with names where known (``label_N`` otherwise)."""
    named = {(seg.layer, seg.value): seg for seg in segments}
    return [named.get(key, _Segment(key[1], f"label_{key[1]}", key[0])) for key in sorted(present)]


def _resolve_labelmap(
    labels: Sequence[LabelSelector] | None,
    segments: list[_Segment],
    available: list[_Segment],
    present: Mapping[tuple[int, int], int],
    source: Path,
    names_file: Path | str | None,
) -> list[_Segment]:
    if labels is None:
        if not available:
            raise InputError(f"{_labels_file(source)}: the label map is empty (all zero); give the segmentation file")
        return available
    if len(labels) == 0:
        raise ParameterError(f"{LABEL_OPTION}: none given; {source.name} has {_listing(_as_dict(available))}")
    chosen: list[_Segment] = []
    for item in labels:
        seg = _resolve_labelmap_one(item, segments, available, present, source, names_file)
        if seg not in chosen:
            chosen.append(seg)
    return chosen


def _resolve_labelmap_one(
    item: LabelSelector,
    segments: list[_Segment],
    available: list[_Segment],
    present: Mapping[tuple[int, int], int],
    source: Path,
    names_file: Path | str | None,
) -> _Segment:
    number = _as_number(item)
    if number is not None:
        matches = [seg for seg in available if seg.value == number]
        if not matches:
            raise ParameterError(
                f"{LABEL_OPTION} {item}: no voxels with label {number} in {source.name}; "
                f"it has {_listing(_as_dict(available))}"
            )
        if len(matches) > 1:
            raise ParameterError(
                f"{LABEL_OPTION} {item}: label {number} is used in several layers of {source.name} "
                f"({', '.join(seg.name for seg in matches)}); give the name instead"
            )
        return matches[0]
    pool = segments or available
    origin = f"names file {names_file}" if names_file is not None else source.name
    if not segments:
        raise ParameterError(
            f"{LABEL_OPTION} '{item}': {source.name} stores no label names; give a number "
            f"({_listing(_as_dict(available))}) or a names file with {NAMES_OPTION}"
        )
    key = _normalise(str(item))
    hits = [seg for seg in pool if _normalise(seg.name) == key]
    if not hits:
        raise ParameterError(_unknown_name_message(str(item), [seg.name for seg in pool], origin))
    seg = hits[0]
    if (seg.layer, seg.value) not in present:
        raise InputError(
            f"{LABEL_OPTION} '{item}': label {seg.value} ('{seg.name}' in {origin}) has no voxels in {source.name}; "
            f"it has {_listing(_as_dict(available))}"
        )
    return seg


def _on_reference_grid(
    source: Path, labelmap: _LabelMap, reference: Volume, force_geometry: bool
) -> list[NDArray[np.generic]]:
    """The label map's layers on the reference grid, by patient coordinates."""
    if not _overlaps(labelmap.geometry, labelmap.shape, reference.geometry, reference.shape):
        return [_voxel_for_voxel(source, labelmap, layer, reference, force_geometry) for layer in labelmap.layers]
    if _same_grid(labelmap.geometry, labelmap.shape, reference.geometry, reference.shape):
        layers: list[NDArray[np.generic]] = list(labelmap.layers)
        return layers
    log.info(
        "%s: label map grid %s at %s mm differs from the scan's %s; resampled by patient coordinates "
        "(nearest neighbour)", source.name, "x".join(str(n) for n in reversed(labelmap.shape)),
        _fmt(labelmap.geometry.spacing), "x".join(str(n) for n in reversed(reference.shape)),
    )
    return [resample_nearest(_as_image(layer, labelmap.geometry), reference.geometry, reference.shape)
            for layer in labelmap.layers]


def _as_image(layer: NDArray[np.generic], geometry: Geometry) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(layer))
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    return image


def _voxel_for_voxel(
    source: Path, labelmap: _LabelMap, layer: NDArray[np.generic], reference: Volume, force_geometry: bool
) -> NDArray[np.generic]:
    size = tuple(reversed(labelmap.shape))
    wanted = tuple(reversed(reference.shape))
    where = f"label map origin {_fmt(labelmap.geometry.origin)} mm, scan origin {_fmt(reference.geometry.origin)} mm"
    if not force_geometry:
        hint = (
            f"; if it was saved without geometry, {FORCE_OPTION} takes it voxel for voxel (same shape)"
            if size == wanted else ""
        )
        raise GeometryError(
            f"{_labels_file(source)}: the label map does not overlap the loaded scan in patient space ({where}); "
            f"is it from another scan?{hint}"
        )
    if size != wanted:
        raise GeometryError(
            f"{_labels_file(source)}: {FORCE_OPTION} takes a label map voxel for voxel, but its size {size} is not "
            f"the scan's {wanted}; give the label map made on this scan"
        )
    log.warning("%s: does not overlap the scan (%s); taken voxel for voxel (%s)", source.name, where, FORCE_OPTION)
    return layer


def _overlaps(
    geometry_a: Geometry, shape_a: tuple[int, int, int], geometry_b: Geometry, shape_b: tuple[int, int, int]
) -> bool:
    """True when the two grids' boxes (voxel edges) intersect in patient space."""
    low_a, high_a = _box_lps(geometry_a, shape_a)
    low_b, high_b = _box_lps(geometry_b, shape_b)
    return bool(np.all(low_a < high_b) and np.all(low_b < high_a))


def _box_lps(geometry: Geometry, shape_zyx: tuple[int, int, int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    extent = np.asarray(list(reversed(shape_zyx)), dtype=float) - 0.5
    corners = np.array([[a, b, c] for a in (-0.5, extent[0]) for b in (-0.5, extent[1]) for c in (-0.5, extent[2])])
    points = geometry.index_to_lps(corners)
    return points.min(axis=0), points.max(axis=0)


def _same_grid(
    geometry_a: Geometry, shape_a: tuple[int, ...], geometry_b: Geometry, shape_b: tuple[int, ...]
) -> bool:
    return _same_grid_values(geometry_a.spacing, geometry_a.origin, geometry_a.direction, shape_a, geometry_b, shape_b)


def _same_grid_values(
    spacing: Sequence[float], origin: Sequence[float], direction: Sequence[float], shape_a: tuple[int, ...],
    geometry: Geometry, shape_b: tuple[int, ...],
) -> bool:
    return (
        tuple(shape_a) == tuple(shape_b)
        and np.allclose(spacing, geometry.spacing, atol=_SAME_GRID_MM)
        and np.allclose(origin, geometry.origin, atol=_SAME_GRID_MM)
        and np.allclose(direction, geometry.direction, atol=_SAME_GRID_COS)
    )


# ---------------------------------------------------------------------------------------------
# names files
# ---------------------------------------------------------------------------------------------


def _read_names(path: Path | str) -> list[_Segment]:
    text_path, _, key = str(path).partition("#")
    source = _regular_file(text_path, NAMES_OPTION, "names file")
    name = source.name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        segments = _slicer_header_names(source)
    elif name.endswith(".json"):
        segments = _json_names(source, key, _names_text(source))
    else:
        segments = _text_names(source, _names_text(source))
    if not segments:
        raise InputError(f"{_names_file(source)}: no label names found in this names file; check its format")
    return segments


def _names_text(source: Path) -> str:
    """A JSON or text names file's text: not empty, not huge, UTF-8 (a byte-order mark is allowed)."""
    size = source.stat().st_size
    if size == 0:
        raise InputError(
            f"{_names_file(source)}: the names file is empty (0 bytes); give the file that names the labels"
        )
    if size > MAX_NAMES_BYTES:
        raise InputError(
            f"{_names_file(source)}: is {size / 1e6:.0f} MB, larger than any names file "
            f"({MAX_NAMES_BYTES // (1024 * 1024)} MB at most); is it the label map? give the names file"
        )
    try:
        return source.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{_names_file(source)}: is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8 text"
        ) from None


def _json_names(source: Path, key: str, text: str) -> list[_Segment]:
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{_names_file(source)}: cannot read this names file as JSON ({error}); check the file"
        ) from None
    except RecursionError:
        raise InputError(f"{_names_file(source)}: the JSON is nested too deeply to be a names file; check the file") \
            from None
    if not isinstance(content, dict) or not content:
        found = "an empty object" if isinstance(content, dict) else f"a JSON {type(content).__name__}"
        raise InputError(
            f"{_names_file(source)}: a names JSON must be an object mapping label numbers to names, "
            f"e.g. {{\"1\": \"spleen\"}}; this one is {found}"
        )
    nested = all(isinstance(value, dict) for value in content.values())
    if nested:
        if key and key not in content:
            raise ParameterError(
                f"{NAMES_OPTION} {source}#{key}: no map '{key}' in this file; it has {', '.join(content)}"
            )
        chosen = key or next(iter(content))
        if not key and len(content) > 1:
            log.info("%s: holds the maps %s; used '%s' (pick another with %s FILE#NAME)",
                     source.name, ", ".join(content), chosen, NAMES_OPTION)
        content = content[chosen]
    return _pairs_to_segments(source, content.items())


def _pairs_to_segments(source: Path, pairs: Iterable[tuple[object, object]]) -> list[_Segment]:
    segments = []
    for first, second in pairs:
        # {"1": "spleen"} and the inverse {"spleen": 1} are both in use
        number, name = (first, second) if _as_number(first) is not None else (second, first)
        value = _as_number(number)
        if value is None or not isinstance(name, str):
            raise InputError(
                f"{_names_file(source)}: entry {_short(first)}: {_short(second)} is not a label number and a name; "
                'write entries as "1": "spleen"'
            )
        segments.append(_Segment(value, name))
    return segments


def _slicer_header_names(source: Path) -> list[_Segment]:
    if source.stat().st_size == 0:
        raise InputError(f"{_names_file(source)}: the file is empty (0 bytes); give the Slicer .seg.nrrd")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(source))
    try:
        reader.ReadImageInformation()  # the header only: the voxels are not used
    except RuntimeError:
        raise InputError(f"{_names_file(source)}: cannot read this NRRD header; is it a Slicer .seg.nrrd?") from None
    segments = _slicer_segments({key: reader.GetMetaData(key) for key in reader.GetMetaDataKeys()}, _names_file(source))
    if not segments:
        raise InputError(
            f"{_names_file(source)}: no Segment0_Name / Segment0_LabelValue keys; is it a Slicer .seg.nrrd?"
        )
    return segments


def _slicer_segments(metadata: Mapping[str, str], named: str) -> list[_Segment]:
    """Segments declared by Slicer's ``SegmentN_Name`` / ``_LabelValue`` / ``_Layer`` header keys.

    ``named`` is how messages name the file (``--labels FILE`` or ``--labels-names FILE``).
    """
    keys = set(metadata)
    segments = []
    index = 0
    while f"Segment{index}_Name" in keys:
        value_key, layer_key = f"Segment{index}_LabelValue", f"Segment{index}_Layer"
        # older Slicer files have no LabelValue: segment N is stored as N + 1
        value = _as_number(metadata[value_key]) if value_key in keys else index + 1
        layer = _as_number(metadata[layer_key]) if layer_key in keys else 0
        if value is None or layer is None:
            raise InputError(
                f"{named}: Segment{index} has a malformed label value or layer "
                f"({_short(metadata.get(value_key, ''))}, {_short(metadata.get(layer_key, ''))}); fix the Slicer header"
            )
        segments.append(_Segment(value, metadata[f"Segment{index}_Name"], layer))
        index += 1
    return segments


def _text_names(source: Path, text: str) -> list[_Segment]:
    lines = text.splitlines()
    segments = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        segments.append(_text_line(source, number, stripped))
    return segments


def _text_line(source: Path, line_number: int, line: str) -> _Segment:
    quoted = re.search(r'"([^"]*)"', line)
    tokens = line.split()
    value = _as_number(tokens[0])
    if value is None or (len(tokens) < 2 and not quoted):
        raise InputError(
            f"{_names_file(source)}, line {line_number}: {_short(line)} is not 'number name'; write one label per "
            "line, e.g. '1 liver'"
        )
    if quoted:  # ITK-SNAP: IDX R G B A VIS MSH "LABEL"
        return _Segment(value, quoted.group(1))
    rest = tokens[1:]
    # Slicer colour tables: number name r g b a -> keep the name only
    while len(rest) > 1 and _as_number(rest[-1]) is not None:
        rest = rest[:-1]
    return _Segment(value, " ".join(rest))


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _resolve_one(item: LabelSelector, available: Mapping[int, str], *, source: Path, what: str) -> int:
    number = _as_number(item)
    if number is not None:
        if number not in available:
            raise ParameterError(
                f"{LABEL_OPTION} {item}: {source.name} has no {what} {number}; it has {_listing(available)}"
            )
        return number
    key = _normalise(str(item))
    for value, name in available.items():
        if _normalise(name) == key:
            return value
    raise ParameterError(_unknown_name_message(str(item), list(available.values()), source.name))


def _unknown_name_message(item: str, names: Sequence[str], origin: str) -> str:
    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(item.lower(), list(lowered), n=5, cutoff=0.6)
    if close:
        hint = f"close matches: {', '.join(lowered[c] for c in close)}"
    else:
        shown = ", ".join(names[:_LISTED_AT_MOST]) + (", ..." if len(names) > _LISTED_AT_MOST else "")
        hint = f"names there: {shown}"
    return f"{LABEL_OPTION} '{item}' is not in {origin}; {hint}"


def _listing(available: Mapping[int, str]) -> str:
    items = [f"{value} {name}" for value, name in sorted(available.items())]
    if not items:
        return "no labels"
    shown = ", ".join(items[:_LISTED_AT_MOST])
    return f"{shown}{', ...' if len(items) > _LISTED_AT_MOST else ''}"


def _as_dict(segments: Iterable[_Segment]) -> dict[int, str]:
    return {seg.value: seg.name for seg in segments}


def _as_number(item: object) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, np.integer)):
        return int(item)
    if isinstance(item, str) and re.fullmatch(r"\s*[+-]?\d+\s*", item):
        return int(item)
    return None


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _regular_file(path: Path | str, option: str, what: str) -> Path:
    """The path as given, refused before it is opened unless it is a regular file (a pipe would block forever)."""
    source = Path(path)
    try:
        mode = source.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{option} {source}: no such {what}; check the path") from None
    except OSError as error:
        raise InputError(f"{option} {source}: cannot be read ({error.strerror}); check the path and its permissions") \
            from None
    if stat.S_ISREG(mode):
        return source
    if stat.S_ISDIR(mode):
        raise InputError(f"{option} {source}: is a folder, not a {what}; give the file itself")
    kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(
        mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    raise InputError(f"{option} {source}: is {kind}, not a {what}; copy it to a regular file first")


def _labels_file(source: Path) -> str:
    """How messages name a label map: by the option that gave it."""
    return f"{LABELS_OPTION} {source}"


def _names_file(source: Path) -> str:
    return f"{NAMES_OPTION} {source}"


def _short(value: object, limit: int = 60) -> str:
    """A value from a file, quoted and cut, so a hostile file cannot flood the error line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_dicom(source: Path, *, pixels: bool, what: str) -> Dataset:
    """A DICOM file's dataset; old files without the 128-byte preamble are read too.

    Raises InputError naming ``what`` when the file is not DICOM or is cut short.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    from .dicom_headers import looks_like_dicom

    try:
        return pydicom.dcmread(source, stop_before_pixels=not pixels, force=looks_like_dicom(source))
    except (InvalidDicomError, OSError, EOFError, ValueError) as error:
        raise InputError(f"{source}: cannot read this {what} ({error}); is the file complete?") from None


def _kind_of(source: Path) -> str:
    """'labelmap', 'seg' or 'rtstruct'."""
    from .dicom_headers import looks_like_dicom

    if is_image_file(source):
        return "labelmap"
    if not looks_like_dicom(source):
        raise InputError(
            f"{_labels_file(source)}: not a label map (.nii, .nii.gz, .nrrd, .mha, .mhd), DICOM SEG or RTSTRUCT; "
            "give one of those"
        )
    header = read_dicom(source, pixels=False, what="DICOM file")
    modality = str(header.get("Modality", "")).upper()
    if modality in ("SEG", "RTSTRUCT"):
        return modality.lower()
    raise InputError(
        f"{source}: a DICOM {modality or 'file'} is not a segmentation; give a DICOM SEG, an RTSTRUCT or a label map"
    )


def _fmt(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
