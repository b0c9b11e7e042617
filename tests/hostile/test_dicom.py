"""Hostile DICOM input: gaps, mixed series, corrupt pixel data, nonsense headers, patient data in names.

Each case writes a tiny series (8 slices of 16x16, or 32x32 where JPEG 2000 needs
it) with tests/dicom_phantoms.py, damages it the way a bad export or copy would,
and asserts the safe outcome through the real command (see harness.py).
"""

from __future__ import annotations

import json
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

from dicom_phantoms import new_dataset, write_ct_series, write_multiframe_ct
from harness import Outcome, assert_refused, assert_succeeded, run_cli

NZ = 8
SPACING = (1.0, 1.0, 2.0)


def block(n: int = 16) -> np.ndarray:
    """Air with a bone block that stops short of the first and last slice (a closed model)."""
    values = np.full((NZ, n, n), -1000.0)
    values[1:-1, n // 4 : 3 * n // 4, n // 4 : 3 * n // 4] = 1200
    return values


def write_series(folder: Path, *, n: int = 16, **kwargs: Any) -> list[Path]:
    """The test series; returns its files in slice order (by position)."""
    return write_ct_series(folder, block(n), SPACING, **kwargs)


def edit(path: Path, **attributes: Any) -> None:
    """Rewrite header attributes of one file (pydicom warns about the nonsense values we want)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def file_number(folder: Path, path: Path) -> int:
    """The place medprint gives a file in its messages: 1.. in the sorted listing of the folder."""
    return sorted(p for p in folder.rglob("*") if p.is_file()).index(path) + 1


def convert(folder: Path, out_dir: Path, *extra: object) -> Outcome:
    out_dir.mkdir(exist_ok=True)
    return run_cli("convert", folder, "-o", out_dir / "model.stl", *extra)


def warnings_in(outcome: Outcome) -> list[str]:
    return [line for line in outcome.stderr.splitlines() if line.startswith("medprint: WARNING:")]


def report_of(outcome: Outcome) -> dict[str, Any]:
    return json.loads(outcome.stdout)


# ----------------------------------------------------------------------------- gaps (point 1)


def test_one_missing_slice_is_a_gap_refused(tmp_path):
    # Slice at 8 mm missing: one step of exactly twice the median (the old check wanted more than twice).
    folder = tmp_path / "scan"
    write_ct_series(folder, block()[:7], SPACING, slice_positions=[0, 2, 4, 6, 10, 12, 14.0])
    outcome = convert(folder, tmp_path / "out")
    where = "gap of 4 mm after slice 4 of 7 (LPS 0.0, 0.0, 6.0 mm, next at LPS 0.0, 0.0, 10.0 mm)"
    assert_refused(outcome, mentions=[where, "--allow-gaps"], out_dir=tmp_path / "out")


def test_one_missing_slice_with_allow_gaps_is_interpolated_with_a_warning(tmp_path):
    folder = tmp_path / "scan"
    write_ct_series(folder, block()[:7], SPACING, slice_positions=[0, 2, 4, 6, 10, 12, 14.0])
    outcome = convert(folder, tmp_path / "out", "--allow-gaps", "--json")
    assert_succeeded(outcome)
    said = [w for w in warnings_in(outcome) if "--allow-gaps" in w]
    assert len(said) == 1 and "interpolating" in said[0] and "4 mm after slice 4 of 7" in said[0]
    assert report_of(outcome)["input"]["dimensions_xyz"] == [16, 16, 8]  # regular 2 mm grid across the gap


def test_step_of_one_and_a_half_spacings_is_interpolated_with_a_warning(tmp_path):
    # Not a missing slice (that doubles the step), but uneven enough that the user must hear of it.
    folder = tmp_path / "scan"
    write_ct_series(folder, block(), SPACING, slice_positions=[0, 2, 4, 6, 9, 11, 13, 15.0])
    outcome = convert(folder, tmp_path / "out")
    assert_succeeded(outcome)
    assert any("slices up to 3 mm apart where most are 2 mm" in w for w in warnings_in(outcome)), outcome.stderr


# ----------------------------------------------------------------------------- mixed series under one UID (point 2)


def _mix_modality(paths: list[Path], folder: Path) -> None:
    edit(paths[3], Modality="MR")


def _mix_frame_of_reference(paths: list[Path], folder: Path) -> None:
    edit(paths[3], FrameOfReferenceUID="1.2.3.4.5.6")


def _mix_study(paths: list[Path], folder: Path) -> None:
    # A broken anonymiser: another study's slice, interleaved under the same series and frame of reference UIDs.
    edit(paths[3], StudyInstanceUID="1.2.3.4.5.7", PatientName="Other^Patient")


def _mix_patient(paths: list[Path], folder: Path) -> None:
    edit(paths[3], PatientID="OTHER-PATIENT-42")


def _mix_pixel_spacing(paths: list[Path], folder: Path) -> None:
    edit(paths[3], PixelSpacing=["0.5", "0.5"])


def _mix_orientation(paths: list[Path], folder: Path) -> None:
    edit(paths[3], ImageOrientationPatient=["0", "1", "0", "1", "0", "0"])


def _mix_image_size(paths: list[Path], folder: Path) -> None:
    uid = pydicom.dcmread(paths[0], stop_before_pixels=True).SeriesInstanceUID
    paths[3].unlink()
    write_ct_series(folder / "odd", np.full((1, 12, 16), -1000.0), SPACING, slice_positions=[6.0], series_uid=uid)


@pytest.mark.parametrize(
    ("mix", "found"),
    [
        (_mix_modality, "2 modalities (CT, MR)"),
        (_mix_frame_of_reference, "2 frames of reference"),
        (_mix_study, "2 studies and 2 patients"),
        (_mix_patient, "2 patients"),
        (_mix_pixel_spacing, "2 pixel spacings (0.5x0.5, 1x1)"),
        (_mix_orientation, "2 orientations"),
        (_mix_image_size, "2 image sizes (16x12, 16x16)"),
    ],
    ids=["modality", "frame-of-reference", "study", "patient", "pixel-spacing", "orientation", "image-size"],
)
def test_series_mixing_files_under_one_uid_is_split_and_the_hole_refused(tmp_path, mix, found):
    folder = tmp_path / "scan"
    mix(write_series(folder), folder)
    shown = run_cli("info", folder)
    assert_succeeded(shown)
    assert "2 image series" in shown.stdout and shown.stdout.count("it mixes") == 2 and shown.stdout.count(found) == 2, shown.stdout
    outcome = convert(folder, tmp_path / "out")
    # The larger part is chosen, with a warning; the slice it lacks is a gap.
    # Identifying values (UIDs, patients) are counted, never shown.
    assert "1.2.3.4.5" not in shown.stdout and "OTHER-PATIENT" not in shown.stdout and "Other^Patient" not in shown.stdout
    assert any("split from one series UID" in w and found in w and "--series" in w for w in warnings_in(outcome))
    assert_refused(outcome, mentions=["gap", "--allow-gaps"], out_dir=tmp_path / "out")


# ----------------------------------------------------------------------------- corrupt pixel data (point 3)


def damage_frame(path: Path, how: str, *, frame_index: int = 0) -> None:
    """Damage the compressed frame; the file around it stays well-formed.

    ``flip``: invert 16 bytes in its middle; ``cut``: keep its first half;
    ``overrun`` (RLE only): make the first segment's runs overrun the image,
    which makes pylibjpeg-rle panic (a pyo3 PanicException).
    """
    ds = pydicom.dcmread(path)
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    frame = bytearray(frames[frame_index])
    if how == "flip":
        middle = len(frame) // 2
        frame[middle : middle + 16] = bytes(b ^ 0xFF for b in frame[middle : middle + 16])
    elif how == "overrun":
        first, second = struct.unpack("<2I", frame[4:12])  # RLE header: segment count, then offsets
        frame[first : second - 1 : 2] = b"\x81" * len(range(first, second - 1, 2))  # 'repeat the next byte 128x'
    else:
        frame = frame[: len(frame) // 2]
    if len(frame) % 2:
        frame += b"\0"
    frames[frame_index] = bytes(frame)
    ds.PixelData = encapsulate(frames)
    ds.save_as(path)


CORRUPTIONS = [
    (RLELossless, "overrun"),
    (RLELossless, "flip"),
    (RLELossless, "cut"),
    (JPEGLSLossless, "flip"),
    (JPEGLSLossless, "cut"),
    (JPEG2000Lossless, "cut"),
]
CORRUPTION_IDS = ["rle-overrun", "rle-flip", "rle-cut", "jpegls-flip", "jpegls-cut", "j2k-cut"]


@pytest.mark.parametrize(("syntax", "how"), CORRUPTIONS, ids=CORRUPTION_IDS)
def test_corrupt_compressed_slice_mid_series_is_skipped_then_refused_as_gap(tmp_path, syntax, how):
    folder = tmp_path / "scan"
    paths = write_series(folder, n=32, transfer_syntax=syntax)
    damage_frame(paths[3], how)
    outcome = convert(folder, tmp_path / "out")
    number = file_number(folder, paths[3])
    skipped = [w for w in warnings_in(outcome) if f"skipped unreadable file {number} of {NZ}" in w]
    assert len(skipped) == 1 and "--allow-gaps" in skipped[0], outcome.stderr
    assert_refused(outcome, mentions=["gap", "1 unreadable file", "--allow-gaps"], out_dir=tmp_path / "out")


def test_overrunning_rle_slice_raises_a_panic_not_an_exception(tmp_path):
    """Control for the case above: pylibjpeg-rle's panic is a BaseException, so `except Exception` misses it."""
    paths = write_series(tmp_path, n=32, transfer_syntax=RLELossless)
    damage_frame(paths[3], "overrun")
    with pytest.raises(BaseException) as raised:
        pydicom.dcmread(paths[3]).pixel_array
    assert not isinstance(raised.value, Exception), type(raised.value)


@pytest.mark.parametrize(("syntax", "how"), CORRUPTIONS[:1] + CORRUPTIONS[-1:], ids=["rle-overrun", "j2k-cut"])
def test_corrupt_last_slice_is_skipped_with_a_warning_and_the_model_made_of_the_rest(tmp_path, syntax, how):
    folder = tmp_path / "scan"
    paths = write_series(folder, n=32, transfer_syntax=syntax)
    damage_frame(paths[-1], how)
    outcome = convert(folder, tmp_path / "out", "--json")
    assert_succeeded(outcome)
    number = file_number(folder, paths[-1])
    assert any(f"skipped unreadable file {number} of {NZ}" in w for w in warnings_in(outcome)), outcome.stderr
    report = report_of(outcome)
    assert report["input"]["dimensions_xyz"] == [32, 32, NZ - 1]
    assert report["mesh"]["watertight"]


def test_corrupt_slice_mid_series_with_allow_gaps_warns_twice_and_converts(tmp_path):
    folder = tmp_path / "scan"
    paths = write_series(folder, n=32, transfer_syntax=RLELossless)
    damage_frame(paths[3], "overrun")
    outcome = convert(folder, tmp_path / "out", "--allow-gaps", "--json")
    assert_succeeded(outcome)
    said = warnings_in(outcome)
    assert any("skipped unreadable file" in w for w in said) and any("interpolating" in w for w in said), said
    assert report_of(outcome)["input"]["dimensions_xyz"] == [32, 32, NZ]


def test_compressed_file_cut_short_mid_series_is_refused_as_gap(tmp_path):
    folder = tmp_path / "scan"
    paths = write_series(folder, n=32, transfer_syntax=RLELossless)
    paths[3].write_bytes(paths[3].read_bytes()[:-200])  # the file itself ends inside the frame
    number = file_number(folder, paths[3])
    shown = run_cli("info", folder)
    assert_succeeded(shown)
    assert f"unreadable: file {number} of {NZ}" in shown.stdout
    assert_refused(convert(folder, tmp_path / "out"), mentions=["gap", "--allow-gaps"], out_dir=tmp_path / "out")


@pytest.mark.parametrize("command", ["info", "convert"])
def test_corrupt_frame_in_a_multiframe_file_is_refused_naming_the_file(tmp_path, command):
    path = write_multiframe_ct(tmp_path / "scan.dcm", block(), SPACING, transfer_syntax=RLELossless)
    damage_frame(path, "overrun", frame_index=3)
    out = tmp_path / "out"
    outcome = run_cli("info", path) if command == "info" else convert(path, out)
    assert_refused(outcome, mentions=[str(path), "RLE Lossless", "damaged", "again"], out_dir=out if out.exists() else None)


def test_corrupt_multiframe_file_in_a_folder_is_named_by_number(tmp_path):
    folder = tmp_path / "input"
    path = write_multiframe_ct(folder / "DOE_JANE_19700101.dcm", block(), SPACING, transfer_syntax=JPEGLSLossless)
    damage_frame(path, "cut", frame_index=5)
    line = assert_refused(convert(folder, tmp_path / "out"), mentions=["multi-frame file 1 of 1", "damaged"])
    assert "DOE" not in line


def deflate(paths: list[Path]) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)


