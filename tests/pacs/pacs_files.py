"""DICOM files for the send tests: a minimal Encapsulated STL, as another writer would make it."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ENCAPSULATED_STL = "1.2.840.10008.5.1.4.1.1.104.3"


def stl_bytes() -> bytes:
    """A small closed mesh (an icosphere, 80 triangles) as binary STL."""
    import trimesh

    data: bytes = trimesh.creation.icosphere(subdivisions=1, radius=10.0).export(file_type="stl")
    return data


def write_encapsulated_stl(path: Path, *, patient_id: str = "PACS-TEST-7", patient_name: str = "Pacs^Test",
                           study_uid: str | None = None, sop_class: str = ENCAPSULATED_STL,
                           document: bytes | None = None) -> Path:
    """A minimal DICOM Encapsulated STL file (Part 10), as another writer would make it."""
    document = stl_bytes() if document is None else document
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.PatientName, ds.PatientID = patient_name, patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid or generate_uid(), generate_uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "M3D", 1, 1
    ds.MIMETypeOfEncapsulatedDocument = "model/stl"
    # OB values are padded to even length; the length element keeps the STL's own size.
    ds.EncapsulatedDocumentLength = len(document)
    ds.EncapsulatedDocument = document + b"\0" * (len(document) % 2)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop_class, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def data_set_after_file_meta(blob: bytes) -> bytes:
    """The bytes of a Part 10 file after its File Meta group, found by (0002,0000) as PS3.10 7.1 lays it out."""
    assert blob[128:132] == b"DICM"
    # (0002,0000) UL in explicit VR little endian: tag 4 bytes, VR 2, length 2, value 4.
    assert blob[132:138] == b"\x02\x00\x00\x00UL"
    group_length = int.from_bytes(blob[140:144], "little")
    return blob[144 + group_length:]
