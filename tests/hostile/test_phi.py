"""Hostile inputs for patient data and the terminal (issue 9).

- No text a DICOM header can carry under the PS3.15 Basic Application
  Confidentiality Profile, and no file or folder name from below the input
  folder, reaches any output byte, stdout or stderr without ``--show-phi``.
- Names from outside (label names, file names) cannot put raw control
  characters on the terminal nor forge a line.
- Reports and ``--json`` are strict JSON and name their files relative to the report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_phantoms import write_ct_series
from harness import Outcome, assert_refused, assert_succeeded, files_in, run_cli
from pydicom.datadict import dictionary_VM, dictionary_VR, keyword_dict, tag_for_keyword


# ------------------------------------------------------------------------------------------------------------------
# PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile): the attributes it removes or replaces.
# pydicom ships no profile table; this list is the table's keywords (sequences included, they are skipped below).
# ------------------------------------------------------------------------------------------------------------------
PS315_KEYWORDS = """
AccessionNumber AcquisitionComments AcquisitionContextSequence AcquisitionDate AcquisitionDateTime
AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription AcquisitionTime ActualHumanPerformersSequence
AdditionalPatientHistory AdmissionID AdmittingDate AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription
AdmittingTime AffectedSOPInstanceUID Allergies AuthorObserverSequence BranchOfService CassetteID
CommentsOnThePerformedProcedureStep ConcatenationUID ConfidentialityConstraintOnPatientDataDescription
ContentCreatorName ContentCreatorIdentificationCodeSequence ContentDate ContentTime ContextGroupExtensionCreatorUID
ContrastBolusAgent ContributionDescription CountryOfResidence CreatorVersionUID CurrentPatientLocation CurveDate
CurveTime CustodialOrganizationSequence DerivationDescription DetectorID DeviceDescription DeviceSerialNumber
DeviceUID DigitalSignatureUID DimensionOrganizationUID DischargeDiagnosisDescription DistributionAddress
DistributionName DoseReferenceUID EndAcquisitionDateTime EthnicGroup ExpectedCompletionDateTime
FailedSOPInstanceUIDList FiducialUID FillerOrderNumberImagingServiceRequest FrameComments FrameOfReferenceUID
GantryID GeneratorID HumanPerformerName HumanPerformerOrganization IdentifyingComments ImageComments
ImagePresentationComments ImagingServiceRequestComments Impressions InstanceCoercionDateTime InstanceCreatorUID
InstanceCreationDate InstanceCreationTime InstitutionAddress InstitutionCodeSequence InstitutionName
InstitutionalDepartmentName InsurancePlanIdentification InterpretationAuthor InterpretationDiagnosisDescription
InterpretationIDIssuer InterpretationRecorder InterpretationText InterpretationTranscriber IrradiationEventUID
IssuerOfAdmissionID IssuerOfPatientID IssuerOfServiceEpisodeID LargePaletteColorLookupTableUID LastMenstrualDate
MedicalAlerts MedicalRecordLocator MilitaryRank ModifiedImageDescription ModifyingDeviceID
NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults Occupation OperatorIdentificationSequence
OperatorsName OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation OtherPatientIDs OtherPatientIDsSequence
OtherPatientNames OverlayDate OverlayTime ParticipantSequence PatientAddress PatientAge PatientBirthDate
PatientBirthName PatientBirthTime PatientComments PatientID PatientInstitutionResidence PatientMotherBirthName
PatientName PatientReligiousPreference PatientSex PatientSexNeutered PatientState PatientTelephoneNumbers
PatientTransportArrangements PerformedLocation PerformedProcedureStepDescription PerformedProcedureStepEndDate
PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
PerformedProcedureStepStartTime PerformedStationAETitle PerformedStationName PerformingPhysicianName PersonAddress
PersonName PersonTelephoneNumbers PhysicianApprovingInterpretation PhysiciansOfRecord
PlacerOrderNumberImagingServiceRequest PlateID PreMedication ProtocolName ReasonForTheImagingServiceRequest
ReasonForStudy ReferencedFrameOfReferenceUID ReferencedSOPInstanceUID ReferencedSOPInstanceUIDInFile
ReferringPhysicianAddress ReferringPhysicianName ReferringPhysicianTelephoneNumbers RegionOfResidence
RelatedFrameOfReferenceUID RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription
RequestedProcedureID RequestedProcedureLocation RequestedSOPInstanceUID RequestingPhysician RequestingService
ResponsibleOrganization ResponsiblePerson ResultsComments ResultsIDIssuer ReviewerName
ScheduledPatientInstitutionResidence ScheduledPerformingPhysicianName ScheduledProcedureStepDescription
ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime ScheduledProcedureStepLocation
ScheduledProcedureStepStartDate ScheduledProcedureStepStartTime ScheduledStationAETitle ScheduledStationName
ScheduledStudyLocation ScheduledStudyLocationAETitle SeriesDate SeriesDescription SeriesInstanceUID SeriesTime
ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SOPInstanceUID SpecialNeeds StationName
StorageMediaFileSetUID StudyComments StudyDate StudyDescription StudyID StudyIDIssuer StudyInstanceUID StudyTime
SynchronizationFrameOfReferenceUID TemplateExtensionCreatorUID TemplateExtensionOrganizationUID TextComments
TextString TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject TopicTitle TransactionUID UID
VerifyingObserverName VerifyingOrganization VisitComments
""".split()

#: VRs that hold text, with their maximum length in characters (PS3.5 Table 6.2-1).
TEXT_VR_MAX = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DT": 26, "LO": 64, "LT": 10240, "PN": 64, "SH": 16,
               "ST": 1024, "TM": 14, "UC": 1024, "UI": 64, "UR": 1024, "UT": 10240}
#: Distinctive UID root (not registered; the digits do not occur by chance in a mesh or G-code).
UID_ROOT = "2.25.271828182845904"
PATIENT = "Doe^Jane"
BIRTH_DATE = "19010203"
FOLDER = f"{PATIENT}_{BIRTH_DATE}"


def ps315_text_keywords() -> list[tuple[str, str]]:
    """(keyword, VR) of every Table E.1-1 attribute whose value is text, in the table's order."""
    chosen = []
    for keyword in PS315_KEYWORDS:
        # Command (0000) and file meta (0002) elements do not live in a stored dataset.
        if keyword not in keyword_dict or (tag_for_keyword(keyword) or 0) >> 16 in (0x0000, 0x0002):
            continue
        vr = dictionary_VR(keyword)
        if vr in TEXT_VR_MAX:
            chosen.append((keyword, vr))
    return chosen


