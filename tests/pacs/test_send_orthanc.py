"""Sending to a real Orthanc: what arrives (patient, study, bytes), and every refusal as one line, exit 1.

What "the bytes Orthanc stores equal the file sent" can honestly mean: C-STORE carries the data set, not the
File Meta group (group 0002), and Orthanc writes a File Meta group of its own (its implementation class UID,
its source AE title).  So these tests compare (1) the data set after group 0002, byte for byte, cut from both
files by the File Meta Information Group Length (0002,0000), not by a DICOM library; (2) the transfer syntax
(0002,0010) of both files; (3) the Encapsulated Document (0042,0011) Orthanc holds, read back by pydicom, with
the STL bytes the test put in.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from harness import assert_refused, assert_succeeded, run_cli
from orthanc_process import Orthanc, free_port
from pacs_files import ENCAPSULATED_STL, data_set_after_file_meta, stl_bytes

from medprint.io.pacs import PacsError, parse_pacs_address, send_files, store_files

SAMPLE_CT = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"
PRIVATE_SOP_CLASS = "1.2.826.0.1.3680043.8.498.10042.1"  # a UID no PACS knows as a storage SOP Class


def only_instance(pacs: Orthanc) -> str:
    (instance,) = pacs.instances()
    return instance


def stored_file(pacs: Orthanc, instance: str) -> bytes:
    return pacs.get_bytes(f"/instances/{instance}/file")


def test_an_encapsulated_stl_arrives_under_its_patient_and_study_with_the_same_bytes(
        pacs: Orthanc, stl_dicom: Callable[..., Path]) -> None:
    study = pydicom.uid.generate_uid()
    sent = stl_dicom("skull.dcm", patient_id="MRN-0042", patient_name="Doe^Jane", study_uid=study)
    written = sent.read_bytes()

    lines = send_files([sent], parse_pacs_address(pacs.address))

    assert lines == (f"sent {sent} to {pacs.address} (status Success)",)
    instance = only_instance(pacs)
    patient = pacs.get(f"/instances/{instance}/patient")["MainDicomTags"]
    assert (patient["PatientID"], patient["PatientName"]) == ("MRN-0042", "Doe^Jane")
    assert pacs.get(f"/instances/{instance}/study")["MainDicomTags"]["StudyInstanceUID"] == study
    stored = stored_file(pacs, instance)
    assert data_set_after_file_meta(stored) == data_set_after_file_meta(written)
    back = pydicom.dcmread(_bytes_file(stored))
    assert back.file_meta.TransferSyntaxUID == pydicom.dcmread(sent).file_meta.TransferSyntaxUID
    assert back.SOPClassUID == ENCAPSULATED_STL
    assert back.EncapsulatedDocument[:back.EncapsulatedDocumentLength] == stl_bytes()
    assert sent.read_bytes() == written  # sending leaves the file as it was


def test_a_compressed_ct_slice_is_sent_in_its_own_transfer_syntax_not_re_encoded(pacs: Orthanc) -> None:
    slice_path = min(SAMPLE_CT.iterdir())
    source = pydicom.dcmread(slice_path)
    assert source.file_meta.TransferSyntaxUID.is_compressed  # the sample is RLE Lossless

    send_files([slice_path], parse_pacs_address(pacs.address))

    stored = stored_file(pacs, only_instance(pacs))
    assert data_set_after_file_meta(stored) == data_set_after_file_meta(slice_path.read_bytes())
    assert pydicom.dcmread(_bytes_file(stored)).file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID


def test_several_files_of_several_kinds_go_in_one_send(pacs: Orthanc, stl_dicom: Callable[..., Path]) -> None:
    files = [stl_dicom("a.dcm"), stl_dicom("b.dcm"), sorted(SAMPLE_CT.iterdir())[1]]
    stored = store_files(files, parse_pacs_address(pacs.address))
    assert [s.path for s in stored] == files
    assert [s.status_category for s in stored] == ["Success"] * 3
    assert [s.sop_class for s in stored] == ["Encapsulated STL Storage"] * 2 + ["CT Image Storage"]
    assert len(pacs.instances()) == 3


def test_send_command_prints_one_line_per_file_or_json(pacs: Orthanc, stl_dicom: Callable[..., Path]) -> None:
    first, second = stl_dicom("a.dcm"), stl_dicom("b.dcm")
    outcome = run_cli("send", first, second, "--to", pacs.address)
    assert_succeeded(outcome)
    assert outcome.stdout.splitlines() == [f"sent {first} to {pacs.address} (status Success)",
                                           f"sent {second} to {pacs.address} (status Success)"]
    assert outcome.stderr == ""

    third = stl_dicom("c.dcm")
    outcome = run_cli("send", third, "--to", pacs.address, "--calling-aet", "WORKSTATION", "--json")
    assert_succeeded(outcome)
    report = json.loads(outcome.stdout)
    assert report["to"] == pacs.address and report["calling_aet"] == "WORKSTATION"
    assert report["sent"] == [{"file": str(third), "sop_class": "Encapsulated STL Storage", "status_code": 0,
                               "status": "Success", "meaning": ""}]
    assert len(pacs.instances()) == 3


# ---------------------------------------------------------------------------------------------------------------
# Refusals: one line naming the cause and the fix, exit 1, the file still there and unchanged, nothing stored.
# ---------------------------------------------------------------------------------------------------------------


def _refused(pacs: Orthanc | None, sent: list[Path], *args: object, mentions: tuple[str, ...]) -> str:
    before = {path: path.read_bytes() for path in sent if path.is_file()}
    line = assert_refused(run_cli("send", *sent, *args), exit_code=1, mentions=mentions)
    assert {path: path.read_bytes() for path in before} == before
    if pacs is not None:
        assert pacs.instances() == []
    return line


def test_a_wrong_called_ae_title_is_a_rejected_association(pacs: Orthanc, stl_dicom: Callable[..., Path]) -> None:
    _refused(pacs, [stl_dicom()], "--to", f"NOTORTHANC@127.0.0.1:{pacs.dicom_port}",
             mentions=("--to:", "rejected the association", "Called AE title not recognised", "NOTORTHANC"))


def test_an_unknown_calling_ae_title_is_refused(pacs: Orthanc, stl_dicom: Callable[..., Path]) -> None:
    # Orthanc accepts the association, then aborts it at the C-STORE of a modality it does not know.
    _refused(pacs, [stl_dicom()], "--to", pacs.address, "--calling-aet", "STRANGER",
             mentions=("no C-STORE status", "aborted the association", "STRANGER", "--calling-aet"))


def test_a_server_that_is_down_is_no_dicom_service(stl_dicom: Callable[..., Path]) -> None:
    port = free_port()
    _refused(None, [stl_dicom()], "--to", f"ORTHANC@127.0.0.1:{port}",
             mentions=(f"no DICOM service at 127.0.0.1:{port}", "connection refused", "is the PACS running"))


def test_a_pacs_that_refuses_the_object_gives_its_status(full_pacs: Orthanc,
                                                         stl_dicom: Callable[..., Path]) -> None:
    before = set(full_pacs.instances())
    _refused(None, [stl_dicom(patient_id="NEW-2")], "--to", full_pacs.address,
             mentions=("refused", "C-STORE status 0xA700", "Failure", "Refused: Out of Resources",
                       "medprint send"))
    assert set(full_pacs.instances()) == before


def test_a_refusal_in_the_middle_says_what_went_before(full_pacs: Orthanc, stl_dicom: Callable[..., Path]) -> None:
    # The full PACS still takes objects of the patient it holds, not of a new one.
    held = stl_dicom("held.dcm", patient_id="FIRST-1", patient_name="First^Patient")
    new = stl_dicom("new.dcm", patient_id="NEW-3")
    with pytest.raises(PacsError) as refused:
        send_files([held, new], parse_pacs_address(full_pacs.address))
    assert f"refused {new}" in str(refused.value)
    assert f"(sent before it: {held}; not sent: 1)" in str(refused.value)


def test_an_object_the_pacs_does_not_take_is_a_refused_context(pacs: Orthanc,
                                                              stl_dicom: Callable[..., Path]) -> None:
    odd = stl_dicom("odd.dcm", sop_class=PRIVATE_SOP_CLASS)
    _refused(pacs, [stl_dicom("fine.dcm"), odd], "--to", pacs.address,
             mentions=("does not take", PRIVATE_SOP_CLASS, "Abstract Syntax Not Supported", str(odd)))


def test_a_file_that_is_not_dicom_is_refused_before_anything_is_sent(pacs: Orthanc, tmp_path: Path,
                                                                     stl_dicom: Callable[..., Path]) -> None:
    stl = tmp_path / "skull.stl"
    stl.write_bytes(stl_bytes())
    _refused(pacs, [stl_dicom(), stl], "--to", pacs.address, mentions=(str(stl), "not a DICOM file", "--dicom-stl"))
    _refused(pacs, [tmp_path / "missing.dcm"], "--to", pacs.address, mentions=("missing.dcm", "no such file"))
    _refused(pacs, [tmp_path], "--to", pacs.address, mentions=(str(tmp_path), "a folder", "*.dcm"))


def _ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_an_ipv6_address_is_dialled_as_ipv6(stl_dicom: Callable[..., Path]) -> None:
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as probe:
        port = probe.getsockname()[1]
    _refused(None, [stl_dicom()], "--to", f"ORTHANC@[::1]:{port}",
             mentions=(f"no DICOM service at [::1]:{port}", "connection refused"))


class _TcpPeer:
    """A TCP port on 127.0.0.1 whose every connection gets ``answer(connection)`` (a hung or odd PACS)."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.answer, self.held = answer, []  # type: ignore[var-annotated]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection = self.listener.accept()[0]
            except TimeoutError:
                continue
            self.held.append(connection)
            self.answer(connection)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for connection in self.held:
            connection.close()
        self.listener.close()


