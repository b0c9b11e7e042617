import gzip
import re

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


# --------------------------------------------------------------------------- raw headers against nibabel

import bz2  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402

from medprint.errors import GeometryError, ParameterError  # noqa: E402
from medprint.geometry import Geometry  # noqa: E402
from medprint.volume import Volume, all_finite, describe_non_finite  # noqa: E402

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def write_nifti(path, array_xyz, *, qform=None, sform=None, qform_code=1, sform_code=1, pixdim0=None,
                zooms=None):
    """A NIfTI-1 file with qform/sform set exactly as asked (nibabel header, raw fields)."""
    header = nib.Nifti1Header()
    header.set_data_shape(array_xyz.shape)
    header.set_data_dtype(array_xyz.dtype)
    if qform is not None:
        header.set_qform(qform, int(qform_code))
    else:
        header["qform_code"] = 0
    if sform is not None:
        header.set_sform(sform, int(sform_code))
    else:
        header["sform_code"] = 0
    if zooms is not None:
        header["pixdim"][1:4] = zooms
    if pixdim0 is not None:
        header["pixdim"][0] = pixdim0
    header["vox_offset"] = 352
    data = header.binaryblock + b"\0" * 4 + array_xyz.tobytes(order="F")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def corners(shape_xyz):
    nx, ny, nz = (s - 1 for s in shape_xyz)
    return np.array([[0, 0, 0], [nx, 0, 0], [0, ny, 0], [0, 0, nz], [nx, ny, nz]], float)


def assert_matches_nibabel(volume, path):
    reference = nib.load(path)
    lps = LPS_FROM_RAS @ reference.header.get_best_affine()
    ijk = corners(reference.shape[:3])
    expected = ijk @ lps[:3, :3].T + lps[:3, 3]
    assert np.allclose(volume.geometry.index_to_lps(ijk), expected, atol=1e-4, rtol=0)
    assert np.array_equal(volume.array, np.asarray(reference.dataobj).transpose(2, 1, 0))


def oblique_affine(zooms=(0.8, 0.9, 2.5), offset=(-40.0, 25.0, 60.0), mirror=False):
    a, b = np.radians(30), np.radians(-20)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(np.array(zooms) * [1, 1, -1 if mirror else 1])
    affine[:3, 3] = offset
    return affine


def _array_xyz():
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 1100
    return array


@pytest.mark.parametrize(
    "case",
    ["qform only", "sform only", "both agree", "both differ: sform wins", "qfac -1", "oblique qform",
     "oblique sform, mirrored", "qfac 0 means 1"],
)
def test_nifti_geometry_equals_nibabels(tmp_path, case):
    oblique, mirrored = oblique_affine(), oblique_affine(mirror=True)
    plain = np.diag([0.7, 0.8, 1.5, 1.0])
    plain[:3, 3] = [10, -20, 30]
    arguments = {
        "qform only": dict(qform=plain),
        "sform only": dict(sform=plain, sform_code=2),
        "both agree": dict(qform=plain, sform=plain),
        "both differ: sform wins": dict(qform=plain, sform=oblique),
        "qfac -1": dict(qform=mirrored),
        "oblique qform": dict(qform=oblique),
        "oblique sform, mirrored": dict(sform=mirrored, sform_code=4),
        "qfac 0 means 1": dict(qform=plain, pixdim0=0.0),
    }[case]
    path = write_nifti(tmp_path / "scan.nii", _array_xyz(), **arguments)
    if case == "qfac -1":
        assert nib.load(path).header["pixdim"][0] == -1  # the case really exercises qfac
    assert_matches_nibabel(load_volume(path), path)


def test_nifti_geometry_of_compressed_file_equals_nibabels(tmp_path):
    path = write_nifti(tmp_path / "scan.nii.gz", _array_xyz(), qform=oblique_affine(mirror=True))
    volume = load_volume(path)
    assert_matches_nibabel(volume, path)
    assert volume.geometry.is_left_handed


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf])
def test_nifti_impossible_pixdim_is_refused_naming_the_field(tmp_path, value):
    path = write_nifti(tmp_path / "scan.nii", _array_xyz(), qform=np.eye(4))
    raw = bytearray(path.read_bytes())
    struct.pack_into("<f", raw, 76 + 4 * 2, value)  # pixdim[2]
    path.write_bytes(bytes(raw))
    with pytest.raises(GeometryError, match=r"scan.nii: NIfTI pixdim\[2\] = (0|-1|nan|inf) is not a voxel size"):
        load_volume(path)


