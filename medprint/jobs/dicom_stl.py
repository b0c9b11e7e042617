"""The ``dicom-stl`` job: an existing mesh as a DICOM Encapsulated STL for the patient's record
(``medprint dicom-stl MESH --source SERIES -o OUT.dcm``, ``command = "dicom-stl"`` in an order)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..io.dicom_identity import IdentitySource, check_identity_source, read_identity
from ..io.dicom_stl import (
    ModelDescription,
    binary_stl,
    encapsulated_stl,
    is_binary_stl,
    write_encapsulated_stl,
)
from ..io.mesh_files import read_mesh_file
from ..io.outputs import RunOutputs
from .deliver import IDENTITY_OPTIONS, SOURCE, SOURCE_SERIES, identity_options
from .spec import (
    OVERWRITE,
    Argument,
    Conflict,
    Flag,
    JobRequest,
    JobResult,
    JobSpec,
    Opt,
    output_option,
    settings_conflicts,
)

OPTIONS = (
    output_option("The DICOM file to write (.dcm)."),
    replace(SOURCE, help="The DICOM series MESH was made from (a folder, or one DICOM file): the patient, study, "
                         "frame of reference and source images of the object."),
    SOURCE_SERIES,
    # The shared options' help speaks of --dicom-stl; here the whole command is the DICOM object.
    *(replace(opt, help=opt.help.removeprefix("With --dicom-stl: ")) for opt in IDENTITY_OPTIONS),
    Opt("mirrored", "mirrored", Flag(), "The model was made by mirroring the patient's anatomy (DICOM Model "
        "Mirroring YES).", default=False),
    OVERWRITE,
)


def check(request: JobRequest) -> list[Conflict]:
    v = request.values
    if v["source_series"] is not None and v["source_path"] is None:
        return [Conflict("--source-series needs --source FOLDER", ("source-series",))]
    return []


def validate(request: JobRequest) -> list[Conflict]:
    """The identity options' values DICOM cannot carry, found before any file is read (for orders)."""
    return settings_conflicts(lambda: identity_options(request.values).check())


def run(request: JobRequest) -> JobResult:
    """Encapsulate the mesh (a binary STL's bytes unchanged, any other mesh as binary STL); all or nothing."""
    v = request.values
    mesh_path, output_path = Path(v["mesh_path"]), Path(v["output_path"])
    source = IdentitySource(v["source_path"], v["source_series"], identity_options(v), asked_by="dicom-stl")
    # The options and the source are checked before any file is read, so a missing identity costs nothing.
    check_identity_source(source)
    with RunOutputs(overwrite=v["overwrite"]) as outputs:
        if os.path.realpath(output_path) == os.path.realpath(mesh_path):
            raise OutputError(f"-o/--output: {output_path} is the input MESH; give the DICOM file a name of its own")
        outputs.reserve(output_path, "-o/--output")
        identity = read_identity(source)
        mesh = read_mesh_file(mesh_path)
        original = mesh_path.read_bytes() if mesh_path.suffix.lower() == ".stl" else b""
        unchanged = is_binary_stl(original)
        stl = original if unchanged else binary_stl(mesh)
        model = ModelDescription(title="medprint model", mirrored=v["mirrored"])
        ds = encapsulated_stl(stl, identity, model)
        with outputs.stage(output_path) as temp:
            write_encapsulated_stl(ds, temp)
        outputs.commit()
    report = _report(output_path, mesh.face_count, stl, unchanged=unchanged, mirrored=v["mirrored"],
                     references=len(identity.references), notes=identity.notes,
                     frame="the source series'" if identity.frame_from_source else "new")
    return JobResult(outputs=(output_path,), report=report, summary=_summary(report, output_path))


def _report(output_path: Path, triangles: int, stl: bytes, *, unchanged: bool, mirrored: bool, references: int,
            notes: tuple[str, ...], frame: str) -> dict[str, Any]:
    # No identity here: this report goes to the terminal and to scripts (--json), never into the record.
    return {
        "output": output_path.name,
        "sop_class": "Encapsulated STL Storage",
        "triangles": triangles,
        "stl_bytes": len(stl),
        "stl": "the MESH's bytes, unchanged" if unchanged else "encoded as binary STL from MESH",
        "model_mirroring": "YES" if mirrored else "NO",
        "frame_of_reference": frame,
        "source_instances": references,
        "choices": list(notes),
    }


def _summary(report: dict[str, Any], output_path: Path) -> tuple[str, ...]:
    line = (f"{output_path}: DICOM Encapsulated STL, {report['triangles']:,} triangles ({report['stl']}), "
            f"{report['source_instances']} source images referenced, frame of reference: {report['frame_of_reference']}")
    return (line, *(f"note: {note}" for note in report["choices"]))


SPEC = JobSpec(
    name="dicom-stl",
    help="Wrap MESH (.stl, .obj, .ply, .3mf; mm, in the scan's patient coordinates) as a DICOM Encapsulated STL "
         "object for the patient's record, with the patient, study and frame of reference of the DICOM series "
         "--source (or of --patient-name, --patient-id and --study-uid). A binary STL is kept byte for byte; any "
         "other mesh is written as binary STL.",
    argument=Argument("mesh_path", "MESH"),
    options=OPTIONS,
    run=run,
    check=check,
    validate=validate,
)
