"""The DICOM Encapsulated STL as an extra output of a run (``--dicom-stl OUT.dcm``)."""
# OWNER: helper "dicom-stl". Interface fixed by the lead; fill in the bodies.

from __future__ import annotations

from pathlib import Path

from ..io.dicom_identity import IdentitySource
from ..io.outputs import RunOutputs
from .products import RunProducts


class DicomStl:
    """Writes each printed part as a DICOM Encapsulated STL object (one file per part; several parts get
    ``<stem>_<part>.dcm``), identity and frame of reference from ``identity``."""

    def __init__(self, path: Path, identity: IdentitySource) -> None:
        self.path = Path(path)
        self.identity = identity
        #: The files :meth:`write` wrote (what ``--send`` sends once the run has committed them).
        self.written: tuple[Path, ...] = ()

    def reserve(self, outputs: RunOutputs) -> None:
        outputs.reserve(self.path, "--dicom-stl")

    def write(self, products: RunProducts) -> tuple[Path, ...]:
        raise NotImplementedError