@pytest.fixture
def tcp_peer() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    peers: list[_TcpPeer] = []

    def start(answer: Callable[[socket.socket], None]) -> int:
        peers.append(_TcpPeer(answer))
        return peers[-1].port

    yield start
    for peer in peers:
        peer.close()


def _say_nothing(connection: socket.socket) -> None:
    pass


def _hang_up(connection: socket.socket) -> None:
    connection.recv(65536)
    connection.close()


def _abort(connection: socket.socket) -> None:
    connection.recv(65536)
    # A-ABORT PDU (PS3.8 9.3.8): type 07, reserved, length 4, reserved x2, source 2 (service provider), reason 0.
    connection.sendall(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]))


@pytest.mark.parametrize(("answer", "mentions"), [
    (_say_nothing, ("gave no answer to the association request within 0.5 s", "DICOM port")),
    (_hang_up, ("closed the connection or answered in something that is not DICOM", "MEDPRINT to ORTHANC")),
    (_abort, ("aborted the association request", "MEDPRINT to ORTHANC", "AE titles")),
])
def test_a_peer_that_does_not_accept_nor_reject_fails_in_its_own_words(
        tcp_peer: Callable[[Callable[[socket.socket], None]], int], stl_dicom: Callable[..., Path],
        answer: Callable[[socket.socket], None], mentions: tuple[str, ...]) -> None:
    port = tcp_peer(answer)
    _refused(None, [stl_dicom()], "--to", f"ORTHANC@127.0.0.1:{port}", "--timeout", "0.5", mentions=mentions)


