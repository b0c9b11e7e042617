"""DICOM RT Structure Sets (RTSTRUCT): planar contours rasterised onto the loaded scan.

An ROI is a set of closed polygons in patient coordinates (LPS mm), each lying
in one image plane.  Each polygon is matched to a slice of the scan by its
position along the slice normal and filled there with the even-odd rule over
all polygons of that slice, so that a contour drawn inside another one (or a
keyhole contour) makes a hole.  A voxel is inside when its centre is.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from ..errors import GeometryError, InputError
from ..geometry import Geometry
from ..volume import Mask, Volume
from .labels import (
    LABEL_OPTION,
    LabelSelector,
    check_referenced_series,
    mask_name,
    read_dicom,
    resolve_selection,
)

log = logging.getLogger("medprint")

__all__ = ["load_rtstruct_masks", "read_rtstruct_rois", "fill_even_odd"]

# A contour's points may stray this far (in slices) from one plane parallel to the scan's slices.
_PLANE_TOLERANCE = 0.1
# ... and lie this far from the nearest slice centre before a warning.
_OFF_SLICE_WARNING = 0.25


def read_rtstruct_rois(path: Path | str) -> dict[int, str]:
    """ROI number -> ROIName of an RTSTRUCT file."""
    source = Path(path)
    return _rois(_read(source), source)


def load_rtstruct_masks(
    path: Path | str,
    reference: Volume,
    *,
    labels: Sequence[LabelSelector] | None,
    force_geometry: bool = False,
) -> list[Mask]:
    """ROIs of an RTSTRUCT as masks on the loaded scan's grid.

    Parameters
    ----------
    path : Path or str
        The RTSTRUCT file.
    reference : Volume
        The scan the contours were drawn on; its slices must be parallel to the contours.
    labels : sequence of int or str, or None
        ROI numbers or ROINames (case-insensitive); ``None``: every ROI that has contours.
    force_geometry : bool
        Accept an RTSTRUCT that references another series than the loaded one.

    Returns
    -------
    list of Mask
        One per selected ROI, named by its ROIName.
    """
    source = Path(path)
    ds = _read(source)
    rois = _rois(ds, source)
    contours = _contours_by_roi(ds)
    if labels is None:
        rois = {number: name for number, name in rois.items() if contours.get(number)}
    chosen = resolve_selection(labels, rois, source=source, what="ROI")
    check_referenced_series(source, _referenced_series(ds), reference, force_geometry=force_geometry, kind="RTSTRUCT")
    masks = []
    for number in chosen:
        polygons = contours.get(number, [])
        if not polygons:
            raise InputError(_no_contours_message(source, rois, contours, number))
        array = _rasterise(polygons, reference.geometry, reference.shape, source, rois[number])
        mask = Mask(array=array, geometry=reference.geometry, label=mask_name(rois[number], number))
        log.info("%s: ROI %d '%s': %d contours, %d voxels", source.name, number, mask.label, len(polygons),
                 mask.voxel_count)
        masks.append(mask)
    return masks


def fill_even_odd(polygons: Sequence[NDArray[np.float64]], shape_yx: tuple[int, int]) -> NDArray[np.bool_]:
    """Pixels whose centre lies inside an odd number of the polygons.

    Parameters
    ----------
    polygons : sequence of ndarray, shape (n, 2)
        Closed polygons as ``(x, y)`` = (column, row) index coordinates; the
        last point joins the first.
    shape_yx : tuple of int
        Output shape (rows, columns).

    Returns
    -------
    ndarray of bool, shape ``shape_yx``

    Examples
    --------
    >>> square = np.array([[0.5, 0.5], [3.5, 0.5], [3.5, 3.5], [0.5, 3.5]])
    >>> fill_even_odd([square], (5, 5)).sum()
    np.int64(9)
    """
    ny, nx = shape_yx
    crossings = np.zeros((ny, nx + 1), dtype=np.int32)
    for polygon in polygons:
        rows, columns = _crossings(np.asarray(polygon, dtype=float), ny)
        first_inside = np.clip(np.ceil(columns), 0, nx).astype(np.intp)
        np.add.at(crossings, (rows, first_inside), 1)
    return (np.cumsum(crossings, axis=1)[:, :nx] % 2).astype(bool)


def _crossings(polygon: NDArray[np.float64], ny: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Row index and x of every crossing of a pixel-centre row by the polygon's edges."""
    start = polygon
    end = np.roll(polygon, -1, axis=0)
    y0, y1 = start[:, 1], end[:, 1]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    # rows r with low <= r < high: half-open, so a vertex on a row is counted once
    first = np.clip(np.ceil(low), 0, ny).astype(np.intp)
    last = np.clip(np.ceil(high), 0, ny).astype(np.intp)
    counts = np.maximum(last - first, 0)
    edge = np.repeat(np.arange(len(polygon)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = first[edge] + offsets
    t = (rows - y0[edge]) / (y1[edge] - y0[edge])
    x = start[edge, 0] + t * (end[edge, 0] - start[edge, 0])
    return rows, x


def _rasterise(
    polygons: list[NDArray[np.float64]], geometry: Geometry, shape_zyx: tuple[int, int, int], source: Path, name: str
) -> NDArray[np.bool_]:
    nz, ny, nx = shape_zyx
    by_slice: dict[int, list[NDArray[np.float64]]] = defaultdict(list)
    outside = 0
    for points in polygons:
        ijk = geometry.lps_to_index(points)
        k = _slice_of(ijk[:, 2], source, name)
        if not 0 <= k < nz:
            outside += 1
            continue
        by_slice[k].append(ijk[:, :2])
    if outside:
        log.warning("%s: ROI '%s': %d of %d contours lie beyond the scan's slices and were left out",
                    source.name, name, outside, len(polygons))
    if not by_slice:
        raise GeometryError(
            f"{source}: every contour of ROI '{name}' lies outside the loaded scan's slices; "
            "load the series the RTSTRUCT was drawn on"
        )
    array = np.zeros(shape_zyx, dtype=bool)
    for k, slice_polygons in by_slice.items():
        array[k] = fill_even_odd(slice_polygons, (ny, nx))
    return array


def _slice_of(k_values: NDArray[np.float64], source: Path, name: str) -> int:
    spread = float(k_values.max() - k_values.min())
    if spread > _PLANE_TOLERANCE:
        raise GeometryError(
            f"{source}: a contour of ROI '{name}' is not parallel to the scan's slices (spans {spread:.2f} slices); "
            "load the series the RTSTRUCT was drawn on"
        )
    centre = float(k_values.mean())
    k = int(np.rint(centre))
    if abs(centre - k) > _OFF_SLICE_WARNING:
        log.warning("%s: ROI '%s': a contour lies %.2f slices from the nearest slice; put on slice %d",
                    source.name, name, abs(centre - k), k)
    return k


def _read(source: Path) -> Dataset:
    ds = read_dicom(source, pixels=True, what="RTSTRUCT")
    if str(ds.get("Modality", "")).upper() != "RTSTRUCT":
        raise InputError(f"{source}: not an RTSTRUCT (Modality {ds.get('Modality', 'missing')})")
    return ds


def _rois(ds: Dataset, source: Path) -> dict[int, str]:
    rois = {int(item.ROINumber): str(item.get("ROIName", "")).strip() for item in ds.get("StructureSetROISequence", [])}
    if not rois:
        raise InputError(f"{source}: the RTSTRUCT declares no ROIs (empty StructureSetROISequence)")
    return rois


def _contours_by_roi(ds: Dataset) -> dict[int, list[NDArray[np.float64]]]:
    """Closed planar contours of each ROI, as ``(n, 3)`` LPS points."""
    contours: dict[int, list[NDArray[np.float64]]] = defaultdict(list)
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        for contour in roi.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            data = contour.get("ContourData")
            if kind != "CLOSED_PLANAR" or data is None or len(data) < 9:
                continue  # points and open polylines enclose nothing to print
            contours[number].append(np.asarray([float(v) for v in data]).reshape(-1, 3))
    return dict(contours)


def _referenced_series(ds: Dataset) -> list[str]:
    return [
        str(series.get("SeriesInstanceUID", ""))
        for frame in ds.get("ReferencedFrameOfReferenceSequence", [])
        for study in frame.get("RTReferencedStudySequence", [])
        for series in study.get("RTReferencedSeriesSequence", [])
    ]


def _no_contours_message(
    source: Path, rois: dict[int, str], contours: dict[int, list[NDArray[np.float64]]], number: int
) -> str:
    with_contours = [f"{n} {rois[n]}" for n in rois if contours.get(n)]
    others = ", ".join(with_contours) if with_contours else "none"
    return (
        f"{source}: ROI {number} '{rois[number]}' has no closed contours to fill; "
        f"pick another with {LABEL_OPTION} (ROIs with contours: {others})"
    )