def test_nifti_without_any_orientation_is_refused(tmp_path):
    path = write_nifti(tmp_path / "scan.nii", _array_xyz(), qform_code=0, sform_code=0)
    with pytest.raises(GeometryError, match="qform_code and sform_code are both 0"):
        load_volume(path)


def test_sheared_sform_is_refused(tmp_path):
    sheared = np.eye(4)
    sheared[1, 2] = 0.3
    path = write_nifti(tmp_path / "scan.nii", _array_xyz(), sform=sheared, sform_code=1)
    with pytest.raises(GeometryError, match="not at right angles"):
        load_volume(path)


# --------------------------------------------------------------------------- compressed and detached data

def test_nifti_gz_cut_in_half_is_refused(tmp_path):
    noise = np.random.default_rng(5).integers(-1000, 2000, (16, 16, 16)).astype(np.int16)
    path = write_nifti(tmp_path / "scan.nii.gz", noise, qform=np.eye(4))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="scan.nii.gz: the gzip data in the file is damaged"):
        load_volume(path)


def test_nifti_gz_with_a_flipped_bit_fails_its_checksum(tmp_path):
    rng = np.random.default_rng(3)
    path = write_nifti(tmp_path / "scan.nii.gz", rng.integers(-1000, 2000, (16, 16, 16)).astype(np.int16),
                       qform=np.eye(4))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"scan.nii.gz: the gzip data .* damaged"):
        load_volume(path)


def test_multi_member_gzip_is_read_whole(tmp_path):
    path = write_nifti(tmp_path / "scan.nii", _array_xyz(), qform=np.eye(4))
    data = path.read_bytes()
    split = tmp_path / "split.nii.gz"
    split.write_bytes(gzip.compress(data[:500]) + gzip.compress(data[500:]))
    assert np.array_equal(load_volume(split).array, load_volume(path).array)


def _nrrd_header(encoding, data_file=None, extra=""):
    text = ("NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 8 7 6\n"
            "space directions: (0.5,0,0) (0,0.75,0) (0,0,3)\nendian: little\n"
            f"encoding: {encoding}\nspace origin: (10,20,30)\n{extra}")
    return text + (f"data file: {data_file}\n" if data_file else "\n")


@pytest.mark.parametrize("encoding, compress", [("gzip", gzip.compress), ("bzip2", bz2.compress)])
def test_compressed_nrrd_cut_short_is_refused(tmp_path, encoding, compress):
    packed = compress(_marker_volume().tobytes())
    whole = tmp_path / "whole.nrrd"
    whole.write_bytes(_nrrd_header(encoding).encode() + packed)
    if encoding == "gzip":
        assert load_volume(whole, modality="CT").array[4, 5, 6] == 1500
    else:  # ITK's NrrdIO has no bzip2: a whole file is refused for that, plainly
        with pytest.raises(InputError, match="whole.nrrd: bzip2-encoded NRRD data cannot be read"):
            load_volume(whole)
    cut = tmp_path / "cut.nrrd"
    cut.write_bytes(_nrrd_header(encoding).encode() + packed[: len(packed) - 20])
    with pytest.raises(InputError, match=f"cut.nrrd: the {encoding} data in the file is damaged"):
        load_volume(cut)


def test_detached_nrrd_names_its_missing_data_file(tmp_path):
    (tmp_path / "scan.nhdr").write_text(_nrrd_header("raw", data_file="scan_voxels.raw"))
    with pytest.raises(InputError, match="scan.nhdr: its data file scan_voxels.raw is missing"):
        load_volume(tmp_path / "scan.nhdr")


def test_mhd_short_raw_file_is_refused(tmp_path):
    image = sitk.GetImageFromArray(_marker_volume())
    sitk.WriteImage(image, str(tmp_path / "scan.mhd"))
    raw = tmp_path / "scan.raw"
    raw.write_bytes(raw.read_bytes()[:-2])
    with pytest.raises(InputError, match="scan.mhd: its data file scan.raw is 670 bytes, its header needs 672"):
        load_volume(tmp_path / "scan.mhd")


