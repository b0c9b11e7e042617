"""DICOM reading on real scanner data from MEDPRINT_DATA (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medprint.geometry import apply_affine
from medprint.io.dicom import choose_series, load_dicom_file, load_dicom_series, scan_dicom_folder

pytestmark = pytest.mark.realdata

sitk = pytest.importorskip("SimpleITK")


def sitk_affine(image) -> np.ndarray:
    """4x4 index (i, j, k) -> LPS affine of a SimpleITK image (ITK uses LPS)."""
    affine = np.eye(4)
    affine[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return affine


def sample_on(volume_array, volume_affine, target_shape_zyx, target_affine, fill):
    """Values of a (z, y, x) array at the voxel centres of a target grid (linear, world coordinates)."""
    nz, ny, nx = target_shape_zyx
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    lps = apply_affine(target_affine, np.stack([i, j, k], axis=-1).reshape(-1, 3))
    ijk = apply_affine(np.linalg.inv(volume_affine), lps)
    values = ndimage.map_coordinates(
        volume_array.astype(np.float32), ijk[:, ::-1].T, order=1, mode="constant", cval=fill
    )
    return values.reshape(target_shape_zyx)


def agreement(reference, other):
    """Correlation and bone Dice inside the head (reference > -500 HU), where ``other`` has data (not NaN)."""
    covered = np.isfinite(other)
    inside = (reference > -500) & covered
    corr = float(np.corrcoef(reference[inside], other[inside])[0, 1])
    bone_ref, bone_other = (reference > 300) & covered, (other > 300) & covered
    dice = 2 * np.sum(bone_ref & bone_other) / (bone_ref.sum() + bone_other.sum())
    return corr, float(dice)


def test_ge_tilted_series_matches_dcm2niix_tilt_correction(real_data):
    folder = real_data("dcmqa_ge_head_ct_tilt/dicom")
    reference_image = sitk.ReadImage(str(real_data("dcmqa_ge_head_ct_tilt/reference/ge_head_2_Tilt_Eq_1.nii.gz")))
    reference = sitk.GetArrayFromImage(reference_image).astype(np.float32)
    scan = scan_dicom_folder(folder)
    info, _ = choose_series(scan, None)
    assert "gantry tilt 18.5 deg" in info.problems
    assert any(p.startswith("uneven slice spacing") for p in info.problems)
    volume = load_dicom_series(info)
    assert any("gantry tilt 18.5 deg" in note for note in volume.notes)
    ours = sample_on(volume.array, volume.geometry.affine, reference.shape, sitk_affine(reference_image), np.nan)
    # dcm2niix pads a little more around the sheared footprint; the head itself must be covered.
    assert np.isfinite(ours[reference > -500]).mean() > 0.98

    # Naive stacking, as SimpleITK's series reader does it: no tilt, one averaged spacing.
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    naive_image = reader.Execute()
    naive = sample_on(
        sitk.GetArrayFromImage(naive_image), sitk_affine(naive_image), reference.shape, sitk_affine(reference_image), np.nan
    )
    corr, dice = agreement(reference, ours)
    naive_corr, naive_dice = agreement(reference, naive)
    assert corr > 0.99 and dice > 0.95, (corr, dice)
    assert naive_corr < 0.5 and naive_dice < 0.5, (naive_corr, naive_dice)


def test_siemens_jpeg2000_series_without_series_uid(real_data):
    scan = scan_dicom_folder(real_data("totalseg_dicom_ct_series/dicom"))
    assert len(scan.series) == 1 and scan.unreadable == ()
    info = scan.series[0]
    assert info.uid.startswith("nouid-") and info.slice_count == 20
    volume = load_dicom_series(info)
    assert volume.shape == (20, 512, 512) and volume.array.dtype == np.int16
    assert volume.geometry.spacing == pytest.approx((0.9765625, 0.9765625, 2.0))
    low, high = volume.value_range()
    assert low == -1024 and 1000 < high < 4000
    assert np.median(volume.array) < -500  # mostly air around the body
    assert 0 < np.mean((volume.array > -200) & (volume.array < 200)) < 0.5  # soft tissue present


@pytest.mark.parametrize("name", ["emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm"])
def test_enhanced_mr_compressed_frames_decode(real_data, name):
    plain = load_dicom_file(real_data("pydicom_data_enhanced_multiframe/emri_small.dcm"))
    volume = load_dicom_file(real_data(f"pydicom_data_enhanced_multiframe/{name}"))
    assert volume.shape == (10, 64, 64) and volume.modality == "MR"
    np.testing.assert_array_equal(volume.array, plain.array)
    assert volume.array.max() > 0
    # These files carry no plane geometry: the assumption must be stated, not silent.
    assert any("no plane position/orientation" in note for note in volume.notes)


def test_enhanced_ct_geometry_and_rescale_from_functional_groups(real_data):
    path = real_data("pydicom_data_enhanced_multiframe/eCT_Supplemental.dcm")
    volume = load_dicom_file(path)
    assert volume.shape == (2, 512, 512)
    assert volume.geometry.spacing == pytest.approx((0.388672, 0.388672, 10.0))
    np.testing.assert_allclose(volume.geometry.direction_matrix[:, :2], [[-1, 0], [0, 1], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(volume.geometry.origin, (99.5, -301.5, -149.0), atol=1e-4)
    assert volume.array.min() == -1024  # Pixel Value Transformation (intercept -1024) applied
    scan = scan_dicom_folder(path.parent)
    info = next(s for s in scan.series if s.files == (path,))
    np.testing.assert_array_equal(load_dicom_series(info).array, volume.array)
    assert len(scan.series) == 5 and scan.skipped_not_dicom == 2