def test_damaged_deflate_stream_mid_series_is_skipped_then_refused_as_gap(tmp_path):
    folder = tmp_path / "scan"
    paths = write_series(folder)
    deflate(paths)
    paths[3].write_bytes(paths[3].read_bytes()[:-100])  # zlib: incomplete or truncated stream
    outcome = convert(folder, tmp_path / "out")
    number = file_number(folder, paths[3])
    assert any(f"file {number} of {NZ}: Error -5 while decompressing" in w for w in warnings_in(outcome)), outcome.stderr
    assert_refused(outcome, mentions=["gap", "--allow-gaps"], out_dir=tmp_path / "out")


def test_intact_deflated_series_converts(tmp_path):
    """Control for the case above: the deflated syntax itself is read (its pixel data are not on disk as such)."""
    folder = tmp_path / "scan"
    deflate(write_series(folder))
    outcome = convert(folder, tmp_path / "out", "--json")
    assert_succeeded(outcome)
    assert report_of(outcome)["input"]["dimensions_xyz"] == [16, 16, NZ]


# ----------------------------------------------------------------------------- nonsense headers (points 4 and 5)


def _all(paths: list[Path], **attributes: Any) -> None:
    for path in paths:
        edit(path, **attributes)


BAD_HEADERS = [
    ({"PixelSpacing": ["0", "0"]}, ["PixelSpacing is 0\\0", "above 0"]),
    ({"PixelSpacing": ["nan", "0.5"]}, ["PixelSpacing is nan\\0.5", "above 0"]),
    ({"PixelSpacing": ["inf", "inf"]}, ["PixelSpacing is inf\\inf", "above 0"]),
    ({"PixelSpacing": ["-0.5", "-0.5"]}, ["PixelSpacing is -0.5\\-0.5", "above 0"]),
    ({"ImageOrientationPatient": ["nan", "0", "0", "0", "1", "0"]}, ["ImageOrientationPatient is nan", "finite"]),
    ({"ImageOrientationPatient": ["0", "0", "0", "0", "1", "0"]}, ["ImageOrientationPatient is 0\\0\\0", "unit"]),
    ({"ImageOrientationPatient": ["1", "0", "0", "0.7", "0.7", "0"]}, ["ImageOrientationPatient", "perpendicular"]),
    ({"ImagePositionPatient": ["nan", "0", "0"]}, ["ImagePositionPatient is nan", "finite"]),
    ({"RescaleSlope": "0"}, ["RescaleSlope is 0", "other than 0"]),
    ({"RescaleSlope": "nan"}, ["RescaleSlope is nan", "finite"]),
    ({"RescaleIntercept": "inf"}, ["RescaleIntercept inf", "finite"]),
    ({"Rows": 0}, ["Rows x Columns is 0x16"]),
    ({"Rows": 20}, ["pixel data hold 512 bytes", "need 640"]),
    ({"Columns": 8}, ["pixel data hold 512 bytes", "need 256"]),
    ({"BitsAllocated": 12}, ["BitsAllocated is 12", "8, 16 or 32"]),
]
BAD_IDS = [
    "spacing-0", "spacing-nan", "spacing-inf", "spacing-negative", "iop-nan", "iop-zero-vector", "iop-skewed",
    "ipp-nan", "slope-0", "slope-nan", "intercept-inf", "rows-0", "rows-too-many", "columns-too-few", "bits-12",
]