def test_compressed_mha_cut_short_is_refused(tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).integers(0, 999, (8, 8, 8)).astype(np.int16))
    sitk.WriteImage(image, str(tmp_path / "full.mha"), True)
    data = (tmp_path / "full.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(data[:-30])
    assert load_volume(tmp_path / "full.mha", modality="MR").shape == (8, 8, 8)
    with pytest.raises(InputError, match="cut.mha: the zlib data in the file is damaged"):
        load_volume(tmp_path / "cut.mha")


# --------------------------------------------------------------------------- non-finite voxels

def _float_scan(tmp_path, name="scan.nii.gz"):
    array = np.full((6, 7, 8), 100.0, np.float32)  # (z, y, x)
    array[2, 3, 4] = np.nan
    array[4, 0, 1] = -np.inf
    image = sitk.GetImageFromArray(array)
    sitk.WriteImage(image, str(tmp_path / name))
    return tmp_path / name


FLOAT_FORMATS = ["scan.nii", "scan.nii.gz", "scan.nrrd", "scan.mha"]


@pytest.mark.parametrize("name", FLOAT_FORMATS)
def test_nan_voxels_are_refused_with_count_and_place(tmp_path, name):
    path = _float_scan(tmp_path, name)
    with pytest.raises(InputError) as caught:
        load_volume(path)
    message = str(caught.value)
    assert f"{name}: 2 voxels are NaN or infinite, the first at voxel (i, j, k) = (4, 3, 2)" in message
    assert "slices k = 2..4" in message and "--non-finite" in message


@pytest.mark.parametrize("name", FLOAT_FORMATS)
def test_non_finite_value_is_used_and_noted(tmp_path, name):
    volume = load_volume(_float_scan(tmp_path, name), non_finite=-5.0, modality="MR")
    assert volume.array[2, 3, 4] == -5.0 and volume.array[4, 0, 1] == -5.0
    assert np.count_nonzero(volume.array == -5.0) == 2
    assert any("2 non-finite (NaN/Inf) voxels set to -5" in note for note in volume.notes)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_option_must_be_finite(tmp_path, value):
    with pytest.raises(ParameterError, match="--non-finite"):
        load_volume(_float_scan(tmp_path), non_finite=value)


def test_volume_refuses_nan_from_the_api():
    array = np.zeros((3, 4, 5), np.float32)
    array[1, 2, 3] = np.nan
    with pytest.raises(InputError, match=r"1 voxel is NaN or infinite, the first at voxel \(i, j, k\) = \(3, 2, 1\)"):
        Volume(array=array, geometry=Geometry(spacing=(1.0, 1.0, 1.0)))
    assert Volume(array=np.zeros((3, 4, 5), np.int16), geometry=Geometry(spacing=(1.0, 1.0, 1.0))).shape == (3, 4, 5)


def test_all_finite_checks_every_chunk():
    array = np.zeros((400, 128, 128), np.float32)  # several chunks of slices
    assert all_finite(array)
    array[-1, -1, -1] = np.inf
    assert not all_finite(array)
    assert describe_non_finite(~np.isfinite(array)).endswith("in slice k = 399")


# --------------------------------------------------------------------------- Geometry, pipes

@pytest.mark.parametrize(
    "direction, words",
    [((np.nan, 0, 0, 0, 1, 0, 0, 0, 1), "nine finite numbers"),
     ((1, 0, 0, 1, 0, 0, 0, 0, 1), "singular"),
     ((0, 0, 0, 0, 1, 0, 0, 0, 1), "singular"),
     ((1, 0.1, 0, 0, 1, 0, 0, 0, 1), "not orthonormal")],
)
def test_geometry_refuses_impossible_directions(direction, words):
    with pytest.raises(GeometryError, match=words):
        Geometry(spacing=(1.0, 1.0, 1.0), direction=direction)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_refused_before_it_is_opened(tmp_path):
    os.mkfifo(tmp_path / "scan.nii")
    with pytest.raises(InputError, match=r"scan.nii: is a named pipe \(FIFO\)"):
        load_volume(tmp_path / "scan.nii")


@pytest.mark.parametrize(
    "name, content, words",
    [("empty.nii", b"", "the file is empty"),
     ("picture.nii", b"\x89PNG\r\n\x1a\n" + bytes(400), "not a NIfTI file (it starts like a PNG picture)"),
     ("notes.nrrd", b"hello\n" * 80, "not a NRRD file (it is plain text)"),
     ("noise.mha", bytes(range(256)) * 4, "not a MetaImage"),
     ("plain.nii.gz", bytes(400), "not a gzip-compressed NIfTI")],
)
def test_files_that_are_not_images_are_one_clear_error(tmp_path, name, content, words):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=re.escape(f"{name}: {words}")) as caught:
        load_volume(tmp_path / name)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", ["big-endian", "scaled", "NIfTI-2", "4-D with one volume"])
