"""Reading scans and writing meshes: one module per format family.

:func:`load_volume` is the single entry point that turns whatever the user
points at (a DICOM folder, a DICOM file, a NIfTI/NRRD/MHA file) into a
:class:`~medprint.volume.Volume`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import stat
from pathlib import Path

from ..errors import InputError, ParameterError
from ..progress import ProgressCallback, no_progress
from ..volume import Volume
from .image_files import IMAGE_SUFFIXES, is_image_file, load_image_file
from .mesh_files import MESH_FORMATS, write_mesh

log = logging.getLogger("medprint")

__all__ = ["IMAGE_SUFFIXES", "MESH_FORMATS", "load_volume", "write_mesh"]


def load_volume(
    path: Path | str,
    *,
    series: str | None = None,
    allow_gaps: bool = False,
    modality: str | None = None,
    non_finite: float | None = None,
    progress: ProgressCallback = no_progress,
) -> Volume:
    """Load a scan from a DICOM folder or file, or a NIfTI/NRRD/MHA file.

    Parameters
    ----------
    path : Path or str
        A folder (searched recursively for DICOM, any file names) or a file.
    series : str, optional
        For folders with several series: the number ``medprint info`` shows, or
        a SeriesInstanceUID (a unique prefix is enough).  Default: the largest
        CT/MR series; the choice and its reason are recorded in ``notes``.
    allow_gaps : bool
        Accept missing slices (gaps over twice the median spacing) instead of
        refusing the series.
    modality : str, optional
        Override the modality (``'CT'``/``'MR'``) for formats that do not store it.
    non_finite : float, optional
        What NaN and infinite voxels of a NIfTI/NRRD/MHA image stand for (they
        are set to it and the count is noted).  Without it they are refused.

    Raises
    ------
    InputError
        The path is missing, not a regular file or folder (a pipe or device
        would be read forever), or not a scan medprint can use.
    ParameterError
        ``non_finite`` is not a finite number.
    """
    from . import dicom  # deferred: pydicom's plugin discovery is slow to import

    source = Path(path)
    if non_finite is not None and not math.isfinite(non_finite):
        raise ParameterError(f"--non-finite {non_finite}: give the finite number NaN/Inf voxels stand for, e.g. 0")
    _check_regular(source)
    if source.is_dir():
        scan = dicom.scan_dicom_folder(source)
        chosen, reason = dicom.choose_series(scan, series)
        volume = dicom.load_dicom_series(chosen, allow_gaps=allow_gaps, non_finite=non_finite, progress=progress)
        notes = (f"series {chosen.number} chosen: {reason}",) + volume.notes
        return dataclasses.replace(volume, notes=notes, modality=(modality or volume.modality).upper())
    if is_image_file(source):
        return load_image_file(source, modality=modality, non_finite=non_finite)
    if dicom.is_dicom_file(source):
        volume = dicom.load_dicom_file(source, allow_gaps=allow_gaps, non_finite=non_finite, progress=progress)
        return dataclasses.replace(volume, modality=(modality or volume.modality).upper())
    raise InputError(
        f"{source}: not a DICOM file and not one of {', '.join(IMAGE_SUFFIXES)}; "
        "give a DICOM folder or a supported image file"
    )


def _check_regular(source: Path) -> None:
    """Refuse a missing path, and anything but a regular file or a folder before it is opened."""
    try:
        mode = source.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{source}: no such file or folder; check the path") from None
    except OSError as error:
        raise InputError(f"{source}: cannot be read ({error.strerror}); check the path and its permissions") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(
        mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    raise InputError(f"{source}: is {kind}, not a scan file or folder; copy the scan to a regular file first")
