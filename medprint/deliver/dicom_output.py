"""The DICOM Encapsulated STL as an extra output of a run (``--dicom-stl OUT.dcm``)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydicom.uid import generate_uid

from ..io.dicom_identity import (
    DicomIdentity,
    IdentitySource,
    check_identity_source,
    read_identity,
)
from ..io.dicom_stl import (
    ModelDescription,
    binary_stl,
    encapsulated_stl,
    is_binary_stl,
    write_encapsulated_stl,
)
from ..io.mesh_files import safe_part_name
from ..io.outputs import RunOutputs, fit_name, name_max, short_digest
from ..mesh.model import Mesh
from .products import RunProducts

log = logging.getLogger("medprint")


class DicomStl:
    """Writes each printed part as a DICOM Encapsulated STL object (one file per part; several parts get
    ``<stem>_<part>.dcm``), identity and frame of reference from ``identity``.

    The identity is read (and a source that cannot give one refused) in :meth:`reserve`, before the run's work.
    ``notes`` holds what was decided for the user (a new Frame of Reference, an ASCII STL re-encoded), free of
    identity.
    """

    def __init__(self, path: Path, identity: IdentitySource) -> None:
        self.path = Path(path)
        self.identity = identity
        #: The files :meth:`write` wrote (what ``--send`` sends once the run has committed them).
        self.written: tuple[Path, ...] = ()
        self.notes: tuple[str, ...] = ()
        self._read: DicomIdentity | None = None

    def reserve(self, outputs: RunOutputs) -> None:
        check_identity_source(self.identity)
        outputs.reserve(self.path, "--dicom-stl")
        self._read = read_identity(self.identity)

    def write(self, products: RunProducts) -> tuple[Path, ...]:
        identity = self._read if self._read is not None else read_identity(self.identity)
        names = list(products.part_files)
        paths = dicom_paths(self.path, names) if names else []
        if len(paths) > 1:
            for index, path in enumerate(paths):
                products.outputs.reserve(path, f"--dicom-stl (part {index + 1} of {len(paths)})")
        notes = list(identity.notes)
        series_uid = generate_uid()
        for number, (name, path) in enumerate(zip(names, paths), start=1):
            stl, converted = part_stl_bytes(products, name)
            if converted is not None:
                notes.append(converted)
            model = describe_model(products, name)
            ds = encapsulated_stl(stl, identity, model, series_uid=series_uid, instance_number=number)
            with products.outputs.stage(path) as temp:
                write_encapsulated_stl(ds, temp)
        for note in dict.fromkeys(notes):
            log.warning("--dicom-stl: %s", note)
        self.notes = tuple(dict.fromkeys(notes))
        self.written = tuple(paths)
        return self.written


def dicom_paths(path: Path, names: Sequence[str]) -> list[Path]:
    """The DICOM file of each part: ``path`` for one, ``<stem>_<part>.dcm`` beside it for several (part names
    cleaned as the mesh files' are; two that clean alike get a short hash of their own name)."""
    if len(names) <= 1:
        return [path]
    cleaned = [safe_part_name(name) for name in names]
    shared = Counter(name.lower() for name in cleaned)
    limit = name_max(path.parent)
    return [path.with_name(fit_name(f"{path.stem}_{clean}-{short_digest(name)}" if shared[clean.lower()] > 1
                                    else f"{path.stem}_{clean}", path.suffix, limit))
            for name, clean in zip(names, cleaned)]


def describe_model(products: RunProducts, name: str) -> ModelDescription:
    """Title, mirroring and modification of a run's part (a convert's part is the segmented anatomy; a design's
    part was made, not segmented)."""
    designed = products.command != "convert"
    # A design's part is named after its file, which may carry the patient's name: the title says the kind only.
    title = f"medprint {products.command}" if designed else f"medprint {products.command}: {safe_part_name(name)}"
    return ModelDescription(title=title, mirrored=products.mirrored, modified=designed,
                            series_description=f"medprint {products.command} model")


def part_stl_bytes(products: RunProducts, name: str) -> tuple[bytes, str | None]:
    """The binary STL of a part: the exact bytes staged for its .stl file, else the mesh encoded by medprint's STL
    writer; and a note when the part file is not a binary STL."""
    target = products.part_files[name]
    staged = products.outputs.staged_file(target)
    if target.suffix.lower() == ".stl" and staged is not None:
        data = staged.read_bytes()
        if is_binary_stl(data):
            return data, None
        # Not the file's name: output names are often the patient's.
        note = "the part file is an ASCII STL; the DICOM object holds the same mesh as binary STL"
    else:
        note = None
    return binary_stl(_part_mesh(products, name)), note


def _part_mesh(products: RunProducts, name: str) -> Mesh:
    parts = [shown for shown in products.shown if shown.role == "part"]
    for shown in parts:
        if shown.name == name:
            return shown.mesh
    if len(parts) == 1:
        return parts[0].mesh
    raise KeyError(f"no mesh of part {name!r} among the run's products")