def test_the_profile_list_is_the_long_one() -> None:
    # Guards the list itself: a typo drops a keyword silently from the run below.
    known = [k for k in PS315_KEYWORDS if k in keyword_dict]
    assert len(known) == len(PS315_KEYWORDS), sorted(set(PS315_KEYWORDS) - set(known))
    assert len(ps315_text_keywords()) >= 150


def _value(index: int, keyword: str, vr: str) -> str:
    """A distinctive value that is valid for its VR; dates and times are real dates and times."""
    if keyword == "PatientName":
        return PATIENT
    if keyword == "PatientBirthDate":
        return BIRTH_DATE
    if vr == "DA":
        return f"1902{index // 28 % 12 + 1:02d}{index % 28 + 1:02d}"
    if vr == "TM":
        return f"2314{index % 60:02d}.{900000 + index}"
    if vr == "DT":
        return f"19030405{index % 24:02d}1112.{700000 + index}"
    if vr == "AS":
        return "077Y"
    if vr == "UI":
        return f"{UID_ROOT}{index:03d}"  # no UID is a prefix of another
    if vr in ("CS", "AE"):
        return f"PHI{index:03d}{keyword.upper()}"[: TEXT_VR_MAX[vr]]
    return f"PHI{index:03d}{keyword}"[: TEXT_VR_MAX[vr]]


@dataclass(frozen=True)
class PhiSeries:
    root: Path  # what the user types: the folder that holds the patient-named folder
    tokens: tuple[str, ...]  # every string that may not appear anywhere


