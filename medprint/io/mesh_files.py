"""Mesh output: STL (binary or ASCII), OBJ, PLY and 3MF, all in millimetres.

Coordinates are written as they are in the pipeline, in the scan's patient
frame (LPS mm), so that parts made from one scan line up when loaded together.
No patient data goes into any header: the only text written is medprint's name
and version, the units, the frame and the part name the user chose.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import stl.mesh
from stl import Mode

from .. import __version__
from ..errors import ParameterError
from ..mesh.model import Mesh
from .atomic import atomic_path

MESH_FORMATS = (".stl", ".obj", ".ply", ".3mf")


class _PlainHeaderStl(stl.mesh.Mesh):  # type: ignore[misc]
    """numpy-stl writes a timestamp into the header; ours is reproducible."""

    def get_header(self, name: str) -> str:
        return stl_header(name)


def stl_header(part_name: str) -> str:
    """The 80-character binary STL header medprint writes.

    >>> stl_header("bone")[:40].rstrip()
    'medprint 0.1.0 mm LPS part=bone'
    """
    return f"medprint {__version__} mm LPS part={safe_part_name(part_name)}"[:80].ljust(80)


def safe_part_name(name: str) -> str:
    """Reduce a part name to ``[A-Za-z0-9_.-]`` so it cannot carry free text.

    >>> safe_part_name("Left femur (Mr. X)")
    'Left_femur_Mr._X'
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    return cleaned[:40] or "part"


def write_mesh(mesh: Mesh, path: Path, *, ascii: bool = False, overwrite: bool = False) -> Path:
    """Write ``mesh`` to ``path``, the format chosen by the suffix, atomically.

    Parameters
    ----------
    mesh : Mesh
        Outward-facing triangle surface in LPS mm.
    path : Path
        Target file: ``.stl``, ``.obj``, ``.ply`` or ``.3mf``.
    ascii : bool
        ASCII instead of binary STL (ignored for other formats).
    overwrite : bool
        Replace an existing file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_FORMATS:
        raise ParameterError(
            f"-o/--output: cannot write {suffix or 'a file without suffix'} ({path}); "
            f"use one of {', '.join(MESH_FORMATS)}"
        )
    with atomic_path(path, overwrite=overwrite) as temp:
        if suffix == ".stl":
            _write_stl(mesh, temp, ascii=ascii)
        else:
            _write_with_trimesh(mesh, temp, suffix)
    return path


def _write_stl(mesh: Mesh, temp: Path, *, ascii: bool) -> None:
    data = np.zeros(mesh.face_count, dtype=stl.mesh.Mesh.dtype)
    data["vectors"] = mesh.vertices[mesh.faces]
    solid = _PlainHeaderStl(data, remove_empty_areas=False)
    solid.update_normals()
    with open(temp, "wb") as handle:
        solid.save(
            safe_part_name(mesh.name),
            fh=handle,
            mode=Mode.ASCII if ascii else Mode.BINARY,
            update_normals=False,
        )


def _write_with_trimesh(mesh: Mesh, temp: Path, suffix: str) -> None:
    import trimesh  # noqa: PLC0415  (about 1 s to import; the STL path does not need it)

    surface = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
    surface.metadata = {"name": safe_part_name(mesh.name)}
    surface.units = "mm"
    exported = trimesh.exchange.export.export_mesh(surface, None, file_type=suffix[1:])
    payload = exported.encode() if isinstance(exported, str) else exported
    temp.write_bytes(payload)
