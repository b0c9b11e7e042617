"""Who and what a DICOM object medprint writes belongs to: patient, study, frame of reference, source images.

This is the one place where patient identity is read for output, and it goes only into the DICOM object meant
for the patient's record (:mod:`medprint.io.dicom_stl`); nothing else medprint writes sees it.  Messages raised
here name options and kinds of file, never the identity itself nor a file below the input folder (hospitals name
those after the patient).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..errors import InputError, ParameterError
from . import dicom_headers as hdr
from .dicom import SeriesInfo, choose_series, is_dicom_file, scan_dicom_folder

logger = logging.getLogger("medprint")

#: Patient module attributes copied from the source series (the PACS matches the patient on these).
PATIENT_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence", "TypeOfPatientID",
    "OtherPatientIDsSequence", "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientIdentityRemoved",
    "DeidentificationMethod", "DeidentificationMethodCodeSequence",
)
#: General Study module attributes copied from the source series (the PACS files the object in this study).
STUDY_KEYWORDS = (
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "IssuerOfAccessionNumberSequence", "StudyDescription",
)
#: Type 2 attributes of those modules: present in every object, empty when the source has no value.
REQUIRED_EMPTY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                  "ReferringPhysicianName", "StudyID", "AccessionNumber")

#: What the options give without a DICOM series: enough for a PACS to file the object under a patient and study.
NEEDED_WITHOUT_SERIES = (("patient_name", "--patient-name"), ("patient_id", "--patient-id"),
                         ("study_uid", "--study-uid"))

#: Longest values the VRs allow (PS3.5 6.2): PN per component group, LO, SH.
_PN_GROUP_MAX, _LO_MAX, _SH_MAX = 64, 64, 16
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
#: PS3.5 9.1: numeric components without leading zeros, separated by dots, at most 64 characters.
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_UID_MAX = 64


@dataclass(frozen=True)
class IdentityOptions:
    """Patient and study identity given explicitly (for a NIfTI/NRRD input, which carries none)."""

    patient_name: str | None = None
    patient_id: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    study_uid: str | None = None
    accession_number: str | None = None
    study_description: str | None = None

    def given(self) -> bool:
        return any(value is not None for value in vars(self).values())

    def check(self) -> None:
        """Refuse values DICOM cannot carry, naming the option (ParameterError); the values are not shown."""
        if self.patient_name is not None:
            _check_person_name(self.patient_name)
        _check_text(self.patient_id, "--patient-id", _LO_MAX, "Patient ID (LO)")
        if self.patient_birth_date is not None:
            _check_date(self.patient_birth_date, "--patient-birth-date")
        if self.patient_sex is not None and self.patient_sex not in ("M", "F", "O"):
            raise ParameterError("--patient-sex: give M, F or O")
        if self.study_uid is not None:
            _check_uid(self.study_uid, "--study-uid")
        _check_text(self.accession_number, "--accession-number", _SH_MAX, "Accession Number (SH)")
        _check_text(self.study_description, "--study-description", _LO_MAX, "Study Description (LO)")

    def elements(self) -> dict[str, str]:
        """The given values by DICOM keyword."""
        named = {"PatientName": self.patient_name, "PatientID": self.patient_id,
                 "PatientBirthDate": self.patient_birth_date, "PatientSex": self.patient_sex,
                 "StudyInstanceUID": self.study_uid, "AccessionNumber": self.accession_number,
                 "StudyDescription": self.study_description}
        return {keyword: value for keyword, value in named.items() if value is not None}


@dataclass(frozen=True)
class IdentitySource:
    """Where a run's DICOM identity comes from: a DICOM series (``path``, ``series`` selector as --series),
    or explicit options; both may be given (options then override the series' values).

    ``option`` names ``path`` in messages (``--source``, or ``INPUT`` when the path is the job's scan);
    ``asked_by`` what asked for the identity (``--dicom-stl``, or the ``dicom-stl`` command).
    """

    path: Path | None = None
    series: str | None = None
    options: IdentityOptions = IdentityOptions()
    option: str = "--source"
    asked_by: str = "--dicom-stl"


@dataclass(frozen=True)
class SourceReference:
    """One source image instance (its SOP Class and Instance UIDs)."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class DicomIdentity:
    """The patient, study and space a DICOM object belongs to.

    Parameters
    ----------
    attributes : Dataset
        Patient and General Study module attributes as they go into the object (type 2 ones present, maybe
        empty).
    frame_of_reference_uid : str
        The source series' Frame of Reference UID, or a new one (see ``notes``).
    position_reference_indicator : str
        The source series' (empty when none).
    source_series_uid, source_study_uid : str, optional
        The series the references point into, and its study (None without a series).
    references : tuple of SourceReference
        The source series' instances (empty without a series).
    frame_from_source : bool
        ``frame_of_reference_uid`` is the source series' (False: a new one).
    notes : tuple of str
        What was decided for the user (a new Frame of Reference ...), free of identity: for logs and reports.
    """

    attributes: Dataset
    frame_of_reference_uid: str
    position_reference_indicator: str = ""
    source_series_uid: str | None = None
    source_study_uid: str | None = None
    references: tuple[SourceReference, ...] = ()
    frame_from_source: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def study_uid(self) -> str:
        return str(self.attributes.StudyInstanceUID)


def check_identity_source(source: IdentitySource) -> None:
    """Refuse, before any work, a source that cannot give an identity (one line naming the options).

    Checks the options' values, that ``source.path`` exists, and that an input which is not DICOM comes with
    ``--patient-name``, ``--patient-id`` and ``--study-uid``.  Reads no DICOM header.
    """
    source.options.check()
    if source.path is None:
        _check_enough_options(source, "the input is a mesh, which carries no patient identity")
        return
    path = Path(source.path)
    if not path.exists():
        # The same words as the loader's: for convert this path is the scan itself, not a series named for DICOM.
        raise InputError(f"{source.option}: {path}: no such file or folder; check the path")
    if path.is_dir() or is_dicom_file(path):
        return
    _check_enough_options(source, f"{source.option} is {_kind_of_file(path)}, which carries no patient identity")


def read_identity(source: IdentitySource) -> DicomIdentity:
    """The identity a DICOM object made from ``source`` carries.

    A DICOM folder gives the chosen series' patient, study, frame of reference and instances (the options
    override its values); a single DICOM file gives its own.  Another input (NIfTI, NRRD, MHA, a mesh) needs the
    identity options, and gets a new Frame of Reference UID (said in ``notes``).

    Raises
    ------
    ParameterError
        An option's value DICOM cannot carry, or a series selector that matches no series.
    InputError
        No DICOM series there, or a non-DICOM input without ``--patient-name``, ``--patient-id`` and
        ``--study-uid``.
    """
    check_identity_source(source)
    if source.path is None or not (Path(source.path).is_dir() or is_dicom_file(source.path)):
        return _from_options(source.options)
    path = Path(source.path)
    if path.is_dir():
        info = _chosen_series(path, source)
        header, references = _read_series(info, source.option)
    else:
        header, references = _read_file(path, source.option)
    return _from_header(header, references, source.options, source.option)


# ----------------------------------------------------------------------------- building


def _from_header(header: Dataset, references: tuple[SourceReference, ...], options: IdentityOptions,
                 option: str) -> DicomIdentity:
    attributes = Dataset()
    for keyword in (*PATIENT_KEYWORDS, *STUDY_KEYWORDS):
        # An empty optional value says nothing, and an empty conditional one is an error: only values are copied.
        if keyword in header and (keyword in REQUIRED_EMPTY or not header[keyword].is_empty):
            setattr(attributes, keyword, _plain(header[keyword].value, header[keyword].VR))
    if attributes.get("PatientIdentityRemoved") == "YES" and not (
            "DeidentificationMethod" in attributes or "DeidentificationMethodCodeSequence" in attributes):
        # The source says its identity was removed but not how (1C: one of the two is required when it says YES).
        attributes.DeidentificationMethod = "not recorded in the source series"
    notes = []
    study_uid = str(header.get("StudyInstanceUID", "") or "")
    if not study_uid and options.study_uid is None:
        raise InputError(f"{option}: the DICOM series has no Study Instance UID; give --study-uid "
                         "(the study the model belongs to)")
    for keyword, value in options.elements().items():
        setattr(attributes, keyword, value)
    _fill_required(attributes)
    frame = str(header.get("FrameOfReferenceUID", "") or "")
    from_source = bool(frame)
    if not from_source:
        frame = pydicom.uid.generate_uid()
        notes.append("the source series has no Frame of Reference UID: the DICOM STL has a new one, so a viewer "
                     "cannot register it with the images automatically")
    return DicomIdentity(
        attributes=attributes, frame_of_reference_uid=frame,
        position_reference_indicator=str(header.get("PositionReferenceIndicator", "") or ""),
        source_series_uid=str(header.get("SeriesInstanceUID", "") or "") or None,
        source_study_uid=study_uid or None, references=references, frame_from_source=from_source,
        notes=tuple(notes),
    )


def _from_options(options: IdentityOptions) -> DicomIdentity:
    attributes = Dataset()
    for keyword, value in options.elements().items():
        setattr(attributes, keyword, value)
    _fill_required(attributes)
    note = ("no DICOM series gives the model's frame of reference: the DICOM STL has a new Frame of Reference "
            "UID and no source image references, so a viewer cannot place it on the images")
    return DicomIdentity(attributes=attributes, frame_of_reference_uid=pydicom.uid.generate_uid(), notes=(note,))


def _fill_required(attributes: Dataset) -> None:
    for keyword in REQUIRED_EMPTY:
        if keyword not in attributes:
            setattr(attributes, keyword, "")


def _plain(value: object, vr: str) -> object:
    """A copy of a value that re-encodes in any character set: person names as text, sequences deep-copied."""
    if vr == "PN":
        if isinstance(value, (list, tuple, MultiValue)):
            return [str(item) for item in value]
        return "" if value is None else str(value)
    return copy.deepcopy(value)


# ----------------------------------------------------------------------------- reading


def _chosen_series(folder: Path, source: IdentitySource) -> SeriesInfo:
    try:
        scan = scan_dicom_folder(folder)
    except InputError as error:
        if source.option == "INPUT":
            raise
        raise InputError(f"{source.option}: {error}") from None
    try:
        info, _ = choose_series(scan, source.series)
    except ParameterError as error:
        if source.option == "INPUT":
            raise
        # choose_series speaks of the job's --series; here the selector is --source-series.
        raise ParameterError(str(error).replace("--series", "--source-series", 1)) from None
    return info


def _read_series(info: SeriesInfo, option: str) -> tuple[Dataset, tuple[SourceReference, ...]]:
    """The first file's header and every distinct instance of the series, in the series' order."""
    header = _header(info.files[0], option, info.file_label(0))
    references: dict[str, SourceReference] = {}
    for index, path in enumerate(info.files):
        found = _header(path, option, info.file_label(index), tags=["SOPClassUID", "SOPInstanceUID"])
        reference = _reference(found)
        if reference is not None:
            references.setdefault(reference.sop_instance_uid, reference)
    return header, tuple(references.values())


def _read_file(path: Path, option: str) -> tuple[Dataset, tuple[SourceReference, ...]]:
    header = _header(path, option, "the file")
    reference = _reference(header)
    return header, () if reference is None else (reference,)


def _header(path: Path, option: str, label: str, tags: list[str] | None = None) -> Dataset:
    try:
        with hdr.quiet_pydicom():
            return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags, force=True)
    except hdr.READ_ERRORS as error:
        raise InputError(f"{option}: cannot read {label} of the DICOM series ({type(error).__name__}); "
                         "copy the series again") from None


def _reference(ds: Dataset) -> SourceReference | None:
    sop_class = str(ds.get("SOPClassUID", "") or "")
    sop_instance = str(ds.get("SOPInstanceUID", "") or "")
    return SourceReference(sop_class, sop_instance) if sop_class and sop_instance else None


# ----------------------------------------------------------------------------- checking


def _check_enough_options(source: IdentitySource, why: str) -> None:
    missing = [flag for dest, flag in NEEDED_WITHOUT_SERIES if getattr(source.options, dest) is None]
    if not missing:
        return
    # The job's own scan (convert): there is no --source to give, the DICOM series is the input itself.
    series = ("run it on the DICOM series instead" if source.option == "INPUT" and source.path is not None
              else "give --source DICOM_FOLDER (the series it was made from)")
    raise InputError(f"{source.asked_by}: {why}; {series}, or give --patient-name, --patient-id and --study-uid "
                     f"(missing: {', '.join(missing)})")


def _kind_of_file(path: Path) -> str:
    name = path.name.lower()
    kinds = ((".nii", "a NIfTI file"), (".nii.gz", "a NIfTI file"), (".nrrd", "an NRRD file"),
             (".nhdr", "an NRRD file"), (".mha", "a MetaImage file"), (".mhd", "a MetaImage file"),
             (".stl", "a mesh"), (".obj", "a mesh"), (".ply", "a mesh"), (".3mf", "a mesh"))
    return next((kind for suffix, kind in kinds if name.endswith(suffix)), "not a DICOM file")


def _check_text(value: str | None, option: str, limit: int, what: str) -> None:
    if value is None:
        return
    if not value.strip():
        raise ParameterError(f"{option}: the value is empty; give the {what} or leave the option out")
    if _CONTROL.search(value):
        raise ParameterError(f"{option}: the value holds a backslash or a control character, which DICOM {what} "
                             "cannot carry")
    if len(value) > limit:
        raise ParameterError(f"{option}: the value is {len(value)} characters long; DICOM {what} holds at most "
                             f"{limit}")


def _check_person_name(value: str) -> None:
    _check_text(value, "--patient-name", 3 * (_PN_GROUP_MAX + 1), "Patient's Name (PN)")
    groups = value.split("=")
    if len(groups) > 3 or any(len(group) > _PN_GROUP_MAX for group in groups) or \
            any(group.count("^") > 4 for group in groups):
        raise ParameterError("--patient-name: give a DICOM person name FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX, at most "
                             f"{_PN_GROUP_MAX} characters (e.g. DOE^JANE)")


def _check_date(value: str, option: str) -> None:
    try:
        valid = re.fullmatch(r"\d{8}", value) is not None and bool(dt.datetime.strptime(value, "%Y%m%d"))
    except ValueError:
        valid = False
    if not valid:
        raise ParameterError(f"{option}: give a real calendar date as YYYYMMDD (e.g. 19700131)")


def _check_uid(value: str, option: str) -> None:
    # A regular expression, not pydicom's UID(): that one warns with the value, and a UID is identifying data.
    if len(value) > _UID_MAX or not _UID.fullmatch(value):
        raise ParameterError(f"{option}: not a DICOM UID (digits and dots, no leading zeros in a component, at "
                             "most 64 characters, e.g. 1.2.826.0.1.3680043.8.498.1)")