@pytest.mark.parametrize(("attributes", "mentions"), BAD_HEADERS, ids=BAD_IDS)
@pytest.mark.parametrize("command", ["info", "convert"])
def test_nonsense_header_in_every_file_is_refused_saying_what_is_wrong(tmp_path, attributes, mentions, command):
    folder = tmp_path / "scan"
    _all(write_series(folder), **attributes)
    out = tmp_path / "out"
    outcome = run_cli("info", folder) if command == "info" else convert(folder, out)
    line = assert_refused(outcome, mentions=[str(folder), *mentions, "again"], out_dir=out if out.exists() else None)
    assert "without images" not in line


def test_nonsense_header_in_one_middle_file_skips_it_and_refuses_the_gap(tmp_path):
    folder = tmp_path / "scan"
    paths = write_series(folder)
    edit(paths[4], ImagePositionPatient=["0", "0", "nan"])
    number = file_number(folder, paths[4])
    shown = run_cli("info", folder)
    assert_succeeded(shown)
    assert f"unreadable: file {number} of {NZ}" in shown.stdout and "gap of 4 mm after slice 4" in shown.stdout
    outcome = convert(folder, tmp_path / "out")
    assert any(f"file {number} of {NZ}: ImagePositionPatient is 0\\0\\nan" in w for w in warnings_in(outcome))
    assert_refused(
        outcome, mentions=["gap of 4 mm after slice 4 of 7", "1 unreadable file", "--allow-gaps"], out_dir=tmp_path / "out"
    )


