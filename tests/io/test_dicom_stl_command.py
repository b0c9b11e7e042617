"""``medprint dicom-stl MESH`` end to end (and from an order), and the Encapsulated STL builder's own rules: odd
lengths, binary STL only, Model Mirroring, character sets, sources filed under another study."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import trimesh
from harness import assert_refused, assert_succeeded, files_in, run_cli
from pydicom.uid import UID

from medprint.errors import InputError
from medprint.io.dicom_identity import IdentityOptions, IdentitySource, read_identity
from medprint.io.dicom_stl import (
    ModelDescription,
    binary_stl,
    encapsulated_stl,
    is_binary_stl,
    set_encapsulated_document,
    write_encapsulated_stl,
)
from medprint.io.mesh_files import write_mesh
from medprint.mesh.model import Mesh

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"
SAMPLE_IDENTITY = ("Phantom^Sample", "PHANTOM-001", "19700101")
IDENTITY = ["--patient-name", "Opt^Ion", "--patient-id", "OPT-1", "--study-uid", "1.2.826.0.1.3680043.8.498.4242"]


def dciodvfy_errors(path: Path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
needs_dcmdump = pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmdump (dcmtk) not installed")


def box_mesh() -> Mesh:
    """A 20 mm box in the sample's patient coordinates (LPS mm), far from the origin as real scans are."""
    box = trimesh.creation.box((20.0, 20.0, 20.0))
    return Mesh(vertices=np.asarray(box.vertices) + (-10.0, -30.0, 120.0), faces=np.asarray(box.faces), name="box")


@pytest.fixture(scope="module")
def meshes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("meshes")
    mesh = box_mesh()
    write_mesh(mesh, folder / "box.stl")
    write_mesh(mesh, folder / "ascii.stl", ascii=True)
    write_mesh(mesh, folder / "box.obj")
    return folder


@pytest.fixture(scope="module")
def sample_identity():
    return read_identity(IdentitySource(SAMPLE))


def encapsulated(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    return bytes(ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength])


def triangles(stl: bytes) -> np.ndarray:
    """The corners of a binary STL's triangles, ``(F, 3, 3)``."""
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    return np.frombuffer(stl, dtype=record, offset=84)["corners"]


# ----------------------------------------------------------------------------- the command


def test_a_binary_stl_is_kept_byte_for_byte_with_the_source_identity(meshes, tmp_path):
    outcome = run_cli("dicom-stl", meshes / "box.stl", "--source", SAMPLE, "-o", tmp_path / "box.dcm", "--json")
    assert_succeeded(outcome)
    assert encapsulated(tmp_path / "box.dcm") == (meshes / "box.stl").read_bytes()
    ds = pydicom.dcmread(tmp_path / "box.dcm")
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == SAMPLE_IDENTITY
    assert len(ds.SourceInstanceSequence) == len(list(SAMPLE.iterdir()))
    assert ds.ModelMirroring == "NO" and "ModelModification" not in ds  # not known for a foreign mesh
    report = json.loads(outcome.stdout)
    assert report["stl"] == "the MESH's bytes, unchanged" and report["source_instances"] == len(list(SAMPLE.iterdir()))
    assert report["triangles"] == 12
    for token in SAMPLE_IDENTITY:
        assert token not in outcome.stdout and token not in outcome.stderr
    if shutil.which("dciodvfy"):
        assert dciodvfy_errors(tmp_path / "box.dcm") == []


@pytest.mark.parametrize("name", ["ascii.stl", "box.obj"])
def test_other_meshes_are_encapsulated_as_binary_stl_of_the_same_triangles(meshes, tmp_path, name):
    outcome = run_cli("dicom-stl", meshes / name, *IDENTITY, "-o", tmp_path / "m.dcm", "--json")
    assert_succeeded(outcome)
    stl = encapsulated(tmp_path / "m.dcm")
    assert is_binary_stl(stl) and stl[:8] == b"medprint"
    assert json.loads(outcome.stdout)["stl"] == "encoded as binary STL from MESH"
    got = np.sort(np.round(triangles(stl).reshape(-1, 3), 3), axis=0)
    want = np.sort(np.round(triangles((meshes / "box.stl").read_bytes()).reshape(-1, 3), 3), axis=0)
    np.testing.assert_allclose(got, want, atol=1e-3)  # the same corners, in the same patient frame


def test_mirrored_sets_model_mirroring(meshes, tmp_path):
    assert_succeeded(run_cli("dicom-stl", meshes / "box.stl", *IDENTITY, "--mirrored", "-o", tmp_path / "m.dcm"))
    ds = pydicom.dcmread(tmp_path / "m.dcm")
    assert ds.ModelMirroring == "YES"
    assert str(ds.PatientName) == "Opt^Ion" and ds.StudyInstanceUID == IDENTITY[-1]


def test_options_override_the_series_values(meshes, tmp_path):
    assert_succeeded(run_cli("dicom-stl", meshes / "box.stl", "--source", SAMPLE, "--patient-name", "Other^Name",
                             "--accession-number", "A-17", "-o", tmp_path / "m.dcm"))
    ds = pydicom.dcmread(tmp_path / "m.dcm")
    assert str(ds.PatientName) == "Other^Name" and ds.AccessionNumber == "A-17"
    assert ds.PatientID == "PHANTOM-001"  # not overridden: the series'


