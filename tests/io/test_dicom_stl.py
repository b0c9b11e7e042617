"""``--dicom-stl`` on convert and design: the DICOM Encapsulated STL read back by dciodvfy, dcmdump and pydicom,
its identity and frame of reference those of the source series, its bytes those of the STL beside it, and the
refusals (one line, exit 1, nothing written)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import trimesh
from harness import assert_refused, assert_succeeded, files_in, run_cli
from pydicom.uid import UID, generate_uid

from medprint.io.dicom_stl import ENCAPSULATED_STL_STORAGE

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"
#: The sample's identity (samples/README.md): none of it may leave medprint except in the .dcm.
SAMPLE_IDENTITY = ("Phantom^Sample", "PHANTOM-001", "19700101")
#: Identity given by options for a NIfTI input.
GIVEN = {"name": "Given^Patient^Q", "id": "ID-7741-X", "birth": "19811231", "study": "1.2.826.0.1.3680043.8.498.777"}


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's "Error" lines for ``path`` (its warnings are not errors)."""
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
needs_dcmdump = pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmdump (dcmtk) not installed")


def source_headers(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path, stop_before_pixels=True) for path in sorted(folder.iterdir())]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """convert on the sample with --dicom-stl (the sample has no Frame of Reference UID)."""
    out = tmp_path_factory.mktemp("sample")
    outcome = run_cli("convert", SAMPLE, "--preset", "bone", "-o", out / "skull.stl", "--dicom-stl", out / "skull.dcm",
                      "--json")
    assert_succeeded(outcome)
    return out, outcome


@pytest.fixture(scope="module")
def series_with_frame(tmp_path_factory):
    """The sample with a Frame of Reference and a fuller identity (sex, study time, accession, physician)."""
    folder = tmp_path_factory.mktemp("patient") / "series"
    shutil.copytree(SAMPLE, folder)
    frame = generate_uid()
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = frame
        ds.PositionReferenceIndicator = "OM"
        ds.PatientSex = "F"
        ds.StudyTime = "101500"
        ds.AccessionNumber = "ACC-0042"
        ds.ReferringPhysicianName = "Referrer^Rita"
        ds.StudyID = "S17"
        ds.save_as(path)
    return folder


