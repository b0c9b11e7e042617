"""Mesh output: STL (binary or ASCII), OBJ, PLY and 3MF, all in millimetres.

Coordinates are written as they are in the pipeline, in the scan's patient
frame (LPS mm), so that parts made from one scan line up when loaded together.
No patient data goes into any header: the only text written is medprint's name
and version, the units, the frame and the part name the user chose.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray
import stl.mesh
from stl import Mode

from .. import __version__
from ..errors import InputError, ParameterError
from ..mesh.model import Mesh
from ..mesh.quality import DEGENERATE_RELATIVE_AREA
from .atomic import atomic_path

MESH_FORMATS = (".stl", ".obj", ".ply", ".3mf")


class _PlainHeaderStl(stl.mesh.Mesh):  # type: ignore[misc]
    """numpy-stl writes a timestamp into the header; ours is reproducible."""

    def get_header(self, name: bytes | str) -> str:
        return stl_header(name.decode("ascii", "replace") if isinstance(name, bytes) else name)


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
        elif suffix == ".3mf":
            _write_3mf([mesh], [None], temp)
        else:
            _write_with_trimesh(mesh, temp, suffix)
    return path


#: Display colours for parts without one, in order (bone, red, blue, yellow, green, ...).
PART_COLOURS: tuple[tuple[int, int, int], ...] = (
    (227, 218, 201), (200, 60, 50), (70, 110, 200), (230, 190, 60), (90, 170, 90),
    (170, 90, 170), (230, 130, 60), (80, 180, 190),
)


def write_parts_3mf(
    meshes: Sequence[Mesh],
    path: Path,
    *,
    colours: Sequence[tuple[int, int, int] | None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write several parts into one 3MF (millimetres) as named objects with display colours.

    Multi-material printers and slicers (PrusaSlicer, Bambu Studio) read each
    object as a separate part that keeps its position in the patient frame.

    Parameters
    ----------
    meshes : sequence of Mesh
        The parts; each mesh's ``name`` becomes the object's name.
    path : Path
        Target ``.3mf`` file.
    colours : sequence of (r, g, b) or None, optional
        0-255 display colour per part; ``None`` picks from :data:`PART_COLOURS`.
    overwrite : bool
        Replace an existing file.
    """
    path = Path(path)
    if path.suffix.lower() != ".3mf":
        raise ParameterError(f"--3mf: {path.name} must end in .3mf")
    if not meshes:
        raise ParameterError("--3mf: there are no parts to write")
    chosen = list(colours) if colours is not None else [None] * len(meshes)
    with atomic_path(path, overwrite=overwrite, option="--3mf") as temp:
        _write_3mf(meshes, chosen, temp)
    return path


def _write_3mf(meshes: Sequence[Mesh], colours: Sequence[tuple[int, int, int] | None], temp: Path) -> None:
    import lib3mf  # deferred: only 3MF needs it

    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.SetUnit(lib3mf.ModelUnit.MilliMeter)
    materials = model.AddBaseMaterialGroup()
    for index, (mesh, colour) in enumerate(zip(meshes, colours)):
        name = safe_part_name(mesh.name)
        red, green, blue = colour or PART_COLOURS[index % len(PART_COLOURS)]
        part = model.AddMeshObject()
        part.SetName(name)
        _set_geometry(wrapper, part, mesh)
        material = materials.AddMaterial(name, wrapper.RGBAToColor(red, green, blue, 255))
        part.SetObjectLevelProperty(materials.GetResourceID(), material)
        model.AddBuildItem(part, wrapper.GetIdentityTransform())
    temp.write_bytes(_3mf_bytes(wrapper, model.QueryWriter("3mf")))


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


def facet_normals(corners: np.ndarray) -> np.ndarray:
    """Unit outward normal per triangle, ``(F, 3)`` float32; ``(0, 0, 0)`` for one with no area.

    ``corners`` is ``(F, 3, 3)``, the triangles as written (float32 in an STL),
    so each normal belongs to the coordinates in the file.  The STL
    specification asks for unit normals (numpy-stl leaves the raw cross
    product, twice the face's area); a zero normal is what it allows where no
    direction exists, and a reader then takes the winding.
    """
    # Edges from each face's first corner: far-from-origin patient coordinates keep their precision.
    ax, ay, az = (corners[:, 1] - corners[:, 0]).T
    bx, by, bz = (corners[:, 2] - corners[:, 0]).T
    normals = np.empty((len(corners), 3), dtype=np.float32)
    np.subtract(ay * bz, az * by, out=normals[:, 0])
    np.subtract(az * bx, ax * bz, out=normals[:, 1])
    np.subtract(ax * by, ay * bx, out=normals[:, 2])
    length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
    # A sliver's normal is rounding noise, not a direction: assess_mesh's relative test, against the two
    # edges at the first corner (they bound the longest edge within a factor of 2).
    scale = ax * ax + ay * ay + az * az + bx * bx + by * by + bz * bz
    has_area = length > DEGENERATE_RELATIVE_AREA * scale
    length[~has_area] = np.inf  # divides to exactly 0
    normals /= length[:, None]
    return normals


def _write_stl(mesh: Mesh, temp: Path, *, ascii: bool) -> None:
    data = np.zeros(mesh.face_count, dtype=stl.mesh.Mesh.dtype)
    data["vectors"] = mesh.vertices[mesh.faces]
    data["normals"] = facet_normals(data["vectors"])
    solid = _PlainHeaderStl(data, calculate_normals=False, remove_empty_areas=False)
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


def _check_stl_size(path: Path) -> None:
    """A binary STL is 84 bytes plus 50 per triangle its header counts; anything else that is not
    ASCII STL is truncated or not an STL (trimesh would otherwise try to decode it as text)."""
    with path.open("rb") as stream:
        head = stream.read(4096)
    size = path.stat().st_size
    if head[:5].lower() == b"solid" and b"facet" in head:
        return  # ASCII STL
    if len(head) < 84:
        raise InputError(f"MESH: {path} is {size} bytes, too short for an STL; is the file complete?")
    triangles = int.from_bytes(head[80:84], "little")
    if size != 84 + 50 * triangles:
        raise InputError(
            f"MESH: {path} is not a valid binary STL: its header counts {triangles} triangles "
            f"({84 + 50 * triangles} bytes) but the file has {size} bytes; is the file complete?"
        )


def read_mesh_file(path: Path | str) -> Mesh:
    """Read an STL/OBJ/PLY/3MF mesh (mm) into a :class:`Mesh`, vertices merged."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise InputError(f"MESH: {path} does not exist or is not a file; give an .stl, .obj, .ply or .3mf")
    if path.suffix.lower() == ".stl":
        _check_stl_size(path)
    try:
        loaded = cast("trimesh.Trimesh", trimesh.load(path, force="mesh", process=True))
    except (ValueError, OSError, KeyError, IndexError, UnicodeDecodeError) as error:
        raise InputError(f"MESH: cannot read {path} ({error}); give an .stl, .obj, .ply or .3mf mesh") from None
    vertices = np.asarray(loaded.vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(loaded.faces, dtype=np.int64).reshape(-1, 3)
    return Mesh(vertices=vertices, faces=faces, name="model")
