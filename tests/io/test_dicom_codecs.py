"""Compressed DICOM series load through medprint exactly as their uncompressed originals.

Each encoding is made from the same native series (pydicom's encoders for RLE, JPEG-LS and JPEG 2000,
GDCM for JPEG lossless process 14, Pillow for lossy JPEG baseline), then both folders go through
:func:`medprint.io.load_volume` and the voxels are compared: identical for the lossless syntaxes, close
for the lossy one.  Unsigned (intercept -1024) and signed (intercept 0) storage are both covered.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_phantoms import write_ct_series
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from medprint.io import load_volume
from medprint.volume import Volume

SPACING = (0.7, 0.7, 2.5)


def _hu_phantom() -> np.ndarray:
    """Noisy HU values over the whole CT range: a bone sphere in soft tissue, air around, random texture."""
    # OpenJPEG's default five wavelet levels need at least 32 pixels a side.
    z, y, x = np.mgrid[0:6, 0:40, 0:44]
    rng = np.random.default_rng(7)
    inside = (x - 22) ** 2 + (y - 20) ** 2 + ((z - 3) * 3) ** 2
    values = np.where(inside < 15**2, 40.0, -1000.0)
    values[inside < 6**2] = 1500.0
    return values + rng.integers(-24, 25, size=values.shape)


def _native_series(folder: Path, intercept: float) -> list[Path]:
    return write_ct_series(folder, _hu_phantom(), SPACING, origin=(-9.8, -8.4, 30.0), intercept=intercept, seed=3)


def _with_pydicom(syntax: str) -> Callable[[Path, Path], None]:
    def transcode(source: Path, target: Path) -> None:
        ds = pydicom.dcmread(source)
        ds.compress(syntax, generate_instance_uid=False)
        ds.save_as(target, enforce_file_format=True)

    return transcode


def _deflated(source: Path, target: Path) -> None:
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(target, enforce_file_format=True)


def _with_gdcm_jpeg_lossless(source: Path, target: Path) -> None:
    gdcm = pytest.importorskip("gdcm", reason="python-gdcm encodes JPEG lossless process 14")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(source))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(target))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()


LOSSLESS = {
    RLELossless: _with_pydicom(RLELossless),
    JPEGLSLossless: _with_pydicom(JPEGLSLossless),
    JPEG2000Lossless: _with_pydicom(JPEG2000Lossless),
    JPEGLosslessSV1: _with_gdcm_jpeg_lossless,
    DeflatedExplicitVRLittleEndian: _deflated,
}


def _transcoded(native: list[Path], folder: Path, transcode: Callable[[Path, Path], None]) -> Path:
    folder.mkdir()
    for path in native:
        transcode(path, folder / path.name)
    return folder


def _same_geometry(a: Volume, b: Volume) -> None:
    assert a.geometry.spacing == pytest.approx(b.geometry.spacing)
    assert a.geometry.origin == pytest.approx(b.geometry.origin)
    assert a.geometry.direction == pytest.approx(b.geometry.direction)


@pytest.mark.parametrize("intercept", [-1024.0, 0.0], ids=["unsigned", "signed"])
@pytest.mark.parametrize("syntax", [pytest.param(uid, id=uid.name) for uid in LOSSLESS])
def test_lossless_series_loads_voxel_for_voxel_like_the_original(tmp_path: Path, syntax: str, intercept: float):
    native = _native_series(tmp_path / "native", intercept)
    encoded = _transcoded(native, tmp_path / "encoded", LOSSLESS[syntax])
    # The files really are in the syntax under test, not silently left native.
    assert {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
            for p in encoded.iterdir()} == {syntax}

    original, decoded = load_volume(tmp_path / "native"), load_volume(encoded)

    assert decoded.shape == original.shape
    assert np.array_equal(decoded.array, original.array)
    assert np.abs(original.array - _hu_phantom()).max() <= 0.5  # and the original holds the HU written
    _same_geometry(decoded, original)
    assert decoded.modality == "CT"


def _as_jpeg_baseline(path: Path, slice_8bit: np.ndarray) -> None:
    ds = pydicom.dcmread(path)
    buffer = io.BytesIO()
    Image.fromarray(slice_8bit, mode="L").save(buffer, format="JPEG", quality=95)
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)


def test_jpeg_baseline_series_loads_close_to_the_original(tmp_path: Path):
    z, y, x = np.mgrid[0:12, 0:40, 0:48]
    values = np.where((x - 24) ** 2 + (y - 20) ** 2 + ((z - 6) * 3) ** 2 < 15**2, 200, 30).astype(np.uint8)
    native = write_ct_series(tmp_path / "native", values.astype(float), (0.8, 0.8, 3.0), modality="MR",
                             intercept=0.0)
    encoded = tmp_path / "jpeg"
    shutil.copytree(tmp_path / "native", encoded)
    for k, path in enumerate(native):
        _as_jpeg_baseline(encoded / path.name, values[k])

    original, decoded = load_volume(tmp_path / "native"), load_volume(encoded)

    assert decoded.shape == original.shape
    assert not np.array_equal(decoded.array, original.array)  # lossy: the codec really ran
    assert np.abs(decoded.array.astype(float) - original.array).mean() < 2.0
    assert np.abs(decoded.array.astype(float) - original.array).max() < 40.0
    _same_geometry(decoded, original)
    assert decoded.modality == "MR"
