"""Write small synthetic DICOM series for tests (shared by all test packages).

The main entry point is :func:`write_ct_series`; :func:`slice_grid_lps` gives the
LPS position of every pixel of such a series so that a test can sample an
analytic phantom exactly where the scanner would have.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    PYDICOM_IMPLEMENTATION_UID,
    generate_uid,
)

__all__ = ["slice_origins_lps", "slice_grid_lps", "write_ct_series"]

_NATIVE_SYNTAXES = {ExplicitVRLittleEndian, "1.2.840.10008.1.2"}


def slice_origins_lps(
    n_slices: int,
    slice_spacing: float,
    origin: ArrayLike,
    row_cos: ArrayLike,
    col_cos: ArrayLike,
    *,
    slice_positions: Sequence[float] | None = None,
    tilt_deg: float = 0.0,
) -> NDArray[np.float64]:
    """ImagePositionPatient of each slice, in slice order, shape ``(n, 3)``.

    Slice ``k`` sits ``d_k`` mm along the normal ``row_cos x col_cos`` (``d_k =
    k * slice_spacing`` unless ``slice_positions`` gives them) and, with a gantry
    tilt, is shifted by ``d_k * tan(tilt)`` along the column direction.
    """
    row = np.asarray(row_cos, dtype=float)
    col = np.asarray(col_cos, dtype=float)
    normal = np.cross(row, col)
    if slice_positions is None:
        d = np.arange(n_slices) * float(slice_spacing)
    else:
        d = np.asarray(slice_positions, dtype=float)
        if d.shape != (n_slices,):
            raise ValueError(f"slice_positions needs {n_slices} values, got {d.shape}")
    shift = d * np.tan(np.radians(tilt_deg))
    return np.asarray(origin, dtype=float) + d[:, None] * normal + shift[:, None] * col


def slice_grid_lps(
    shape_zyx: tuple[int, int, int],
    spacing_xyz: Sequence[float],
    origin: ArrayLike,
    row_cos: ArrayLike,
    col_cos: ArrayLike,
    *,
    slice_positions: Sequence[float] | None = None,
    tilt_deg: float = 0.0,
) -> NDArray[np.float64]:
    """LPS position (mm) of every pixel of a series, shape ``(z, y, x, 3)``."""
    nz, ny, nx = shape_zyx
    starts = slice_origins_lps(
        nz, spacing_xyz[2], origin, row_cos, col_cos, slice_positions=slice_positions, tilt_deg=tilt_deg
    )
    i = np.arange(nx) * float(spacing_xyz[0])
    j = np.arange(ny) * float(spacing_xyz[1])
    in_plane = j[:, None, None] * np.asarray(col_cos, float) + i[None, :, None] * np.asarray(row_cos, float)
    return starts[:, None, None, :] + in_plane[None]


def write_ct_series(
    folder: str | Path,
    array_zyx_hu: ArrayLike,
    spacing_xyz: Sequence[float],
    origin: ArrayLike = (0.0, 0.0, 0.0),
    row_cos: ArrayLike = (1.0, 0.0, 0.0),
    col_cos: ArrayLike = (0.0, 1.0, 0.0),
    *,
    slice_positions: Sequence[float] | None = None,
    tilt_deg: float = 0.0,
    shuffle_names: bool = True,
    series_uid: str | None = None,
    modality: str = "CT",
    transfer_syntax: str = ExplicitVRLittleEndian,
    slope: float = 1.0,
    intercept: float = -1024.0,
    description: str = "test phantom",
    patient_name: str = "Phantom^Test",
    seed: int = 0,
) -> list[Path]:
    """Write a volume as a classic single-frame DICOM series, one file per slice.

    Parameters
    ----------
    folder : path
        Created if missing.
    array_zyx_hu : array, shape (z, y, x)
        Real-world values (HU for CT); stored as ``round((v - intercept) / slope)``
        in uint16 when all stored values are >= 0, else int16.
    spacing_xyz : 3 floats
        Column spacing, row spacing and slice spacing along the normal (mm).
    origin, row_cos, col_cos
        IPP of slice 0 and ImageOrientationPatient's two halves.
    slice_positions : floats, optional
        Distance of each slice along the normal (uneven spacing, gaps).
    tilt_deg : float
        Gantry tilt: slices shift along ``col_cos`` by ``d * tan(tilt)``.
    shuffle_names : bool
        Random file names and InstanceNumbers, so that only IPP tells the order.
    transfer_syntax : UID
        Native or any syntax ``Dataset.compress`` can encode (RLE, JPEG-LS, J2K).

    Returns
    -------
    list of Path
        The files in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = np.asarray(array_zyx_hu, dtype=float)
    stored = np.rint((values - intercept) / slope)
    dtype = np.uint16 if stored.min() >= 0 else np.int16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError(f"values do not fit {dtype.__name__} with slope {slope}, intercept {intercept}")
    stored = stored.astype(dtype)
    nz, ny, nx = stored.shape
    ipps = slice_origins_lps(
        nz, spacing_xyz[2], origin, row_cos, col_cos, slice_positions=slice_positions, tilt_deg=tilt_deg
    )
    rng = random.Random(seed)
    order = list(range(nz))
    if shuffle_names:
        rng.shuffle(order)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    paths = []
    for k in range(nz):
        ds = _slice_dataset(stored[k], modality, series_uid, study_uid, description, patient_name)
        ds.ImagePositionPatient = [f"{v:.6f}" for v in ipps[k]]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_cos, *col_cos)]
        ds.PixelSpacing = [f"{spacing_xyz[1]:.6f}", f"{spacing_xyz[0]:.6f}"]
        ds.SliceThickness = f"{spacing_xyz[2]:.4f}"
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.InstanceNumber = order[k] + 1
        if tilt_deg:
            ds.GantryDetectorTilt = f"{tilt_deg:g}"
        if transfer_syntax not in _NATIVE_SYNTAXES:
            ds.compress(transfer_syntax, generate_instance_uid=False)
        else:
            ds.file_meta.TransferSyntaxUID = transfer_syntax
        name = f"IM{order[k] * 7919 % 100003:06d}" if shuffle_names else f"slice{k:04d}.dcm"
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def new_dataset(sop_class: str, modality: str) -> Dataset:
    """An empty DICOM instance of ``sop_class`` with its file meta (explicit VR little endian), ready to fill."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    return ds


def _slice_dataset(
    pixels: NDArray[np.integer], modality: str, series_uid: str, study_uid: str, description: str, patient: str
) -> Dataset:
    ds = new_dataset(MRImageStorage if modality == "MR" else CTImageStorage, modality)
    ds.SeriesInstanceUID = series_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesNumber = 3
    ds.SeriesDescription = description
    ds.Manufacturer = "medprint tests"
    ds.PatientName = patient
    ds.PatientID = "PHANTOM-001"
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240101"
    ds.KVP = "120"
    ds.ConvolutionKernel = "B30f"
    ds.BodyPartExamined = "HEAD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def write_multiframe_ct(
    path: str | Path,
    array_zyx_hu: ArrayLike,
    spacing_xyz: Sequence[float],
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    intercept: float = -1024.0,
) -> Path:
    """Write a volume as one enhanced-style multi-frame CT file, axial frames along +z.

    Geometry lives in the functional groups: a Plane Position per frame, the
    orientation, pixel measures and rescale shared.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = np.rint(np.asarray(array_zyx_hu, dtype=float) - intercept).astype(np.uint16)
    nz, ny, nx = stored.shape
    ds = _slice_dataset(stored[0], "CT", generate_uid(), generate_uid(), "multi-frame phantom", "Phantom^Test")
    ds.NumberOfFrames = nz
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    shared = Dataset()
    orientation, measures, rescale = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [f"{spacing_xyz[1]:g}", f"{spacing_xyz[0]:g}"]
    measures.SliceThickness = f"{spacing_xyz[2]:g}"
    rescale.RescaleSlope, rescale.RescaleIntercept, rescale.RescaleType = "1", f"{intercept:g}", "HU"
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]
    shared.PixelValueTransformationSequence = [rescale]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in range(nz):
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [0, 0, f"{k * spacing_xyz[2]:g}"]
        item.PlanePositionSequence = [position]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    if transfer_syntax not in _NATIVE_SYNTAXES:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    return path
