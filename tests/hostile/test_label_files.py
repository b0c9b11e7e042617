"""Hostile label maps and names files given to ``medprint convert SCAN --labels FILE``.

The scan is always a sound 16^3 CT; only the ``--labels`` (or ``--labels-names``)
file is hostile.  Each builder writes one hostile input in ``tmp_path`` and
returns the extra convert arguments and the words the one error line must hold;
the run must leave nothing in the output folder.  A sound label map on the same
scan converts (the control), so each refusal is the hostile file's doing.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from harness import assert_refused, assert_succeeded, files_in, run_cli
from nifti_files import PIXDIM, nifti_bytes, patched, write

# The scan's and the label map's placement: RAS affine, 1 x 1 x 2 mm voxels.
AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])

Case = Callable[[Path], tuple[list[object], list[str]]]


# --------------------------------------------------------------------------- writers

def scan_block() -> np.ndarray:
    """A 16^3 CT (x, y, z) with a bone cube: meshable, so a refusal is the label file's fault."""
    array = np.random.default_rng(7).integers(-1000, -900, (16, 16, 16)).astype(np.int16)
    array[4:12, 4:12, 4:12] = 1200
    return array


def label_block(dtype: type = np.uint8) -> np.ndarray:
    """Labels (x, y, z): 1 on the bone cube, 2 on a smaller block inside the soft tissue."""
    labels = np.zeros((16, 16, 16), dtype=dtype)
    labels[4:12, 4:12, 4:12] = 1
    labels[1:3, 1:4, 1:4] = 2
    return labels


def itk_labels(path: Path, array_zyx: np.ndarray, *, origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
               compress: bool = False, vector: bool = False) -> Path:
    """A label map written by ITK, on the scan's LPS grid unless moved by ``origin``."""
    image = sitk.GetImageFromArray(array_zyx, isVector=vector)
    image.SetSpacing((1.0, 1.0, 2.0))
    image.SetOrigin(origin)
    image.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))  # RAS identity seen in LPS
    sitk.WriteImage(image, str(path), compress)
    return path


def labels_zyx(dtype: type = np.uint8) -> np.ndarray:
    return np.ascontiguousarray(label_block(dtype).transpose(2, 1, 0))


def labels_arg(path: Path) -> list[object]:
    return ["--labels", path]


# --------------------------------------------------------------------------- hostile label maps

