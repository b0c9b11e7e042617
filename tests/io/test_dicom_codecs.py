"""Transfer syntaxes beyond those pydicom can encode: JPEG baseline (Pillow) and JPEG lossless (GDCM)."""

import io

import numpy as np
import pydicom
from dicom_phantoms import write_ct_series
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from medprint.io import load_volume


def test_jpeg_lossless_process14_decodes_exactly():
    # The same image stored JPEG-lossless (process 14, common in CT archives) and RLE.
    lossless = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"))
    reference = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm"))
    assert lossless.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    assert np.array_equal(lossless.pixel_array, reference.pixel_array)


def _as_jpeg_baseline(path, slice_8bit):
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


def test_jpeg_baseline_series_loads_as_a_volume(tmp_path):
    z, y, x = np.mgrid[0:12, 0:40, 0:48]
    values = np.where((x - 24) ** 2 + (y - 20) ** 2 + ((z - 6) * 3) ** 2 < 15**2, 200, 30).astype(np.uint8)
    paths = write_ct_series(tmp_path, values.astype(float), (0.8, 0.8, 3.0), modality="MR", intercept=0.0)
    for k, path in enumerate(paths):
        _as_jpeg_baseline(path, values[k])

    volume = load_volume(tmp_path)

    assert volume.shape == values.shape
    assert np.abs(volume.array.astype(float) - values).mean() < 2.0  # lossy, but close
    assert volume.modality == "MR"
