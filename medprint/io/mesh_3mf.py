"""3MF writing with lib3mf: millimetres, named and coloured objects, and metadata that names no patient.

A 3MF carries, besides the meshes in the patient frame (LPS mm): ``unit="millimeter"``; one object per part,
named by the part (:func:`~medprint.redact.safe_part_name`) with its display colour; and the model metadata of
:class:`ModelMetadata` -- the 3MF core's ``Title``, ``Application`` and ``CreationDate``, and under
:data:`METADATA_NAMESPACE` medprint's ``version``, ``frame`` and the run's ``order_id``.  Nothing else: no
patient identity and no path or name of the input (the rule: :mod:`medprint.redact`).  The object and build
UUIDs lib3mf would draw at random are derived from the content, so with ``SOURCE_DATE_EPOCH`` set a rerun
writes the same bytes.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .. import __version__
from ..errors import ParameterError
from ..mesh.model import Mesh
from ..redact import safe_part_name, terminal_safe

__all__ = ["METADATA_NAMESPACE", "PART_COLOURS", "ModelMetadata", "creation_date", "model_metadata",
           "write_3mf_file"]

#: XML namespace of medprint's own 3MF metadata.  The 3MF core specification (3.4.1) lets a producer add
#: names it does not define only under a namespace declared on ``<model>``; lib3mf declares it and picks the prefix.
METADATA_NAMESPACE = "urn:medprint:3mf:metadata:2026"
#: Longest order id written into a 3MF (characters); a longer one is cut and says so with "...".
MAX_ORDER_ID_CHARS = 200
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ModelMetadata:
    """What a 3MF says about itself: never patient identity, never a path or name of the input.

    Parameters
    ----------
    title : str
        The 3MF ``Title``: the part's or the output's name, reduced by :func:`safe_part_name`.
    creation_date : str
        ``CreationDate``, ``YYYY-MM-DD`` (:func:`creation_date`: today, or ``SOURCE_DATE_EPOCH``'s day).
    order_id : str, optional
        The id of the order the run comes from (``report["order"]["id"]``), as the user wrote it
        (control characters written out); ``order_id`` in :data:`METADATA_NAMESPACE`.

    >>> ModelMetadata("skull (left)", "2026-03-01").title
    'skull_left'
    """

    title: str
    creation_date: str
    order_id: str | None = None

    def __post_init__(self) -> None:
        if not _DATE.fullmatch(self.creation_date):
            raise ParameterError(f"3MF CreationDate: {self.creation_date!r} is not a date; give YYYY-MM-DD")
        object.__setattr__(self, "title", safe_part_name(self.title))
        if self.order_id is not None:
            cleaned = terminal_safe(self.order_id)
            if len(cleaned) > MAX_ORDER_ID_CHARS:
                cleaned = cleaned[: MAX_ORDER_ID_CHARS - 3] + "..."
            object.__setattr__(self, "order_id", cleaned)

    def entries(self) -> tuple[tuple[str, str, str], ...]:
        """``(namespace, name, value)`` of each metadata element, the 3MF core's well-known names first."""
        core = (("", "Title", self.title), ("", "Application", f"medprint {__version__}"),
                ("", "CreationDate", self.creation_date))
        # The frame tells a reader that the numbers are patient coordinates, not a slicer's Z-up bed.
        own = [(METADATA_NAMESPACE, "version", __version__), (METADATA_NAMESPACE, "frame", "LPS")]
        if self.order_id is not None:
            own.append((METADATA_NAMESPACE, "order_id", self.order_id))
        return (*core, *own)


def creation_date(environ: Mapping[str, str] | None = None) -> str:
    """Today's date (``YYYY-MM-DD``), or the UTC day of ``SOURCE_DATE_EPOCH`` when it is set.

    ``SOURCE_DATE_EPOCH`` (reproducible-builds.org) makes a rerun write the same bytes.

    >>> creation_date({"SOURCE_DATE_EPOCH": "1700000000"})
    '2023-11-14'
    """
    text = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH", "").strip()
    if not text:
        return date.today().isoformat()
    if not text.isdigit():
        raise ParameterError(f"SOURCE_DATE_EPOCH: {terminal_safe(text)[:40]!r} is not a whole number of seconds "
                             "since 1970-01-01 UTC; set it (e.g. to `git log -1 --format=%ct`) or unset it")
    try:
        return datetime.fromtimestamp(int(text), UTC).date().isoformat()
    except (OverflowError, ValueError, OSError):
        raise ParameterError(f"SOURCE_DATE_EPOCH: {text[:40]} seconds is past any date; give seconds "
                             "since 1970-01-01 UTC or unset it") from None


def model_metadata(output: Path, *, order_id: str | None = None) -> ModelMetadata:
    """The metadata of a 3MF written to ``output``: its stem as title, today's date, the order id if any."""
    return ModelMetadata(title=Path(output).stem, creation_date=creation_date(), order_id=order_id)


#: Display colours for parts without one, in order (bone, red, blue, yellow, green, ...).
PART_COLOURS: tuple[tuple[int, int, int], ...] = (
    (227, 218, 201), (200, 60, 50), (70, 110, 200), (230, 190, 60), (90, 170, 90),
    (170, 90, 170), (230, 130, 60), (80, 180, 190),
)


def write_3mf_file(meshes: Sequence[Mesh], colours: Sequence[tuple[int, int, int] | None],
                   metadata: ModelMetadata, temp: Path) -> None:
    """Write ``meshes`` as one 3MF to ``temp`` (a run's staged file), each a named object with its colour.

    ``None`` in ``colours`` takes the part's place in :data:`PART_COLOURS`.  medprint's own metadata is
    marked ``preserve``: the core specification asks a consumer that saves the file again to keep it
    (PrusaSlicer 2.5 writes its own metadata instead).
    """
    import lib3mf  # deferred: only 3MF needs it

    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.SetUnit(lib3mf.ModelUnit.MilliMeter)
    group = model.GetMetaDataGroup()
    for namespace, name, value in metadata.entries():
        group.AddMetaData(namespace, name, value, "xs:string", namespace != "")
    materials = model.AddBaseMaterialGroup()
    # lib3mf draws random UUIDs; ones derived from the content make a rerun write the same bytes.
    digest = hashlib.sha256(repr(metadata).encode())
    for index, (mesh, colour) in enumerate(zip(meshes, colours)):
        name = safe_part_name(mesh.name)
        red, green, blue = colour or PART_COLOURS[index % len(PART_COLOURS)]
        part = model.AddMeshObject()
        part.SetName(name)
        _set_geometry(wrapper, part, mesh)
        material = materials.AddMaterial(name, wrapper.RGBAToColor(red, green, blue, 255))
        part.SetObjectLevelProperty(materials.GetResourceID(), material)
        digest.update(f"{index}:{name}:{red},{green},{blue}".encode())
        digest.update(np.ascontiguousarray(mesh.vertices).data)
        digest.update(np.ascontiguousarray(mesh.faces).data)
        part.SetUUID(_content_uuid(digest, "object"))
        item = model.AddBuildItem(part, wrapper.GetIdentityTransform())
        item.SetUUID(_content_uuid(digest, "item"))
    model.SetBuildUUID(_content_uuid(digest, "build"))
    temp.write_bytes(_3mf_bytes(wrapper, model.QueryWriter("3mf")).tobytes())


def _content_uuid(digest: hashlib._Hash, role: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{METADATA_NAMESPACE}:{role}:{digest.hexdigest()}"))


def _3mf_bytes(wrapper: object, writer: object) -> NDArray[np.uint8]:
    # lib3mf's WriteToFile aborts the whole process when the disk fills up, and its Python
    # WriteToBuffer copies through a list of ints: ask the library for the size, then fill a numpy buffer.
    # The second call reuses the first one's serialisation, so this costs what WriteToFile does.
    needed = ctypes.c_uint64(0)
    write = wrapper.lib.lib3mf_writer_writetobuffer  # type: ignore[attr-defined]
    handle = writer._handle  # type: ignore[attr-defined]
    wrapper.checkError(writer, write(handle, ctypes.c_uint64(0), needed, None))  # type: ignore[attr-defined]
    buffer = np.empty(needed.value, dtype=np.uint8)
    wrapper.checkError(  # type: ignore[attr-defined]
        writer, write(handle, ctypes.c_uint64(needed.value), needed, buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
    )
    return buffer


def _set_geometry(wrapper: object, part: object, mesh: Mesh) -> None:
    # lib3mf's Python SetGeometry builds one ctypes struct per vertex in a Python loop;
    # its packed Position/Triangle layouts are exactly float32[3] / uint32[3], so pass numpy buffers.
    import lib3mf

    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.uint32)
    wrapper.checkError(  # type: ignore[attr-defined]
        part,
        wrapper.lib.lib3mf_meshobject_setgeometry(  # type: ignore[attr-defined]
            part._handle,  # type: ignore[attr-defined]
            ctypes.c_uint64(len(vertices)),
            vertices.ctypes.data_as(ctypes.POINTER(lib3mf.Position)),
            ctypes.c_uint64(len(faces)),
            faces.ctypes.data_as(ctypes.POINTER(lib3mf.Triangle)),
        ),
    )


