"""Label maps (NIfTI/NRRD/MHA) and names files imported as masks, aligned by patient coordinates."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medprint.errors import GeometryError, InputError, ParameterError
from medprint.geometry import Geometry
from medprint.io.labels import list_labels, load_label_mask, read_names_file
from medprint.volume import Volume

# The scan: anisotropic voxels, axes along LPS.
SCAN = Geometry(spacing=(0.8, 0.9, 2.0), origin=(-20.0, -25.0, -12.0))
SCAN_SHAPE = (13, 56, 50)  # z, y, x
# Two analytic bodies in LPS mm: a sphere (label 1) and a box (label 2).
CENTRE = np.array([-1.0, 0.5, 0.0])
RADIUS = 9.0
BOX_LOW, BOX_HIGH = np.array([6.0, -15.0, -6.0]), np.array([14.0, -5.0, 6.0])
# The label map: other spacing, y axis flipped, z axis flipped (as a radiology export might be).
LABEL_DIRECTION = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)
LABEL_SPACING = (0.5, 0.6, 1.0)
LABEL_SHAPE = (30, 70, 80)  # z, y, x


def scan_volume() -> Volume:
    return Volume(array=np.zeros(SCAN_SHAPE, dtype=np.int16), geometry=SCAN, modality="CT")


def centres_lps(geometry: Geometry, shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """LPS position of every voxel centre, shape (z, y, x, 3)."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape_zyx), indexing="ij")
    return geometry.index_to_lps(np.stack([i, j, k], axis=-1))


def label_geometry() -> Geometry:
    # voxel [0,0,0] at the corner with the smallest x, largest y and largest z, as the flipped axes need
    origin = (-20.3, 20.2, 14.3)  # off the scan grid: no nearest-neighbour ties
    return Geometry(spacing=LABEL_SPACING, origin=origin, direction=LABEL_DIRECTION)


def analytic_labels(points: np.ndarray) -> np.ndarray:
    labels = np.zeros(points.shape[:-1], dtype=np.uint8)
    labels[np.linalg.norm(points - CENTRE, axis=-1) <= RADIUS] = 1
    labels[np.all((points >= BOX_LOW) & (points <= BOX_HIGH), axis=-1)] = 2
    return labels


def write_label_map(path: Path, array: np.ndarray, geometry: Geometry, **metadata: str) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    for key, value in metadata.items():
        image.SetMetaData(key, value)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def label_map(tmp_path: Path) -> Path:
    geometry = label_geometry()
    array = analytic_labels(centres_lps(geometry, LABEL_SHAPE))
    return write_label_map(tmp_path / "labels.nii.gz", array, geometry)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_label_map_on_other_grid_lands_by_patient_coordinates(tmp_path: Path, suffix: str) -> None:
    geometry = label_geometry()
    path = write_label_map(tmp_path / f"labels{suffix}", analytic_labels(centres_lps(geometry, LABEL_SHAPE)), geometry)
    sphere, box = load_label_mask(path, scan_volume(), labels=[1, 2])

    points = centres_lps(SCAN, SCAN_SHAPE)
    distance = np.linalg.norm(points - CENTRE, axis=-1)
    slack = 0.5 * float(np.linalg.norm(LABEL_SPACING))  # nearest neighbour moves a boundary by < half a label voxel
    assert sphere.geometry == SCAN and sphere.array.shape == SCAN_SHAPE
    assert sphere.array[distance <= RADIUS - slack].all()
    assert not sphere.array[distance >= RADIUS + slack].any()
    centroid = SCAN.index_to_lps(np.argwhere(sphere.array)[:, ::-1].mean(axis=0))
    assert np.linalg.norm(centroid - CENTRE) < slack
    inside_box = np.all((points >= BOX_LOW + slack) & (points <= BOX_HIGH - slack), axis=-1)
    outside_box = np.any((points <= BOX_LOW - slack) | (points >= BOX_HIGH + slack), axis=-1)
    assert box.array[inside_box].all() and not box.array[outside_box].any()
    assert sphere.label == "label_1" and box.label == "label_2"


def test_same_grid_is_taken_exactly(tmp_path: Path) -> None:
    truth = analytic_labels(centres_lps(SCAN, SCAN_SHAPE))
    path = write_label_map(tmp_path / "same.nrrd", truth, SCAN)
    (mask,) = load_label_mask(path, scan_volume(), labels=["2"])
    np.testing.assert_array_equal(mask.array, truth == 2)


