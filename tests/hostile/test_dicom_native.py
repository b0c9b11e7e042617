"""Hostile DICOM input that reaches native code, and float pixel data with NaN/Inf.

Native decoders (pylibjpeg-rle's Rust panics, OpenJPEG) write to file
descriptor 2 past Python; only a real process shows that, so those cases run
``python -m medprint`` in a subprocess with RUST_BACKTRACE=1 and read its whole
stderr.  Float Pixel Data cases run in-process through the harness.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from dicom_phantoms import write_ct_series, write_multiframe_ct
from harness import assert_refused, assert_succeeded, run_cli
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEG2000Lossless, RLELossless

REPO = Path(__file__).resolve().parents[2]
NZ = 8
SPACING = (1.0, 1.0, 2.0)
#: What native decoders print when nothing keeps them off the terminal.
NATIVE_NOISE = ("panicked", "stack backtrace", "Failed to decode", "SIZ marker", "stream length", "rust_begin_unwind")


def block(n: int) -> np.ndarray:
    """Air with a bone block that stops short of the first and last slice (a closed model)."""
    values = np.full((NZ, n, n), -1000.0)
    values[1:-1, n // 4 : 3 * n // 4, n // 4 : 3 * n // 4] = 1200
    return values


def medprint(*args: object, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, so that writes to fd 2 from native code are seen."""
    env = dict(os.environ, PYTHONPATH=str(REPO), RUST_BACKTRACE="1")
    return subprocess.run(
        [sys.executable, "-m", "medprint", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )


def foreign_lines(stderr: str) -> list[str]:
    """Lines of stderr that medprint did not write."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("medprint: ")]


def assert_clean_stderr(stderr: str) -> None:
    assert not foreign_lines(stderr), stderr
    for noise in NATIVE_NOISE:
        assert noise not in stderr, (noise, stderr)


# ----------------------------------------------------------------------------- damaging compressed frames


def rewrite_frame(path: Path, damage: Any, frame_index: int = 0) -> None:
    """Replace one compressed frame by ``damage(frame)``; the file around it stays well-formed."""
    ds = pydicom.dcmread(path)
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    frame = bytearray(damage(bytearray(frames[frame_index])))
    if len(frame) % 2:
        frame += b"\0"
    frames[frame_index] = bytes(frame)
    ds.PixelData = encapsulate(frames)
    ds.save_as(path)


def rle_overrun(frame: bytearray) -> bytearray:
    """Runs of the first segment overrun the image: pylibjpeg-rle panics (index out of bounds)."""
    first, second = struct.unpack("<2I", frame[4:12])  # RLE header: segment count, then offsets
    frame[first : second - 1 : 2] = b"\x81" * len(range(first, second - 1, 2))
    return frame


def j2k_bad_size(frame: bytearray) -> bytearray:
    """SIZ marker's image size inverted (end marker kept): OpenJPEG complains on fd 2."""
    frame[6:30] = bytes(b ^ 0xFF for b in frame[6:30])
    return frame


def j2k_bad_tile(frame: bytearray) -> bytearray:
    """Tile-part header inverted (end marker kept): OpenJPEG says the lengths do not match."""
    start = frame.find(b"\xff\x90") + 2  # after the SOT marker
    frame[start : start + 10] = bytes(b ^ 0xFF for b in frame[start : start + 10])
    return frame


def corrupt_series(folder: Path, syntax: str, damage: Any, slot: int) -> list[Path]:
    paths = write_ct_series(folder, block(32), SPACING, transfer_syntax=syntax)
    rewrite_frame(paths[slot], damage)
    return paths


NATIVE_DAMAGE = [(RLELossless, rle_overrun), (JPEG2000Lossless, j2k_bad_size), (JPEG2000Lossless, j2k_bad_tile)]
NATIVE_IDS = ["rle-panic", "j2k-siz", "j2k-tile"]


@pytest.mark.parametrize(("syntax", "damage"), NATIVE_DAMAGE, ids=NATIVE_IDS)
def test_native_decoder_noise_mid_series_stays_off_stderr_and_the_gap_is_refused(tmp_path, syntax, damage):
    corrupt_series(tmp_path / "scan", syntax, damage, slot=3)
    (tmp_path / "out").mkdir()
    done = medprint("convert", tmp_path / "scan", "-o", tmp_path / "out" / "model.stl")
    assert done.returncode == 1, done.stderr
    assert_clean_stderr(done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("medprint: error:")]
    assert len(errors) == 1 and "gap" in errors[0] and "--allow-gaps" in errors[0], done.stderr
    assert any("skipped unreadable file" in line for line in done.stderr.splitlines()), done.stderr
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("syntax", "damage"), NATIVE_DAMAGE[:2], ids=NATIVE_IDS[:2])
def test_native_decoder_noise_in_the_last_slice_stays_off_stderr_and_the_model_is_made(tmp_path, syntax, damage):
    corrupt_series(tmp_path / "scan", syntax, damage, slot=NZ - 1)
    (tmp_path / "out").mkdir()
    done = medprint("convert", tmp_path / "scan", "-o", tmp_path / "out" / "model.stl")
    assert done.returncode == 0, done.stderr
    assert_clean_stderr(done.stderr)
    assert (tmp_path / "out" / "model.stl").is_file()