def write_phi_series(root: Path) -> PhiSeries:
    """A bone sphere as a DICOM series carrying every PS3.15 text attribute, in patient-named folders and files."""
    folder = root / FOLDER / f"{PATIENT}_CT_HEAD"
    z, y, x = np.mgrid[:12, :16, :16]
    sphere = (x - 7.5) ** 2 + (y - 7.5) ** 2 + ((z - 5.5) * 2) ** 2 <= 5.5**2
    paths = write_ct_series(folder, np.where(sphere, 1200.0, -1000.0), (1.0, 1.0, 2.0), shuffle_names=False)
    attributes = ps315_text_keywords()
    tokens = {_value(i, kw, vr) for i, (kw, vr) in enumerate(attributes) if vr not in ("CS", "AS")}
    # Short coded values (CS) and the age may occur by chance in binary data; the long CS tokens are searched.
    tokens |= {_value(i, kw, vr) for i, (kw, vr) in enumerate(attributes) if vr == "CS" and len(_value(i, kw, vr)) > 8}
    tokens |= {"077Y"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about free text in coded VRs; that is the point here
        for number, path in enumerate(paths, start=1):
            ds = pydicom.dcmread(path)
            for index, (keyword, vr) in enumerate(attributes):
                value = _value(index, keyword, vr)
                if keyword == "SOPInstanceUID":
                    value = f"{value}.{number}"
                multiple = dictionary_VM(keyword) not in ("1",)
                setattr(ds, keyword, [value] if multiple and vr != "PN" else value)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            renamed = path.with_name(f"{FOLDER}_{number:03d}.dcm")
            ds.save_as(renamed, enforce_file_format=True)
            path.unlink()
    tokens |= {PATIENT, "Jane", BIRTH_DATE, FOLDER, f"{PATIENT}_CT_HEAD"}
    return PhiSeries(root, tuple(sorted(tokens)))


@pytest.fixture(scope="module")
def phi_series(tmp_path_factory: pytest.TempPathFactory) -> PhiSeries:
    return write_phi_series(tmp_path_factory.mktemp("ps315") / "scans")


def _bytes_of(path: Path) -> Iterator[tuple[str, bytes]]:
    """A file's bytes, and for a zip (3MF) every member's name and content as well."""
    data = path.read_bytes()
    yield path.name, data
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                yield f"{path.name}:{member}", member.encode() + b"\n" + archive.read(member)


def leaks(tokens: tuple[str, ...], outcome: Outcome, out_dir: Path) -> list[str]:
    """Where a token appears: stdout, stderr, or any byte of any file written (case-insensitive)."""
    sources = [("stdout", outcome.stdout.encode()), ("stderr", outcome.stderr.encode())]
    for name in sorted(files_in(out_dir)):
        sources += list(_bytes_of(out_dir / name))
    found = []
    for token in tokens:
        needle = token.lower().encode()
        found += [f"{token!r} in {where}" for where, data in sources if needle in data.lower()]
    return found


def strict_json(text: str) -> object:
    """Parse as RFC 8259 JSON: NaN, Infinity and -Infinity fail the test."""
    return json.loads(text, parse_constant=lambda constant: pytest.fail(f"non-strict JSON constant {constant}"))


#: What `medprint info` still shows without --show-phi (scan_info.py is the dicom engineer's): the series'
#: description and UID, which `--series` accepts.  Everything else is held to the same rule as convert.
INFO_SHOWS = ("SeriesDescription", "SeriesInstanceUID")


def _info_known() -> set[str]:
    attributes = ps315_text_keywords()
    return {_value(i, kw, vr) for i, (kw, vr) in enumerate(attributes) if kw in INFO_SHOWS}


CONVERT_KINDS = {
    "stl": ["-o", "{out}/model.stl"],
    "obj": ["-o", "{out}/model.obj"],
    "ply": ["-o", "{out}/model.ply"],
    "3mf": ["-o", "{out}/model.3mf"],
    "ascii-stl": ["-o", "{out}/model.stl", "--ascii"],
    "combined-3mf": ["-o", "{out}/model.stl", "--3mf", "{out}/all.3mf"],
    "gcode": ["-o", "{out}/model.stl", "--gcode", "{out}/model.gcode", "--printer", "prusa-mk4",
              "--material", "pla"],
    "json": ["-o", "{out}/model.stl", "--json"],
    "verbose": ["-o", "{out}/model.stl", "-v"],
}


@pytest.mark.parametrize("kind", list(CONVERT_KINDS))
def test_no_ps315_text_reaches_any_convert_output(phi_series: PhiSeries, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args = [a.format(out=out) for a in CONVERT_KINDS[kind]]
    verbose = ["-v"] if "-v" in args else []
    outcome = run_cli(*verbose, "convert", phi_series.root, *[a for a in args if a != "-v"])
    assert_succeeded(outcome)
    written = files_in(out)
    assert "model.report.json" in written and len(written) >= 2, written
    strict_json((out / "model.report.json").read_text())
    if kind == "json":
        strict_json(outcome.stdout)
    # -v also logs which series was used, by number and UID (as `info` shows it; see INFO_SHOWS).
    tokens = phi_series.tokens if not verbose else tuple(t for t in phi_series.tokens if t not in _info_known())
    assert leaks(tokens, outcome, out) == []


def test_no_ps315_text_reaches_slice_output(phi_series: PhiSeries, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert_succeeded(run_cli("convert", phi_series.root, "-o", out / "model.stl", "--no-report"))
    for extra in ([], ["--json"]):
        gcode = out / f"model{len(extra)}.gcode"
        outcome = run_cli("slice", out / "model.stl", "--printer", "prusa-mk4", "--material", "pla", "-o", gcode,
                          *extra)
        assert_succeeded(outcome)
        if extra:
            strict_json(outcome.stdout)
        assert leaks(phi_series.tokens, outcome, out) == []


@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["text", "json"])
def test_no_other_ps315_text_reaches_info_output(phi_series: PhiSeries, tmp_path: Path, extra: list[str]) -> None:
    outcome = run_cli("info", phi_series.root, *extra)
    assert_succeeded(outcome)
    if extra:
        strict_json(outcome.stdout)
    others = tuple(token for token in phi_series.tokens if token not in _info_known())
    assert leaks(others, outcome, tmp_path) == []


def test_info_shows_no_ps315_text_at_all(phi_series: PhiSeries, tmp_path: Path) -> None:
    outcome = run_cli("info", phi_series.root, "--json")
    assert leaks(phi_series.tokens, outcome, tmp_path) == []


def test_info_show_phi_shows_the_patient(phi_series: PhiSeries, tmp_path: Path) -> None:
    # Positive control: the tokens are really in the headers, and the search finds them.
    first = pydicom.dcmread(next(phi_series.root.rglob("*.dcm")))
    stored = {kw: str(first.get(kw)) for kw, _ in ps315_text_keywords()}
    assert all(value not in ("None", "", "[]") for value in stored.values()), stored
    assert PATIENT in stored["PatientName"] and stored["PatientBirthDate"] == BIRTH_DATE
    outcome = run_cli("info", phi_series.root, "--show-phi")
    assert_succeeded(outcome)
    assert any(PATIENT in leak for leak in leaks(phi_series.tokens, outcome, tmp_path))


# ------------------------------------------------------------------------------------------------------------------
# Names below the input folder at the default verbosity: a truncated file in a patient-named folder
# ------------------------------------------------------------------------------------------------------------------


def outdir(path: Path) -> Path:
    """An output folder, made (medprint writes into existing folders only)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def _patient_folder_with_truncated_file(root: Path, *, all_truncated: bool = False) -> Path:
    """``root/Doe^Jane_19010203/Doe^Jane_19010203_NNN.dcm``, the last (or every) file cut short; returns ``root``.

    The last slice, so that the rest is a usable series (a file cut in the middle leaves a gap, refused).
    """
    folder = root / FOLDER
    z, y, x = np.mgrid[:8, :12, :12]
    cube = (abs(x - 5.5) < 4) & (abs(y - 5.5) < 4) & (abs(z - 3.5) < 3)
    paths = write_ct_series(folder, np.where(cube, 1200.0, -1000.0), (1.0, 1.0, 2.0), shuffle_names=False,
                            patient_name=PATIENT)
    for number, path in enumerate(paths, start=1):
        path.rename(folder / f"{FOLDER}_{number:03d}.dcm")
    victims = sorted(folder.iterdir()) if all_truncated else [sorted(folder.iterdir())[-1]]
    for victim in victims:
        victim.write_bytes(victim.read_bytes()[:-100])  # cut inside the pixel data
    return root


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-vv"]], ids=["default", "v", "vv"])
def test_truncated_file_warning_names_no_file_below_the_input(tmp_path: Path, verbosity: list[str]) -> None:
    out = outdir(tmp_path / "out")
    root = _patient_folder_with_truncated_file(tmp_path / "scans")
    outcome = run_cli(*verbosity, "convert", root, "-o", out / "model.stl")
    assert_succeeded(outcome)
    assert "truncated" in outcome.stderr  # the warning is there ...
    assert PATIENT not in outcome.stderr and BIRTH_DATE not in outcome.stderr, outcome.stderr  # ... the names not
    assert "file 8 of 8" in outcome.stderr  # counted instead
    report = (out / "model.report.json").read_text()
    assert PATIENT not in report and BIRTH_DATE not in report


def test_truncated_file_warning_names_the_file_with_show_phi(tmp_path: Path) -> None:
    out = outdir(tmp_path / "out")
    # Positive control for the case above: the scrubbed name really was in the message.
    root = _patient_folder_with_truncated_file(tmp_path / "scans")
    outcome = run_cli("-vv", "convert", root, "-o", out / "model.stl", "--show-phi")
    assert_succeeded(outcome)
    assert f"{FOLDER}_008.dcm" in outcome.stderr  # -vv lists the skipped files by name


def test_error_line_names_no_file_below_the_input(tmp_path: Path) -> None:
    out = outdir(tmp_path / "out")
    root = _patient_folder_with_truncated_file(tmp_path / "scans", all_truncated=True)
    line = assert_refused(run_cli("convert", root, "-o", out / "model.stl"),
                          mentions=[str(root), "truncated", "copy the series again"], out_dir=out)
    assert PATIENT not in line and BIRTH_DATE not in line


def test_info_names_no_file_below_the_input_on_stderr(tmp_path: Path) -> None:
    root = _patient_folder_with_truncated_file(tmp_path / "scans", all_truncated=True)
    outcome = run_cli("info", root)
    assert PATIENT not in outcome.stderr and BIRTH_DATE not in outcome.stderr, outcome.stderr
    assert outcome.stderr.startswith("medprint: error:"), outcome.stderr


# ------------------------------------------------------------------------------------------------------------------
# Control characters: label names, file names
# ------------------------------------------------------------------------------------------------------------------

#: A label name that tries everything: colour, a newline that starts a forged error line, a bidi override.
FORGING_NAME = "liver\x1b[31m\nmedprint: error: forged\u202edesrever\u2066"
#: What a one-line names format (text, NRRD header) can carry: no newline.
ONE_LINE_NAME = "liver\x1b[2J\x07\u202edesrever"
_RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def assert_terminal_safe(outcome: Outcome) -> None:
    """Nothing raw on either stream, and every stderr line is one of medprint's own records."""
    for stream in (outcome.stdout, outcome.stderr):
        assert not _RAW.search(stream), repr(stream)
    for line in outcome.stderr.splitlines():
        assert re.match(r"medprint: (error|WARNING|INFO|DEBUG):", line), repr(line)
        assert not line.startswith("medprint: error: forged"), repr(outcome.stderr)


def _scan_nifti(path: Path, array: np.ndarray) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(image, str(path))
    return path


def _ct_and_label_map(tmp_path: Path, **metadata: str) -> tuple[Path, Path]:
    z, y, x = np.mgrid[:10, :12, :12]
    cube = (abs(x - 5.5) < 4) & (abs(y - 5.5) < 4) & (abs(z - 4.5) < 3)
    ct = _scan_nifti(tmp_path / "ct.nii.gz", np.where(cube, 1200, -1000).astype(np.int16))
    labels = np.where(cube, 1, 0).astype(np.uint8)
    image = sitk.GetImageFromArray(labels)
    for key, value in metadata.items():
        image.SetMetaData(key, value)
    suffix = ".seg.nrrd" if metadata else ".nii.gz"
    path = tmp_path / f"labels{suffix}"
    sitk.WriteImage(image, str(path))
    return ct, path


def _assert_refused_escaped(outcome: Outcome, out: Path) -> None:
    line = assert_refused(outcome, mentions=["--label", "nosuch"], out_dir=out)
    assert_terminal_safe(outcome)
    assert "\\x1b" in line and "\\u202e" in line, line  # the name is shown, escaped, not dropped


def test_label_name_from_totalsegmentator_json_cannot_forge_a_line(tmp_path: Path) -> None:
    out = outdir(tmp_path / "out")
    ct, labels = _ct_and_label_map(tmp_path)
    names = tmp_path / "classes.json"
    names.write_text(json.dumps({"total": {"1": FORGING_NAME}}))
    outcome = run_cli("convert", ct, "-o", out / "m.stl", "--labels", labels, "--labels-names",
                      f"{names}#total", "--label", "nosuch")
    _assert_refused_escaped(outcome, out)
    assert "\\n" in outcome.stderr


def test_label_name_from_text_names_file_is_escaped(tmp_path: Path) -> None:
    out = outdir(tmp_path / "out")
    ct, labels = _ct_and_label_map(tmp_path)
    names = tmp_path / "names.txt"
    names.write_text(f"1 {ONE_LINE_NAME}\n", encoding="utf-8")
    outcome = run_cli("convert", ct, "-o", out / "m.stl", "--labels", labels, "--labels-names", names, "--label",
                      "nosuch")
    _assert_refused_escaped(outcome, out)


def test_label_name_from_slicer_header_is_escaped(tmp_path: Path) -> None:
    out = outdir(tmp_path / "out")
    ct, labels = _ct_and_label_map(tmp_path, Segment0_Name=ONE_LINE_NAME, Segment0_LabelValue="1")
    outcome = run_cli("convert", ct, "-o", out / "m.stl", "--labels", labels, "--label", "nosuch")
    _assert_refused_escaped(outcome, out)


def test_hostile_label_name_in_a_successful_run_stays_on_its_lines(tmp_path: Path) -> None:
    ct, labels = _ct_and_label_map(tmp_path)
    names = tmp_path / "classes.json"
    names.write_text(json.dumps({"1": FORGING_NAME, "2": "spleen"}))
    out = outdir(tmp_path / "out")
    outcome = run_cli("-v", "convert", ct, "-o", out / "m.stl", "--labels", labels, "--labels-names", names,
                      "--label", "1", "--3mf", out / "all.3mf")
    assert_succeeded(outcome)
    assert_terminal_safe(outcome)
    assert "\\x1b[31m\\nmedprint: error: forged\\u202e" in outcome.stderr  # the INFO line shows it, escaped
    report = (out / "m.report.json").read_text()
    assert strict_json(report)["parts"][0]["name"] == FORGING_NAME  # the record keeps the true name ...
    assert not _RAW.search(report)  # ... as JSON escapes


def _dicom_ct_for_segmentations(tmp_path: Path) -> tuple[Path, str]:
    from pydicom.uid import generate_uid

    uid = generate_uid()
    z, y, x = np.mgrid[:4, :10, :10]
    cube = (abs(x - 4.5) < 3) & (abs(y - 4.5) < 3) & (abs(z - 1.5) < 2)
    write_ct_series(tmp_path / "ct", np.where(cube, 1200.0, -1000.0), (1.0, 1.0, 2.0), series_uid=uid)
    return tmp_path / "ct", uid


def _write_hostile_seg(tmp_path: Path) -> tuple[Path, Path]:
    """A CT series and a one-segment DICOM SEG on it whose SegmentLabel is :data:`FORGING_NAME`."""
    from dicom_phantoms import new_dataset
    from pydicom.dataset import Dataset
    from pydicom.pixels import pack_bits
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import generate_uid

    folder, uid = _dicom_ct_for_segmentations(tmp_path)
    ds = new_dataset("1.2.840.10008.5.1.4.1.1.66.4", "SEG")
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the bidi override survives the round trip
    ds.SeriesInstanceUID = generate_uid()
    ds.SegmentationType = "BINARY"
    ds.Rows, ds.Columns, ds.NumberOfFrames = 10, 10, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    segment = Dataset()
    segment.SegmentNumber, segment.SegmentLabel, segment.SegmentAlgorithmType = 1, FORGING_NAME, "MANUAL"
    ds.SegmentSequence = DicomSequence([segment])
    ref = Dataset()
    ref.SeriesInstanceUID = uid
    ds.ReferencedSeriesSequence = DicomSequence([ref])
    shared, orientation, measures = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    measures.PixelSpacing, measures.SliceThickness, measures.SpacingBetweenSlices = [1.0, 1.0], 2.0, 2.0
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frame, position, ident = Dataset(), Dataset(), Dataset()
    position.ImagePositionPatient = ["0.0", "0.0", "2.0"]
    ident.ReferencedSegmentNumber = 1
    frame.PlanePositionSequence = DicomSequence([position])
    frame.SegmentIdentificationSequence = DicomSequence([ident])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence([frame])
    pixels = np.zeros((1, 10, 10), dtype=np.uint8)
    pixels[0, 2:8, 2:8] = 1
    ds.PixelData = pack_bits(pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a newline is not allowed in LO; hostile writers do not care
        ds.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    return folder, tmp_path / "seg.dcm"


def test_dicom_seg_segment_label_cannot_forge_a_line(tmp_path: Path) -> None:
    folder, seg = _write_hostile_seg(tmp_path)
    out = outdir(tmp_path / "out")
    outcome = run_cli("convert", folder, "-o", out / "m.stl", "--labels", seg, "--label", "nosuch")
    _assert_refused_escaped(outcome, out)


def test_real_command_stderr_holds_only_medprint_lines(tmp_path: Path) -> None:
    # As a terminal sees it: pydicom's own warnings about the hostile header go through the net too.
    folder, seg = _write_hostile_seg(tmp_path)
    out = outdir(tmp_path / "out")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "medprint", "convert", str(folder), "-o", str(out / "m.stl"), "--labels", str(seg),
         "--label", "nosuch"],
        capture_output=True, text=True, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, timeout=60,
    )
    outcome = Outcome(done.returncode, done.stdout, done.stderr, None)
    _assert_refused_escaped(outcome, out)


def test_rtstruct_roi_name_cannot_forge_a_line(tmp_path: Path) -> None:
    out = outdir(tmp_path / "out")
    from dicom_phantoms import new_dataset
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    folder, uid = _dicom_ct_for_segmentations(tmp_path)
    ds = new_dataset("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StructureSetLabel = "test"
    series, study, frame = Dataset(), Dataset(), Dataset()
    series.SeriesInstanceUID = uid
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    roi, contours = Dataset(), Dataset()
    roi.ROINumber, roi.ROIName = 1, FORGING_NAME
    contours.ReferencedROINumber = 1
    ds.StructureSetROISequence = DicomSequence([roi])
    ds.ROIContourSequence = DicomSequence([contours])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(tmp_path / "rs.dcm", enforce_file_format=True)
    outcome = run_cli("convert", folder, "-o", out / "m.stl", "--labels", tmp_path / "rs.dcm",
                      "--label", "nosuch")
    _assert_refused_escaped(outcome, out)


def test_input_path_with_control_characters_is_echoed_escaped(tmp_path: Path) -> None:
    out = outdir(tmp_path / "out")
    hostile = tmp_path / "scan\x1b]0;owned\x07\nmedprint: error: forged\u202e"
    outcome = run_cli("convert", hostile, "-o", out / "m.stl")
    line = assert_refused(outcome, mentions=["scan\\x1b]0;owned\\x07\\n"], out_dir=out)
    assert_terminal_safe(outcome)
    assert "\\u202e" in line


def test_output_names_echoed_back_are_escaped(tmp_path: Path) -> None:
    ct, _ = _ct_and_label_map(tmp_path)
    out = outdir(tmp_path / "out\x1b[8m\u202e")
    outcome = run_cli("convert", ct, "-o", out / "m.stl", "--3mf", out / "all.3mf")
    assert_succeeded(outcome)
    assert_terminal_safe(outcome)
    lines = outcome.stdout.splitlines()
    assert len(lines) == 3 and lines[1].startswith("all parts: ") and "\\x1b[8m\\u202e" in lines[2], lines
    assert files_in(out) == {"m.stl", "all.3mf", "m.report.json"}


# ------------------------------------------------------------------------------------------------------------------
# A scan given as --labels
# ------------------------------------------------------------------------------------------------------------------


def test_ct_given_as_labels_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    ct_values = rng.integers(-1024, 3072, size=(10, 16, 16)).astype(np.int16)
    ct_values[0, 0, :2] = -1024, 3071
    ct = _scan_nifti(tmp_path / "ct.nii.gz", ct_values)
    out = outdir(tmp_path / "out")
    line = assert_refused(run_cli("convert", ct, "-o", out / "m.stl", "--labels", ct),
                          mentions=["ct.nii.gz", "looks like a scan", "-1024..3071", "give the segmentation"],
                          out_dir=out)
    assert f"{len(np.unique(ct_values[ct_values != 0]))} distinct" in line


def test_unsigned_scan_given_as_labels_is_refused(tmp_path: Path) -> None:
    # Stored values without the rescale (0..4095) are all non-negative: the count of distinct values gives it away.
    ramp = (np.arange(10 * 16 * 16).reshape(10, 16, 16) % 3000).astype(np.uint16)
    ct = _scan_nifti(tmp_path / "ct.nii.gz", np.full((10, 16, 16), 1200, dtype=np.int16))
    scan = _scan_nifti(tmp_path / "stored.nii.gz", ramp)
    out = outdir(tmp_path / "out")
    assert_refused(run_cli("convert", ct, "-o", out / "m.stl", "--labels", scan),
                   mentions=["stored.nii.gz", "looks like a scan", f"1..{ramp.max()}", f"{ramp.max()} distinct",
                             "--labels-names"], out_dir=out)


# ------------------------------------------------------------------------------------------------------------------
# Strict JSON and relative paths
# ------------------------------------------------------------------------------------------------------------------


def test_non_finite_voxels_give_strict_json_or_a_refusal(tmp_path: Path) -> None:
    z, y, x = np.mgrid[:10, :12, :12]
    values = np.where((abs(x - 5.5) < 4) & (abs(y - 5.5) < 4) & (abs(z - 4.5) < 3), 1200.0, -1000.0)
    values[0, 0, :3] = [np.nan, np.inf, -np.inf]
    scan = _scan_nifti(tmp_path / "nan.nii.gz", values.astype(np.float32))
    out = outdir(tmp_path / "out")
    outcome = run_cli("convert", scan, "-o", out / "m.stl", "--json", "--modality", "CT")
    if outcome.exit_code != 0:  # refusing NaN voxels is the images engineer's call; either outcome is safe
        assert_refused(outcome, mentions=["nan.nii.gz"], out_dir=out)
        return
    assert_succeeded(outcome)
    for text in (outcome.stdout, (out / "m.report.json").read_text()):
        report = strict_json(text)
        assert all(np.isfinite(v) for v in report["input"]["value_range"] if v is not None)


def test_report_names_its_files_relative_to_its_folder(tmp_path: Path) -> None:
    ct, _ = _ct_and_label_map(tmp_path)
    out = outdir(tmp_path / FOLDER)  # an output folder named after the patient
    outcome = run_cli("convert", ct, "-o", out / "m.stl", "--3mf", outdir(out / "parts") / "all.3mf", "--gcode",
                      out / "m.gcode", "--printer", "prusa-mk4", "--material", "pla")
    assert_succeeded(outcome)
    text = (out / "m.report.json").read_text()
    assert FOLDER not in text and str(tmp_path) not in text, text
    report = strict_json(text)
    assert isinstance(report, dict)
    named = [report["mesh"]["path"], report["gcode"]["path"], report["parameters"]["combined_3mf"]]
    assert named == ["m.stl", "m.gcode", "parts/all.3mf"]
    assert all((out / name).is_file() for name in named)


def test_series_description_cannot_forge_a_line_in_info(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the phantom has no character set for the override: pydicom says so
        write_ct_series(tmp_path / "scan", np.full((3, 8, 8), -1000.0), (1.0, 1.0, 2.0), description=FORGING_NAME)
    outcome = run_cli("info", tmp_path / "scan", "--show-phi")  # the description is shown only on request
    assert_succeeded(outcome)
    assert_terminal_safe(outcome)
    assert not any(line.startswith("medprint: error: forged") for line in outcome.stdout.splitlines())
    assert "liver\\x1b[31m\\nmedprint: error: forged" in outcome.stdout  # (no charset: the override reads as ?)


def test_option_value_with_control_characters_is_echoed_escaped(tmp_path: Path) -> None:
    outcome = run_cli("convert", tmp_path / "scan", "-o", tmp_path / "m.stl", "--keep",
                      "all\x1b[2J\nmedprint: error: forged\u202e")
    assert_refused(outcome, mentions=["--keep", "all\\x1b[2J\\nmedprint: error: forged\\u202e"], exit_code=2,
                   out_dir=tmp_path)
    assert_terminal_safe(outcome)


def test_gcode_line_of_convert_echoes_the_name_escaped(tmp_path: Path) -> None:
    ct, _ = _ct_and_label_map(tmp_path)
    out = outdir(tmp_path / "out")
    hostile = out / "job\x1b[8m\nmedprint: error: forged\u202e.gcode"
    outcome = run_cli("convert", ct, "-o", out / "m.stl", "--gcode", hostile, "--printer", "prusa-mk4",
                      "--material", "pla", "--no-report")
    assert_succeeded(outcome)
    assert_terminal_safe(outcome)
    assert not any(line.startswith("medprint: error: forged") for line in outcome.stdout.splitlines())
    assert "job\\x1b[8m\\nmedprint: error: forged\\u202e.gcode: " in outcome.stdout


def test_slice_line_echoes_the_name_escaped(tmp_path: Path) -> None:
    import trimesh

    out = outdir(tmp_path / "out")
    trimesh.creation.box(extents=(10.0, 10.0, 6.0)).export(out / "box.stl")
    outcome = run_cli("slice", out / "box.stl", "--printer", "prusa-mk4", "--material", "pla", "-o",
                      out / "again\x1b[8m\nmedprint: error: forged\u202e.gcode")
    assert_succeeded(outcome)
    assert_terminal_safe(outcome)
    assert outcome.stdout.count("\n") == 1
    assert "again\\x1b[8m\\nmedprint: error: forged\\u202e.gcode: " in outcome.stdout


@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["text", "json"])
def test_info_listing_of_a_truncated_file_names_no_file_below_the_input(tmp_path: Path, extra: list[str]) -> None:
    root = _patient_folder_with_truncated_file(tmp_path / "scans")
    outcome = run_cli("info", root, *extra)
    assert_succeeded(outcome)
    if extra:
        assert strict_json(outcome.stdout)["unreadable"] == ["file 8 of 8"]  # counted, not named
    else:
        assert "unreadable: file 8 of 8" in outcome.stdout
    for stream in (outcome.stdout, outcome.stderr):
        assert PATIENT not in stream and BIRTH_DATE not in stream, stream
    shown = run_cli("info", root, "--show-phi", *extra)
    assert f"{FOLDER}_008.dcm" in shown.stdout  # positive control


def _hostile_material(folder: Path) -> Path:
    """A material profile with NaN (TOML allows it) and an escape sequence in its description."""
    shipped = Path(__file__).resolve().parents[2] / "medprint" / "profiles" / "pla.toml"
    text = shipped.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^price_per_kg = .*$", "price_per_kg = nan", text)
    text = re.sub(r'(?m)^description = .*$', r'description = "hostile \\u001b[31m\\u202e"', text)
    folder.mkdir()
    (folder / "hostile-pla.toml").write_text(text, encoding="utf-8")
    return folder


def test_profile_with_nan_gives_strict_json_or_a_refusal(tmp_path: Path) -> None:
    folder = _hostile_material(tmp_path / "profiles")
    outcome = run_cli("profiles", "show", "hostile-pla", "--profiles", folder, "--json")
    if outcome.exit_code != 0:  # refusing NaN in a profile is the numbers engineer's call; either is safe
        assert_refused(outcome, mentions=["price_per_kg"])
        return
    assert_succeeded(outcome)
    assert_terminal_safe(outcome)
    shown = strict_json(outcome.stdout)
    assert isinstance(shown, dict) and shown["price_per_kg"] is None
    assert "price_per_kg" in outcome.stderr and "null" in outcome.stderr


def test_profile_texts_are_listed_escaped(tmp_path: Path) -> None:
    folder = _hostile_material(tmp_path / "profiles")
    outcome = run_cli("profiles", "list", "--profiles", folder)
    if outcome.exit_code != 0:
        assert_refused(outcome, mentions=["hostile-pla"])
        return
    assert_terminal_safe(outcome)
    assert "hostile \\x1b[31m\\u202e" in outcome.stdout