@pytest.fixture(scope="module")
def framed_run(series_with_frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("framed")
    outcome = run_cli("convert", series_with_frame, "--preset", "bone", "-o", out / "skull.stl",
                      "--dicom-stl", out / "skull.dcm")
    assert_succeeded(outcome)
    return out, outcome


@pytest.fixture(scope="module")
def labelled_nifti(tmp_path_factory):
    """A NIfTI CT with a label map of three touching organs (as tests/test_parts.py)."""
    folder = tmp_path_factory.mktemp("nifti")
    ct = np.full((20, 40, 50), -1000, np.int16)
    labels = np.zeros(ct.shape, np.uint8)
    labels[5:15, 10:30, 10:25] = 1
    labels[5:15, 10:30, 25:40] = 2
    labels[4:16, 32:38, 12:38] = 3
    ct[labels > 0] = 60
    for name, array in (("ct.nii.gz", ct), ("labels.nii.gz", labels)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((0.8, 0.8, 2.0))
        image.SetOrigin((-20.0, 30.0, -50.0))
        sitk.WriteImage(image, str(folder / name))
    (folder / "names.txt").write_text("1 liver\n2 kidney\n3 spleen\n")
    return folder


def identity_args() -> list[str]:
    return ["--patient-name", GIVEN["name"], "--patient-id", GIVEN["id"], "--patient-birth-date", GIVEN["birth"],
            "--study-uid", GIVEN["study"]]


@pytest.fixture(scope="module")
def parts_run(labelled_nifti, tmp_path_factory):
    out = tmp_path_factory.mktemp("parts")
    outcome = run_cli("convert", labelled_nifti / "ct.nii.gz", "--labels", labelled_nifti / "labels.nii.gz",
                      "--labels-names", labelled_nifti / "names.txt", "-o", out / "organs.stl",
                      "--dicom-stl", out / "organs.dcm", *identity_args())
    assert_succeeded(outcome)
    return out, outcome


# ----------------------------------------------------------------------------- the sample


@needs_dciodvfy
def test_dciodvfy_finds_no_error(sample_run, framed_run, parts_run):
    files = [sample_run[0] / "skull.dcm", framed_run[0] / "skull.dcm",
             *sorted(parts_run[0].glob("organs_*.dcm"))]
    assert len(files) == 5
    for path in files:
        assert dciodvfy_errors(path) == [], path.name
    # dciodvfy names the IOD it verified: it recognised the object as an Encapsulated STL.
    named = subprocess.run(["dciodvfy", str(files[0])], capture_output=True, text=True, check=False)
    assert "EncapsulatedSTL" in named.stdout + named.stderr


@needs_dcmdump
def test_dcmdump_reads_it_and_shows_the_class_and_mime_type(sample_run):
    run = subprocess.run(["dcmdump", str(sample_run[0] / "skull.dcm")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "(0008,0016) UI =EncapsulatedSTLStorage" in run.stdout
    assert "(0042,0012) LO [model/stl]" in run.stdout
    assert "(0040,08ea) sq" in run.stdout.lower()  # Measurement Units Code Sequence


def test_the_encapsulated_bytes_are_the_stl_beside_it(sample_run):
    out, _ = sample_run
    ds = pydicom.dcmread(out / "skull.dcm")
    stl = (out / "skull.stl").read_bytes()
    assert ds.EncapsulatedDocumentLength == len(stl)
    assert bytes(ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength]) == stl
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == ENCAPSULATED_STL_STORAGE == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.Modality == "M3D" and ds.MIMETypeOfEncapsulatedDocument == "model/stl"
    unit = ds.MeasurementUnitsCodeSequence[0]
    assert (unit.CodeValue, unit.CodingSchemeDesignator) == ("mm", "UCUM")
    assert ds.ModelMirroring == "NO" and ds.ModelModification == "NO"
    assert ds.Manufacturer == "medprint" and ds.SoftwareVersions == __import__("medprint").__version__


def test_it_carries_the_source_series_identity_and_references(sample_run):
    out, _ = sample_run
    ds = pydicom.dcmread(out / "skull.dcm")
    sources = source_headers(SAMPLE)
    first = sources[0]
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == SAMPLE_IDENTITY
    assert ds.StudyInstanceUID == first.StudyInstanceUID and ds.StudyDate == first.StudyDate
    # A series of its own: new Series and SOP Instance UIDs.
    assert ds.SeriesInstanceUID != first.SeriesInstanceUID and UID(ds.SeriesInstanceUID).is_valid
    assert ds.SOPInstanceUID not in {source.SOPInstanceUID for source in sources}
    referenced = {item.ReferencedSOPInstanceUID for item in ds.SourceInstanceSequence}
    assert referenced == {source.SOPInstanceUID for source in sources}
    assert {item.ReferencedSOPClassUID for item in ds.SourceInstanceSequence} == {first.SOPClassUID}
    (series,) = ds.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    assert {item.ReferencedSOPInstanceUID for item in series.ReferencedInstanceSequence} == referenced


def test_a_series_without_frame_of_reference_gets_a_new_one_and_says_so(sample_run):
    out, outcome = sample_run
    ds = pydicom.dcmread(out / "skull.dcm")
    assert UID(ds.FrameOfReferenceUID).is_valid
    assert "no Frame of Reference UID" in outcome.stderr and "new one" in outcome.stderr


def test_identity_stays_out_of_the_report_and_the_terminal(sample_run):
    out, outcome = sample_run
    report_text = (out / "skull.report.json").read_text()
    assert json.loads(outcome.stdout)["parts"]  # --json printed the report
    for token in SAMPLE_IDENTITY + ("Phantom", "PHANTOM"):
        assert token not in report_text and token not in outcome.stdout and token not in outcome.stderr, token
    assert files_in(out) == {"skull.stl", "skull.report.json", "skull.dcm"}


def test_frame_of_reference_and_full_identity_are_copied(framed_run, series_with_frame):
    out, outcome = framed_run
    ds = pydicom.dcmread(out / "skull.dcm")
    source = source_headers(series_with_frame)[0]
    assert ds.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert ds.PositionReferenceIndicator == "OM"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                    "StudyTime", "AccessionNumber", "ReferringPhysicianName", "StudyID"):
        assert ds[keyword].value == source[keyword].value, keyword
    assert "Frame of Reference" not in outcome.stderr  # nothing was decided for the user
    # The model's coordinates are the series' patient coordinates: the STL inside lies within the scan's extent.
    stl = bytes(ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength])
    corners = np.frombuffer(stl[84:], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))["v"]
    low, high = corners.reshape(-1, 3).min(axis=0), corners.reshape(-1, 3).max(axis=0)
    positions = np.asarray([[float(v) for v in ds.ImagePositionPatient] for ds in source_headers(series_with_frame)])
    reach = np.asarray([source.Columns * 1.5, source.Rows * 1.5, 0.0])  # axial slices, 1.5 mm pixels
    assert np.all(low >= positions.min(axis=0) - 1.0) and np.all(high <= positions.max(axis=0) + reach + 1.0)


