"""Hostile single-file images: damaged or impossible NIfTI, NRRD and MetaImage given to ``medprint convert``.

Each builder writes one hostile input in ``tmp_path`` and names the words its
one error line must hold; the run must leave nothing in the output folder.
"""

from __future__ import annotations

import bz2
import gzip
import os
import signal
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from harness import assert_refused, assert_succeeded, files_in, run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nifti_files import PIXDIM, nifti_bytes, patched, write

from medprint.errors import MedprintError
from medprint.io import load_volume

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


# --------------------------------------------------------------------------- writers

def bone_block() -> np.ndarray:
    """A 16^3 CT with a bone cube: meshable, so a refusal is the input's fault, not the segmentation's."""
    array = np.random.default_rng(7).integers(-1000, -900, (16, 16, 16)).astype(np.int16)
    array[4:12, 4:12, 4:12] = 1200
    return array


def itk_file(path: Path, array_zyx: np.ndarray, *, compress: bool = False, spacing=(1.0, 1.0, 1.0)) -> Path:
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), compress)
    return path


def nrrd_text(encoding: str, *, data_file: str | None = None, directions: str = "(1,0,0) (0,1,0) (0,0,2)",
              extra: str = "") -> str:
    text = ("NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 16 16 16\n"
            f"space directions: {directions}\nendian: little\nencoding: {encoding}\nspace origin: (0,0,0)\n{extra}")
    return text + (f"data file: {data_file}\n" if data_file else "\n")


def with_header_line(path: Path, key: str, value: str) -> Path:
    """Rewrite one ``Key = value`` line of a MetaImage header (the voxel bytes are kept)."""
    data = path.read_bytes()
    head, _, tail = data.partition(b"ElementDataFile")
    lines = [line if not line.startswith(key.encode() + b" =") else f"{key} = {value}".encode()
             for line in head.split(b"\n")]
    path.write_bytes(b"\n".join(lines) + b"ElementDataFile" + tail)
    return path


# --------------------------------------------------------------------------- hostile inputs

