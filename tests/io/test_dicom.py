"""DICOM series reading on series written by the tests (no real data needed)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import examples
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from dicom_phantoms import new_dataset, slice_grid_lps, write_ct_series
from medprint.errors import GeometryError, InputError, ParameterError
from medprint.io.dicom import choose_series, is_dicom_file, load_dicom_file, load_dicom_series, scan_dicom_folder

OBLIQUE_ROW = (np.cos(0.3), np.sin(0.3), 0.0)
OBLIQUE_COL = (-np.sin(0.3) * np.cos(0.2), np.cos(0.3) * np.cos(0.2), -np.sin(0.2))


def load_folder(folder: Path, **kwargs):
    scan = scan_dicom_folder(folder)
    info, _ = choose_series(scan, None)
    return load_dicom_series(info, **kwargs)


def ramp(nz=6, ny=10, nx=12, step=10):
    """Slice k holds k*step + small in-plane pattern, so order and layout are visible."""
    z, y, x = np.mgrid[:nz, :ny, :nx]
    return (z * step + y * 2 - x).astype(np.int16) - 200


# ----------------------------------------------------------------------------- order, rescale, geometry


def test_slices_ordered_by_position_not_file_name_or_instance_number(tmp_path):
    values = ramp()
    paths = write_ct_series(tmp_path, values, (0.8, 0.9, 2.5), (10, -20, 30), OBLIQUE_ROW, OBLIQUE_COL)
    instance_numbers = [pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber for p in paths]
    assert instance_numbers != sorted(instance_numbers)  # shuffled InstanceNumber...
    assert [p.name for p in paths] != sorted(p.name for p in paths)  # ...and file names
    volume = load_folder(tmp_path)
    np.testing.assert_array_equal(volume.array, values)


def test_rescale_to_hu_int16_from_unsigned_storage(tmp_path):
    values = ramp()
    paths = write_ct_series(tmp_path, values, (1, 1, 1), intercept=-1024)
    raw = pydicom.dcmread(paths[0])
    assert raw.PixelRepresentation == 0 and raw.pixel_array.dtype == np.uint16
    volume = load_folder(tmp_path)
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, values)
    assert volume.is_hounsfield


def test_fractional_rescale_gives_float32(tmp_path):
    values = ramp().astype(float) * 0.5
    write_ct_series(tmp_path, values, (1, 1, 1), slope=0.5, intercept=-1000.25)
    volume = load_folder(tmp_path)
    assert volume.array.dtype == np.float32
    np.testing.assert_allclose(volume.array, np.rint((values + 1000.25) / 0.5) * 0.5 - 1000.25, atol=1e-3)


def test_integer_rescale_beyond_int16_gives_float32(tmp_path):
    values = ramp() + 1000
    values = values.astype(np.int32) * 0 + 40000  # 40000 does not fit int16
    values[0, 0, 0] = 0
    write_ct_series(tmp_path, values, (1, 1, 1), intercept=0)
    volume = load_folder(tmp_path)
    assert volume.array.dtype == np.float32 and volume.array.max() == 40000


def test_geometry_follows_dicom_conventions(tmp_path):
    values = ramp()
    spacing, origin = (0.7, 0.9, 2.5), (10.0, -20.0, 30.0)  # x = column spacing, y = row spacing
    write_ct_series(tmp_path, values, spacing, origin, OBLIQUE_ROW, OBLIQUE_COL)
    ds = pydicom.dcmread(next(tmp_path.iterdir()), stop_before_pixels=True)
    assert [float(v) for v in ds.PixelSpacing] == [0.9, 0.7]  # DICOM: (between rows, between columns)
    volume = load_folder(tmp_path)
    geometry = volume.geometry
    np.testing.assert_allclose(geometry.spacing, spacing, atol=1e-6)
    np.testing.assert_allclose(geometry.origin, origin, atol=1e-5)
    np.testing.assert_allclose(geometry.direction_matrix[:, 0], OBLIQUE_ROW, atol=1e-6)
    np.testing.assert_allclose(geometry.direction_matrix[:, 1], OBLIQUE_COL, atol=1e-6)
    truth = slice_grid_lps(values.shape, spacing, origin, OBLIQUE_ROW, OBLIQUE_COL)
    k, j, i = 4, 7, 9  # array (z, y, x) = (slice, row, column); index (i, j, k)
    np.testing.assert_allclose(geometry.index_to_lps([i, j, k]), truth[k, j, i], atol=1e-4)


def test_slices_stored_against_the_normal_are_reordered(tmp_path):
    values = ramp()
    positions = -2.0 * np.arange(values.shape[0])  # written top to bottom along -normal
    write_ct_series(tmp_path, values, (1, 1, 2), slice_positions=positions)
    volume = load_folder(tmp_path)
    np.testing.assert_array_equal(volume.array, values[::-1])
    np.testing.assert_allclose(volume.geometry.origin, (0, 0, -10), atol=1e-6)
    assert volume.geometry.spacing[2] == pytest.approx(2.0)


# ----------------------------------------------------------------------------- duplicates, gaps, spacing


def test_identical_duplicate_is_dropped(tmp_path):
    paths = write_ct_series(tmp_path, ramp(), (1, 1, 2))
    shutil.copy(paths[2], tmp_path / "copy_of_slice")
    scan = scan_dicom_folder(tmp_path)
    assert any("duplicate position" in p for p in scan.series[0].problems)
    volume = load_dicom_series(scan.series[0])
    assert volume.shape[0] == 6
    assert any("duplicate" in note for note in volume.notes)


def test_conflicting_duplicate_is_refused_naming_both_slices_not_files(tmp_path):
    paths = write_ct_series(tmp_path, ramp(), (1, 1, 2))
    ds = pydicom.dcmread(paths[2])
    ds.PixelData = (ds.pixel_array + 5).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(tmp_path / "other_echo")
    with pytest.raises(GeometryError, match="same position") as info:
        load_folder(tmp_path)
    # File names may carry the patient's name: the message gives the position and the slice numbers.
    assert "LPS 0.0, 0.0, 4.0 mm" in str(info.value) and "slices 3 and 4 of 7" in str(info.value)
    assert "other_echo" not in str(info.value) and paths[2].name not in str(info.value)


def test_gap_refused_unless_allowed(tmp_path):
    values = ramp(nz=8)
    positions = [0, 2, 4, 6, 14, 16, 18, 20.0]  # slices at 8, 10, 12 missing
    write_ct_series(tmp_path, values, (1, 1, 2), slice_positions=positions)
    with pytest.raises(GeometryError, match="--allow-gaps") as info:
        load_folder(tmp_path)
    assert "gap of 8 mm after slice 4" in str(info.value)
    volume = load_folder(tmp_path, allow_gaps=True)
    assert volume.shape[0] == 11 and volume.geometry.spacing[2] == pytest.approx(2.0)
    assert any("gap" in note for note in volume.notes)


def test_uneven_spacing_is_resampled_linearly(tmp_path):
    positions = np.array([0, 1, 2, 3, 5, 7, 9, 11.0])
    z = positions[:, None, None] * np.ones((1, 10, 12))
    values = (20 * z).astype(np.int16)  # linear in z: interpolation must reproduce it exactly
    write_ct_series(tmp_path, values, (1, 1, 1), slice_positions=positions)
    scan = scan_dicom_folder(tmp_path)
    assert "uneven slice spacing 1..2 mm" in scan.series[0].problems
    volume = load_dicom_series(scan.series[0])
    assert volume.geometry.spacing[2] == pytest.approx(1.0)  # smallest spacing present
    assert volume.shape == (12, 10, 12)
    np.testing.assert_array_equal(volume.array[:, 5, 5], 20 * np.arange(12))
    assert any("uneven slice spacing" in note for note in volume.notes)


# ----------------------------------------------------------------------------- gantry tilt


def sphere_series(folder: Path, tilt_deg: float):
    """A 12 mm sphere (1000 HU in -1000 HU) at a known LPS point, sampled where tilted slices lie."""
    spacing, origin, shape = (1.0, 1.0, 2.0), (-30.0, -40.0, 0.0), (40, 64, 64)
    centre = np.array([2.0, -5.0, 40.0])
    lps = slice_grid_lps(shape, spacing, origin, (1, 0, 0), (0, 1, 0), tilt_deg=tilt_deg)
    values = np.where(np.linalg.norm(lps - centre, axis=-1) <= 12.0, 1000, -1000)
    write_ct_series(folder, values, spacing, origin, tilt_deg=tilt_deg)
    return centre


def centroid_and_radius(volume):
    mask = volume.array > 0
    ijk = np.argwhere(mask)[:, ::-1]
    centroid = volume.geometry.index_to_lps(ijk).mean(axis=0)
    radius = (3 * mask.sum() * volume.geometry.voxel_volume_mm3 / (4 * np.pi)) ** (1 / 3)
    return centroid, radius


def test_gantry_tilt_is_corrected(tmp_path):
    centre = sphere_series(tmp_path, tilt_deg=18.0)
    scan = scan_dicom_folder(tmp_path)
    assert "gantry tilt 18.0 deg" in scan.series[0].problems
    volume = load_dicom_series(scan.series[0])
    assert any("gantry tilt 18.0 deg" in note for note in volume.notes)
    assert not volume.geometry.is_left_handed
    centroid, radius = centroid_and_radius(volume)
    assert np.linalg.norm(centroid - centre) < 1.0  # within a voxel
    assert abs(radius - 12.0) < 0.5
    assert volume.array.min() == -1000  # outside the sheared footprint: the series minimum


def test_naive_stacking_of_tilted_series_is_wrong(tmp_path):
    """Control for the test above: ignoring the tilt misplaces the sphere by several mm."""
    centre = sphere_series(tmp_path, tilt_deg=18.0)
    volume = load_folder(tmp_path)
    scan = scan_dicom_folder(tmp_path)
    raw = np.stack([pydicom.dcmread(p).pixel_array.astype(int) - 1024 for p in scan.series[0].files])
    naive = type(volume)(raw, volume.geometry.__class__(spacing=(1.0, 1.0, 2.0)), "CT")
    naive_centroid, _ = centroid_and_radius(naive)
    assert np.linalg.norm(naive_centroid - (centre - (-30.0, -40.0, 0.0))) > 5.0


# ----------------------------------------------------------------------------- compression


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=["rle", "jpegls", "j2k"])
def test_compressed_series_decode(tmp_path, syntax):
    values = ramp(nz=4, ny=64, nx=48)  # J2K needs at least ~32 pixels per side
    paths = write_ct_series(tmp_path, values, (1, 1, 2), transfer_syntax=syntax)
    assert pydicom.dcmread(paths[0], stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    volume = load_folder(tmp_path)
    np.testing.assert_array_equal(volume.array, values)


# ----------------------------------------------------------------------------- bad input


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="is empty"):
        scan_dicom_folder(tmp_path)


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.dcm").write_text("not a DICOM file, whatever its suffix says\n" * 10)
    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(InputError, match=r"no DICOM image files in .* \(2 files looked at: none is DICOM\)"):
        scan_dicom_folder(tmp_path)
    assert not is_dicom_file(tmp_path / "notes.dcm")
    shutil.copy(examples.get_path("ct"), tmp_path / "no_suffix")
    assert is_dicom_file(tmp_path / "no_suffix")


def test_recursive_any_names_and_non_image_dicom_skipped(tmp_path):
    write_ct_series(tmp_path / "a" / "b", ramp(), (1, 1, 2))
    (tmp_path / "README").write_text("hello")
    report = new_dataset("1.2.840.10008.5.1.4.1.1.88.11", "SR")  # a basic text report: DICOM, no pixels
    report.save_as(tmp_path / "a" / "report", enforce_file_format=True)
    scan = scan_dicom_folder(tmp_path)
    assert len(scan.series) == 1 and scan.series[0].slice_count == 6
    assert (scan.skipped_not_dicom, scan.skipped_not_image) == (1, 1)


def test_truncated_file_skipped_and_reported(tmp_path, caplog):
    paths = write_ct_series(tmp_path, ramp(), (1, 1, 2))
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: len(data) - 100])
    with caplog.at_level(logging.WARNING, logger="medprint"):
        scan = scan_dicom_folder(tmp_path)
    assert scan.unreadable == (paths[3],)
    number = sorted(tmp_path.iterdir()).index(paths[3]) + 1
    assert scan.unreadable_numbers == (number,) and scan.file_count == 6
    assert f"file {number} of 6" in caplog.text and paths[3].name not in caplog.text
    assert scan.series[0].slice_count == 5
    with pytest.raises(GeometryError, match="--allow-gaps"):  # the missing slice is a gap of twice the spacing
        load_dicom_series(scan.series[0])
    volume = load_dicom_series(scan.series[0], allow_gaps=True)
    assert volume.shape[0] == 6 and any("gap" in note for note in volume.notes)
    assert any(f"file {number} of 6" in note and "truncated" in note for note in volume.notes)


def test_file_damaged_after_scan_is_skipped_with_note(tmp_path, caplog):
    paths = write_ct_series(tmp_path, ramp(), (1, 1, 2))
    scan = scan_dicom_folder(tmp_path)
    paths[-1].write_bytes(paths[-1].read_bytes()[:300])
    with caplog.at_level(logging.WARNING, logger="medprint"):
        volume = load_dicom_series(scan.series[0])
    assert volume.shape[0] == 5
    number = scan.series[0].file_numbers[-1]
    assert any(f"file {number} of 6" in note for note in volume.notes) and f"file {number} of 6" in caplog.text
    assert paths[-1].name not in caplog.text


def test_image_header_without_pixel_data_is_a_cut_file_not_a_non_image(tmp_path):
    paths = write_ct_series(tmp_path, ramp(), (1, 1, 2))
    header = pydicom.dcmread(paths[-1], stop_before_pixels=True)  # as if copied up to the pixel data only
    header.save_as(paths[-1])
    scan = scan_dicom_folder(tmp_path)
    assert scan.unreadable == (paths[-1],) and scan.skipped_not_image == 0
    assert any("cut short" in p for p in scan.series[0].problems)


def test_single_slice_is_not_a_volume(tmp_path):
    shutil.copy(examples.get_path("ct"), tmp_path / "only")
    scan = scan_dicom_folder(tmp_path)
    with pytest.raises(InputError, match="at least 2"):
        load_dicom_series(scan.series[0])
    with pytest.raises(InputError, match="single image"):
        load_dicom_file(tmp_path / "only")


def test_mixed_sizes_under_one_uid_are_split(tmp_path):
    write_ct_series(tmp_path / "big", ramp(ny=10), (1, 1, 2), series_uid="1.2.3.4")
    write_ct_series(tmp_path / "small", ramp(nz=3, ny=8), (1, 1, 2), series_uid="1.2.3.4")
    scan = scan_dicom_folder(tmp_path)
    assert [(s.uid, s.slice_count) for s in scan.series] == [("1.2.3.4#1", 6), ("1.2.3.4#2", 3)]
    assert all("2 image sizes (12x10, 12x8)" in s.problems[0] for s in scan.series)


# ----------------------------------------------------------------------------- choosing, metadata


def test_choose_series(tmp_path):
    write_ct_series(tmp_path / "s1", ramp(nz=3), (1, 1, 2), series_uid="1.2.840.1.111")
    write_ct_series(tmp_path / "s2", ramp(nz=5), (1, 1, 2), series_uid="1.2.840.1.222")
    write_ct_series(tmp_path / "s3", ramp(nz=9), (1, 1, 2), series_uid="1.2.840.1.333", modality="OT")
    scan = scan_dicom_folder(tmp_path)
    assert [s.uid for s in scan.series] == ["1.2.840.1.222", "1.2.840.1.111", "1.2.840.1.333"]
    assert [s.number for s in scan.series] == [1, 2, 3]
    info, reason = choose_series(scan, None)
    assert info.uid == "1.2.840.1.222" and reason == "largest CT series (5 slices) of 3"
    assert choose_series(scan, "2")[0].uid == "1.2.840.1.111"
    assert choose_series(scan, "1.2.840.1.3")[0].number == 3  # unique UID prefix
    with pytest.raises(ParameterError, match=r"'7' matches no series.*1 \(CT, 5 slices\)"):
        choose_series(scan, "7")
    with pytest.raises(ParameterError, match="matches several"):
        choose_series(scan, "1.2.840.1.")


def test_metadata_is_deidentified_and_phi_kept_apart(tmp_path):
    write_ct_series(tmp_path, ramp(), (1, 1, 2), series_uid="1.2.3.99", description="head bone")
    scan = scan_dicom_folder(tmp_path)
    info = scan.series[0]
    assert info.phi == {"PatientName": "Phantom^Test", "PatientID": "PHANTOM-001", "PatientBirthDate": "19700101"}
    assert "Phantom" not in repr(info)  # no PHI in logs of the listing
    volume = load_dicom_series(info)
    assert volume.metadata["series_uid"] == "1.2.3.99"
    assert volume.metadata["series_description"] == "head bone"
    assert volume.metadata["convolution_kernel"] == "B30f" and volume.metadata["kvp"] == "120"
    flat = " ".join(volume.metadata.values()) + " ".join(volume.metadata)
    for secret in ("Phantom", "PHANTOM-001", "1970", "2024", "date"):
        assert secret not in flat


def test_series_info_listing(tmp_path):
    write_ct_series(tmp_path, ramp(), (0.7, 0.9, 2.5), (0, 0, 0), OBLIQUE_ROW, OBLIQUE_COL)
    info = scan_dicom_folder(tmp_path).series[0]
    assert (info.rows, info.columns, info.slice_count, info.modality) == (10, 12, 6, "CT")
    assert info.spacing == pytest.approx((0.7, 0.9, 2.5))
    assert info.orientation == "LPS"
    assert info.problems == ()
    positions = [float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]) for p in info.files]
    assert positions == sorted(positions)  # sorted along the normal (mostly S here)


# ----------------------------------------------------------------------------- decoder failures


class _Panic(BaseException):
    """Stands in for pyo3's PanicException: a BaseException, not an Exception."""