def test_slope_of_zero_in_one_middle_file_skips_it_and_refuses_the_gap(tmp_path):
    folder = tmp_path / "scan"
    paths = write_series(folder)
    edit(paths[2], RescaleSlope="0")  # every voxel of that slice would read as the intercept
    number = file_number(folder, paths[2])
    shown = run_cli("info", folder)
    assert_succeeded(shown)
    assert f"! skipped unreadable file {number} of {NZ}: RescaleSlope is 0" in shown.stdout
    assert_refused(convert(folder, tmp_path / "out"), mentions=["gap", "1 unreadable file", "--allow-gaps"])


@pytest.mark.parametrize("thickness", ["nan", "inf", "0", "-2"])
def test_nonsense_slice_thickness_is_not_used_nor_reported(tmp_path, thickness):
    # Slice spacing comes from the positions; the header's thickness only describes the scan.
    folder = tmp_path / "scan"
    _all(write_series(folder), SliceThickness=thickness)
    outcome = convert(folder, tmp_path / "out", "--json")
    assert_succeeded(outcome)
    report = report_of(outcome)
    assert report["input"]["spacing_mm"] == [1.0, 1.0, 2.0]
    assert "slice_thickness_mm" not in report["input"]["metadata"]


def test_colour_series_is_refused_saying_colour(tmp_path):
    folder = tmp_path / "scan"
    for k, path in enumerate(write_series(folder)):
        rgb = np.zeros((16, 16, 3), dtype=np.uint8)
        rgb[4:12, 4:12] = (200, 30, 30) if 0 < k < NZ - 1 else (0, 0, 0)
        edit(
            path, SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0, BitsAllocated=8,
            BitsStored=8, HighBit=7, PixelRepresentation=0, PixelData=rgb.tobytes(),
        )
    for outcome in (run_cli("info", folder), convert(folder, tmp_path / "out")):
        assert_refused(outcome, mentions=[str(folder), "8 colour image", "greyscale"], out_dir=tmp_path / "out")


