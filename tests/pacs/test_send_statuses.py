"""C-STORE statuses Orthanc never gives, from a pynetdicom storage SCP that answers what the test says.

A Warning (the PACS coerced the object) is a send that worked and says so; a Failure names its code and the
meaning PS3.4 gives it; the PACS's free-text Error Comment, which may quote the object's header, stays off the
error line and shows only with -vv.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import assert_refused, assert_succeeded, run_cli
from pacs_files import ENCAPSULATED_STL
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian

SCP_AET = "STORE_SCP"


@pytest.fixture
def answering_scp() -> Iterator[Callable[[int, str | None], str]]:
    """``start(status, error_comment) -> address`` of a storage SCP that answers every C-STORE so."""
    from pynetdicom import AE, evt

    servers = []

    def start(status: int, comment: str | None = None) -> str:
        def answer(event: object) -> Dataset:
            reply = Dataset()
            reply.Status = status
            if comment is not None:
                reply.ErrorComment = comment
            return reply

        ae = AE(ae_title=SCP_AET)
        ae.add_supported_context(ENCAPSULATED_STL, ExplicitVRLittleEndian)
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, answer)])
        servers.append(server)
        return f"{SCP_AET}@127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


def test_a_warning_status_is_a_send_that_says_what_the_pacs_did(answering_scp: Callable[..., str],
                                                                 stl_dicom: Callable[..., Path]) -> None:
    address, sent = answering_scp(0xB000), stl_dicom()
    outcome = run_cli("send", sent, "--to", address)
    assert_succeeded(outcome)
    assert outcome.stdout.splitlines() == [
        f"sent {sent} to {address} (status 0xB000 Warning: Coercion of Data Elements)"]


def test_a_failure_status_is_named_and_its_comment_kept_off_the_line(answering_scp: Callable[..., str],
                                                                     stl_dicom: Callable[..., Path]) -> None:
    address, sent = answering_scp(0xC123, "patient DOE^JANE already has another ID"), stl_dicom()
    line = assert_refused(run_cli("send", sent, "--to", address), exit_code=1,
                          mentions=(f"refused {sent}", "0xC123 Failure", "Cannot Understand"))
    assert "DOE^JANE" not in line
    loud = run_cli("-vv", "send", sent, "--to", address)
    assert loud.exit_code == 1
    assert any(line.startswith("medprint: DEBUG: C-STORE of") and "DOE^JANE" in line for line in loud.error_lines)
