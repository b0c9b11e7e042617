"""DICOM SEG: binary, fractional, overlapping segments, geometry read from the SEG's own frames."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_phantoms import new_dataset, write_ct_series
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from medprint.errors import GeometryError, ParameterError
from medprint.io import load_volume
from medprint.io.labels import list_labels, load_label_mask
from medprint.volume import Volume

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SHAPE = (6, 20, 24)  # z, y, x
SPACING = (0.7, 0.8, 1.5)  # x, y, z mm
ORIGIN = np.array([10.0, -20.0, 30.0])


def truth_segments() -> dict[int, np.ndarray]:
    """Two overlapping bodies on the CT grid: a ball (1) and a slab (2)."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    ball = ((i - 11) * 0.7) ** 2 + ((j - 9) * 0.8) ** 2 + ((k - 2.5) * 1.5) ** 2 <= 5.0**2
    slab = (i >= 12) & (i < 20) & (j >= 4) & (j < 16) & (k >= 1) & (k < 5)
    return {1: ball, 2: slab}


@pytest.fixture
def ct(tmp_path: Path) -> tuple[Volume, str]:
    uid = generate_uid()
    write_ct_series(tmp_path / "ct", np.zeros(SHAPE), SPACING, ORIGIN, series_uid=uid)
    return load_volume(tmp_path / "ct"), uid


def ct_position(i: float, j: float, k: float) -> np.ndarray:
    return ORIGIN + np.array([i * SPACING[0], j * SPACING[1], k * SPACING[2]])


def write_seg(
    path: Path,
    frames: Sequence[tuple[int, np.ndarray, np.ndarray]],
    *,
    segments: dict[int, str],
    referenced_series: str,
    col_cos: Sequence[float] = (0.0, 1.0, 0.0),
    fractional: bool = False,
) -> Path:
    """A minimal SEG: ``frames`` are (segment number, ImagePositionPatient, pixels (rows, cols))."""
    ds = new_dataset(SEG_STORAGE, "SEG")
    ds.SeriesInstanceUID = generate_uid()
    ds.SegmentationType = "FRACTIONAL" if fractional else "BINARY"
    if fractional:
        ds.SegmentationFractionalType = "PROBABILITY"
        ds.MaximumFractionalValue = 255
    rows, columns = frames[0][2].shape
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    bits = 8 if fractional else 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.SegmentSequence = DicomSequence([_segment_item(n, name) for n, name in segments.items()])
    ref = Dataset()
    ref.SeriesInstanceUID = referenced_series
    ds.ReferencedSeriesSequence = DicomSequence([ref])
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1.0, 0.0, 0.0, *col_cos]
    measures.PixelSpacing = [SPACING[1], SPACING[0]]
    measures.SliceThickness = SPACING[2]
    measures.SpacingBetweenSlices = SPACING[2]
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence([_frame_item(n, ipp) for n, ipp, _ in frames])
    stack = np.stack([pixels for _, _, pixels in frames])
    ds.PixelData = stack.astype(np.uint8).tobytes() if fractional else pack_bits(stack.astype(np.uint8))
    ds.save_as(path, enforce_file_format=True)
    return path


def _segment_item(number: int, name: str) -> Dataset:
    item = Dataset()
    item.SegmentNumber = number
    item.SegmentLabel = name
    item.SegmentAlgorithmType = "MANUAL"
    return item


def _frame_item(segment: int, ipp: np.ndarray) -> Dataset:
    item, position, ident = Dataset(), Dataset(), Dataset()
    position.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
    ident.ReferencedSegmentNumber = segment
    item.PlanePositionSequence = DicomSequence([position])
    item.SegmentIdentificationSequence = DicomSequence([ident])
    return item