def test_dicomdir_alone_is_refused_saying_it_is_an_index(tmp_path):
    folder = tmp_path / "cd"
    folder.mkdir()
    ds = new_dataset("1.2.840.10008.1.3.10", "")
    ds.FileSetID = "CD"
    ds.DirectoryRecordSequence = []
    ds.save_as(folder / "DICOMDIR", enforce_file_format=True)
    for outcome in (run_cli("info", folder), convert(folder, tmp_path / "out")):
        assert_refused(outcome, mentions=[str(folder), "DICOMDIR", "index", "image files"], out_dir=tmp_path / "out")


def test_series_of_one_slice_says_what_is_needed(tmp_path):
    folder = tmp_path / "scan"
    write_ct_series(folder, block()[3:4], SPACING)
    shown = run_cli("info", folder)
    assert_succeeded(shown)
    assert "a single slice: a 3D model needs a stack of at least 2 parallel slices" in shown.stdout
    assert_refused(convert(folder, tmp_path / "out"), mentions=["1 usable slice", "at least 2"], out_dir=tmp_path / "out")


def damage_meta_group_length(path: Path) -> None:
    """Make (0002,0000) UL claim 1030 bytes: pydicom then raises BytesLengthException (not a ValueError)."""
    data = bytearray(path.read_bytes())
    assert data[132:134] == b"\x02\x00" and data[136:138] == b"UL"
    data[138:140] = (1030).to_bytes(2, "little")
    path.write_bytes(bytes(data))


