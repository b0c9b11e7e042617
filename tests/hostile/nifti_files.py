"""Byte-level builders of the hostile suite's NIfTI files (shared by the scan and the label-map cases)."""

from __future__ import annotations

import struct
from pathlib import Path

import nibabel as nib
import numpy as np

PIXDIM = 76  # byte offset of pixdim[0] in a NIfTI-1 header
VOX_OFFSET = 352  # 348-byte header + 4 extension bytes


def nifti_bytes(array_xyz: np.ndarray, *, affine: np.ndarray | None = None, qform: bool = True,
                sform: bool = False) -> bytes:
    """A NIfTI-1 single file (header, 4 extension bytes, voxels), qform/sform codes as asked; 1 x 1 x 2 mm."""
    header = nib.Nifti1Header()
    header.set_data_shape(array_xyz.shape)
    header.set_data_dtype(array_xyz.dtype)
    affine = np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine
    header.set_qform(affine if qform else None, 1 if qform else 0)
    header.set_sform(affine if sform else None, 2 if sform else 0)
    header["vox_offset"] = VOX_OFFSET
    return header.binaryblock + b"\0" * 4 + array_xyz.tobytes(order="F")


def patched(data: bytes, offset: int, fmt: str, *values: float) -> bytes:
    """``data`` with ``values`` packed at ``offset`` (struct format ``fmt``)."""
    raw = bytearray(data)
    struct.pack_into(fmt, raw, offset, *values)
    return bytes(raw)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