# ----------------------------------------------------------------------------- several parts, NIfTI


def test_each_part_gets_its_own_object_in_one_series(parts_run):
    out, outcome = parts_run
    assert files_in(out) >= {"organs_liver.dcm", "organs_kidney.dcm", "organs_spleen.dcm"}
    assert "organs.dcm" not in files_in(out)
    objects = {name: pydicom.dcmread(out / f"organs_{name}.dcm") for name in ("liver", "kidney", "spleen")}
    assert len({ds.SeriesInstanceUID for ds in objects.values()}) == 1
    assert sorted(int(ds.InstanceNumber) for ds in objects.values()) == [1, 2, 3]
    assert len({ds.SOPInstanceUID for ds in objects.values()}) == 3
    assert len({ds.FrameOfReferenceUID for ds in objects.values()}) == 1
    for name, ds in objects.items():
        stl = (out / f"organs_{name}.stl").read_bytes()
        assert bytes(ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength]) == stl, name
        assert name in ds.DocumentTitle
    assert sum(line.startswith("DICOM: ") for line in outcome.stdout.splitlines()) == 3


def test_nifti_with_identity_options_gets_that_identity_and_a_new_frame(parts_run):
    out, outcome = parts_run
    ds = pydicom.dcmread(out / "organs_liver.dcm")
    assert str(ds.PatientName) == GIVEN["name"] and ds.PatientID == GIVEN["id"]
    assert ds.PatientBirthDate == GIVEN["birth"] and ds.StudyInstanceUID == GIVEN["study"]
    assert UID(ds.FrameOfReferenceUID).is_valid
    assert "SourceInstanceSequence" not in ds and "ReferencedSeriesSequence" not in ds
    assert "new Frame of Reference UID" in outcome.stderr
    report = (out / "organs.report.json").read_text()
    for value in GIVEN.values():
        assert value not in report and value not in outcome.stdout and value not in outcome.stderr


def test_nifti_without_identity_is_refused_before_any_work(labelled_nifti, tmp_path, monkeypatch):
    import medprint.pipeline

    def no_loading(*args, **kwargs):
        raise AssertionError("the scan was loaded before the identity was checked")

    monkeypatch.setattr(medprint.pipeline, "load_volume", no_loading)
    outcome = run_cli("convert", labelled_nifti / "ct.nii.gz", "--preset", "soft_tissue", "-o", tmp_path / "a.stl",
                      "--dicom-stl", tmp_path / "a.dcm")
    line = assert_refused(outcome, mentions=["--dicom-stl", "NIfTI", "--patient-name", "--patient-id", "--study-uid"],
                          out_dir=tmp_path)
    assert "DICOM series" in line


def test_partial_identity_options_name_what_is_missing(labelled_nifti, tmp_path):
    outcome = run_cli("convert", labelled_nifti / "ct.nii.gz", "--preset", "soft_tissue", "-o", tmp_path / "a.stl",
                      "--dicom-stl", tmp_path / "a.dcm", "--patient-name", "DOE^JANE")
    line = assert_refused(outcome, mentions=["missing: --patient-id, --study-uid"], out_dir=tmp_path)
    assert "DOE" not in line