def test_damaged_header_in_a_single_file_gives_one_error_line_in_info(tmp_path):
    paths = write_series(tmp_path / "scan")
    damage_meta_group_length(paths[0])
    with pytest.raises(Exception) as raised:  # control: the raw error is not one medprint used to catch
        pydicom.dcmread(paths[0])
    assert not isinstance(raised.value, (ValueError, OSError))
    assert_refused(run_cli("info", paths[0]), mentions=[str(paths[0]), "damaged", "again"])


def test_damaged_header_of_the_last_file_in_a_folder_skips_it_with_a_warning(tmp_path):
    folder = tmp_path / "scan"
    paths = write_series(folder)
    damage_meta_group_length(paths[-1])
    outcome = convert(folder, tmp_path / "out", "--json")
    assert_succeeded(outcome)
    number = file_number(folder, paths[-1])
    assert any("skipping 1 truncated or unreadable" in w and f"file {number} of {NZ}" in w for w in warnings_in(outcome))
    assert report_of(outcome)["input"]["dimensions_xyz"] == [16, 16, NZ - 1]


# ----------------------------------------------------------------------------- patient data in names (point 6)

PATIENT = "DOE^JANE"
PATIENT_FOLDER = "DOE_JANE_19700101"


def phi_series(root: Path) -> tuple[Path, list[Path]]:
    """A series in a sub-folder and files named after the patient, as hospital exports do."""
    paths = write_series(root / PATIENT_FOLDER / "CT", patient_name=PATIENT)
    named = []
    for k, path in enumerate(paths):
        target = path.with_name(f"{PATIENT_FOLDER}_{k:03d}.dcm")
        path.rename(target)
        named.append(target)
    return root, named


def assert_no_phi(outcome: Outcome) -> None:
    for secret in ("DOE", "JANE", "19700101", "PHANTOM-001", ".dcm"):
        assert secret not in outcome.stderr and secret not in outcome.stdout, (secret, outcome.stderr, outcome.stdout)


Damage = Callable[[list[Path]], None]


def _cut_middle(paths: list[Path]) -> None:
    paths[3].write_bytes(paths[3].read_bytes()[:-100])


def _nan_middle(paths: list[Path]) -> None:
    edit(paths[3], ImagePositionPatient=["0", "0", "nan"])


def _conflicting_duplicate(paths: list[Path]) -> None:
    ds = pydicom.dcmread(paths[3])
    ds.PixelData = (ds.pixel_array + 5).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(paths[3].with_name(f"{PATIENT_FOLDER}_echo2.dcm"))


def _damaged_last(paths: list[Path]) -> None:
    damage_meta_group_length(paths[-1])


@pytest.mark.parametrize(
    "damage", [_cut_middle, _nan_middle, _conflicting_duplicate, _damaged_last],
    ids=["truncated", "nan-position", "conflicting-duplicate", "damaged-header"],
)
def test_messages_point_at_files_by_number_not_by_patient_name(tmp_path, damage):
    root, paths = phi_series(tmp_path / "input")
    damage(paths)
    verbose = run_cli("-v", "convert", root, "-o", tmp_path / "verbose.stl")
    for outcome in (run_cli("info", root), convert(root, tmp_path / "out"), verbose):
        assert outcome.exception is None
        assert " of " in outcome.stderr + outcome.stdout  # the damage is pointed at ("file 4 of 8", "slice 4 of 7")
        assert_no_phi(outcome)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_info_shows_patient_identity_only_with_show_phi(tmp_path, as_json):
    root, paths = phi_series(tmp_path / "input")
    _cut_middle(paths)  # an unreadable file, so that info has a file to point at
    extra = ["--json"] if as_json else []
    hidden = run_cli("info", root, *extra)
    assert_succeeded(hidden)
    assert_no_phi(hidden)
    shown = run_cli("info", root, "--show-phi", *extra)
    assert_succeeded(shown)
    assert PATIENT in shown.stdout and "19700101" in shown.stdout and paths[3].name in shown.stdout
    if as_json:
        described = json.loads(hidden.stdout)
        assert described["unreadable"] == [f"file {file_number(root, paths[3])} of {NZ}"]
        assert "patient" not in described["series"][0]
        assert json.loads(shown.stdout)["series"][0]["patient"]["PatientName"] == PATIENT
