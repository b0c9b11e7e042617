"""Mesh output: STL (binary or ASCII), OBJ, PLY and 3MF, all in millimetres.

Coordinates are written as they are in the pipeline, in the scan's patient
frame (LPS mm), so that parts made from one scan line up when loaded together.
No patient data goes into any header: the only text written is medprint's name
and version, the units, the frame, the part name and, in a 3MF, the
:class:`ModelMetadata` (title, application, date, order id; see
:mod:`medprint.redact` for the rule).
"""

from __future__ import annotations

import codecs
import logging
import re
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import stl.mesh
from stl import Mode

from .. import __version__
from ..errors import InputError, ParameterError
from ..mesh.model import Mesh
from ..mesh.quality import DEGENERATE_RELATIVE_AREA
from ..redact import safe_part_name
from .atomic import atomic_path
from .mesh_3mf import PART_COLOURS, ModelMetadata, model_metadata, write_3mf_file

__all__ = ["MESH_FORMATS", "PART_COLOURS", "ModelMetadata", "model_metadata", "read_mesh_file", "safe_part_name",
           "stl_header", "write_mesh", "write_parts_3mf"]

MESH_FORMATS = (".stl", ".obj", ".ply", ".3mf")

logger = logging.getLogger("medprint")

#: Most a 3MF's entries may hold once unpacked: a 10-million-triangle model is about 1 GB of XML.
MAX_3MF_UNPACKED_BYTES = 2_000_000_000
#: Mesh XML packs about 3-6 to 1; padding (a zip bomb of whitespace) about 1000 to 1.  Above this ratio and
#: :data:`_RATIO_FLOOR_BYTES`, a 3MF is refused before the XML parser takes several times its size in memory.
MAX_3MF_RATIO = 50
_RATIO_FLOOR_BYTES = 50_000_000
#: 3MF core specification units, in millimetres each.
UNIT_MM = {"micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8, "meter": 1000.0}


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


def write_mesh(
    mesh: Mesh,
    path: Path,
    *,
    ascii: bool = False,
    overwrite: bool = False,
    colour: tuple[int, int, int] | None = None,
    metadata: ModelMetadata | None = None,
) -> Path:
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
    colour : (r, g, b), optional
        0-255 display colour of a 3MF's object (default: the first of :data:`PART_COLOURS`).
    metadata : ModelMetadata, optional
        A 3MF's metadata (default: :func:`model_metadata` of ``path``, no order id).
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
            write_3mf_file([mesh], [colour], metadata or model_metadata(path), temp)
        else:
            _write_with_trimesh(mesh, temp, suffix)
    return path


def write_parts_3mf(
    meshes: Sequence[Mesh],
    path: Path,
    *,
    colours: Sequence[tuple[int, int, int] | None] | None = None,
    overwrite: bool = False,
    metadata: ModelMetadata | None = None,
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
    metadata : ModelMetadata, optional
        Title, date and order id (default: :func:`model_metadata` of ``path``, no order id).
    """
    path = Path(path)
    if path.suffix.lower() != ".3mf":
        raise ParameterError(f"--3mf: {path.name} must end in .3mf")
    if not meshes:
        raise ParameterError("--3mf: there are no parts to write")
    chosen = list(colours) if colours is not None else [None] * len(meshes)
    with atomic_path(path, overwrite=overwrite, option="--3mf") as temp:
        write_3mf_file(meshes, chosen, metadata or model_metadata(path), temp)
    return path


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


def _is_text(head: bytes) -> bool:
    """Whether ``head`` could be ASCII STL: a binary STL's header may say "solid ... facet", its floats cannot."""
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _check_stl_size(path: Path) -> None:
    """A binary STL is 84 bytes plus 50 per triangle its header counts; anything else that is not
    ASCII STL is truncated or not an STL (trimesh would otherwise try to decode it as text)."""
    with path.open("rb") as stream:
        head = stream.read(4096)
    size = path.stat().st_size
    if head[:5].lower() == b"solid" and b"facet" in head and _is_text(head):
        # ASCII STL; a cut-short one would parse to a few triangles, or none, without complaint.
        with path.open("rb") as stream:
            stream.seek(max(size - 1024, 0))
            tail = stream.read()
        if b"endsolid" not in tail.lower():
            raise InputError(f"MESH: {path} is an ASCII STL that is cut short (no 'endsolid' at its end); "
                             "the file is incomplete, copy or export it again")
        return
    if len(head) < 84:
        raise InputError(f"MESH: {path} is {size} bytes, too short for an STL; is the file complete?")
    triangles = int.from_bytes(head[80:84], "little")
    if size != 84 + 50 * triangles:
        raise InputError(
            f"MESH: {path} is not a valid binary STL: its header counts {triangles} triangles "
            f"({84 + 50 * triangles} bytes) but the file has {size} bytes; is the file complete?"
        )


#: Suffixes of scan files: ``slice`` of one of these means ``convert`` was skipped.
SCAN_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".dicom", ".ima", ".img", ".hdr")
#: Farthest a mesh vertex may lie from the origin (mm): a kilometre; beyond that float precision and the slicer's
#: bed placement break down, and the file is in another unit or corrupt.
MAX_COORDINATE_MM = 1e6
#: Smallest mesh worth slicing (mm across): a tenth of a 0.1 mm nozzle's line.
MIN_EXTENT_MM = 0.01
#: What a mesh parser may raise on a broken file (zip for 3MF, XML for 3MF and lxml, text decoding for OBJ).
_PARSE_ERRORS = (ValueError, OSError, KeyError, IndexError, UnicodeDecodeError, EOFError, SyntaxError, TypeError,
                 AttributeError, zipfile.BadZipFile, struct.error)


def _refuse_scan(path: Path) -> None:
    """A scan (a DICOM folder or file, NIfTI, NRRD, MHA) given where a mesh belongs."""
    if path.is_dir():
        raise InputError(
            f"MESH: {path} is a folder, not a mesh; for a scan (a DICOM series) run "
            f"`medprint convert {path} -o model.stl` first and give it model.stl"
        )
    is_scan = path.name.lower().endswith(SCAN_SUFFIXES)
    if not is_scan and path.is_file():
        with path.open("rb") as stream:
            head = stream.read(352)
        # DICOM's "DICM" at byte 128; NIfTI-1 / NIfTI-2 magic at 344 / 4.
        is_scan = head[128:132] == b"DICM" or head[344:348] in (b"n+1\0", b"ni1\0") or head[4:8] == b"n+2\0"
    if is_scan:
        raise InputError(
            f"MESH: {path} is a scan, not a mesh; run `medprint convert {path} -o model.stl` first, "
            "and give it model.stl"
        )


def _check_3mf(path: Path) -> float:
    """Refuse a 3MF that unpacks to more than :data:`MAX_3MF_UNPACKED_BYTES`; return its unit in mm.

    The sizes come from the zip directory; :mod:`zipfile` (which trimesh reads
    with) stops each entry at its declared size, so a lying directory cannot
    unpack more than the check allowed.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            unpacked = sum(entry.file_size for entry in entries)
            if unpacked > MAX_3MF_UNPACKED_BYTES:
                raise InputError(
                    f"MESH: {path} unpacks to {unpacked / 1e6:.0f} MB, more than the "
                    f"{MAX_3MF_UNPACKED_BYTES / 1e6:.0f} MB a 3MF model needs; the file is corrupt or hostile, "
                    "export the mesh again"
                )
            packed = max(sum(entry.compress_size for entry in entries), 1)
            if unpacked > _RATIO_FLOOR_BYTES and unpacked > MAX_3MF_RATIO * packed:
                raise InputError(
                    f"MESH: {path} unpacks {packed / 1e3:.0f} kB to {unpacked / 1e6:.0f} MB "
                    f"({unpacked // packed}:1, mesh data packs at most {MAX_3MF_RATIO}:1); the file is padded "
                    "or hostile, export the mesh again"
                )
            models = [entry for entry in entries if entry.filename.lower().endswith(".model")]
            head = archive.open(models[0]).read(8192) if models else b""
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        reason = " ".join(str(error).split())[:120]
        raise InputError(f"MESH: cannot read {path} ({reason}); give an .stl, .obj, .ply or .3mf mesh") from None
    found = re.search(rb"<(?:\w+:)?model\b[^>]*?\sunit\s*=\s*[\"']([^\"']*)[\"']", head)
    unit = found.group(1).decode("ascii", "replace") if found else "millimeter"
    if unit not in UNIT_MM:
        raise InputError(f"MESH: {path} is in unit {unit!r}, which 3MF does not define "
                         f"({', '.join(UNIT_MM)}); export the mesh in millimeter")
    return UNIT_MM[unit]


def _check_text(path: Path) -> None:
    """An OBJ is text; binary bytes would send trimesh guessing at encodings."""
    with path.open("rb") as stream:
        head = stream.read(65536)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as error:
        raise InputError(f"MESH: {path} is not a text OBJ file (binary bytes at byte {error.start}); "
                         "give an .stl, .obj, .ply or .3mf mesh") from None


def read_mesh_file(path: Path | str) -> Mesh:
    """Read an STL/OBJ/PLY/3MF mesh (mm) into a :class:`Mesh`, vertices merged.

    Raises
    ------
    InputError
        Not a file, a scan instead of a mesh, a file the parser cannot read,
        no triangles, or vertex coordinates that are not finite numbers (NaN
        or infinity in an ASCII STL would otherwise be sliced).
    """
    import trimesh

    path = Path(path)
    _refuse_scan(path)
    if not path.is_file():
        raise InputError(f"MESH: {path} does not exist or is not a file; give an .stl, .obj, .ply or .3mf")
    suffix = path.suffix.lower()
    if suffix not in MESH_FORMATS:
        raise InputError(f"MESH: {path} has suffix {suffix or '(none)'!r}; give an .stl, .obj, .ply or .3mf mesh")
    if suffix == ".stl":
        _check_stl_size(path)
    elif suffix == ".obj":
        _check_text(path)
    unit_mm = _check_3mf(path) if suffix == ".3mf" else 1.0
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except ImportError as error:
        # trimesh imports its 3MF and text-encoding helpers only when a file needs them.
        raise InputError(
            f"MESH: cannot read {path}: the reader needs the {error.name or 'missing'} package; "
            "reinstall medprint with its dependencies or give an STL"
        ) from None
    except _PARSE_ERRORS as error:
        reason = " ".join(str(error).split())[:120]
        raise InputError(f"MESH: cannot read {path} ({reason}); give an .stl, .obj, .ply or .3mf mesh") from None
    if not isinstance(loaded, trimesh.Trimesh):
        raise InputError(f"MESH: {path} holds no triangle mesh; give an .stl, .obj, .ply or .3mf mesh")
    vertices = np.asarray(loaded.vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(loaded.faces, dtype=np.int64).reshape(-1, 3)
    if faces.shape[0] == 0:
        raise InputError(f"MESH: {path} has no triangles; is it the right file?")
    if unit_mm != 1.0:
        # trimesh keeps a 3MF's numbers as they are; the slicer works in mm.
        vertices = vertices * unit_mm
        loaded.vertices = vertices
        logger.warning("MESH: %s is in %s units; scaled by %g to millimetres", path,
                       next(name for name, mm in UNIT_MM.items() if mm == unit_mm), unit_mm)
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise InputError(
            f"MESH: {path} has {int(bad.sum())} of {vertices.shape[0]} vertices whose coordinates are not finite "
            "numbers (NaN or infinity); the file is corrupt, export the mesh again"
        )
    reach = float(np.abs(vertices).max())
    if reach > MAX_COORDINATE_MM:
        raise InputError(f"MESH: {path} has a vertex {reach:.3g} mm from the origin, beyond {MAX_COORDINATE_MM:g} mm; "
                         "is it in the wrong unit? export it in mm")
    extent = float((vertices.max(axis=0) - vertices.min(axis=0)).max())
    if extent < MIN_EXTENT_MM:
        raise InputError(f"MESH: {path} is {extent:.3g} mm across, smaller than one printed line; "
                         "is it in the wrong unit? export it in mm or use --scale")
    if faces.min() < 0 or faces.max() >= vertices.shape[0]:
        raise InputError(f"MESH: {path} has triangles that point past its {vertices.shape[0]} vertices; "
                         "the file is corrupt, export the mesh again")
    loaded.merge_vertices()
    vertices = np.asarray(loaded.vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(loaded.faces, dtype=np.int64).reshape(-1, 3)
    return Mesh(vertices=vertices, faces=faces, name="model")
