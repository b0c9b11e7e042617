"""Hostile single-file images, round 3: inputs an independent tester got past the checks.

Each case writes its input in ``tmp_path`` and must be refused with one line
naming the file and the fix, leaving nothing in the output folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from harness import assert_refused, files_in, run_cli

from medprint.errors import GeometryError
from medprint.geometry import Geometry


def block() -> np.ndarray:
    """A 16^3 (z, y, x) CT with a bone cube, meshable so a refusal is the input's fault."""
    array = np.full((16, 16, 16), -1000, dtype=np.int16)
    array[4:12, 4:12, 4:12] = 1200
    return array


def write_mha(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path), compress)
    return path


def mha_with(path: Path, key: str, value: str) -> Path:
    """A plain MHA of :func:`block` with one header line set to ``key = value``."""
    write_mha(path, block())
    head, sep, tail = path.read_bytes().partition(b"ElementDataFile")
    head = re.sub(rb"(?m)^" + key.encode() + rb" = .*$", f"{key} = {value}".encode(), head)
    path.write_bytes(head + sep + tail)
    return path


def refused(tmp_path: Path, source: Path, *extra: object, mentions: tuple[str, ...],
            named: Path | None = None) -> str:
    """Run ``convert source extra``; assert the refusal names ``named`` (default: the source) and ``mentions``."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    outcome = run_cli("convert", source, "-o", out / "model.stl", *extra)
    return assert_refused(outcome, mentions=((named or source).name, *mentions), out_dir=out)


# --------------------------------------------------------------------------- 1. CompressedDataSize


@pytest.mark.parametrize("factor", [0.5, 0.9], ids=["half", "nine-tenths"])
def test_compressed_data_size_that_lies_is_refused(tmp_path: Path, factor: float) -> None:
    path = write_mha(tmp_path / "comp.mha", block(), compress=True)
    data = path.read_bytes()
    match = re.search(rb"CompressedDataSize = (\d+)", data)
    assert match is not None
    lie = int(int(match.group(1)) * factor)
    path.write_bytes(data.replace(match.group(0), b"CompressedDataSize = %d" % lie))
    refused(tmp_path, path, mentions=("CompressedDataSize", str(lie), "set CompressedDataSize"))


def test_compressed_data_size_that_is_true_is_read(tmp_path: Path) -> None:
    path = write_mha(tmp_path / "comp.mha", block(), compress=True)
    (tmp_path / "out").mkdir()
    outcome = run_cli("convert", path, "-o", tmp_path / "out" / "model.stl")
    assert outcome.exit_code == 0, outcome.stderr


# --------------------------------------------------------------------------- 2. far positions


@pytest.mark.parametrize("offset", ["10000000 0 0", "0 -100000000 0", "0 0 100001"])
def test_origin_beyond_1e5_mm_is_refused(tmp_path: Path, offset: str) -> None:
    path = mha_with(tmp_path / "far.mha", "Offset", offset)
    refused(tmp_path, path, mentions=("origin", "100000 mm", "fix the header"))


def test_far_corner_beyond_1e5_mm_is_refused(tmp_path: Path) -> None:
    # The origin is fine; 16 voxels of 99 mm from 99,000 mm put the far corner past the limit.
    path = mha_with(tmp_path / "corner.mha", "Offset", "99000 0 0")
    path.write_bytes(re.sub(rb"(?m)^ElementSpacing = .*$", b"ElementSpacing = 99 1 1", path.read_bytes()))
    refused(tmp_path, path, mentions=("far corner", "100000 mm"))


def test_far_nifti_sform_is_refused(tmp_path: Path) -> None:
    affine = np.eye(4)
    affine[:3, 3] = [0.0, 5e6, 0.0]
    image = nib.Nifti1Image(block().transpose(2, 1, 0), affine)
    path = tmp_path / "far.nii"
    nib.save(image, path)
    refused(tmp_path, path, mentions=("origin", "100000 mm"))


def test_geometry_refuses_far_positions_for_every_loader() -> None:
    with pytest.raises(GeometryError, match="beyond 100000 mm"):
        Geometry(spacing=(1.0, 1.0, 1.0), origin=(1e7, 0.0, 0.0))
    Geometry(spacing=(1.0, 1.0, 1.0), origin=(-9e4, 0.0, 0.0)).check_extent((10, 10, 10))
    with pytest.raises(GeometryError, match="far corner"):
        Geometry(spacing=(1.0, 1.0, 50.0), origin=(0.0, 0.0, 9e4)).check_extent((400, 2, 2))


# --------------------------------------------------------------------------- 3. NRRD without a space


def test_nrrd_with_only_spacings_and_axis_mins_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spacings_only.nrrd"
    header = (b"NRRD0004\ntype: short\ndimension: 3\nsizes: 16 16 16\nspacings: 1 1 1\naxis mins: 100 0 0\n"
              b"endian: little\nencoding: raw\n\n")
    path.write_bytes(header + block().tobytes())
    refused(tmp_path, path, mentions=("no space field", "left", "set the orientation"))


# --------------------------------------------------------------------------- 4. sizes that overflow


def test_nifti2_dims_overflowing_int64_are_refused(tmp_path: Path) -> None:
    header = nib.Nifti2Header()
    header.set_data_dtype(np.int16)
    header["dim"] = [3, 2**21, 2**21, 2**22, 1, 1, 1, 1]
    header["pixdim"] = [1] * 8
    header.set_qform(np.eye(4), 1)
    header["vox_offset"] = 544
    path = tmp_path / "overflow.nii"
    path.write_bytes(header.binaryblock + b"\0" * 4 + block().tobytes())
    needed = 2**21 * 2**21 * 2**22 * 2 + 544
    refused(tmp_path, path, mentions=("header needs", str(needed), "copy it again"))
    assert_refused(run_cli("info", path), mentions=(path.name, str(needed)))


def test_mha_dims_overflowing_int64_are_refused(tmp_path: Path) -> None:
    path = mha_with(tmp_path / "overflow.mha", "DimSize", f"{2**31} {2**31} {2**31}")
    refused(tmp_path, path, mentions=("header needs", str(2**94)[:24]))  # plus the header bytes


# --------------------------------------------------------------------------- 5. float64 beyond float32


@pytest.mark.parametrize("value", [1e300, -1e300, 3.5e38], ids=["1e300", "-1e300", "just-past-float32"])
def test_float64_values_beyond_float32_are_refused(tmp_path: Path, value: float) -> None:
    array = block().astype(np.float64)
    array[8, 8, 8] = value
    path = write_mha(tmp_path / "huge.mha", array)
    refused(tmp_path, path, "--modality", "MR", "--auto-threshold", "otsu", mentions=("float32", f"{value:g}"))


def test_float64_values_within_float32_are_read(tmp_path: Path) -> None:
    array = block().astype(np.float64)
    array[0, 0, 0] = 1e30
    path = write_mha(tmp_path / "big_but_fine.mha", array)
    (tmp_path / "out").mkdir()
    outcome = run_cli("convert", path, "-o", tmp_path / "out" / "m.stl", "--modality", "MR", "--threshold", "500:2000")
    assert outcome.exit_code == 0, outcome.stderr
    assert "m.stl" in files_in(tmp_path / "out")


# --------------------------------------------------------------------------- 6. ITK/MetaIO text on fd 2

REPO = Path(__file__).resolve().parents[2]
_META = "ObjectType = Image\nNDims = 3\nDimSize = 16 16 16\nElementType = MET_SHORT\nElementSpacing = 1 1 1\n"


def _ascii_cut(tmp: Path) -> Path:
    path = tmp / "ascii.mha"
    path.write_text(_META + "BinaryData = False\nElementDataFile = LOCAL\n" + "1 2 3\n" * 40)
    return path


def _list_cut(tmp: Path) -> Path:
    for k in range(16):
        (tmp / f"s{k:02d}.raw").write_bytes(b"\0" * (512 if k != 9 else 100))
    path = tmp / "list.mhd"
    path.write_text(_META + "ElementDataFile = LIST\n" + "".join(f"s{k:02d}.raw\n" for k in range(16)))
    return path


def _position_first(tmp: Path) -> Path:
    path = tmp / "pos.mha"
    path.write_bytes(b"Position = 0 0 0\n" + _META.encode() + b"ElementDataFile = LOCAL\n" + block().tobytes())
    return path


def _channels_zero(tmp: Path) -> Path:
    path = tmp / "ch0.mha"
    path.write_bytes(_META.encode() + b"ElementNumberOfChannels = 0\nElementDataFile = LOCAL\n" + block().tobytes())
    return path


@pytest.mark.parametrize("build", [_ascii_cut, _list_cut, _position_first, _channels_zero],
                         ids=["ascii cut", "slice list cut", "position before NDims", "0 channels"])
def test_native_itk_text_never_reaches_stderr(tmp_path: Path, build: object) -> None:
    import os
    import subprocess
    import sys

    source = build(tmp_path)  # type: ignore[operator]
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "medprint", "convert", str(source), "-o", str(out / "m.stl")],
                          check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert all(line.startswith("medprint: ") for line in lines), done.stderr
    if done.returncode != 0:
        assert done.returncode == 1, done.stderr
        assert len(lines) == 1 and source.name in lines[0], done.stderr
        assert files_in(out) == set()


# --------------------------------------------------------------------------- 7. label files (regressions)


def test_label_nifti_with_nan_pixdim3_is_refused(tmp_path: Path) -> None:
    scan = tmp_path / "scan.nii"
    nib.save(nib.Nifti1Image(block().transpose(2, 1, 0), np.eye(4)), scan)
    labels = (block() > 0).astype(np.uint8).transpose(2, 1, 0)
    label_path = tmp_path / "seg.nii"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), label_path)
    data = bytearray(label_path.read_bytes())
    data[76 + 12: 76 + 16] = np.float32(np.nan).tobytes()
    label_path.write_bytes(bytes(data))
    refused(tmp_path, scan, "--labels", label_path, mentions=("--labels", "pixdim[3] = nan", "fix the header"),
            named=label_path)


def test_label_mha_with_negative_spacing_is_refused(tmp_path: Path) -> None:
    scan = tmp_path / "scan.mha"
    write_mha(scan, block())
    label_path = tmp_path / "seg.mha"
    write_mha(label_path, (block() > 0).astype(np.uint8))
    label_path.write_bytes(re.sub(rb"(?m)^ElementSpacing = .*$", b"ElementSpacing = -1 1 1", label_path.read_bytes()))
    refused(tmp_path, scan, "--labels", label_path, mentions=("--labels", "ElementSpacing = -1 1 1"),
            named=label_path)


def test_label_with_sform_unlike_qform_is_placed_like_the_scan(tmp_path: Path) -> None:
    # Scan and label share a sform (x shifted 40 mm) but their qforms say otherwise:
    # both must be placed by the sform, so the label lands on the scan's bone cube.
    sform = np.diag([1.0, 1.0, 1.0, 1.0])
    sform[:3, 3] = [40.0, 0.0, 0.0]
    qform = np.diag([1.0, 1.0, 1.0, 1.0])

    def save(array: np.ndarray, path: Path) -> Path:
        image = nib.Nifti1Image(array.transpose(2, 1, 0), sform)
        image.set_sform(sform, 2)
        image.set_qform(qform, 1)
        nib.save(image, path)
        return path

    scan = save(block(), tmp_path / "scan.nii")
    labels = np.zeros((16, 16, 16), dtype=np.uint8)
    labels[4:12, 4:12, 4:12] = 1
    label_path = save(labels, tmp_path / "seg.nii")
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("convert", scan, "--labels", label_path, "-o", out / "m.stl")
    assert outcome.exit_code == 0, outcome.stderr
    import trimesh

    mesh = trimesh.load(out / "m.stl")
    # RAS x 40..59 (voxels 4..11 at 40 + i) is LPS x -51..-44: the sform's place, not the qform's.
    low, high = mesh.bounds
    assert -52.0 <= low[0] <= -50.0 and -46.0 <= high[0] <= -43.0, mesh.bounds