def test_the_web_port_is_not_mistaken_for_a_pacs(pacs: Orthanc, stl_dicom: Callable[..., Path]) -> None:
    _refused(pacs, [stl_dicom()], "--to", f"ORTHANC@127.0.0.1:{pacs.http_port}",
             mentions=(f"127.0.0.1:{pacs.http_port}", "not DICOM", "DICOM port (not its web port)"))


# ---------------------------------------------------------------------------------------------------------------
# pynetdicom's own log records: not on the terminal (nor in an application's root handlers); with -vv, as DEBUG.
# ---------------------------------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_pynetdicom_logs_reach_no_application_handler(pacs: Orthanc, stl_dicom: Callable[..., Path],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="medprint.io.pacs")
    root, seen = logging.getLogger(), _Records()
    level = root.level
    root.addHandler(seen)
    root.setLevel(logging.DEBUG)
    try:
        send_files([stl_dicom()], parse_pacs_address(pacs.address))
        with pytest.raises(PacsError):
            send_files([stl_dicom("b.dcm")], parse_pacs_address(f"WRONG@127.0.0.1:{pacs.dicom_port}"))
    finally:
        root.removeHandler(seen)
        root.setLevel(level)
    assert [r.name for r in seen.records if r.name.startswith("pynetdicom")] == []
    # What pynetdicom said is kept, as our DEBUG records.
    ours = [r.getMessage() for r in seen.records if r.name == "medprint.io.pacs"]
    assert any(m.startswith("pynetdicom: ") and "Rejected" in m for m in ours), ours


def test_one_error_line_by_default_and_pynetdicom_as_debug_with_vv(stl_dicom: Callable[..., Path]) -> None:
    address = f"ORTHANC@127.0.0.1:{free_port()}"
    quiet = run_cli("send", stl_dicom(), "--to", address)
    assert quiet.error_lines == [line for line in quiet.error_lines if line.startswith("medprint: error:")]
    assert len(quiet.error_lines) == 1
    loud = run_cli("-vv", "send", stl_dicom("b.dcm"), "--to", address)
    assert loud.exit_code == 1
    assert any(line.startswith("medprint: DEBUG: pynetdicom: ") and "Connection refused" in line
               for line in loud.error_lines), loud.stderr


def _bytes_file(blob: bytes) -> object:
    import io

    return io.BytesIO(blob)