class _Exploding:
    """A dataset whose pixel decoder raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.file_meta = {"TransferSyntaxUID": RLELossless}
        self.Rows = self.Columns = 4

    def get(self, keyword, default=None):
        return default

    def __contains__(self, keyword):
        return False

    @property
    def pixel_array(self):
        raise self.error


def test_decoder_panic_becomes_a_decode_error_naming_the_syntax():
    from medprint.io import dicom_headers as hdr

    with pytest.raises(hdr.DecodeError, match="RLE Lossless pixel data cannot be decoded \\(index out of bounds\\)"):
        hdr.decode_pixels(_Exploding(_Panic("index out of bounds")))


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(1), MemoryError(), GeneratorExit()])
def test_requests_to_stop_and_out_of_memory_pass_through_the_decoder_guard(error):
    from medprint.io import dicom_headers as hdr

    with pytest.raises(type(error)):
        hdr.decode_pixels(_Exploding(error))


# ----------------------------------------------------------------------------- native decoder output on fd 2


def test_native_stderr_capture_keeps_fd2_writes_off_stderr_and_python_text_on_it(capfd, caplog, monkeypatch):
    import io
    import os
    import sys

    from medprint.io import dicom_headers as hdr

    # A buffered sys.stderr on fd 2, as a terminal's is: what it holds must not land in the capture.
    python_stderr = io.TextIOWrapper(open(2, "wb", closefd=False), write_through=False)  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", python_stderr)
    caplog.set_level(logging.DEBUG, logger="medprint")
    python_stderr.write("python text written before the decoder\n")
    with hdr.NativeStderr() as capture:
        with capture.capture("file 3 of 8"):
            python_stderr.flush()  # a plugin flushing Python's stderr inside the window must not swallow the text
            os.write(2, b"thread '<unnamed>' panicked at src/lib.rs\nstack backtrace:\n   0: rust_begin_unwind\n")
        with capture.capture("file 4 of 8"):
            pass  # nothing written: no record
        with capture.capture("file 5 of 8"):
            os.write(2, b"Failed to decode")  # the file is reused: only this call's text is reported
    python_stderr.flush()
    err = capfd.readouterr().err
    assert "python text written before the decoder" in err
    assert "panicked" not in err and "backtrace" not in err and "Failed" not in err
    records = [r.getMessage() for r in caplog.records if "the decoder wrote to stderr" in r.getMessage()]
    assert records == [
        (
            "file 3 of 8: the decoder wrote to stderr: thread '<unnamed>' panicked at src/lib.rs | stack backtrace: | "
            "0: rust_begin_unwind"
        ),
        "file 5 of 8: the decoder wrote to stderr: Failed to decode",
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "decoder wrote" in r.getMessage())


def test_native_stderr_is_restored_on_keyboard_interrupt(capfd):
    import os

    from medprint.io import dicom_headers as hdr

    before = os.fstat(2)
    with hdr.NativeStderr() as capture, pytest.raises(KeyboardInterrupt), capture.capture("file 1 of 2"):
        raise KeyboardInterrupt
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    os.write(2, b"written after the interrupt\n")
    assert "written after the interrupt" in capfd.readouterr().err


def test_uncompressed_pixel_data_are_decoded_without_touching_fd2(tmp_path, monkeypatch):
    from medprint.io import dicom_headers as hdr

    def no_capture(self, label):
        raise AssertionError("native pixel data need no capture")

    monkeypatch.setattr(hdr.NativeStderr, "capture", no_capture)
    path = write_ct_series(tmp_path, ramp(), (1, 1, 1))[0]
    assert hdr.decode_pixels(pydicom.dcmread(path)).shape == (10, 12)


def test_compressed_pixel_data_are_decoded_inside_the_capture(tmp_path, monkeypatch):
    import contextlib

    from medprint.io import dicom_headers as hdr

    labels = []

    @contextlib.contextmanager
    def spy(self, label):
        labels.append(label)
        yield

    monkeypatch.setattr(hdr.NativeStderr, "capture", spy)
    write_ct_series(tmp_path, ramp(), (1, 1, 1), transfer_syntax=RLELossless)
    load_folder(tmp_path)
    assert len(labels) == 6 and all(label.startswith("file ") and label.endswith(" of 6") for label in labels)


# ----------------------------------------------------------------------------- float pixel data


def _as_float_pixels(path: Path, *, double: bool, nan_at: tuple[int, int] | None = None) -> np.ndarray:
    ds = pydicom.dcmread(path)
    values = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept) + 0.25
    if nan_at is not None:
        values[nan_at] = np.nan
    del ds.PixelData, ds.RescaleSlope, ds.RescaleIntercept, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    if double:
        ds.BitsAllocated, ds.DoubleFloatPixelData = 64, values.tobytes()
    else:
        ds.BitsAllocated, ds.FloatPixelData = 32, values.astype(np.float32).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return values


@pytest.mark.parametrize("double", [False, True], ids=["float", "double"])
def test_float_pixel_data_load_as_float32_values_in_slice_order(tmp_path, double):
    paths = write_ct_series(tmp_path, ramp(), (1, 1, 2))
    expected = np.stack([_as_float_pixels(p, double=double) for p in paths])
    volume = load_folder(tmp_path)
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, expected.astype(np.float32))


def test_nan_in_float_pixel_data_is_refused_or_replaced_as_asked(tmp_path):
    paths = write_ct_series(tmp_path, ramp(), (1, 1, 2))
    for k, path in enumerate(paths):
        _as_float_pixels(path, double=False, nan_at=(2, 3) if k == 4 else None)
    with pytest.raises(InputError, match=r"series 1: 1 voxel is NaN or infinite, the first at voxel \(i, j, k\) = \(3, 2, 4\), in slice k = 4; pass --non-finite"):
        load_folder(tmp_path)
    volume = load_folder(tmp_path, non_finite=-7.0)
    assert volume.array[4, 2, 3] == -7.0 and np.isfinite(volume.array).all()
    assert "1 non-finite (NaN/Inf) voxels set to -7 as --non-finite asked" in volume.notes


def test_load_volume_passes_allow_gaps_and_non_finite_to_a_single_file(tmp_path, monkeypatch):
    from medprint.io import dicom, load_volume

    seen = {}

    def fake_load(path, **kwargs):
        seen.update(kwargs)
        raise InputError("stop here")

    path = write_ct_series(tmp_path, ramp(), (1, 1, 1))[0]
    monkeypatch.setattr(dicom, "load_dicom_file", fake_load)
    with pytest.raises(InputError, match="stop here"):
        load_volume(path, allow_gaps=True, non_finite=-1000.0)
    assert seen["allow_gaps"] is True and seen["non_finite"] == -1000.0
