"""Where a DICOM object's identity comes from: a series of a folder, one DICOM file, or options; and what the
options may hold (each refusal names the option, never the value)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_phantoms import write_ct_series, write_multiframe_ct
from pydicom.uid import UID

from medprint.errors import InputError, ParameterError
from medprint.io.dicom_identity import (
    IdentityOptions,
    IdentitySource,
    check_identity_source,
    read_identity,
)

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"
GOOD = IdentityOptions(patient_name="DOE^JANE", patient_id="P-1", patient_birth_date="19800229", patient_sex="F",
                       study_uid="1.2.826.0.1.3680043.8.498.12", accession_number="ACC1", study_description="Skull")


@pytest.fixture(scope="module")
def two_series(tmp_path_factory):
    """A folder holding a 6-slice and a 4-slice series of one study (by series UID)."""
    folder = tmp_path_factory.mktemp("two")
    volume = np.zeros((6, 8, 8), np.int16)
    big = write_ct_series(folder / "a", volume, (1.0, 1.0, 2.0), series_uid="1.2.826.0.1.3680043.8.498.61")
    small = write_ct_series(folder / "b", volume[:4], (1.0, 1.0, 2.0), series_uid="1.2.826.0.1.3680043.8.498.62",
                            patient_name="Second^Series")
    return folder, big, small


def test_good_options_pass_the_checks():
    GOOD.check()
    assert GOOD.given() and not IdentityOptions().given()
    assert GOOD.elements()["PatientBirthDate"] == "19800229"


@pytest.mark.parametrize("field, value, option", [
    ("patient_birth_date", "19810229", "--patient-birth-date"),  # not a leap year
    ("patient_birth_date", "1980-02-29", "--patient-birth-date"),
    ("patient_birth_date", "800229", "--patient-birth-date"),
    ("study_uid", "1.2.03.4", "--study-uid"),  # a leading zero
    ("study_uid", "1.2.x", "--study-uid"),
    ("study_uid", "1." + "2" * 63, "--study-uid"),  # 65 characters
    ("patient_name", "A^B^C^D^E^F", "--patient-name"),  # six components
    ("patient_name", "X" * 65, "--patient-name"),
    ("patient_name", "DOE\\JANE", "--patient-name"),  # a second value
    ("patient_id", "ID\nTWO", "--patient-id"),
    ("patient_id", " ", "--patient-id"),
    ("accession_number", "A" * 17, "--accession-number"),
    ("study_description", "d" * 65, "--study-description"),
    ("patient_sex", "X", "--patient-sex"),
])
def test_bad_options_are_refused_naming_the_option_not_the_value(field, value, option):
    options = IdentityOptions(**{**vars(GOOD), field: value})
    with pytest.raises(ParameterError) as caught:
        options.check()
    message = str(caught.value)
    assert message.startswith(option + ":")
    assert value.strip() not in message or not value.strip()


def test_a_folder_gives_its_series_identity_and_every_instance():
    identity = read_identity(IdentitySource(SAMPLE))
    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in SAMPLE.iterdir()]
    assert str(identity.attributes.PatientName) == "Phantom^Sample"
    assert identity.study_uid == headers[0].StudyInstanceUID == identity.source_study_uid
    assert identity.source_series_uid == headers[0].SeriesInstanceUID
    assert {ref.sop_instance_uid for ref in identity.references} == {ds.SOPInstanceUID for ds in headers}
    assert len(identity.references) == len(headers)
    # Type 2 attributes the series lacks are present, empty.
    assert identity.attributes.PatientSex == "" and identity.attributes.StudyID == ""
    # The sample has no Frame of Reference UID: a new one, said in the notes.
    assert not identity.frame_from_source and UID(identity.frame_of_reference_uid).is_valid
    assert any("Frame of Reference" in note for note in identity.notes)


def test_options_override_the_series():
    identity = read_identity(IdentitySource(SAMPLE, options=IdentityOptions(patient_id="NEW-ID", patient_sex="M")))
    assert identity.attributes.PatientID == "NEW-ID" and identity.attributes.PatientSex == "M"
    assert str(identity.attributes.PatientName) == "Phantom^Sample"


def test_the_series_is_chosen_as_the_scan_is(two_series):
    folder, big, small = two_series
    largest = read_identity(IdentitySource(folder))
    assert largest.source_series_uid == "1.2.826.0.1.3680043.8.498.61" and len(largest.references) == len(big)
    second = read_identity(IdentitySource(folder, series="2"))
    assert second.source_series_uid == "1.2.826.0.1.3680043.8.498.62" and len(second.references) == len(small)
    assert str(second.attributes.PatientName) == "Second^Series"
    with pytest.raises(ParameterError, match="--source-series '7' matches no series"):
        read_identity(IdentitySource(folder, series="7"))
    with pytest.raises(ParameterError, match="^--series '7'"):  # the job's own scan: its --series
        read_identity(IdentitySource(folder, series="7", option="INPUT"))


def test_one_dicom_file_gives_its_own_identity(tmp_path):
    path = write_multiframe_ct(tmp_path / "enhanced.dcm", np.zeros((3, 8, 8)), (1.0, 1.0, 2.0))
    identity = read_identity(IdentitySource(path))
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert [ref.sop_instance_uid for ref in identity.references] == [header.SOPInstanceUID]
    assert identity.attributes.PatientID == header.PatientID


def test_options_alone_give_a_new_frame_and_no_references():
    identity = read_identity(IdentitySource(None, options=GOOD))
    assert str(identity.attributes.PatientName) == "DOE^JANE" and identity.study_uid == GOOD.study_uid
    assert identity.references == () and identity.source_series_uid is None
    assert not identity.frame_from_source and UID(identity.frame_of_reference_uid).is_valid
    assert identity.notes and "DOE" not in " ".join(identity.notes)


@pytest.mark.parametrize("name, kind", [("scan.nii.gz", "a NIfTI file"), ("scan.nrrd", "an NRRD file"),
                                        ("scan.mha", "a MetaImage file")])
def test_an_image_that_is_not_dicom_needs_the_options(tmp_path, name, kind):
    path = tmp_path / name
    path.write_bytes(b"\0" * 400)
    with pytest.raises(InputError) as caught:
        check_identity_source(IdentitySource(path, option="INPUT"))
    message = str(caught.value)
    assert message.startswith(f"--dicom-stl: INPUT is {kind}, which carries no patient identity")
    assert "run it on the DICOM series instead" in message and "--source" not in message
    check_identity_source(IdentitySource(path, options=GOOD, option="INPUT"))  # with the options: fine


def test_a_mesh_without_source_points_to_source():
    with pytest.raises(InputError, match="give --source DICOM_FOLDER") as caught:
        check_identity_source(IdentitySource(None, options=IdentityOptions(patient_id="P")))
    assert "missing: --patient-name, --study-uid" in str(caught.value)


def test_a_missing_or_empty_source_is_refused(tmp_path):
    with pytest.raises(InputError, match="^--source: .* no such file or folder"):
        read_identity(IdentitySource(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="^--source: folder .* is empty"):
        read_identity(IdentitySource(tmp_path / "empty"))
