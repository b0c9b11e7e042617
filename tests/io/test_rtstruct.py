"""RTSTRUCT: planar contours in LPS mm rasterised onto the referenced scan, holes by even-odd fill."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from dicom_phantoms import new_dataset, write_ct_series
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from medprint.errors import GeometryError, InputError, ParameterError
from medprint.io import load_volume
from medprint.io.labels import list_labels, load_label_mask
from medprint.io.rtstruct import fill_even_odd
from medprint.volume import Volume

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SHAPE = (5, 30, 32)  # z, y, x
SPACING = (0.8, 0.9, 2.0)
ORIGIN = np.array([-12.0, 5.0, -40.0])


@pytest.fixture
def ct(tmp_path: Path) -> tuple[Volume, str]:
    uid = generate_uid()
    write_ct_series(tmp_path / "ct", np.zeros(SHAPE), SPACING, ORIGIN, series_uid=uid)
    return load_volume(tmp_path / "ct"), uid


def lps(i: float, j: float, k: float) -> np.ndarray:
    return ORIGIN + np.array([i * SPACING[0], j * SPACING[1], k * SPACING[2]])


def square(i0: float, i1: float, j0: float, j1: float, k: float, *, reverse: bool = False) -> np.ndarray:
    corners = [lps(i0, j0, k), lps(i1, j0, k), lps(i1, j1, k), lps(i0, j1, k)]
    return np.array(corners[::-1] if reverse else corners)


def circle(centre_ij: tuple[float, float], radius_mm: float, k: float, points: int = 64) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, points, endpoint=False)
    centre = lps(*centre_ij, k)
    return centre + radius_mm * np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=1)


def write_rtstruct(path: Path, rois: dict[int, tuple[str, Sequence[np.ndarray] | None]], *, series_uid: str) -> Path:
    """A minimal RTSTRUCT: ROI number -> (name, closed contours as (n, 3) LPS arrays; None: no ContourSequence)."""
    ds = new_dataset(RTSTRUCT_STORAGE, "RTSTRUCT")
    ds.StructureSetLabel = "test"
    series, study, frame = Dataset(), Dataset(), Dataset()
    series.SeriesInstanceUID = series_uid
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    ds.StructureSetROISequence = DicomSequence()
    ds.ROIContourSequence = DicomSequence()
    for number, (name, contours) in rois.items():
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        if contours is not None:
            item.ContourSequence = DicomSequence([_contour(points) for points in contours])
        ds.ROIContourSequence.append(item)
    ds.save_as(path, enforce_file_format=True)
    return path


def _contour(points: np.ndarray) -> Dataset:
    item = Dataset()
    item.ContourGeometricType = "CLOSED_PLANAR"
    item.NumberOfContourPoints = len(points)
    item.ContourData = [f"{v:.4f}" for v in points.ravel()]
    return item


def test_ring_with_hole_and_disc(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    ring = [square(4.5, 20.5, 3.5, 24.5, k) for k in (1, 2, 3)]
    holes = [square(9.5, 14.5, 8.5, 18.5, k, reverse=True) for k in (1, 2, 3)]
    disc = [circle((24.0, 15.0), 4.0, 2)]
    path = write_rtstruct(tmp_path / "rs.dcm", {1: ("Ring", ring + holes), 7: ("Disc", disc)}, series_uid=uid)
    assert list_labels(path) == {1: "Ring", 7: "Disc"}

    ring_mask, disc_mask = load_label_mask(path, volume, labels=["ring", 7])
    expected = np.zeros(SHAPE, dtype=bool)
    expected[1:4, 4:25, 5:21] = True
    expected[1:4, 9:19, 10:15] = False
    assert ring_mask.label == "Ring"
    np.testing.assert_array_equal(ring_mask.array, expected)

    k, j, i = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    distance = np.hypot((i - 24.0) * SPACING[0], (j - 15.0) * SPACING[1])
    in_plane = k == 2
    assert disc_mask.array[in_plane & (distance < 4.0 * np.cos(np.pi / 64) - 1e-6)].all()
    assert not disc_mask.array[~in_plane | (distance > 4.0)].any()


def test_contours_slightly_off_slice_go_to_the_nearest(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    contour = square(4.5, 10.5, 3.5, 9.5, 2) + np.array([0.0, 0.0, 0.3])  # 0.15 slices above slice 2
    path = write_rtstruct(tmp_path / "rs.dcm", {1: ("Box", [contour])}, series_uid=uid)
    (mask,) = load_label_mask(path, volume, labels=["Box"])
    assert mask.array[2].sum() == 6 * 6 and mask.voxel_count == 36


def test_fill_even_odd_nested_and_keyhole() -> None:
    outer = np.array([[0.5, 0.5], [8.5, 0.5], [8.5, 8.5], [0.5, 8.5]])
    inner = np.array([[2.5, 2.5], [6.5, 2.5], [6.5, 6.5], [2.5, 6.5]])
    nested = fill_even_odd([outer, inner], (10, 10))
    assert nested.sum() == 64 - 16 and not nested[3:7, 3:7].any()
    # one keyhole polygon: outer ring, cut in, inner ring the other way round, cut out
    keyhole = np.array([[0.5, 0.5], [8.5, 0.5], [8.5, 8.5], [4.6, 8.5], [4.6, 6.5], [6.5, 6.5], [6.5, 2.5],
                        [2.5, 2.5], [2.5, 6.5], [4.4, 6.5], [4.4, 8.5], [0.5, 8.5]])
    filled = fill_even_odd([keyhole], (10, 10))
    assert filled.sum() == 64 - 16 and not filled[3:7, 3:7].any() and filled[7:9, 1:9].all()


def test_roi_without_contours(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    path = write_rtstruct(
        tmp_path / "rs.dcm", {1: ("Body", [square(1.5, 5.5, 1.5, 5.5, 1)]), 2: ("PTV", None), 3: ("CTV", [])},
        series_uid=uid,
    )
    with pytest.raises(InputError, match=r"ROI 2 'PTV' has no closed contours.*--label \(ROIs with contours: 1 Body\)"):
        load_label_mask(path, volume, labels=["PTV"])
    with pytest.raises(InputError, match="ROI 3 'CTV' has no closed contours"):
        load_label_mask(path, volume, labels=[3])
    masks = load_label_mask(path, volume, labels=None)  # all: the ROIs that have contours
    assert [m.label for m in masks] == ["Body"]
    with pytest.raises(ParameterError, match="close matches: Body"):
        load_label_mask(path, volume, labels=["bdy"])


def test_rtstruct_of_another_series_is_refused_unless_forced(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    other = generate_uid()
    path = write_rtstruct(tmp_path / "rs.dcm", {1: ("Box", [square(4.5, 10.5, 3.5, 9.5, 2)])}, series_uid=other)
    with pytest.raises(GeometryError, match=rf"made on series {other}, but the loaded scan is series {uid}.*--force-geometry"):
        load_label_mask(path, volume, labels=[1])
    (mask,) = load_label_mask(path, volume, labels=[1], force_geometry=True)
    assert mask.voxel_count == 36


def test_contours_not_parallel_or_outside(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    tilted = square(4.5, 10.5, 3.5, 9.5, 2)
    tilted[1:3, 2] += 3.0  # one side 1.5 slices higher
    far = square(4.5, 10.5, 3.5, 9.5, 30)
    path = write_rtstruct(tmp_path / "rs.dcm", {1: ("Tilted", [tilted]), 2: ("Far", [far])}, series_uid=uid)
    with pytest.raises(GeometryError, match="not parallel to the scan's slices"):
        load_label_mask(path, volume, labels=["Tilted"])
    with pytest.raises(GeometryError, match="outside the loaded scan's slices"):
        load_label_mask(path, volume, labels=["Far"])