def cut_nii_gz(tmp: Path) -> tuple[Path, list[str]]:
    data = gzip.compress(nifti_bytes(bone_block()))
    return write(tmp / "cut.nii.gz", data[: len(data) // 2]), ["cut.nii.gz", "copy it again"]


def flipped_nii_gz(tmp: Path) -> tuple[Path, list[str]]:
    data = bytearray(gzip.compress(nifti_bytes(bone_block())))
    data[len(data) * 2 // 3] ^= 0x04
    return write(tmp / "flipped.nii.gz", bytes(data)), ["flipped.nii.gz", "damaged"]


def cut_nii(tmp: Path) -> tuple[Path, list[str]]:
    data = nifti_bytes(bone_block())
    return write(tmp / "cut.nii", data[:-100]), ["cut.nii", "header needs"]


def cut_gzip_nrrd(tmp: Path) -> tuple[Path, list[str]]:
    packed = gzip.compress(bone_block().tobytes())
    return write(tmp / "cut.nrrd", nrrd_text("gzip").encode() + packed[:-40]), ["cut.nrrd", "gzip data"]


def cut_bzip2_nhdr(tmp: Path) -> tuple[Path, list[str]]:
    write(tmp / "voxels.raw.bz2", bz2.compress(bone_block().tobytes())[:-40])
    (tmp / "scan.nhdr").write_text(nrrd_text("bzip2", data_file="voxels.raw.bz2"))
    return tmp / "scan.nhdr", ["scan.nhdr", "voxels.raw.bz2", "bzip2 data"]


def nhdr_without_data(tmp: Path) -> tuple[Path, list[str]]:
    (tmp / "scan.nhdr").write_text(nrrd_text("raw", data_file="scan_voxels.raw"))
    return tmp / "scan.nhdr", ["scan.nhdr", "scan_voxels.raw", "missing"]


def mhd_without_raw(tmp: Path) -> tuple[Path, list[str]]:
    itk_file(tmp / "scan.mhd", bone_block())
    (tmp / "scan.raw").unlink()
    return tmp / "scan.mhd", ["scan.mhd", "scan.raw", "missing"]


def mhd_short_raw(tmp: Path) -> tuple[Path, list[str]]:
    itk_file(tmp / "scan.mhd", bone_block())
    raw = tmp / "scan.raw"
    raw.write_bytes(raw.read_bytes()[:1000])
    return tmp / "scan.mhd", ["scan.mhd", "scan.raw", "1000 bytes"]


def cut_compressed_mha(tmp: Path) -> tuple[Path, list[str]]:
    data = itk_file(tmp / "whole.mha", bone_block(), compress=True).read_bytes()
    (tmp / "whole.mha").unlink()
    return write(tmp / "cut.mha", data[:-25]), ["cut.mha", "zlib data"]


def nan_nifti(tmp: Path) -> tuple[Path, list[str]]:
    array = bone_block().astype(np.float32)
    array[5:7] = np.nan  # a NaN slab, which ITK would read as 0 and print as solid
    return itk_file(tmp / "nan.nii.gz", array), ["nan.nii.gz", "512 voxels", "slices k = 5..6", "--non-finite"]


def inf_mha(tmp: Path) -> tuple[Path, list[str]]:
    array = bone_block().astype(np.float32)
    array[3, 2, 1] = np.inf
    return itk_file(tmp / "inf.mha", array), ["inf.mha", "1 voxel is", "(1, 2, 3)", "--non-finite"]


def nifti_pixdim(axis: int, value: float) -> Callable[[Path], tuple[Path, list[str]]]:
    def build(tmp: Path) -> tuple[Path, list[str]]:
        data = patched(nifti_bytes(bone_block()), PIXDIM + 4 * axis, "<f", value)
        return write(tmp / "pixdim.nii", data), ["pixdim.nii", f"pixdim[{axis}] = {value:g}", "voxel size"]

    return build


def nifti_qfac(tmp: Path) -> tuple[Path, list[str]]:
    data = patched(nifti_bytes(bone_block()), PIXDIM, "<f", 0.5)
    return write(tmp / "qfac.nii", data), ["qfac.nii", "qfac (pixdim[0]) = 0.5"]


def nifti_long_quaternion(tmp: Path) -> tuple[Path, list[str]]:
    data = patched(nifti_bytes(bone_block()), 256, "<3f", 0.9, 0.9, 0.0)
    return write(tmp / "quaternion.nii", data), ["quaternion.nii", "quatern_b/c/d", "longer than 1"]


def nifti_nan_offset(tmp: Path) -> tuple[Path, list[str]]:
    data = patched(nifti_bytes(bone_block()), 268, "<f", np.nan)
    return write(tmp / "offset.nii", data), ["offset.nii", "qoffset", "not finite"]


def nifti_sform(kind: str) -> Callable[[Path], tuple[Path, list[str]]]:
    def build(tmp: Path) -> tuple[Path, list[str]]:
        affine = np.diag([1.0, 1.0, 2.0, 1.0])
        words = {"singular": "zero length", "sheared": "not at right angles", "nan": "NaN"}[kind]
        if kind == "singular":
            affine[:, 0] = 0.0
        elif kind == "sheared":
            affine[0, 1] = 0.5
        data = nifti_bytes(bone_block(), qform=False, sform=True)
        data = patched(data, 280, "<12f", *affine[:3].ravel())
        if kind == "nan":
            data = patched(data, 296 + 4, "<f", np.nan)
        return write(tmp / f"sform_{kind}.nii", data), [f"sform_{kind}.nii", "sform", words]

    return build


def nifti_no_orientation(tmp: Path) -> tuple[Path, list[str]]:
    data = nifti_bytes(bone_block(), qform=False, sform=False)
    return write(tmp / "unoriented.nii", data), ["unoriented.nii", "qform_code and sform_code are both 0"]


def nifti_zero_dim(tmp: Path) -> tuple[Path, list[str]]:
    data = patched(nifti_bytes(bone_block()), 40 + 2 * 2, "<h", 0)
    return write(tmp / "dims.nii", data), ["dims.nii", "dim[2] = 0"]


def nrrd_directions(directions: str, words: str) -> Callable[[Path], tuple[Path, list[str]]]:
    def build(tmp: Path) -> tuple[Path, list[str]]:
        text = nrrd_text("raw", directions=directions).encode()
        return write(tmp / "directions.nrrd", text + bone_block().tobytes()), ["directions.nrrd", words]

    return build


def nrrd_nan_spacings(tmp: Path) -> tuple[Path, list[str]]:
    text = ("NRRD0004\ntype: short\ndimension: 3\nsizes: 16 16 16\nspacings: 1 nan 1\nendian: little\n"
            "encoding: raw\n\n").encode()
    return write(tmp / "spacings.nrrd", text + bone_block().tobytes()), ["spacings.nrrd", "spacings = 1 nan 1"]


def mha_field(key: str, value: str, words: str) -> Callable[[Path], tuple[Path, list[str]]]:
    def build(tmp: Path) -> tuple[Path, list[str]]:
        path = with_header_line(itk_file(tmp / "field.mha", bone_block()), key, value)
        return path, ["field.mha", f"{key} = {value}", words]

    return build


def not_an_image(name: str, content: bytes, words: str) -> Callable[[Path], tuple[Path, list[str]]]:
    def build(tmp: Path) -> tuple[Path, list[str]]:
        return write(tmp / name, content), [name, words]

    return build


def nrrd_without_end(tmp: Path) -> tuple[Path, list[str]]:
    text = nrrd_text("raw").rstrip("\n").encode()  # no blank line: the voxels would be read as header
    return write(tmp / "endless.nrrd", text + b"\n" + bytes(2000)), ["endless.nrrd", "never ends"]


def nifti_offset_in_header(tmp: Path) -> tuple[Path, list[str]]:
    data = patched(nifti_bytes(bone_block()), 108, "<f", 100.0)
    return write(tmp / "offset.nii", data), ["offset.nii", "vox_offset = 100"]


def nifti_rgb(tmp: Path) -> tuple[Path, list[str]]:
    data = patched(nifti_bytes(bone_block()), 70, "<hh", 128, 24)
    return write(tmp / "colour.nii", data), ["colour.nii", "datatype = 128", "RGB"]


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + bytes(64)

HOSTILE = {
    "nii.gz cut in half": cut_nii_gz,
    "nii.gz failing its checksum": flipped_nii_gz,
    "nii cut short": cut_nii,
    "gzip NRRD cut short": cut_gzip_nrrd,
    "bzip2 nhdr data cut short": cut_bzip2_nhdr,
    "nhdr data file missing": nhdr_without_data,
    "mhd raw file missing": mhd_without_raw,
    "mhd raw file short": mhd_short_raw,
    "compressed mha cut short": cut_compressed_mha,
    "NaN slab in NIfTI": nan_nifti,
    "Inf voxel in MHA": inf_mha,
    "pixdim[1] = 0": nifti_pixdim(1, 0.0),
    "pixdim[1] = -1": nifti_pixdim(1, -1.0),
    "pixdim[2] = NaN": nifti_pixdim(2, float("nan")),
    "pixdim[3] = inf": nifti_pixdim(3, float("inf")),
    "qfac 0.5": nifti_qfac,
    "quaternion longer than 1": nifti_long_quaternion,
    "NaN qoffset": nifti_nan_offset,
    "singular sform": nifti_sform("singular"),
    "sheared sform": nifti_sform("sheared"),
    "NaN in sform": nifti_sform("nan"),
    "no qform or sform": nifti_no_orientation,
    "dim[2] = 0": nifti_zero_dim,
    "NRRD zero space direction": nrrd_directions("(1,0,0) (0,0,0) (0,0,2)", "zero length"),
    "NRRD NaN space direction": nrrd_directions("(1,0,0) (0,nan,0) (0,0,2)", "NaN"),
    "NRRD skewed space directions": nrrd_directions("(1,0,0) (0.5,1,0) (0,0,2)", "not at right angles"),
    "NRRD NaN spacings": nrrd_nan_spacings,
    "MHA ElementSpacing -1": mha_field("ElementSpacing", "-1 1 1", "voxel size"),
    "MHA ElementSpacing 0": mha_field("ElementSpacing", "1 0 1", "voxel size"),
    "MHA ElementSpacing NaN": mha_field("ElementSpacing", "1 1 nan", "voxel size"),
    "MHA singular TransformMatrix": mha_field("TransformMatrix", "1 0 0 1 0 0 0 0 1", "zero length"),
    "MHA NaN TransformMatrix": mha_field("TransformMatrix", "1 0 0 0 nan 0 0 0 1", "finite"),
    "MHA NaN Offset": mha_field("Offset", "0 nan 0", "not finite"),
    "NRRD header without its blank line": nrrd_without_end,
    "NIfTI vox_offset inside the header": nifti_offset_in_header,
    "NIfTI RGB datatype": nifti_rgb,
    "empty .nii": not_an_image("empty.nii", b"", "empty"),
    "random bytes .nii": not_an_image("noise.nii", np.random.default_rng(1).bytes(2000), "not a NIfTI"),
    "text file .nii": not_an_image("notes.nii", b"patient notes\n" * 40, "plain text"),
    "PNG named .nii": not_an_image("photo.nii", PNG, "PNG"),
    "PNG named .nii.gz": not_an_image("photo.nii.gz", PNG, "not a gzip-compressed NIfTI"),
    "random bytes .nrrd": not_an_image("noise.nrrd", np.random.default_rng(2).bytes(2000), "not a NRRD"),
    "text file .mha": not_an_image("notes.mha", b"hello\nworld\n", "not a MetaImage"),
    "empty .mhd": not_an_image("empty.mhd", b"", "empty"),
}


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_image_is_refused_by_convert(tmp_path: Path, out_dir: Path, case: str) -> None:
    source, mentions = HOSTILE[case](tmp_path)
    outcome = run_cli("convert", source, "-o", out_dir / "model.stl")
    assert_refused(outcome, mentions=mentions, out_dir=out_dir)


def test_non_finite_option_makes_the_nan_scan_usable(tmp_path: Path, out_dir: Path) -> None:
    source, _ = nan_nifti(tmp_path)
    outcome = run_cli("convert", source, "-o", out_dir / "model.stl", "--modality", "CT", "--non-finite", "-1000")
    assert_succeeded(outcome)
    assert {"model.stl", "model.report.json"} <= files_in(out_dir)
    report = (out_dir / "model.report.json").read_text()
    assert "512 non-finite (NaN/Inf) voxels set to -1000" in report


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_option_itself_must_be_finite(tmp_path: Path, out_dir: Path, value: str) -> None:
    source, _ = nan_nifti(tmp_path)
    outcome = run_cli("convert", source, "-o", out_dir / "model.stl", f"--non-finite={value}")
    assert_refused(outcome, mentions=["--non-finite", value], out_dir=out_dir, exit_code=2)  # a usage error, as for every number option


class _Hung(Exception):
    pass


def _alarm(_signum: int, _frame: object) -> None:
    raise _Hung("the input was read forever")


@pytest.fixture
def no_hang():
    """Fail instead of hanging when a protection against pipes is missing."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_named_like_a_scan_is_refused(tmp_path: Path, out_dir: Path, no_hang: None) -> None:
    os.mkfifo(tmp_path / "scan.nii.gz")
    outcome = run_cli("convert", tmp_path / "scan.nii.gz", "-o", out_dir / "model.stl")
    assert_refused(outcome, mentions=["scan.nii.gz", "named pipe"], out_dir=out_dir)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_inside_a_folder_does_not_hang_the_scan(tmp_path: Path, out_dir: Path, no_hang: None) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    os.mkfifo(folder / "IM0001")
    outcome = run_cli("convert", folder, "-o", out_dir / "model.stl")
    assert_refused(outcome, mentions=["study"], out_dir=out_dir)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_as_a_detached_data_file_is_refused(tmp_path: Path, out_dir: Path, no_hang: None) -> None:
    itk_file(tmp_path / "scan.mhd", bone_block())
    (tmp_path / "scan.raw").unlink()
    os.mkfifo(tmp_path / "scan.raw")
    outcome = run_cli("convert", tmp_path / "scan.mhd", "-o", out_dir / "model.stl")
    assert_refused(outcome, mentions=["scan.mhd", "scan.raw", "not a regular file"], out_dir=out_dir)


def test_character_device_is_refused(out_dir: Path, no_hang: None) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    outcome = run_cli("convert", "/dev/zero", "-o", out_dir / "model.stl")
    assert_refused(outcome, mentions=["/dev/zero", "device"], out_dir=out_dir)


# --------------------------------------------------------------------------- properties

def _clean_refusal(error: BaseException, path: Path) -> None:
    assert isinstance(error, MedprintError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert path.name in message and "\n" not in message and "Traceback" not in message, message


_SPECIAL = st.sampled_from([0.0, -1.0, -0.5, float("nan"), float("inf"), float("-inf"), 1e30, 1e-30])
_SIZE = st.floats(0.25, 4.0, width=32)
_UNIT = st.floats(-1.0, 1.0, width=32)
_POSITION = st.floats(-300, 300, width=32)
_SPOILS = ["pixdim0", "pixdim", "codes", "quatern", "qoffset", "srow", "dims"]


@st.composite
def nifti_headers(draw):
    """A NIfTI-1 header that is sane but for (usually) one field, drawn from the hostile values."""
    spoil = draw(st.sampled_from([None, None, None, *_SPOILS]))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(3))
    if spoil == "dims":
        shape = draw(st.sampled_from([shape[:2], shape + (1,), shape + (2,)]))
    codes = st.integers(0, 4) if spoil != "codes" else st.sampled_from([0, -1, 5, 9, 1000])
    qform_code, sform_code = draw(codes), draw(codes)
    if spoil != "codes" and qform_code == sform_code == 0:
        qform_code = 1
    bcd = np.array([draw(_UNIT) for _ in range(3)])
    bcd = bcd / max(1.0, float(np.linalg.norm(bcd)) * 1.001)
    rotation = nib.quaternions.quat2mat(nib.quaternions.fillpositive(bcd.astype(np.float32)))
    srow = np.column_stack([rotation @ np.diag([draw(_SIZE) for _ in range(3)]), [draw(_POSITION) for _ in range(3)]])
    fields = {
        "pixdim0": draw(st.sampled_from([1.0, -1.0, 0.0])),
        "pixdim": [draw(_SIZE) for _ in range(3)],
        "qform_code": qform_code, "sform_code": sform_code,
        "quatern": list(bcd), "qoffset": [draw(_POSITION) for _ in range(3)], "srow": srow,
    }
    if spoil == "pixdim0":
        fields["pixdim0"] = draw(st.sampled_from([0.5, 2.0, float("nan"), -0.0]))
    elif spoil == "pixdim":
        fields["pixdim"][draw(st.integers(0, 2))] = draw(_SPECIAL)
    elif spoil == "quatern":
        fields["quatern"][draw(st.integers(0, 2))] = draw(st.one_of(_SPECIAL, st.floats(1.01, 3.0)))
    elif spoil == "qoffset":
        fields["qoffset"][draw(st.integers(0, 2))] = draw(_SPECIAL)
    elif spoil == "srow":
        srow[draw(st.integers(0, 2)), draw(st.integers(0, 3))] = draw(_SPECIAL)
    return shape, fields


def _hostile_header_file(path: Path, shape: tuple[int, ...], fields: dict) -> Path:
    array = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape) - 1000
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    header["vox_offset"] = 352
    header["pixdim"][0] = fields["pixdim0"]
    header["pixdim"][1:4] = fields["pixdim"]
    header["qform_code"], header["sform_code"] = fields["qform_code"], fields["sform_code"]
    header["quatern_b"], header["quatern_c"], header["quatern_d"] = fields["quatern"]
    header["qoffset_x"], header["qoffset_y"], header["qoffset_z"] = fields["qoffset"]
    header["srow_x"], header["srow_y"], header["srow_z"] = fields["srow"]
    return write(path, header.binaryblock + b"\0" * 4 + array.tobytes(order="F"))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nifti_headers())
def test_any_nifti_header_is_refused_cleanly_or_placed_as_nibabel_places_it(tmp_path: Path, header) -> None:
    shape, fields = header
    path = _hostile_header_file(tmp_path / "random.nii", shape, fields)
    try:
        volume = load_volume(path, modality="CT")
    except Exception as error:  # noqa: BLE001 -- the property is about which exceptions escape
        _clean_refusal(error, path)
        event(f"refused: {str(error).split(': ', 2)[1][:24]}")
        return
    event("accepted, compared with nibabel")
    reference = nib.load(path)
    lps = LPS_FROM_RAS @ reference.header.get_best_affine()
    nx, ny, nz = (s - 1 for s in volume.shape[::-1])
    ijk = np.array([[0, 0, 0], [nx, 0, 0], [0, ny, 0], [0, 0, nz], [nx, ny, nz]], float)
    assert np.allclose(volume.geometry.index_to_lps(ijk), ijk @ lps[:3, :3].T + lps[:3, 3], atol=1e-4, rtol=0)
    data = np.asarray(reference.dataobj).reshape(volume.shape[::-1], order="F")
    assert np.array_equal(volume.array, data.transpose(2, 1, 0))


_WHOLE_NII_GZ = gzip.compress(nifti_bytes(np.random.default_rng(11).integers(-1000, 2000, (16, 16, 16))
                                          .astype(np.int16)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(_WHOLE_NII_GZ) - 1))
def test_any_cut_of_a_nii_gz_is_refused(tmp_path: Path, cut: int) -> None:
    path = write(tmp_path / "cut.nii.gz", _WHOLE_NII_GZ[:cut])
    with pytest.raises(MedprintError) as caught:
        load_volume(path, modality="CT")
    _clean_refusal(caught.value, path)


def test_the_whole_nii_gz_of_the_cut_property_loads(tmp_path: Path) -> None:
    volume = load_volume(write(tmp_path / "whole.nii.gz", _WHOLE_NII_GZ), modality="CT")
    assert volume.shape == (16, 16, 16)


@pytest.mark.parametrize("method", ["otsu", "percentile"])
def test_nan_scan_meets_automatic_thresholds_as_one_refusal(tmp_path: Path, out_dir: Path, method: str) -> None:
    source, mentions = nan_nifti(tmp_path)
    outcome = run_cli("convert", source, "-o", out_dir / "model.stl", "--modality", "MR", "--auto-threshold", method)
    assert_refused(outcome, mentions=mentions, out_dir=out_dir)