@pytest.mark.parametrize("option, value", [
    ("--patient-birth-date", "1970-01-01"), ("--patient-birth-date", "19700231"), ("--study-uid", "1.02.3"),
    ("--study-uid", "1.2.abc"), ("--patient-id", "x" * 65), ("--accession-number", "A" * 17),
])
def test_bad_identity_values_are_refused_naming_the_option(labelled_nifti, tmp_path, option, value):
    args = dict(zip(identity_args()[::2], identity_args()[1::2]))
    args[option] = value
    outcome = run_cli("convert", labelled_nifti / "ct.nii.gz", "--preset", "soft_tissue", "-o", tmp_path / "a.stl",
                      "--dicom-stl", tmp_path / "a.dcm", *[item for pair in args.items() for item in pair])
    line = assert_refused(outcome, mentions=[option], out_dir=tmp_path)
    assert value not in line


def test_existing_dicom_file_is_not_replaced_without_overwrite(tmp_path):
    (tmp_path / "skull.dcm").write_bytes(b"keep")
    outcome = run_cli("convert", SAMPLE, "--preset", "bone", "-o", tmp_path / "skull.stl",
                      "--dicom-stl", tmp_path / "skull.dcm")
    assert_refused(outcome, mentions=["--dicom-stl", "--overwrite"], out_dir=tmp_path, files_before={"skull.dcm"})
    assert (tmp_path / "skull.dcm").read_bytes() == b"keep"


# ----------------------------------------------------------------------------- a design by mirroring


def test_an_implant_made_by_mirroring_says_so(tmp_path):
    from phantoms_skull import skull_phantom

    from medprint.geometry import RAS_TO_LPS

    case = skull_phantom(spacing=(1.5, 1.5, 2.5), defect_direction=(1.0, 0.15, 0.35), defect_radius_mm=20.0)
    affine = case.volume.geometry.affine.copy()
    affine[:3] = RAS_TO_LPS @ affine[:3]
    image = nib.Nifti1Image(np.ascontiguousarray(case.volume.array.transpose(2, 1, 0)), affine)
    image.set_qform(affine, 1)
    image.set_sform(affine, 1)
    nib.save(image, str(tmp_path / "ct.nii.gz"))
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("design", "implant", tmp_path / "ct.nii.gz", "-o", out / "implant.stl", "--resolution", "1.0",
                      "--dicom-stl", out / "implant.dcm", *identity_args(), "--json")
    assert_succeeded(outcome)
    assert json.loads(outcome.stdout)["design"]["measurements"]["method"] == "mirror"
    ds = pydicom.dcmread(out / "implant.dcm")
    assert ds.ModelMirroring == "YES" and ds.ModelModification == "YES"
    assert bytes(ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength]) == (out / "implant.stl").read_bytes()
    if shutil.which("dciodvfy"):
        assert dciodvfy_errors(out / "implant.dcm") == []


# ----------------------------------------------------------------------------- other mesh formats


@pytest.mark.parametrize("output, extra", [("liver.stl", ["--ascii"]), ("liver.ply", [])])
def test_an_ascii_stl_or_another_format_is_encapsulated_as_binary_stl(labelled_nifti, tmp_path, output, extra):
    outcome = run_cli("convert", labelled_nifti / "ct.nii.gz", "--threshold", "0:100", "-o", tmp_path / output,
                      *extra, "--dicom-stl", tmp_path / "liver.dcm", *identity_args())
    assert_succeeded(outcome)
    ds = pydicom.dcmread(tmp_path / "liver.dcm")
    stl = bytes(ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength])
    assert len(stl) == 84 + 50 * int.from_bytes(stl[80:84], "little") and stl.startswith(b"medprint")
    beside = trimesh.load(tmp_path / output, process=False)
    inside = trimesh.load(trimesh.util.wrap_as_stream(stl), file_type="stl", process=False)
    assert len(inside.faces) == len(beside.faces)
    assert np.allclose(inside.bounds, beside.bounds, atol=1e-3)  # the same place in the patient frame
    assert inside.volume == pytest.approx(beside.volume, rel=1e-4)
    assert ("ASCII STL" in outcome.stderr) == (extra == ["--ascii"])


def test_a_missing_input_gets_the_loaders_words_not_a_dicom_request(tmp_path: Path) -> None:
    """convert's input is the scan: a typo in it is a missing file, not a request for some DICOM series."""
    outcome = run_cli("convert", tmp_path / "nope", "-o", tmp_path / "x.stl", "--dicom-stl", tmp_path / "x.dcm")
    line = assert_refused(outcome, mentions=["INPUT", "nope", "no such file or folder", "check the path"],
                          out_dir=tmp_path)
    assert "DICOM series" not in line
