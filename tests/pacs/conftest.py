"""Fixtures for sending to a PACS: real Orthanc servers (started once per session) and DICOM files to send.

``pacs``: an Orthanc configured as a hospital PACS is: it checks the called AE title and takes C-STORE only
from the modalities it knows (DicomAlwaysAllowStore false; MEDPRINT and WORKSTATION are known).  Emptied
before each test.  ``full_pacs``: an Orthanc whose storage is full (MaximumPatientCount 1, its one patient
protected), which refuses every new patient's object with a C-STORE failure status.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).parent))
from orthanc_process import Orthanc, orthanc_program  # noqa: E402

ENCAPSULATED_STL = "1.2.840.10008.5.1.4.1.1.104.3"
KNOWN_MODALITIES = {"medprint": ["MEDPRINT", "127.0.0.1", 104], "workstation": ["WORKSTATION", "127.0.0.1", 104]}


def _start(folder: Path, settings: dict[str, object]) -> Orthanc:
    if orthanc_program() is None:
        pytest.skip("Orthanc is not installed (Debian package orthanc; .ci/run installs it)")
    return Orthanc(folder, settings=settings)


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = _start(tmp_path_factory.mktemp("orthanc"),
                    {"DicomAlwaysAllowStore": False, "DicomModalities": KNOWN_MODALITIES})
    yield server
    server.stop()


@pytest.fixture
def pacs(orthanc_server: Orthanc) -> Orthanc:
    """The session's Orthanc, empty."""
    orthanc_server.clear()
    return orthanc_server


@pytest.fixture(scope="session")
def full_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    folder = tmp_path_factory.mktemp("orthanc-full")
    server = _start(folder, {"MaximumPatientCount": 1})
    try:
        from pynetdicom import AE

        # Fill it: one patient, protected from recycling, so the next patient has no room.
        first = write_encapsulated_stl(folder / "first.dcm", patient_id="FIRST-1", patient_name="First^Patient")
        ae = AE(ae_title="MEDPRINT")
        ae.add_requested_context(ENCAPSULATED_STL, ExplicitVRLittleEndian)
        association = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
        assert association.is_established, server.log_tail()
        assert association.send_c_store(pydicom.dcmread(first)).Status == 0
        association.release()
        (patient,) = server.get("/patients")
        server.put(f"/patients/{patient}/protected", b"1")
        yield server
    finally:
        server.stop()


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


@pytest.fixture
def stl_dicom(tmp_path: Path) -> Callable[..., Path]:
    """``stl_dicom(name="x.dcm", **tags)``: a DICOM Encapsulated STL file written in the test's folder."""

    def make(name: str = "model.dcm", **tags: object) -> Path:
        return write_encapsulated_stl(tmp_path / name, **tags)  # type: ignore[arg-type]

    return make