@pytest.mark.parametrize("args, mentions", [
    ((), ["dicom-stl", "--source", "--patient-name", "--patient-id", "--study-uid"]),
    (("--source", "missing_folder"), ["--source", "no such file or folder"]),
    (("--source", SAMPLE, "--source-series", "9"), ["--source-series", "matches no series"]),
    (("--source", SAMPLE, "--patient-birth-date", "31.12.1980"), ["--patient-birth-date", "YYYYMMDD"]),
])
def test_refusals_are_one_line_and_write_nothing(meshes, tmp_path, args, mentions):
    outcome = run_cli("dicom-stl", meshes / "box.stl", *args, "-o", tmp_path / "m.dcm")
    assert_refused(outcome, mentions=mentions, out_dir=tmp_path)


def test_a_nifti_source_needs_the_identity_options(tmp_path, meshes):
    import SimpleITK as sitk

    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkInt16), str(tmp_path / "scan.nii.gz"))
    outcome = run_cli("dicom-stl", meshes / "box.stl", "--source", tmp_path / "scan.nii.gz", "-o", tmp_path / "m.dcm")
    assert_refused(outcome, mentions=["--source is a NIfTI file", "--patient-id"], out_dir=tmp_path,
                   files_before={"scan.nii.gz"})


def test_source_series_without_source_is_a_usage_error(meshes, tmp_path):
    outcome = run_cli("dicom-stl", meshes / "box.stl", "--source-series", "1", "-o", tmp_path / "m.dcm")
    assert outcome.exit_code == 2 and "--source-series needs --source" in outcome.stderr


def test_the_mesh_itself_and_an_existing_file_are_not_overwritten(meshes, tmp_path):
    copy = tmp_path / "box.stl"
    copy.write_bytes((meshes / "box.stl").read_bytes())
    assert_refused(run_cli("dicom-stl", copy, *IDENTITY, "-o", copy, "--overwrite"), mentions=["is the input MESH"])
    (tmp_path / "m.dcm").write_bytes(b"keep")
    assert_refused(run_cli("dicom-stl", copy, *IDENTITY, "-o", tmp_path / "m.dcm"), mentions=["--overwrite"])
    assert (tmp_path / "m.dcm").read_bytes() == b"keep"
    assert files_in(tmp_path) == {"box.stl", "m.dcm"}


def test_it_runs_from_an_order_and_identity_stays_out_of_the_report(meshes, tmp_path):
    order = tmp_path / "order.toml"
    order.write_text(f'id = "m1"\ncommand = "dicom-stl"\ninput = "{meshes / "box.stl"}"\noutput = "box.dcm"\n'
                     f'source = "{SAMPLE}"\npatient-name = "Order^Given"\nmirrored = true\n')
    outcome = run_cli("run", order, "-o", tmp_path / "out", "--json")
    assert_succeeded(outcome)
    ds = pydicom.dcmread(tmp_path / "out" / "box.dcm")
    assert str(ds.PatientName) == "Order^Given" and ds.ModelMirroring == "YES"
    assert "Order^Given" not in outcome.stdout + outcome.stderr


def test_identity_given_in_an_order_is_not_recorded_in_the_report(tmp_path):
    from medprint.jobs.orders import order_from_mapping, order_record

    order = order_from_mapping({"id": "c", "command": "convert", "input": str(SAMPLE), "output": "a.stl",
                                "dicom-stl": "a.dcm", "patient-name": "Rec^Orded", "patient-id": "RID-5"},
                               base_dir=tmp_path)
    record = json.dumps(order_record(order))
    assert "Rec^Orded" not in record and "RID-5" not in record
    assert "a.dcm" in record  # the other parameters are recorded


# ----------------------------------------------------------------------------- the builder


def test_an_odd_length_document_is_padded_and_its_length_kept(sample_identity, tmp_path):
    ds = encapsulated_stl(binary_stl(box_mesh()), sample_identity, ModelDescription("t"))
    odd = bytes(range(85))
    set_encapsulated_document(ds, odd)
    write_encapsulated_stl(ds, tmp_path / "odd.dcm")
    back = pydicom.dcmread(tmp_path / "odd.dcm")
    assert back.EncapsulatedDocumentLength == 85
    assert len(back.EncapsulatedDocument) == 86 and back.EncapsulatedDocument[-1] == 0
    assert bytes(back.EncapsulatedDocument[:85]) == odd
    if shutil.which("dcmdump"):
        dump = subprocess.run(["dcmdump", str(tmp_path / "odd.dcm")], capture_output=True, text=True, check=False)
        assert dump.returncode == 0 and re.search(r"#\s*86, 1 EncapsulatedDocument\n", dump.stdout)
        assert re.search(r"\(0042,0015\) UL 85\s", dump.stdout)


