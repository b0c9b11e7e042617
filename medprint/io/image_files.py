"""Single-file volumes: NIfTI, NRRD, MetaImage (MHA/MHD), read with SimpleITK.

SimpleITK already reports geometry in ITK's LPS convention (it converts
NIfTI's RAS qform/sform on reading), so origin and direction are taken over
as they are.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError
from ..geometry import Geometry
from ..volume import Volume

log = logging.getLogger("medprint")

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")

# Values below this only occur in Hounsfield data (air is -1000 HU).
_HU_AIR_CEILING = -900.0


def is_image_file(path: Path) -> bool:
    """True when the file name has one of the image suffixes medprint reads."""
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in IMAGE_SUFFIXES)


def load_image_file(path: Path, *, modality: str | None = None) -> Volume:
    """Read a NIfTI, NRRD or MetaImage volume.

    Parameters
    ----------
    path : Path
    modality : str, optional
        ``'CT'`` or ``'MR'``; these formats do not record it.  When omitted,
        a scan whose values reach below -900 is taken as CT (only Hounsfield
        data has air at -1000) and the guess is recorded in the volume's notes.
    """
    image = _read(path)
    if image.GetDimension() != 3:
        raise InputError(f"{path}: medprint needs a 3-D volume, this image is {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: has {image.GetNumberOfComponentsPerPixel()} values per voxel (colour or vector image); "
            "give a single-channel scan"
        )
    array = sitk.GetArrayFromImage(image)
    try:
        geometry = Geometry(spacing=image.GetSpacing(), origin=image.GetOrigin(), direction=image.GetDirection())
    except GeometryError as error:
        raise GeometryError(f"{path}: {error}") from None
    chosen, note = _decide_modality(array, modality)
    notes = (note,) if note else ()
    if note:
        log.info("%s: %s", path.name, note)
    metadata = {"source_format": _format_name(path), "modality": chosen}
    return Volume(array=array, geometry=geometry, modality=chosen, metadata=metadata, notes=notes)


def _read(path: Path) -> sitk.Image:
    try:
        if path.name.lower().endswith(".nii"):
            _check_nifti_complete(path)
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise InputError(f"{path}: cannot read this image ({first_line.strip()}); is the file complete?") from None


def _check_nifti_complete(path: Path) -> None:
    """ITK fills a truncated uncompressed NIfTI with garbage instead of failing; refuse it."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    bits = int(reader.GetMetaData("bitpix"))
    dims = [int(reader.GetMetaData(f"dim[{axis}]")) for axis in range(1, int(reader.GetMetaData("dim[0]")) + 1)]
    expected = int(float(reader.GetMetaData("vox_offset"))) + int(np.prod(dims)) * bits // 8
    actual = path.stat().st_size
    if actual < expected:
        raise InputError(
            f"{path}: cannot read this image (file is {actual} bytes, its header needs {expected}); "
            "is the file complete? copy it again"
        )


def _decide_modality(array: np.ndarray, modality: str | None) -> tuple[str, str]:
    if modality:
        return modality.upper(), ""
    minimum = float(array.min())
    if minimum <= _HU_AIR_CEILING:
        return "CT", f"modality taken as CT: values reach {minimum:g} (Hounsfield air); pass --modality MR if wrong"
    return "OT", f"modality unknown (values {minimum:g}..{float(array.max()):g}); pass --modality CT to use CT presets"


def _format_name(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "NIfTI"
    if name.endswith((".nrrd", ".nhdr")):
        return "NRRD"
    return "MetaImage"
