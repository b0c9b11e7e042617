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
from pydicom.uid import ExplicitVRLittleEndian

# Appended, not put first: other tests import the root conftest by name (``from conftest import data_root``).
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))
from orthanc_process import Orthanc, orthanc_program
from pacs_files import ENCAPSULATED_STL, write_encapsulated_stl

KNOWN_MODALITIES = {"medprint": ["MEDPRINT", "127.0.0.1", 104], "workstation": ["WORKSTATION", "127.0.0.1", 104]}


@pytest.fixture(scope="session")
def _servers() -> Iterator[list[Orthanc]]:
    """Every Orthanc the session started: at the end all are told to stop, then waited for (side by side)."""
    started: list[Orthanc] = []
    yield started
    for server in started:
        server.terminate()
    for server in started:
        server.stop()


def _start(servers: list[Orthanc], folder: Path, settings: dict[str, object]) -> Orthanc:
    if orthanc_program() is None:
        pytest.skip("Orthanc is not installed (Debian package orthanc; .ci/run installs it)")
    servers.append(Orthanc(folder, settings=settings))
    return servers[-1]


@pytest.fixture(scope="session")
def orthanc_server(_servers: list[Orthanc], tmp_path_factory: pytest.TempPathFactory) -> Orthanc:
    return _start(_servers, tmp_path_factory.mktemp("orthanc"),
                  {"DicomAlwaysAllowStore": False, "DicomModalities": KNOWN_MODALITIES})


@pytest.fixture
def pacs(orthanc_server: Orthanc) -> Orthanc:
    """The session's Orthanc, empty."""
    orthanc_server.clear()
    return orthanc_server


@pytest.fixture(scope="session")
def full_pacs(_servers: list[Orthanc], tmp_path_factory: pytest.TempPathFactory) -> Orthanc:
    from pynetdicom import AE

    folder = tmp_path_factory.mktemp("orthanc-full")
    server = _start(_servers, folder, {"MaximumPatientCount": 1})
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
    return server


@pytest.fixture
def stl_dicom(tmp_path: Path) -> Callable[..., Path]:
    """``stl_dicom(name="x.dcm", **tags)``: a DICOM Encapsulated STL file written in the test's folder."""

    def make(name: str = "model.dcm", **tags: object) -> Path:
        return write_encapsulated_stl(tmp_path / name, **tags)  # type: ignore[arg-type]

    return make