def test_nifti_variants_read_as_nibabel_reads_them(tmp_path, kind):
    array = _array_xyz()
    affine = oblique_affine()
    if kind == "NIfTI-2":
        image = nib.Nifti2Image(array, affine)
    elif kind == "4-D with one volume":
        image = nib.Nifti1Image(array[..., None], affine)
    else:
        header = nib.Nifti1Header(endianness=">" if kind == "big-endian" else "<")
        image = nib.Nifti1Image(array, affine, header=header)
        image.set_data_dtype(np.int16)
        if kind == "scaled":
            image.header.set_slope_inter(0.5, -24.0)
    path = tmp_path / "scan.nii"
    nib.save(image, path)
    volume = load_volume(path)
    reference = nib.load(path)
    assert (reference.header.endianness == ">") == (kind == "big-endian")
    lps = LPS_FROM_RAS @ reference.header.get_best_affine()
    ijk = corners(array.shape)
    assert np.allclose(volume.geometry.index_to_lps(ijk), ijk @ lps[:3, :3].T + lps[:3, 3], atol=1e-4, rtol=0)
    expected = np.asarray(reference.dataobj).reshape(array.shape).transpose(2, 1, 0)
    assert volume.array.dtype.isnative
    assert np.allclose(volume.array, expected) and (kind == "scaled") == (volume.array.dtype.kind == "f")
    if kind == "scaled":
        assert volume.array[0, 0, 0] == array[0, 0, 0] * 0.5 - 24.0


def test_nifti_time_series_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.int16), np.eye(4)), tmp_path / "fmri.nii.gz")
    with pytest.raises(InputError, match=r"fmri.nii.gz: medprint needs a 3-D volume, this image is 4-D \(4 x 4 x 4 x 3"):
        load_volume(tmp_path / "fmri.nii.gz")


@pytest.mark.parametrize("unit, factor", [("meter", 1000.0), ("micron", 0.001), ("mm", 1.0), ("unknown", 1.0)])
def test_nifti_spatial_unit_scales_to_mm_as_the_standard_says(tmp_path, unit, factor):
    # The same 0.4 x 0.5 x 0.6 mm grid at (10, -20, 30) mm, written in the unit under test.
    affine = oblique_affine(zooms=np.array([0.4, 0.5, 0.6]) / factor, offset=np.array([10.0, -20.0, 30.0]) / factor)
    image = nib.Nifti1Image(_array_xyz(), affine)
    image.header.set_xyzt_units(xyz=unit)
    nib.save(image, tmp_path / "scan.nii")
    volume = load_volume(tmp_path / "scan.nii")
    ijk = corners(_array_xyz().shape)
    lps = LPS_FROM_RAS @ affine
    assert np.allclose(volume.geometry.index_to_lps(ijk), (ijk @ lps[:3, :3].T + lps[:3, 3]) * factor, atol=1e-4)
    itk = sitk.ReadImage(str(tmp_path / "scan.nii"))  # ITK applies the unit too
    assert np.allclose(volume.geometry.spacing, itk.GetSpacing(), rtol=1e-5)
    assert np.allclose(volume.geometry.origin, itk.GetOrigin(), atol=1e-4)


def test_nrrd_nan_spacing_of_a_channel_axis_is_not_a_geometry_error(tmp_path):
    (tmp_path / "vector.nrrd").write_bytes(
        b"NRRD0004\ntype: short\ndimension: 4\nsizes: 2 8 7 6\nspacings: nan 1 1 2\nkinds: vector domain domain domain\n"
        b"endian: little\nencoding: raw\n\n" + np.zeros((6, 7, 8, 2), np.int16).tobytes()
    )
    with pytest.raises(InputError, match="vector.nrrd: (medprint needs a 3-D volume|has 2 values per voxel)"):
        load_volume(tmp_path / "vector.nrrd")