def cut_label_nii_gz(tmp: Path) -> tuple[list[object], list[str]]:
    # Labels noisy enough that half the stream still holds the whole header: the cut is in the voxels.
    labels = np.random.default_rng(5).integers(0, 4, (16, 16, 16)).astype(np.uint8)
    data = gzip.compress(nifti_bytes(labels))
    return labels_arg(write(tmp / "seg.nii.gz", data[: len(data) // 2])), [
        "--labels", "seg.nii.gz", "ends early", "copy it again"]


def cut_label_nii_gz_header(tmp: Path) -> tuple[list[object], list[str]]:
    data = gzip.compress(nifti_bytes(label_block()))
    return labels_arg(write(tmp / "seg.nii.gz", data[:14])), ["--labels", "seg.nii.gz", "header", "copy the file"]


def flipped_label_nii_gz(tmp: Path) -> tuple[list[object], list[str]]:
    data = bytearray(gzip.compress(nifti_bytes(label_block()), mtime=0))
    data[len(data) * 2 // 3] ^= 0x04  # inside the deflate stream: caught by the CRC-32 or the decoder
    return labels_arg(write(tmp / "seg.nii.gz", bytes(data))), ["--labels", "seg.nii.gz", "damaged"]


def flipped_crc_nii_gz(tmp: Path) -> tuple[list[object], list[str]]:
    data = bytearray(gzip.compress(nifti_bytes(label_block()), mtime=0))
    data[-6] ^= 0x01  # the stored CRC-32: the voxels decode fine, only the checksum says they are not the ones written
    return labels_arg(write(tmp / "seg.nii.gz", bytes(data))), ["--labels", "seg.nii.gz", "damaged"]


def cut_label_nii(tmp: Path) -> tuple[list[object], list[str]]:
    data = nifti_bytes(label_block())
    return labels_arg(write(tmp / "seg.nii", data[:-300])), ["--labels", "seg.nii", "header needs"]


def cut_gzip_nrrd(tmp: Path) -> tuple[list[object], list[str]]:
    data = itk_labels(tmp / "whole.nrrd", labels_zyx(), compress=True).read_bytes()
    (tmp / "whole.nrrd").unlink()
    return labels_arg(write(tmp / "seg.nrrd", data[:-30])), ["--labels", "seg.nrrd", "gzip data"]


def short_raw_mhd(tmp: Path) -> tuple[list[object], list[str]]:
    itk_labels(tmp / "seg.mhd", labels_zyx())
    raw = tmp / "seg.raw"
    raw.write_bytes(raw.read_bytes()[:1000])
    return labels_arg(tmp / "seg.mhd"), ["--labels", "seg.mhd", "1000 bytes"]


def nan_labels(tmp: Path) -> tuple[list[object], list[str]]:
    labels = label_block(np.float32)
    labels[5, 6, 7] = np.nan
    return labels_arg(write(tmp / "seg.nii", nifti_bytes(labels))), ["--labels", "seg.nii", "NaN", "(5, 6, 7)"]


def inf_labels_mha(tmp: Path) -> tuple[list[object], list[str]]:
    labels = labels_zyx(np.float32)
    labels[3, 2, 1] = np.inf
    return labels_arg(itk_labels(tmp / "seg.mha", labels)), ["--labels", "seg.mha", "infinite", "(1, 2, 3)"]


def probability_map(tmp: Path) -> tuple[list[object], list[str]]:
    labels = label_block(np.float32) * 0.7
    return labels_arg(write(tmp / "seg.nii", nifti_bytes(labels))), ["--labels", "seg.nii", "fractional"]


def negative_pixdim(tmp: Path) -> tuple[list[object], list[str]]:
    data = patched(nifti_bytes(label_block()), PIXDIM + 4, "<f", -1.0)
    return labels_arg(write(tmp / "seg.nii", data)), ["--labels", "seg.nii", "pixdim[1] = -1"]


def zero_pixdim(tmp: Path) -> tuple[list[object], list[str]]:
    data = patched(nifti_bytes(label_block()), PIXDIM + 12, "<f", 0.0)
    return labels_arg(write(tmp / "seg.nii.gz", gzip.compress(data))), ["--labels", "seg.nii.gz", "pixdim[3] = 0"]


def no_orientation(tmp: Path) -> tuple[list[object], list[str]]:
    data = nifti_bytes(label_block(), qform=False, sform=False)
    return labels_arg(write(tmp / "seg.nii", data)), ["--labels", "seg.nii", "qform_code and sform_code", "fslorient"]


def sheared_sform(tmp: Path) -> tuple[list[object], list[str]]:
    affine = AFFINE.copy()
    affine[0, 1] = 0.5
    data = nifti_bytes(label_block(), affine=affine, qform=False, sform=True)
    return labels_arg(write(tmp / "seg.nii", data)), ["--labels", "seg.nii", "right angles"]


def nan_nrrd_directions(tmp: Path) -> tuple[list[object], list[str]]:
    data = itk_labels(tmp / "whole.nrrd", labels_zyx()).read_bytes()
    (tmp / "whole.nrrd").unlink()
    head, sep, voxels = data.partition(b"\n\n")
    lines = [b"space directions: (nan,0,0) (0,-1,0) (0,0,2)" if line.startswith(b"space directions:") else line
             for line in head.split(b"\n")]
    return labels_arg(write(tmp / "seg.nrrd", b"\n".join(lines) + sep + voxels)), ["--labels", "seg.nrrd", "NaN"]


def elsewhere(tmp: Path) -> tuple[list[object], list[str]]:
    # A sound label map made on another scan, 500 mm away: no overlap, so it must not become an empty model.
    path = itk_labels(tmp / "seg.nrrd", labels_zyx()[:, :, :12], origin=(500.0, 500.0, 500.0))
    return labels_arg(path), ["--labels", "seg.nrrd", "does not overlap", "another scan"]


def two_d(tmp: Path) -> tuple[list[object], list[str]]:
    return labels_arg(write(tmp / "seg.nii", nifti_bytes(label_block()[:, :, 0]))), ["--labels", "seg.nii", "2-D"]


def four_d_nifti(tmp: Path) -> tuple[list[object], list[str]]:
    stacked = np.stack([label_block(), label_block()], axis=-1)
    return labels_arg(write(tmp / "seg.nii.gz", gzip.compress(nifti_bytes(stacked)))), [
        "--labels", "seg.nii.gz", "4-D", "one 3-D volume"]


def four_d_nrrd(tmp: Path) -> tuple[list[object], list[str]]:
    # Four spatial-looking axes (not Slicer's "list" layer axis): no 3-D label map.
    voxels = np.stack([labels_zyx(), labels_zyx()])
    header = ("NRRD0004\ntype: uchar\ndimension: 4\nsizes: 16 16 16 2\nspacings: 1 1 2 1\n"
              "kinds: domain domain domain domain\nencoding: raw\n\n")
    return labels_arg(write(tmp / "seg.nrrd", header.encode() + voxels.tobytes())), ["--labels", "seg.nrrd", "4-D"]


def huge_claim_nii_gz(tmp: Path) -> tuple[list[object], list[str]]:
    # A 300-byte .nii.gz whose header says 2048^3 int64 voxels (64 GB): refused before any buffer is made.
    data = nifti_bytes(label_block()[:2, :2, :2].astype(np.int64))
    data = patched(data, 40, "<8h", 3, 2048, 2048, 2048, 1, 1, 1, 1)
    return labels_arg(write(tmp / "seg.nii.gz", gzip.compress(data))), [
        "--labels", "seg.nii.gz", "compressed bytes can hold"]


def malformed_slicer_segment(tmp: Path) -> tuple[list[object], list[str]]:
    image = sitk.GetImageFromArray(labels_zyx())
    image.SetSpacing((1.0, 1.0, 2.0))
    image.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    image.SetMetaData("Segment0_Name", "bone")
    image.SetMetaData("Segment0_LabelValue", "one")
    sitk.WriteImage(image, str(tmp / "case.seg.nrrd"))
    return labels_arg(tmp / "case.seg.nrrd"), ["--labels", "case.seg.nrrd", "Segment0", "'one'"]


def directory(tmp: Path) -> tuple[list[object], list[str]]:
    (tmp / "seg.nii.gz").mkdir()
    return labels_arg(tmp / "seg.nii.gz"), ["--labels", "seg.nii.gz", "folder"]


def device_as_labels(tmp: Path) -> tuple[list[object], list[str]]:
    (tmp / "seg.nii").symlink_to("/dev/zero")  # endless zeros: would read as an all-background map, or forever
    return labels_arg(tmp / "seg.nii"), ["--labels", "seg.nii", "a device"]


def empty_label_file(tmp: Path) -> tuple[list[object], list[str]]:
    return labels_arg(write(tmp / "seg.nii.gz", b"")), ["--labels", "seg.nii.gz", "empty"]


# --------------------------------------------------------------------------- hostile names files

def sound_labels(tmp: Path) -> Path:
    return write(tmp / "seg.nii.gz", gzip.compress(nifti_bytes(label_block())))


def names(tmp: Path, name: str, data: bytes) -> list[object]:
    return ["--labels", sound_labels(tmp), "--labels-names", write(tmp / name, data)]


def names_not_utf8(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.txt", "1 Leber\n2 Nüre\n".encode("latin-1")), [
        "--labels-names", "names.txt", "UTF-8", "0xfc"]


def names_empty(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.json", b""), ["--labels-names", "names.json", "empty"]


def names_huge(tmp: Path) -> tuple[list[object], list[str]]:
    args = names(tmp, "names.txt", b"1 liver\n")
    with open(tmp / "names.txt", "ab") as stream:
        stream.truncate(11 * 1024 * 1024)  # sparse: fast to make, 11 MB to read
    return args, ["--labels-names", "names.txt", "MB"]


def names_json_list(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.json", json.dumps(["liver", "kidney"]).encode()), [
        "--labels-names", "names.json", "must be an object", "list"]


def names_json_string(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.json", b'"liver"'), ["--labels-names", "names.json", "must be an object", "str"]


def names_json_nested_deep(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.json", b"[" * 200_000 + b"]" * 200_000), ["--labels-names", "names.json", "nested"]


def names_json_broken(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.json", b'{"1": "liver", "2": '), ["--labels-names", "names.json", "as JSON"]


def names_json_not_pairs(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.json", json.dumps({"1": ["liver"] * 1000}).encode()), [
        "--labels-names", "names.json", "not a label number and a name"]


def names_folder(tmp: Path) -> tuple[list[object], list[str]]:
    (tmp / "names.json").mkdir()
    return ["--labels", sound_labels(tmp), "--labels-names", tmp / "names.json"], [
        "--labels-names", "names.json", "folder"]


def names_text_garbage(tmp: Path) -> tuple[list[object], list[str]]:
    return names(tmp, "names.txt", b"liver kidney aorta\n"), ["--labels-names", "names.txt", "line 1", "1 liver"]


HOSTILE: dict[str, Case] = {
    "label .nii.gz cut in half": cut_label_nii_gz,
    "label .nii.gz cut in its header": cut_label_nii_gz_header,
    "label .nii.gz bit flipped": flipped_label_nii_gz,
    "label .nii.gz CRC flipped": flipped_crc_nii_gz,
    "label .nii cut short": cut_label_nii,
    "label NRRD gzip cut": cut_gzip_nrrd,
    "label .mhd raw short": short_raw_mhd,
    "NaN label (float map)": nan_labels,
    "Inf label (float MHA)": inf_labels_mha,
    "probability map": probability_map,
    "negative pixdim": negative_pixdim,
    "zero pixdim": zero_pixdim,
    "qform and sform codes 0": no_orientation,
    "sheared sform": sheared_sform,
    "NaN NRRD space directions": nan_nrrd_directions,
    "grid elsewhere (no overlap)": elsewhere,
    "2-D label map": two_d,
    "4-D NIfTI label map": four_d_nifti,
    "4-D NRRD label map": four_d_nrrd,
    "header claims 64 GB in 300 bytes": huge_claim_nii_gz,
    "malformed Slicer segment value": malformed_slicer_segment,
    "folder as --labels": directory,
    "device (symlink to /dev/zero) as --labels": device_as_labels,
    "empty label file": empty_label_file,
    "names not UTF-8": names_not_utf8,
    "names empty": names_empty,
    "names over 10 MB": names_huge,
    "names JSON list": names_json_list,
    "names JSON string": names_json_string,
    "names JSON nested deep": names_json_nested_deep,
    "names JSON broken": names_json_broken,
    "names JSON values not names": names_json_not_pairs,
    "folder as --labels-names": names_folder,
    "names text without numbers": names_text_garbage,
}


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    return write(tmp_path / "ct.nii", nifti_bytes(scan_block()))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_sound_label_map_converts(tmp_path: Path, scan: Path, out_dir: Path) -> None:
    """The control: the same scan with a sound label map (gzip NIfTI and NRRD) makes one part per label."""
    for labels in (sound_labels(tmp_path), itk_labels(tmp_path / "seg.nrrd", labels_zyx(), compress=True)):
        target = out_dir / labels.name.replace(".", "_") / "model.stl"
        target.parent.mkdir()
        outcome = run_cli("convert", scan, "-o", target, "--labels", labels, "--labels-names",
                          write(tmp_path / "names.json", json.dumps({"1": "bone", "2": "fat"}).encode()))
        assert_succeeded(outcome)
        assert {"model_bone.stl", "model_fat.stl"} <= files_in(target.parent), files_in(target.parent)


def test_slicer_layers_convert(tmp_path: Path, scan: Path, out_dir: Path) -> None:
    """The control for Slicer files: a two-layer .seg.nrrd with overlapping segments makes one part each."""
    layers = np.zeros((16, 16, 16, 2), dtype=np.uint8)
    layers[4:12, 4:12, 4:12, 0] = 1
    layers[6:14, 6:14, 6:14, 1] = 1  # overlaps the first: only a second layer can hold it
    keys = {"Segment0_Name": "bone", "Segment0_LabelValue": "1", "Segment0_Layer": "0",
            "Segment1_Name": "shell", "Segment1_LabelValue": "1", "Segment1_Layer": "1"}
    image = sitk.GetImageFromArray(layers, isVector=True)
    image.SetSpacing((1.0, 1.0, 2.0))
    image.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    for key, value in keys.items():
        image.SetMetaData(key, value)
    sitk.WriteImage(image, str(tmp_path / "case.seg.nrrd"), True)
    outcome = run_cli("convert", scan, "-o", out_dir / "model.stl", "--labels", tmp_path / "case.seg.nrrd")
    assert_succeeded(outcome)
    assert {"model_bone.stl", "model_shell.stl"} <= files_in(out_dir), files_in(out_dir)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_label_file_is_refused_by_convert(tmp_path: Path, scan: Path, out_dir: Path, case: str) -> None:
    args, mentions = HOSTILE[case](tmp_path)
    outcome = run_cli("convert", scan, "-o", out_dir / "model.stl", *args)
    assert_refused(outcome, mentions=mentions, out_dir=out_dir)


# --------------------------------------------------------------------------- pipes

def _alarm(_signum: int, _frame: object) -> None:
    raise TimeoutError("medprint opened the pipe and waited for data")


@pytest.fixture
def no_hang() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_as_labels_is_refused(tmp_path: Path, scan: Path, out_dir: Path, no_hang: None) -> None:
    os.mkfifo(tmp_path / "seg.nii.gz")
    outcome = run_cli("convert", scan, "-o", out_dir / "model.stl", "--labels", tmp_path / "seg.nii.gz")
    assert_refused(outcome, mentions=["--labels", "seg.nii.gz", "named pipe"], out_dir=out_dir)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_as_labels_names_is_refused(tmp_path: Path, scan: Path, out_dir: Path, no_hang: None) -> None:
    os.mkfifo(tmp_path / "names.json")
    outcome = run_cli("convert", scan, "-o", out_dir / "model.stl", "--labels", sound_labels(tmp_path),
                      "--labels-names", tmp_path / "names.json")
    assert_refused(outcome, mentions=["--labels-names", "names.json", "named pipe"], out_dir=out_dir)
