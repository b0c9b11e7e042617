"""DICOM Encapsulated STL (PS3.3 A.85.1): a 3D model for the patient's record, beside the images it came from.

The object carries the patient and study of the source series (so that a PACS files it under them), the source
series' Frame of Reference (the STL's coordinates are that series' patient coordinates, LPS mm, as medprint's
meshes are), references to the source images, and the STL's exact bytes.  It is the only file medprint writes
that holds patient identity.

Modules written (Encapsulated STL IOD): Patient, General Study, Encapsulated Document Series, Frame of
Reference, General Equipment, Enhanced General Equipment, Encapsulated Document, Manufacturing 3D Model, SOP
Common and Common Instance Reference.
"""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .. import __version__
from ..errors import InputError
from ..mesh.model import Mesh
from .dicom_identity import DicomIdentity
from .mesh_files import write_mesh
from .outputs import outside_run

#: SOP Class UID of Encapsulated STL Storage.
ENCAPSULATED_STL_STORAGE = "1.2.840.10008.5.1.4.1.1.104.3"
STL_MIME_TYPE = "model/stl"
MODALITY = "M3D"
MANUFACTURER = "medprint"
#: medprint's Implementation Class UID (stable: derived from the name under pydicom's root).
IMPLEMENTATION_CLASS_UID = generate_uid(entropy_srcs=["medprint implementation"])
IMPLEMENTATION_VERSION_NAME = f"MEDPRINT_{__version__}"[:16]
#: Millimetres, UCUM (Measurement Units Code Sequence): medprint's meshes are in mm.
MILLIMETRE_CODE = ("mm", "UCUM", "mm")
#: Series Number of the models medprint writes (a series of its own in the study).
SERIES_NUMBER = 3000
#: The value representations whose text the Specific Character Set encodes.
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
#: Binary STL: 80-byte header, 4-byte triangle count, 50 bytes per triangle.
_STL_HEADER_BYTES = 84
_STL_TRIANGLE_BYTES = 50


@dataclass(frozen=True)
class ModelDescription:
    """What the model is, for the Manufacturing 3D Model and Encapsulated Document modules.

    Parameters
    ----------
    title : str
        Document Title (a part name, free of identity: ``"medprint model: bone"``).
    mirrored : bool
        Made by mirroring the patient's anatomy (Model Mirroring YES).
    modified : bool, optional
        Changed from the segmented anatomy (a designed part: Model Modification YES); None: not known (the
        attribute is left out).
    series_description : str
        Series Description of the model's series.
    """

    title: str
    mirrored: bool = False
    modified: bool | None = None
    series_description: str = "medprint 3D model"


def is_binary_stl(data: bytes) -> bool:
    """Whether ``data`` is a whole binary STL: 84 bytes of header and count, then 50 per counted triangle.

    >>> is_binary_stl(bytes(80) + (0).to_bytes(4, "little"))
    True
    >>> is_binary_stl(b"solid x\\nendsolid x\\n")
    False
    """
    if len(data) < _STL_HEADER_BYTES:
        return False
    triangles = int.from_bytes(data[80:84], "little")
    return len(data) == _STL_HEADER_BYTES + _STL_TRIANGLE_BYTES * triangles


def encapsulated_stl(
    stl: bytes,
    identity: DicomIdentity,
    model: ModelDescription,
    *,
    series_uid: str | None = None,
    instance_number: int = 1,
    created: dt.datetime | None = None,
) -> Dataset:
    """The Encapsulated STL object (with its file meta) for a binary STL.

    Parameters
    ----------
    stl : bytes
        The binary STL, exactly as written beside the object (coordinates in the source's patient frame, mm).
    identity : DicomIdentity
        Patient, study, frame of reference and source images (:func:`medprint.io.dicom_identity.read_identity`).
    model : ModelDescription
    series_uid : str, optional
        The model series' UID (several parts of one run share one); new when None.
    instance_number : int
        The part's number in that series, from 1.
    created : datetime, optional
        Content and instance creation time (default: now, local time).

    Raises
    ------
    InputError
        ``stl`` is not a whole binary STL (an ASCII STL must be converted first).
    """
    if not is_binary_stl(stl):
        raise InputError("--dicom-stl: the model is not a whole binary STL; an Encapsulated STL holds binary STL")
    when = created or dt.datetime.now()
    ds = Dataset()
    _sop_common(ds, when, instance_number)
    for element in identity.attributes:
        ds.add(copy.deepcopy(element))
    _series(ds, series_uid, model)
    ds.FrameOfReferenceUID = identity.frame_of_reference_uid
    ds.PositionReferenceIndicator = identity.position_reference_indicator
    _equipment(ds)
    _document(ds, stl, identity, model, when)
    _manufacturing_model(ds, model)
    _common_instance_reference(ds, identity)
    _character_set(ds)
    ds.file_meta = _file_meta(ds)
    return ds