def frames_on_ct_grid(truth: dict[int, np.ndarray]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """One full-size frame per non-empty slice and segment, in shuffled order (as writers are free to)."""
    frames = [(n, ct_position(0, 0, k), array[k]) for n, array in truth.items() for k in range(SHAPE[0])
              if array[k].any()]
    random.Random(1).shuffle(frames)
    return frames


def test_overlapping_binary_segments_match_voxel_for_voxel(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    truth = truth_segments()
    assert (truth[1] & truth[2]).any()  # the segments overlap
    path = write_seg(tmp_path / "seg.dcm", frames_on_ct_grid(truth), segments={1: "Ball", 2: "Slab"},
                     referenced_series=uid)
    assert list_labels(path) == {1: "Ball", 2: "Slab"}
    slab, ball = load_label_mask(path, volume, labels=["slab", 1])
    assert (ball.label, slab.label) == ("Ball", "Slab")
    np.testing.assert_array_equal(ball.array, truth[1])
    np.testing.assert_array_equal(slab.array, truth[2])


def test_flipped_cropped_frames_are_placed_by_their_own_positions(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    """Frames with the column axis pointing anterior (rows stored bottom-up) and cropped to the body."""
    volume, uid = ct
    ball = truth_segments()[1]
    y0, y1, x0, x1 = 2, 17, 3, 20  # the ball spans y 3..15, x 4..18
    frames = [(1, ct_position(x0, y1 - 1, k), ball[k, y0:y1, x0:x1][::-1]) for k in range(SHAPE[0])]
    path = write_seg(tmp_path / "flipped.dcm", frames, segments={1: "Ball"}, referenced_series=uid,
                     col_cos=(0.0, -1.0, 0.0))
    (mask,) = load_label_mask(path, volume, labels=[1])
    np.testing.assert_array_equal(mask.array, ball)


def test_fractional_segments_are_cut_at_half(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    plane = np.zeros(SHAPE[1:], dtype=np.uint8)
    plane[2:6, 2:6] = 200  # fraction 0.78: in
    plane[10:14, 10:14] = 100  # fraction 0.39: out
    path = write_seg(tmp_path / "fractional.dcm", [(1, ct_position(0, 0, 3), plane)], segments={1: "Prob"},
                     referenced_series=uid, fractional=True)
    (mask,) = load_label_mask(path, volume, labels=None)
    expected = np.zeros(SHAPE, dtype=bool)
    expected[3, 2:6, 2:6] = True
    np.testing.assert_array_equal(mask.array, expected)


def test_seg_of_another_series_is_refused_unless_forced(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    truth = truth_segments()
    other = generate_uid()
    path = write_seg(tmp_path / "other.dcm", frames_on_ct_grid(truth), segments={1: "Ball", 2: "Slab"},
                     referenced_series=other)
    with pytest.raises(GeometryError, match=rf"made on series {other}, but the loaded scan is series {uid}.*--force-geometry"):
        load_label_mask(path, volume, labels=["Ball"])
    (ball,) = load_label_mask(path, volume, labels=["Ball"], force_geometry=True)
    np.testing.assert_array_equal(ball.array, truth[1])


def test_segment_name_typo_lists_close_matches(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    path = write_seg(tmp_path / "seg.dcm", frames_on_ct_grid(truth_segments()), segments={1: "Liver", 2: "Spleen"},
                     referenced_series=uid)
    with pytest.raises(ParameterError, match=r"--label 'livr' is not in seg.dcm; close matches: Liver"):
        load_label_mask(path, volume, labels=["livr"])
    with pytest.raises(ParameterError, match=r"--label 7: seg.dcm has no segment 7; it has 1 Liver, 2 Spleen"):
        load_label_mask(path, volume, labels=[7])
    with pytest.raises(ParameterError, match="names its own segments"):
        load_label_mask(path, volume, labels=[1], names_file=tmp_path / "names.txt")


def test_seg_outside_the_scan_is_refused(tmp_path: Path, ct: tuple[Volume, str]) -> None:
    volume, uid = ct
    frames = [(1, ct_position(0, 0, 40), truth_segments()[1][2])]
    path = write_seg(tmp_path / "far.dcm", frames, segments={1: "Ball"}, referenced_series=uid)
    with pytest.raises(GeometryError, match="wholly outside the loaded scan"):
        load_label_mask(path, volume, labels=[1])


# --- real data -------------------------------------------------------------------------------


def _nrrd(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.realdata
def test_dcmqi_liver_seg_matches_its_nrrd(real_data) -> None:  # type: ignore[no-untyped-def]
    case = real_data("dcmqi_ct3slice_seg")
    volume = load_volume(case / "dicom")
    (liver,) = load_label_mask(case / "reference" / "liver_seg.dcm", volume, labels=["Liver"])
    expected = _nrrd(case / "reference" / "liver_seg.nrrd") == 1
    assert liver.voxel_count == int(expected.sum()) == 107098
    np.testing.assert_array_equal(liver.array, expected)


@pytest.mark.realdata
def test_dcmqi_partial_overlaps_match_their_nrrds(real_data) -> None:  # type: ignore[no-untyped-def]
    case = real_data("dcmqi_ct3slice_seg")
    ref = case / "reference"
    volume = load_volume(case / "dicom")
    masks = load_label_mask(ref / "partial_overlaps.dcm", volume, labels=None)
    # seg-example_partial_overlaps.json: three label maps, labelIDs -> segments in SEG order
    sources = {"GREEN": ("partial_overlaps-1.nrrd", 1), "ORANGE": ("partial_overlaps-2.nrrd", 2),
               "PURPLE": ("partial_overlaps-3.nrrd", 3), "LIGHT_BLUE": ("partial_overlaps-1.nrrd", 4),
               "DARK_BLUE": ("partial_overlaps-1.nrrd", 5)}
    assert [m.label for m in masks] == list(sources)
    for mask in masks:
        name, value = sources[mask.label]
        expected = _nrrd(ref / name) == value
        assert expected.any()
        np.testing.assert_array_equal(mask.array, expected, err_msg=mask.label)
    overlap = masks[0].array & masks[1].array  # GREEN and ORANGE come from different maps and overlap
    assert overlap.any()


def test_pydicom_example_segs_little_and_big_endian_agree() -> None:
    """pydicom's shipped liver SEG frame, in both byte orders, decodes to the same mask."""
    import pydicom
    from pydicom.data import get_testdata_file

    from medprint.geometry import Geometry

    paths = [Path(get_testdata_file(name)) for name in ("liver_1frame.dcm", "liver_expb_1frame.dcm")]
    header = pydicom.dcmread(paths[0], stop_before_pixels=True)
    ipp = header.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient
    pixel = header.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    scan = Volume(array=np.zeros((1, 512, 512), dtype=np.int16),
                  geometry=Geometry(spacing=(float(pixel[1]), float(pixel[0]), 1.0), origin=tuple(map(float, ipp))))
    little, big = (load_label_mask(path, scan, labels=["liver"])[0] for path in paths)
    assert little.voxel_count == 36233  # the dcmqi liver's first frame (see the real-data test)
    np.testing.assert_array_equal(little.array, big.array)


def test_pydicom_example_rtstruct_without_preamble_lists_its_rois() -> None:
    from pydicom.data import get_testdata_file

    assert list_labels(get_testdata_file("rtstruct.dcm")) == {1: "patient", 2: "Isocenter 1", 3: "Isocenter 2"}