def test_a_binary_stl_is_always_even_and_ascii_is_refused(sample_identity, meshes):
    for count in range(4):
        assert (84 + 50 * count) % 2 == 0
    assert is_binary_stl((meshes / "box.stl").read_bytes())
    assert not is_binary_stl((meshes / "ascii.stl").read_bytes())
    assert not is_binary_stl((meshes / "box.stl").read_bytes()[:-1])
    with pytest.raises(InputError, match="binary STL"):
        encapsulated_stl((meshes / "ascii.stl").read_bytes(), sample_identity, ModelDescription("t"))


@needs_dciodvfy
@pytest.mark.parametrize("mirrored, modified", [(True, True), (False, None)])
def test_model_mirroring_and_modification(sample_identity, tmp_path, mirrored, modified):
    ds = encapsulated_stl(binary_stl(box_mesh()), sample_identity,
                          ModelDescription("t", mirrored=mirrored, modified=modified))
    write_encapsulated_stl(ds, tmp_path / "m.dcm")
    back = pydicom.dcmread(tmp_path / "m.dcm")
    assert back.ModelMirroring == ("YES" if mirrored else "NO")
    assert back.get("ModelModification") == ({True: "YES", None: None}[modified])
    assert dciodvfy_errors(tmp_path / "m.dcm") == []


@needs_dciodvfy
def test_a_name_outside_ascii_is_written_in_utf8(tmp_path):
    identity = read_identity(IdentitySource(SAMPLE, options=IdentityOptions(patient_name="Müller^Zoë=山田^太郎")))
    ds = encapsulated_stl(binary_stl(box_mesh()), identity, ModelDescription("t"))
    write_encapsulated_stl(ds, tmp_path / "u.dcm")
    back = pydicom.dcmread(tmp_path / "u.dcm")
    assert back.SpecificCharacterSet == "ISO_IR 192" and str(back.PatientName) == "Müller^Zoë=山田^太郎"
    assert dciodvfy_errors(tmp_path / "u.dcm") == []
    plain = encapsulated_stl(binary_stl(box_mesh()), read_identity(IdentitySource(SAMPLE)), ModelDescription("t"))
    assert "SpecificCharacterSet" not in plain  # the default repertoire where all text is ASCII


@needs_dciodvfy
def test_sources_of_another_study_are_referenced_as_such(tmp_path):
    other = "1.2.826.0.1.3680043.8.498.9999"
    identity = read_identity(IdentitySource(SAMPLE, options=IdentityOptions(study_uid=other)))
    ds = encapsulated_stl(binary_stl(box_mesh()), identity, ModelDescription("t"))
    assert ds.StudyInstanceUID == other and "ReferencedSeriesSequence" not in ds
    (study,) = ds.StudiesContainingOtherReferencedInstancesSequence
    assert study.StudyInstanceUID == identity.source_study_uid != other
    assert study.ReferencedSeriesSequence[0].SeriesInstanceUID == identity.source_series_uid
    write_encapsulated_stl(ds, tmp_path / "s.dcm")
    assert dciodvfy_errors(tmp_path / "s.dcm") == []


def test_each_object_is_a_new_instance_of_a_given_series(sample_identity):
    stl = binary_stl(box_mesh())
    first = encapsulated_stl(stl, sample_identity, ModelDescription("a"), series_uid="1.2.3", instance_number=1)
    second = encapsulated_stl(stl, sample_identity, ModelDescription("b"), series_uid="1.2.3", instance_number=2)
    assert first.SeriesInstanceUID == second.SeriesInstanceUID == "1.2.3"
    assert first.SOPInstanceUID != second.SOPInstanceUID and UID(first.SOPInstanceUID).is_valid
    assert (first.InstanceNumber, second.InstanceNumber) == (1, 2)
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID


def test_an_order_with_a_bad_identity_value_is_refused_whole(meshes, tmp_path):
    order = tmp_path / "order.toml"
    order.write_text(f'id = "m2"\ncommand = "dicom-stl"\ninput = "{meshes / "box.stl"}"\noutput = "box.dcm"\n'
                     f'source = "{SAMPLE}"\npatient-birth-date = "1980-12-31"\n')
    outcome = run_cli("run", order, "-o", tmp_path / "out")
    assert outcome.exit_code == 2 and "order.toml:6: patient-birth-date: give a real calendar date" in outcome.stderr
    assert "1980-12-31" not in outcome.stderr
    assert not (tmp_path / "out").exists()


def test_a_run_without_printed_parts_writes_and_claims_no_dicom_file(sample_identity, tmp_path):
    from medprint.deliver.dicom_output import DicomStl
    from medprint.deliver.products import RunProducts
    from medprint.io.outputs import RunOutputs

    extra = DicomStl(tmp_path / "none.dcm", IdentitySource(SAMPLE))
    with RunOutputs(overwrite=False) as outputs:
        extra.reserve(outputs)
        products = RunProducts(command="slice", main_output=tmp_path / "a.gcode", report={}, shown=(), part_files={},
                               outputs=outputs)
        assert extra.write(products) == () and extra.written == ()
        outputs.commit()
    assert files_in(tmp_path) == set()
