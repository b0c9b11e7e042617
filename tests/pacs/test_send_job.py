"""``--send`` on a run, end to end: convert the sample CT with --dicom-stl and send it to a real Orthanc.

The object must arrive under the patient and study of the source series (PatientID, PatientName and
StudyInstanceUID read from samples/head_phantom_ct by pydicom), the data set Orthanc stores after its File Meta
group must be the one medprint wrote, byte for byte, and its Encapsulated Document the STL written beside it.
A send that fails exits 1 with one line, after the run has written every file: they stay, and the line says
how to send them later.
"""

from __future__ import annotations

import io
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from harness import assert_refused, assert_succeeded, run_cli
from orthanc_process import Orthanc, free_port
from pacs_files import data_set_after_file_meta

SAMPLE_CT = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"


@pytest.fixture(scope="module")
def source_identity() -> dict[str, str]:
    first = pydicom.dcmread(min(SAMPLE_CT.iterdir()), stop_before_pixels=True)
    return {"PatientID": str(first.PatientID), "PatientName": str(first.PatientName),
            "StudyInstanceUID": str(first.StudyInstanceUID)}


@pytest.fixture(scope="module")
def converted_and_sent(orthanc_server: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[Path, object]]:
    """One run of ``convert --dicom-stl --send`` for the tests of what arrived (the run is the slow part)."""
    orthanc_server.clear()
    out = tmp_path_factory.mktemp("sent")
    outcome = run_cli("convert", SAMPLE_CT, "-o", out / "skull.stl", "--preset", "bone",
                      "--dicom-stl", out / "skull.dcm", "--send", orthanc_server.address)
    yield out, outcome
    orthanc_server.clear()


def test_convert_sends_its_dicom_stl_and_says_so(converted_and_sent: tuple[Path, object],
                                                 orthanc_server: Orthanc) -> None:
    out, outcome = converted_and_sent
    assert_succeeded(outcome)  # type: ignore[arg-type]
    lines = outcome.stdout.splitlines()  # type: ignore[attr-defined]
    assert f"DICOM: {out / 'skull.dcm'}" in lines
    assert f"sent {out / 'skull.dcm'} to {orthanc_server.address} (status Success)" in lines
    assert len(orthanc_server.instances()) == 1


def test_the_sent_object_is_filed_under_the_source_patient_and_study(
        converted_and_sent: tuple[Path, object], orthanc_server: Orthanc, source_identity: dict[str, str]) -> None:
    (instance,) = orthanc_server.instances()
    patient = orthanc_server.get(f"/instances/{instance}/patient")["MainDicomTags"]
    study = orthanc_server.get(f"/instances/{instance}/study")["MainDicomTags"]
    assert patient["PatientID"] == source_identity["PatientID"]
    assert patient["PatientName"] == source_identity["PatientName"]
    assert study["StudyInstanceUID"] == source_identity["StudyInstanceUID"]
    assert orthanc_server.get(f"/instances/{instance}/series")["MainDicomTags"]["Modality"] == "M3D"


def test_orthanc_stores_the_data_set_medprint_wrote_and_the_stl_beside_it(
        converted_and_sent: tuple[Path, object], orthanc_server: Orthanc) -> None:
    out, _ = converted_and_sent
    (instance,) = orthanc_server.instances()
    stored = orthanc_server.get_bytes(f"/instances/{instance}/file")
    assert data_set_after_file_meta(stored) == data_set_after_file_meta((out / "skull.dcm").read_bytes())
    back = pydicom.dcmread(io.BytesIO(stored))
    assert back.EncapsulatedDocument[:back.EncapsulatedDocumentLength] == (out / "skull.stl").read_bytes()


def _written(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def test_a_failed_send_exits_1_and_keeps_every_file_of_the_run(tmp_path: Path) -> None:
    port = free_port()
    outcome = run_cli("convert", SAMPLE_CT, "-o", tmp_path / "skull.stl", "--preset", "bone",
                      "--dicom-stl", tmp_path / "skull.dcm", "--send", f"ORTHANC@127.0.0.1:{port}")
    line = assert_refused(outcome, exit_code=1, mentions=(
        "--send:", f"no DICOM service at 127.0.0.1:{port}", "connection refused", "files are written and kept",
        f"medprint send {tmp_path / 'skull.dcm'} --to ORTHANC@127.0.0.1:{port}"))
    assert "--calling-aet" not in line
    files = _written(tmp_path)
    assert set(files) == {"skull.stl", "skull.dcm", "skull.report.json"}
    kept = pydicom.dcmread(io.BytesIO(files["skull.dcm"]))
    assert kept.EncapsulatedDocument[:kept.EncapsulatedDocumentLength] == files["skull.stl"]


def test_a_refused_calling_ae_title_keeps_the_files_and_repeats_the_title(pacs: Orthanc, tmp_path: Path) -> None:
    outcome = run_cli("convert", SAMPLE_CT, "-o", tmp_path / "skull.stl", "--preset", "bone",
                      "--dicom-stl", tmp_path / "skull.dcm", "--send", pacs.address, "--calling-aet", "3D LAB")
    assert_refused(outcome, exit_code=1, mentions=("3D LAB", "--calling-aet '3D LAB'", "files are written"))
    assert {"skull.stl", "skull.dcm"} <= set(_written(tmp_path))
    assert pacs.instances() == []


def test_a_saved_order_keeps_the_address_and_sends_when_run(pacs: Orthanc, tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    outcome = run_cli("convert", SAMPLE_CT, "-o", first / "skull.stl", "--preset", "bone",
                      "--dicom-stl", first / "skull.dcm", "--send", pacs.address, "--calling-aet", "WORKSTATION",
                      "--save-order", tmp_path / "order.toml")
    assert_succeeded(outcome)
    order = tomllib.loads((tmp_path / "order.toml").read_text())
    assert (order["send"], order["calling-aet"]) == (pacs.address, "WORKSTATION")
    pacs.clear()
    again = tmp_path / "again"
    outcome = run_cli("run", tmp_path / "order.toml", "-o", again)
    assert_succeeded(outcome)
    sent = [line for line in outcome.stdout.splitlines() if line.startswith("sent ")]
    assert len(sent) == 1 and sent[0].endswith(f"to {pacs.address} (status Success)")
    assert len(pacs.instances()) == 1