def binary_stl(mesh: Mesh) -> bytes:
    """``mesh`` as medprint writes a binary STL (its header: name, version, mm, LPS, part name)."""
    with tempfile.TemporaryDirectory(prefix="medprint-stl-") as folder, outside_run():
        path = Path(folder) / "model.stl"
        write_mesh(mesh, path)
        return path.read_bytes()



def write_encapsulated_stl(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as a DICOM file (preamble, file meta, explicit VR little endian) to ``path`` as it is.

    The caller decides where ``path`` is (a staged file of the run, see :class:`medprint.io.outputs.RunOutputs`).
    """
    ds.save_as(path, enforce_file_format=True)


# ----------------------------------------------------------------------------- modules


def _sop_common(ds: Dataset, when: dt.datetime, instance_number: int) -> None:
    ds.SOPClassUID = ENCAPSULATED_STL_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceCreationDate = when.strftime("%Y%m%d")
    ds.InstanceCreationTime = when.strftime("%H%M%S")
    ds.InstanceNumber = instance_number


def _series(ds: Dataset, series_uid: str | None, model: ModelDescription) -> None:
    ds.Modality = MODALITY
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDescription = model.series_description[:64]


def _equipment(ds: Dataset) -> None:
    # Enhanced General Equipment asks for all four; software has no serial number, so its name stands in.
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MANUFACTURER
    ds.DeviceSerialNumber = MANUFACTURER
    ds.SoftwareVersions = __version__


def _document(ds: Dataset, stl: bytes, identity: DicomIdentity, model: ModelDescription, when: dt.datetime) -> None:
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.AcquisitionDateTime = ""
    # medprint's STL header holds its name, version, units and the part name: nothing that names the patient.
    ds.BurnedInAnnotation = "NO"
    ds.DocumentTitle = model.title[:1024]
    ds.ConceptNameCodeSequence = Sequence()
    if identity.references:
        ds.SourceInstanceSequence = Sequence([_reference_item(ref.sop_class_uid, ref.sop_instance_uid)
                                              for ref in identity.references])
    ds.MIMETypeOfEncapsulatedDocument = STL_MIME_TYPE
    set_encapsulated_document(ds, stl)


def set_encapsulated_document(ds: Dataset, data: bytes) -> None:
    """Put ``data`` in Encapsulated Document, padded to the even length DICOM values have (one trailing NUL),
    with Encapsulated Document Length holding its own length (what a reader cuts the value to).

    A binary STL is always of even length (84 + 50 n bytes); the padding is for any other document.
    """
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(data)


def _manufacturing_model(ds: Dataset, model: ModelDescription) -> None:
    unit = Dataset()
    unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = MILLIMETRE_CODE
    ds.MeasurementUnitsCodeSequence = Sequence([unit])
    if model.modified is not None:
        ds.ModelModification = "YES" if model.modified else "NO"
    ds.ModelMirroring = "YES" if model.mirrored else "NO"
    # Model Usage Code Sequence (type 3, one item or none) is left out: whether a model is for planning or
    # to be implanted is the lab's decision, not one medprint can make.


def _common_instance_reference(ds: Dataset, identity: DicomIdentity) -> None:
    if not identity.references or identity.source_series_uid is None:
        return
    series = Dataset()
    series.SeriesInstanceUID = identity.source_series_uid
    series.ReferencedInstanceSequence = Sequence([_reference_item(ref.sop_class_uid, ref.sop_instance_uid)
                                                  for ref in identity.references])
    if identity.source_study_uid in (None, identity.study_uid):
        ds.ReferencedSeriesSequence = Sequence([series])
        return
    # The object was filed under another study (--study-uid): its sources are instances of another study.
    study = Dataset()
    study.StudyInstanceUID = identity.source_study_uid
    study.ReferencedSeriesSequence = Sequence([series])
    ds.StudiesContainingOtherReferencedInstancesSequence = Sequence([study])


def _reference_item(sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = sop_instance_uid
    return item


def _character_set(ds: Dataset) -> None:
    """UTF-8 (ISO_IR 192) when any text is not ASCII (a name copied from a Latin-1 or Japanese series, or typed)."""
    for element in ds.iterall():
        if element.VR not in _TEXT_VRS or element.value is None:
            continue
        values = element.value if isinstance(element.value, (list, tuple, MultiValue)) else [element.value]
        # A person name is a PersonName object, not a str: its text is what gets encoded.
        if any(not str(value).isascii() for value in values):
            ds.SpecificCharacterSet = "ISO_IR 192"
            return


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta
