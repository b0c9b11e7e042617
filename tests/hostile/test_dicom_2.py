"""DICOM that looks complete but would be read wrongly: a CT without its rescale, a Modality LUT, a multi-frame
file in which a frame has lost its place (found by a hostile review of issue 9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_phantoms import write_ct_series, write_multiframe_ct
from harness import assert_refused, assert_succeeded, run_cli

from medprint.io import load_volume


def _cube_hu() -> np.ndarray:
    z, y, x = np.mgrid[:8, :16, :16]
    return np.where((abs(x - 7.5) < 5) & (abs(y - 7.5) < 5) & (abs(z - 3.5) < 3), 1200.0, 40.0)


def _edit_every_file(folder: Path, edit) -> None:
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path)


@pytest.mark.parametrize("missing", ["RescaleIntercept", "RescaleSlope"])
def test_ct_without_its_rescale_is_refused_not_read_as_hounsfield(tmp_path: Path, missing: str) -> None:
    # Stored values are HU + 1024: read without the intercept, soft tissue (40 HU) would be printed as bone.
    folder = tmp_path / "scan"
    write_ct_series(folder, _cube_hu(), (1.0, 1.0, 2.0))
    _edit_every_file(folder, lambda ds: delattr(ds, missing))
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(run_cli("convert", folder, "-o", out / "m.stl"), mentions=[str(folder)], out_dir=out)


def test_a_single_ct_file_without_rescale_names_the_attribute(tmp_path: Path) -> None:
    path = write_multiframe_ct(tmp_path / "mf.dcm", _cube_hu(), (1.0, 1.0, 2.0))
    ds = pydicom.dcmread(path)
    del ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
    ds.save_as(path)
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(run_cli("convert", path, "-o", out / "m.stl"), mentions=["mf.dcm"], out_dir=out)


def test_a_modality_lut_is_applied(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    write_ct_series(folder, _cube_hu(), (1.0, 1.0, 2.0))
    plain = load_volume(folder).array

    def to_lut(ds: pydicom.Dataset) -> None:
        # The same mapping as slope 1, intercept -1024, given as a table, plus 100 HU: the table must win.
        del ds.RescaleIntercept, ds.RescaleSlope
        item = pydicom.Dataset()
        item.LUTDescriptor = [4096, 0, 16]
        item.ModalityLUTType = "HU"
        item.add_new(0x00283006, "US", [max(0, v - 1024 + 100) for v in range(4096)])  # LUTData, 16-bit words
        ds.ModalityLUTSequence = [item]

    _edit_every_file(folder, to_lut)
    with_lut = load_volume(folder).array
    inside = plain > 1000
    assert np.allclose(with_lut[inside], plain[inside] + 100)


@pytest.mark.parametrize("damage", ["frame without position", "one item short"])
def test_multiframe_file_whose_frame_lost_its_place_is_refused(tmp_path: Path, damage: str) -> None:
    path = write_multiframe_ct(tmp_path / "mf.dcm", _cube_hu(), (1.0, 1.0, 2.0))
    ds = pydicom.dcmread(path)
    if damage == "frame without position":
        del ds.PerFrameFunctionalGroupsSequence[4].PlanePositionSequence
    else:
        del ds.PerFrameFunctionalGroupsSequence[-1]
    ds.save_as(path)
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(run_cli("convert", path, "-o", out / "m.stl"), mentions=["mf.dcm"], out_dir=out)


def test_intact_multiframe_file_still_converts(tmp_path: Path) -> None:
    path = write_multiframe_ct(tmp_path / "mf.dcm", _cube_hu(), (1.0, 1.0, 2.0))
    out = tmp_path / "out"
    out.mkdir()
    assert_succeeded(run_cli("convert", path, "-o", out / "m.stl"))


@pytest.mark.parametrize("selector", ["", "   "])
def test_an_empty_series_selector_is_refused_not_taken_as_the_default(tmp_path: Path, selector: str) -> None:
    folder = tmp_path / "scan"
    write_ct_series(folder, _cube_hu(), (1.0, 1.0, 2.0))
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(run_cli("convert", folder, "-o", out / "m.stl", "--series", selector), mentions=["--series"],
                   out_dir=out)


def test_series_listing_in_an_error_gives_numbers_not_uids(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    write_ct_series(folder, _cube_hu(), (1.0, 1.0, 2.0), series_uid="1.2.826.0.1.99999.7")
    out = tmp_path / "out"
    out.mkdir()
    line = assert_refused(run_cli("convert", folder, "-o", out / "m.stl", "--series", "9"), mentions=["--series"],
                          out_dir=out)
    assert "1.2.826.0.1.99999.7" not in line and "1 (CT, 8 slices)" in line