def test_names_from_totalsegmentator_class_map(tmp_path: Path, label_map: Path) -> None:
    names = tmp_path / "class_map.json"
    names.write_text(json.dumps({"total": {"1": "liver", "2": "kidney_right"}, "total_mr": {"1": "spleen"}}))
    masks = load_label_mask(label_map, scan_volume(), labels=["Kidney Right", "LIVER"], names_file=names)
    assert [m.label for m in masks] == ["kidney_right", "liver"]
    (mr,) = load_label_mask(label_map, scan_volume(), labels=["spleen"], names_file=f"{names}#total_mr")
    assert mr.voxel_count == masks[1].voxel_count
    assert list_labels(label_map, names) == {1: "liver", 2: "kidney_right"}


def test_names_from_text_and_colour_table(tmp_path: Path, label_map: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text('# my labels\n1 left lung 128 174 128 255\n2 tumour\n\n7 "Label 7" \n')
    assert read_names_file(names) == {1: "left lung", 2: "tumour", 7: "Label 7"}
    (mask,) = load_label_mask(label_map, scan_volume(), labels=["left_lung"], names_file=names)
    assert mask.label == "left lung"


def test_names_from_slicer_seg_nrrd_header(tmp_path: Path) -> None:
    geometry = label_geometry()
    array = analytic_labels(centres_lps(geometry, LABEL_SHAPE))
    keys = {"Segment0_Name": "tumour", "Segment0_LabelValue": "1", "Segment0_Layer": "0",
            "Segment1_Name": "bone", "Segment1_LabelValue": "2", "Segment1_Layer": "0"}
    path = write_label_map(tmp_path / "case.seg.nrrd", array, geometry, **keys)
    assert list_labels(path) == {1: "tumour", 2: "bone"}
    (bone,) = load_label_mask(path, scan_volume(), labels=["bone"])
    assert bone.label == "bone" and bone.voxel_count > 0
    assert read_names_file(path) == {1: "tumour", 2: "bone"}


def test_slicer_layers_hold_overlapping_segments(tmp_path: Path) -> None:
    layers = np.zeros((*SCAN_SHAPE, 2), dtype=np.uint8)
    layers[2:8, 10:30, 10:30, 0] = 1
    layers[4:10, 20:40, 20:40, 1] = 1  # overlaps segment A
    image = sitk.GetImageFromArray(layers, isVector=True)
    image.SetSpacing(SCAN.spacing)
    image.SetOrigin(SCAN.origin)
    for key, value in {"Segment0_Name": "A", "Segment0_LabelValue": "1", "Segment0_Layer": "0",
                       "Segment1_Name": "B", "Segment1_LabelValue": "1", "Segment1_Layer": "1"}.items():
        image.SetMetaData(key, value)
    path = tmp_path / "layers.seg.nrrd"
    sitk.WriteImage(image, str(path))
    a, b = load_label_mask(path, scan_volume(), labels=["A", "B"])
    np.testing.assert_array_equal(a.array, layers[..., 0] == 1)
    np.testing.assert_array_equal(b.array, layers[..., 1] == 1)
    with pytest.raises(ParameterError, match="several layers"):
        load_label_mask(path, scan_volume(), labels=[1])


def test_all_labels_when_none_asked(label_map: Path) -> None:
    masks = load_label_mask(label_map, scan_volume(), labels=None)
    assert [m.label for m in masks] == ["label_1", "label_2"]
    assert list_labels(label_map) == {1: "label_1", 2: "label_2"}


def test_label_name_typo_lists_close_matches(tmp_path: Path, label_map: Path) -> None:
    names = tmp_path / "class_map.json"
    names.write_text(json.dumps({"1": "liver", "2": "kidney_right", "3": "kidney_left"}))
    with pytest.raises(ParameterError, match=r"--label 'kidney_rigth' is not in names file .*close matches: kidney_right"):
        load_label_mask(label_map, scan_volume(), labels=["kidney_rigth"], names_file=names)
    with pytest.raises(InputError, match=r"label 3 \('kidney_left'.*has no voxels"):
        load_label_mask(label_map, scan_volume(), labels=["kidney_left"], names_file=names)


def test_unknown_number_and_unnamed_map(label_map: Path) -> None:
    with pytest.raises(ParameterError, match=r"--label 5: no voxels with label 5 .*1 label_1, 2 label_2"):
        load_label_mask(label_map, scan_volume(), labels=[5])
    with pytest.raises(ParameterError, match="stores no label names.*--labels-names"):
        load_label_mask(label_map, scan_volume(), labels=["liver"])


def test_label_map_elsewhere_is_refused_unless_forced(tmp_path: Path) -> None:
    truth = analytic_labels(centres_lps(SCAN, SCAN_SHAPE))
    far = Geometry(spacing=SCAN.spacing, origin=(500.0, 500.0, 500.0))
    path = write_label_map(tmp_path / "far.nii.gz", truth, far)
    with pytest.raises(GeometryError, match="does not overlap.*--force-geometry"):
        load_label_mask(path, scan_volume(), labels=[1])
    (mask,) = load_label_mask(path, scan_volume(), labels=[1], force_geometry=True)
    np.testing.assert_array_equal(mask.array, truth == 1)


def test_partly_outside_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shifted = Geometry(spacing=SCAN.spacing, origin=(-40.0, -25.0, -12.0))  # 20 mm to the right
    array = np.zeros(SCAN_SHAPE, dtype=np.uint8)
    array[4:8, 20:30, 10:40] = 1  # x 10..39 voxels -> 1/3 of it falls off the scan
    path = write_label_map(tmp_path / "shifted.mha", array, shifted)
    with caplog.at_level(logging.WARNING, logger="medprint"):
        (mask,) = load_label_mask(path, scan_volume(), labels=[1])
    assert 0 < mask.voxel_count < np.count_nonzero(array)
    assert "keeps" in caplog.text


def test_not_a_label_map(tmp_path: Path) -> None:
    scan = tmp_path / "scan.nii.gz"
    write_label_map(scan, np.full(SCAN_SHAPE, 0.5, dtype=np.float32), SCAN)
    with pytest.raises(InputError, match="fractional values"):
        load_label_mask(scan, scan_volume(), labels=[1])
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(InputError, match="not a label map"):
        load_label_mask(other, scan_volume(), labels=[1])
    with pytest.raises(InputError, match="no such names file"):
        load_label_mask(scan, scan_volume(), labels=[1], names_file=tmp_path / "missing.json")


@pytest.mark.realdata
def test_totalsegmentator_labels_line_up_with_their_dicom_series(real_data) -> None:  # type: ignore[no-untyped-def]
    from medprint.io import load_volume

    case = real_data("totalseg_dicom_ct_series")
    names = real_data("totalseg_torso_ct/reference/class_map_total_and_total_mr.json")
    scan = load_volume(case / "dicom")
    labels = case / "reference" / "example_seg_dicom.nii.gz"
    assert sitk.ReadImage(str(labels)).GetDirection()[4] < 0  # the y flip this test is about

    bones = load_label_mask(labels, scan, labels=["vertebrae_T11", "vertebrae_T12", "humerus_left", "humerus_right"],
                            names_file=names)
    bone = np.logical_or.reduce([m.array for m in bones])
    liver, aorta = load_label_mask(labels, scan, labels=["liver", "aorta"], names_file=names)
    hu = scan.array
    assert np.mean(hu[bone] > 150) >= 0.70  # bone labels cover bone
    assert np.mean(hu[np.flip(bone, axis=1)] > 150) < 0.30  # taken voxel for voxel (no flip), they would not
    assert 40 < np.median(hu[liver.array]) < 150  # liver parenchyma (contrast)
    assert np.median(hu[aorta.array]) > 120  # contrast-filled aorta
    assert np.mean(hu[aorta.array] > 150) > np.mean(hu[liver.array] > 150)


def test_scan_given_as_label_map_is_refused(tmp_path: Path) -> None:
    # A CT passed as --labels: negative HU are never labels, whatever their count.
    values = np.random.default_rng(3).integers(-1024, 3072, size=SCAN_SHAPE).astype(np.int16)
    values.flat[:2] = -1024, 3071
    scan = write_label_map(tmp_path / "ct.nii.gz", values, SCAN)
    with pytest.raises(InputError, match=r"ct\.nii\.gz: looks like a scan, not a label map \(values -1024\.\.3071, "
                                         r"\d+ distinct non-zero\); give the segmentation file"):
        load_label_mask(scan, scan_volume(), labels=None)
    with pytest.raises(InputError, match="looks like a scan"):
        list_labels(scan)
    few = write_label_map(tmp_path / "signed.nii.gz", np.where(values > 0, 1, -1).astype(np.int16), SCAN)
    with pytest.raises(InputError, match=r"values -1\.\.1, 2 distinct"):
        load_label_mask(few, scan_volume(), labels=None)  # negative values are refused even when few


def test_more_than_a_thousand_labels_need_names(tmp_path: Path) -> None:
    values = (np.arange(np.prod(SCAN_SHAPE)).reshape(SCAN_SHAPE) % 1002).astype(np.int16)  # 0 and 1..1001
    many = write_label_map(tmp_path / "many.nii.gz", values, SCAN)
    with pytest.raises(InputError, match=r"values 1\.\.1001, 1001 distinct non-zero.*need names: --labels-names"):
        list_labels(many)
    names = tmp_path / "atlas.txt"
    names.write_text("".join(f"{n} region_{n}\n" for n in range(1, 1002)))
    assert len(list_labels(many, names)) == 1001  # named, it is an atlas
    limit = write_label_map(tmp_path / "limit.nii.gz", np.minimum(values, 1000).astype(np.int16), SCAN)
    assert len(list_labels(limit)) == 1000  # at the cap, no names needed


def test_whole_valued_float_labels_still_load(tmp_path: Path) -> None:
    values = np.zeros(SCAN_SHAPE, dtype=np.float32)
    values[2:6, 10:20, 10:20] = 3.0
    path = write_label_map(tmp_path / "float.nii.gz", values, SCAN)
    (mask,) = load_label_mask(path, scan_volume(), labels=[3])
    assert mask.voxel_count == 4 * 10 * 10


@pytest.mark.realdata
def test_totalsegmentator_117_class_map_is_no_scan(real_data) -> None:  # type: ignore[no-untyped-def]
    case = real_data("totalseg_torso_ct/reference")
    listed = list_labels(case / "example_seg.nii.gz", case / "class_map_total_and_total_mr.json#total")
    assert 20 < len(listed) <= 117 and "liver" in listed.values()  # the classes present in this crop


def test_label_map_read_through_the_checked_path(tmp_path: Path, label_map: Path) -> None:
    # The same checks as a scan: a label map cut short is refused, naming --labels, not read with zeros.
    data = label_map.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(InputError, match=r"^--labels .*cut\.nii\.gz: .*(damaged|holds).*copy it again"):
        load_label_mask(cut, scan_volume(), labels=[1])
    with pytest.raises(InputError, match=r"^--labels .*cut\.nii\.gz"):
        list_labels(cut)


def test_non_finite_labels_have_no_escape(tmp_path: Path) -> None:
    values = np.zeros(SCAN_SHAPE, dtype=np.float32)
    values[2:6, 10:20, 10:20] = 3.0
    values[4, 12, 15] = np.nan
    path = write_label_map(tmp_path / "nan.nrrd", values, SCAN)
    where = r"1 voxel is NaN or infinite, the first at voxel \(i, j, k\) = \(15, 12, 4\)"
    with pytest.raises(InputError, match=rf"^--labels .*nan\.nrrd: {where}") as caught:
        load_label_mask(path, scan_volume(), labels=[3])
    assert "--non-finite" not in str(caught.value)  # a label is a category: nothing may stand in for NaN


def test_whole_floats_beyond_int32_are_no_labels(tmp_path: Path) -> None:
    values = np.zeros(SCAN_SHAPE, dtype=np.float32)
    values[2:6, 10:20, 10:20] = 2.0**31  # whole, but would wrap to a negative label as int32
    path = write_label_map(tmp_path / "huge.nii.gz", values, SCAN)
    with pytest.raises(InputError, match="not integer labels"):
        load_label_mask(path, scan_volume(), labels=None)


def test_names_files_utf8_with_byte_order_mark(tmp_path: Path, label_map: Path) -> None:
    names = tmp_path / "names.json"
    names.write_bytes(b"\xef\xbb\xbf" + json.dumps({"1": "Niere", "2": "Milz"}).encode())  # as Windows tools save it
    assert read_names_file(names) == {1: "Niere", 2: "Milz"}
    latin = tmp_path / "names.txt"
    latin.write_bytes("1 Nüre\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"^--labels-names .*names\.txt: is not UTF-8 text \(byte 0xfc at offset 3\)"):
        read_names_file(latin)


def test_label_map_and_scan_grids_read_alike(tmp_path: Path) -> None:
    # The label map and the scan come through one reader: the same file gives the same grid both ways.
    from medprint.io import load_volume

    truth = analytic_labels(centres_lps(SCAN, SCAN_SHAPE))
    for suffix in (".nii.gz", ".nrrd"):
        path = write_label_map(tmp_path / f"same{suffix}", truth, SCAN)
        volume = load_volume(path, modality="CT")
        (mask,) = load_label_mask(path, volume, labels=[1])
        np.testing.assert_array_equal(mask.array, volume.array == 1)


@pytest.mark.realdata
@pytest.mark.parametrize("name", [
    "totalseg_torso_ct/reference/example_seg.nii.gz",
    "totalseg_dicom_ct_series/reference/example_seg_dicom.nii.gz",
    "totalseg_abdomen_mr/reference/example_seg_mr.nii.gz",
    "pyradiomics_brain1/brain1_label.nrrd",
    "dcmqi_ct3slice_seg/reference/partial_overlaps-1.nrrd",
])
def test_real_label_maps_read_checked_as_itk_reads_them(real_data, name: str) -> None:  # type: ignore[no-untyped-def]
    # medprint now reads label maps itself (NIfTI) or checks them before ITK: real files must come out unchanged.
    from medprint.io.image_files import read_checked_image

    path = real_data(name)
    checked = read_checked_image(path, channels=True)
    image = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(checked.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(checked.geometry.spacing, image.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(checked.geometry.origin, image.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(checked.geometry.direction, image.GetDirection(), atol=1e-5)
    assert 0 < len(list_labels(path)) <= 1000