@pytest.mark.parametrize(
    ("syntax", "damage", "said"),
    [(RLELossless, rle_overrun, ["panicked", "stack backtrace"]), (JPEG2000Lossless, j2k_bad_size, ["SIZ marker"])],
    ids=["rle-panic", "j2k-siz"],
)
def test_captured_decoder_output_is_one_debug_record_at_vv(tmp_path, syntax, damage, said):
    paths = corrupt_series(tmp_path / "scan", syntax, damage, slot=NZ - 1)
    number = sorted(p for p in (tmp_path / "scan").iterdir()).index(paths[-1]) + 1
    (tmp_path / "out").mkdir()
    done = medprint("-vv", "convert", tmp_path / "scan", "-o", tmp_path / "out" / "model.stl")
    assert done.returncode == 0, done.stderr
    assert not foreign_lines(done.stderr), done.stderr
    records = [line for line in done.stderr.splitlines() if "the decoder wrote to stderr" in line]
    assert len(records) == 1 and records[0].startswith(f"medprint: DEBUG: file {number} of {NZ}: "), done.stderr
    for text in said:
        assert text in records[0], records[0]


def test_panicking_frame_of_a_multiframe_file_gives_one_error_line_and_nothing_else(tmp_path):
    path = write_multiframe_ct(tmp_path / "scan.dcm", block(32), SPACING, transfer_syntax=RLELossless)
    rewrite_frame(path, rle_overrun, frame_index=3)
    (tmp_path / "out").mkdir()
    done = medprint("convert", path, "-o", tmp_path / "out" / "model.stl")
    assert done.returncode == 1, done.stderr
    assert_clean_stderr(done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("medprint: error:") and str(path) in lines[0], done.stderr


# ----------------------------------------------------------------------------- float pixel data with NaN/Inf


def to_float(path: Path, *, double: bool = False, bad: dict[tuple[int, ...], float] | None = None) -> None:
    """Rewrite a file's pixels as Float (or Double Float) Pixel Data holding the real values, ``bad`` set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    values = ds.pixel_array.astype(np.float64) * slope + intercept
    for where, value in (bad or {}).items():
        values[where] = value
    del ds.PixelData
    for keyword in ("BitsStored", "HighBit", "PixelRepresentation", "RescaleSlope", "RescaleIntercept"):
        if keyword in ds:
            delattr(ds, keyword)
    if "SharedFunctionalGroupsSequence" in ds:
        del ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
    if double:
        ds.BitsAllocated, ds.DoubleFloatPixelData = 64, values.astype(np.float64).tobytes()
    else:
        ds.BitsAllocated, ds.FloatPixelData = 32, values.astype(np.float32).tobytes()
    ds.save_as(path, enforce_file_format=True)


def float_series(folder: Path, *, double: bool = False, bad_slices: tuple[int, ...] = (), value: float = np.nan) -> None:
    """Float series; voxel (x 7, y 5) of each slice in ``bad_slices`` (by position) set to ``value``."""
    for k, path in enumerate(write_ct_series(folder, block(16), SPACING)):
        to_float(path, double=double, bad={(5, 7): value} if k in bad_slices else None)


def convert(source: Path, out_dir: Path, *extra: object):
    out_dir.mkdir(exist_ok=True)
    return run_cli("convert", source, "-o", out_dir / "model.stl", "--json", *extra)


@pytest.mark.parametrize(
    ("double", "value"), [(False, np.nan), (True, np.inf), (False, -np.inf)], ids=["float-nan", "double-inf", "float-minus-inf"]
)
def test_non_finite_float_series_is_refused_naming_the_series_count_and_place(tmp_path, double, value):
    float_series(tmp_path / "scan", double=double, bad_slices=(2, 4), value=value)
    outcome = convert(tmp_path / "scan", tmp_path / "out")
    assert_refused(
        outcome,
        mentions=["series 1", "2 voxels are NaN or infinite", "(7, 5, 2)", "slices k = 2..4", "--non-finite VALUE"],
        out_dir=tmp_path / "out",
    )


def test_non_finite_option_makes_the_float_series_usable_and_says_so(tmp_path):
    float_series(tmp_path / "scan", bad_slices=(3,))
    outcome = convert(tmp_path / "scan", tmp_path / "out", "--non-finite", "-1000")
    assert_succeeded(outcome)
    report = json.loads(outcome.stdout)
    assert "1 non-finite (NaN/Inf) voxels set to -1000 as --non-finite asked" in json.dumps(report)
    assert report["mesh"]["watertight"]


def test_fractional_float_values_are_not_truncated(tmp_path):
    # Integer storage would turn a 0.6 bone fraction into 0 and lose the model; floats must stay floats.
    folder = tmp_path / "scan"
    for path in write_ct_series(folder, block(16), SPACING):
        to_float(path)
        ds = pydicom.dcmread(path)
        values = np.frombuffer(ds.FloatPixelData, np.float32).reshape(16, 16)
        ds.FloatPixelData = np.where(values > 0, 0.6, 0.0).astype(np.float32).tobytes()
        ds.save_as(path)
    outcome = convert(folder, tmp_path / "out", "--modality", "MR", "--threshold", "0.5:1")
    assert_succeeded(outcome)
    assert json.loads(outcome.stdout)["mesh"]["watertight"]


def test_non_finite_multiframe_float_file_is_refused_naming_the_file(tmp_path):
    path = write_multiframe_ct(tmp_path / "map.dcm", block(16), SPACING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_float(path, bad={(6, 3, 4): np.nan})
    outcome = convert(path, tmp_path / "out")
    assert_refused(
        outcome, mentions=[str(path), "1 voxel is NaN or infinite", "(4, 3, 6)", "slice k = 6", "--non-finite"],
        out_dir=tmp_path / "out",
    )


def test_float_pixel_data_with_16_bits_allocated_is_refused_saying_the_header_does_not_match(tmp_path):
    path = write_multiframe_ct(tmp_path / "map.dcm", block(16), SPACING)
    to_float(path)
    ds = pydicom.dcmread(path)
    ds.BitsAllocated = 16
    ds.save_as(path)
    outcome = convert(path, tmp_path / "out")
    assert_refused(outcome, mentions=[str(path), "BitsAllocated is 16 for FloatPixelData", "32-bit"], out_dir=tmp_path / "out")


# ----------------------------------------------------------------------------- --allow-gaps for a single file


def multiframe_with_a_missing_frame(path: Path) -> Path:
    """A multi-frame file whose frame at 8 mm is missing (positions 0, 2, 4, 6, 10, ...)."""
    write_multiframe_ct(path, block(16), SPACING)
    ds = pydicom.dcmread(path)
    for index, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        if index >= 4:
            item.PlanePositionSequence[0].ImagePositionPatient = [0, 0, f"{(index + 1) * SPACING[2]:g}"]
    ds.save_as(path)
    return path


def test_missing_frame_in_a_single_file_is_refused_naming_the_file(tmp_path):
    path = multiframe_with_a_missing_frame(tmp_path / "scan.dcm")
    outcome = convert(path, tmp_path / "out")
    assert_refused(outcome, mentions=[str(path), "gap of 4 mm after slice 4 of 8", "--allow-gaps"], out_dir=tmp_path / "out")


def test_allow_gaps_is_honoured_for_a_single_multiframe_file(tmp_path):
    path = multiframe_with_a_missing_frame(tmp_path / "scan.dcm")
    outcome = convert(path, tmp_path / "out", "--allow-gaps")
    assert_succeeded(outcome)
    assert any("--allow-gaps: interpolating" in line for line in outcome.stderr.splitlines()), outcome.stderr
    assert json.loads(outcome.stdout)["input"]["dimensions_xyz"] == [16, 16, 9]  # 0..16 mm on a 2 mm grid
