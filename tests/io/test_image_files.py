import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medprint.errors import InputError
from medprint.io import load_volume


def _marker_volume():
    array = np.full((6, 7, 8), -1000, dtype=np.int16)  # (z, y, x)
    array[4, 5, 6] = 1500
    return array


def test_nifti_ras_affine_becomes_lps(tmp_path):
    array_zyx = _marker_volume()
    # An oblique RAS affine: 30 degrees about z, anisotropic voxels.
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 0.9, 2.5])
    affine[:3, 3] = [-40.0, 25.0, 60.0]
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(array_zyx.transpose(2, 1, 0), affine), path)  # nibabel is (x, y, z)

    volume = load_volume(path)

    ras = affine @ np.array([6, 5, 4, 1.0])
    expected_lps = np.array([-ras[0], -ras[1], ras[2]])
    assert np.allclose(volume.geometry.index_to_lps([6, 5, 4]), expected_lps, atol=1e-4)
    assert volume.array[4, 5, 6] == 1500
    assert volume.modality == "CT"  # guessed from -1000 HU air, and said so
    assert any("modality taken as CT" in note for note in volume.notes)


def test_nrrd_in_ras_space_becomes_lps(tmp_path):
    array_zyx = _marker_volume()
    (tmp_path / "scan.raw.gz").write_bytes(gzip.compress(array_zyx.tobytes()))
    (tmp_path / "scan.nhdr").write_text(
        "NRRD0004\n"
        "type: short\n"
        "dimension: 3\n"
        "space: right-anterior-superior\n"
        "sizes: 8 7 6\n"
        "space directions: (0.5,0,0) (0,0.75,0) (0,0,3)\n"
        "kinds: domain domain domain\n"
        "endian: little\n"
        "encoding: gzip\n"
        "space origin: (10,20,30)\n"
        "data file: scan.raw.gz\n"
    )
    volume = load_volume(tmp_path / "scan.nhdr", modality="CT")
    ras = np.array([10 + 6 * 0.5, 20 + 5 * 0.75, 30 + 4 * 3.0])
    assert np.allclose(volume.geometry.index_to_lps([6, 5, 4]), [-ras[0], -ras[1], ras[2]])


def test_mha_geometry_is_kept(tmp_path):
    image = sitk.GetImageFromArray(_marker_volume())
    image.SetSpacing((0.7, 0.7, 1.25))
    image.SetOrigin((-12.0, 4.0, 100.0))
    image.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    sitk.WriteImage(image, str(tmp_path / "scan.mha"))
    volume = load_volume(tmp_path / "scan.mha", modality="MR")
    assert volume.modality == "MR"
    assert volume.geometry.is_left_handed
    assert np.allclose(volume.geometry.index_to_lps([6, 5, 4]), [-12 - 6 * 0.7, 4 + 5 * 0.7, 100 + 4 * 1.25])


def test_mr_values_leave_modality_unknown(tmp_path):
    image = sitk.GetImageFromArray(np.arange(60, dtype=np.float32).reshape(3, 4, 5))
    sitk.WriteImage(image, str(tmp_path / "t1.nii.gz"))
    volume = load_volume(tmp_path / "t1.nii.gz")
    assert volume.modality == "OT"
    assert not volume.is_hounsfield


def test_truncated_nifti_is_one_clear_error(tmp_path):
    image = sitk.GetImageFromArray(np.zeros((20, 20, 20), np.int16))
    sitk.WriteImage(image, str(tmp_path / "full.nii"))
    data = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.nii: the file is \d+ bytes, its header needs \d+") as caught:
        load_volume(tmp_path / "cut.nii")
    assert "\n" not in str(caught.value)


def test_unknown_file_type_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a DICOM file"):
        load_volume(tmp_path / "notes.txt")


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        load_volume(tmp_path / "nope.nii.gz")
