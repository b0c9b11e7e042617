"""Sending DICOM objects to a PACS by C-STORE (pynetdicom).

One association per call, with a presentation context for each file's SOP Class and Transfer Syntax, and the
files sent as they are on disk (the data set after the File Meta group, not decoded and re-encoded).  Every
way it can fail (no service at the address, an association or a context refused, a C-STORE failure status,
a file that is not DICOM) is one :class:`PacsError` whose message names the address, the file and the fix.

pynetdicom's own log records are passed on to this module's logger at DEBUG (``medprint -vv``): the user
gets our one line, not the library's five.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MedprintError, ParameterError

log = logging.getLogger(__name__)

#: The calling AE title medprint uses unless told otherwise.
DEFAULT_CALLING_AET = "MEDPRINT"
#: PS3.5 6.2: an AE value is at most 16 characters.
AE_TITLE_MAX_CHARS = 16
#: A TCP connection that does not open within this (or the call's timeout, if shorter) is a dead host.
CONNECT_TIMEOUT_S = 10.0
#: pynetdicom proposes at most 128 presentation contexts in one association (PS3.8 9.3.2.2: odd IDs 1-255).
MAX_CONTEXTS = 128

_EXAMPLE = "e.g. ORTHANC@pacs.hospital.org:4242 or ORTHANC@[::1]:104"


class PacsError(MedprintError, OSError):
    """A PACS could not be reached, refused the association, or refused an object (exit 1; files stay)."""


@dataclass(frozen=True)
class PacsAddress:
    """``AET@HOST:PORT``: the called AE title, the host and the port of a DICOM storage service."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"


def check_ae_title(title: str, *, what: str = "AE title") -> str:
    """``title`` if it is a valid DICOM AE title (PS3.5 6.2), else ValueError naming the rule it breaks.

    1 to 16 characters of the default repertoire, no backslash, no control characters, not only spaces;
    leading and trailing spaces are not significant and are dropped.

    >>> check_ae_title(" ORTHANC ")
    'ORTHANC'
    >>> check_ae_title("A" * 17)
    Traceback (most recent call last):
    ...
    ValueError: AE title 'AAAAAAAAAAAAAAAAA' has 17 characters; at most 16
    """
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in title):
        raise ValueError(f"{what} {title!r} has a control character; use letters, digits, spaces and -_.")
    if any(ord(char) > 0x7E for char in title):
        raise ValueError(f"{what} {title!r} has a character outside ASCII; use letters, digits, spaces and -_.")
    if "\\" in title:
        raise ValueError(f"{what} {title!r} has a backslash, which DICOM forbids in AE titles")
    stripped = title.strip(" ")
    if not stripped:
        raise ValueError(f"{what} is empty or only spaces; give the title, e.g. ORTHANC")
    if len(stripped) > AE_TITLE_MAX_CHARS:
        raise ValueError(f"{what} {stripped!r} has {len(stripped)} characters; at most {AE_TITLE_MAX_CHARS}")
    return stripped


def parse_pacs_address(text: str) -> PacsAddress:
    """Read ``AET@HOST:PORT`` (IPv6 as ``AET@[::1]:104``); ValueError with the reason and an example.

    >>> parse_pacs_address("ORTHANC@127.0.0.1:4242")
    PacsAddress(ae_title='ORTHANC', host='127.0.0.1', port=4242)
    >>> str(parse_pacs_address("STORE_SCP@[::1]:104"))
    'STORE_SCP@[::1]:104'
    >>> parse_pacs_address("127.0.0.1:4242")
    Traceback (most recent call last):
    ...
    ValueError: '127.0.0.1:4242': no AE title before '@'; write AET@HOST:PORT, e.g. ORTHANC@pacs.hospital.org:4242 or ORTHANC@[::1]:104
    """
    def problem(reason: str) -> ValueError:
        return ValueError(f"{text!r}: {reason}; write AET@HOST:PORT, {_EXAMPLE}")

    title, at, place = text.rpartition("@")
    if not at:
        raise problem("no AE title before '@'")
    try:
        title = check_ae_title(title, what="the AE title")
    except ValueError as error:
        raise problem(str(error)) from None
    host, port_text = _split_host_port(place, problem)
    if not port_text.isascii() or not port_text.isdigit():
        raise problem(f"port {port_text!r} is not a number" if port_text else "no port after the host")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise problem(f"port {port} is outside 1-65535")
    return PacsAddress(title, host, port)


def _split_host_port(place: str, problem: Any) -> tuple[str, str]:
    if place.startswith("["):
        host, bracket, rest = place[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise problem("an IPv6 address goes in brackets followed by the port, as [::1]:104")
        if ":" not in host:
            raise problem(f"[{host}] is not an IPv6 address; write other hosts without brackets")
        return host, rest[1:]
    host, colon, port_text = place.rpartition(":")
    if not colon:
        raise problem("no ':PORT' after the host")
    if ":" in host:
        raise problem("an IPv6 address goes in brackets, as AET@[::1]:104")
    if not host or any(char.isspace() or ord(char) < 0x20 for char in host):
        raise problem(f"host {host!r} is empty or has spaces")
    return host, port_text


@dataclass(frozen=True)
class StoredFile:
    """One file the PACS took: its C-STORE status code and what the code means (PS3.4 B.2.3)."""

    path: Path
    sop_class: str
    status_code: int
    status_category: str
    status_meaning: str

    def line(self, address: PacsAddress) -> str:
        """``sent x.dcm to ORTHANC@127.0.0.1:4242 (status Success)``; a warning's code and meaning too."""
        status = self.status_category
        if self.status_code != 0:
            status = f"0x{self.status_code:04X} {self.status_category}: {self.status_meaning}"
        return f"sent {self.path} to {address} (status {status})"

    def as_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "sop_class": self.sop_class, "status_code": self.status_code,
                "status": self.status_category, "meaning": self.status_meaning}


def send_files(paths: Sequence[Path], address: PacsAddress, *, calling_aet: str = DEFAULT_CALLING_AET,
               timeout_s: float = 30.0, option: str = "--send") -> tuple[str, ...]:
    """C-STORE every file in one association; return one line per file sent; PacsError on any failure.

    See :func:`store_files`; the lines are ``sent x.dcm to ORTHANC@127.0.0.1:4242 (status Success)``.
    """
    stored = store_files(paths, address, calling_aet=calling_aet, timeout_s=timeout_s, option=option)
    return tuple(file.line(address) for file in stored)


def store_files(paths: Sequence[Path], address: PacsAddress, *, calling_aet: str = DEFAULT_CALLING_AET,
                timeout_s: float = 30.0, option: str = "--send") -> tuple[StoredFile, ...]:
    """C-STORE every file (DICOM Part 10) to ``address`` in one association.

    Parameters
    ----------
    paths : sequence of Path
        DICOM files with a File Meta group; each is sent as it is on disk, in its own transfer syntax.
    address : PacsAddress
        The called AE title, host and port.
    calling_aet : str
        medprint's AE title, as the PACS knows it.
    timeout_s : float
        Seconds to wait for the association answer and for each C-STORE response (the TCP connection:
        at most ``CONNECT_TIMEOUT_S``).
    option : str
        The option that named the address, to start the error lines with (``--send``, ``--to``).

    Returns
    -------
    tuple of StoredFile
        One per file, in order, with its status (Success, or a Warning such as 0xB000 coercion).

    Raises
    ------
    PacsError
        A file that is not DICOM; no DICOM service at the address; the association or a file's presentation
        context refused; a C-STORE answered with a failure status or not at all.  The first failure stops
        the send; the message says which files went before it.  Files are never changed or removed.
    ParameterError
        ``calling_aet`` is not a valid AE title, ``timeout_s`` is not positive, or no files are given.
    """
    try:
        calling_aet = check_ae_title(calling_aet, what="--calling-aet")
    except ValueError as error:
        raise ParameterError(str(error)) from None
    if not timeout_s > 0:
        raise ParameterError(f"timeout {timeout_s} s: give a positive number of seconds")
    if not paths:
        raise ParameterError("no DICOM files to send; give at least one .dcm file")
    files = tuple(_read_file_meta(Path(path)) for path in paths)
    contexts = sorted({(f.sop_class_uid, f.transfer_syntax_uid) for f in files})
    if len(contexts) > MAX_CONTEXTS:
        raise ParameterError(f"{len(contexts)} kinds of object (SOP Class and transfer syntax) in one send; "
                             f"DICOM allows {MAX_CONTEXTS}: send them in smaller groups")
    send = _Send(files, address, calling_aet, timeout_s, option)
    with _sending_as_written():
        return _store_in_one_association(send, contexts)


@dataclass(frozen=True)
class _DicomFile:
    path: Path
    sop_class_uid: str
    transfer_syntax_uid: str


@dataclass(frozen=True)
class _Send:
    """One send: what, where, as whom; what its error lines start with."""

    files: tuple[_DicomFile, ...]
    address: PacsAddress
    calling_aet: str
    timeout_s: float
    option: str

    @property
    def where(self) -> str:
        host = f"[{self.address.host}]" if ":" in self.address.host else self.address.host
        return f"{host}:{self.address.port}"

    def sent_before(self, index: int) -> str:
        """What went before file ``index`` failed, for the error line (nothing to say for one file)."""
        if len(self.files) == 1:
            return ""
        sent = ", ".join(str(f.path) for f in self.files[:index]) or "none"
        return f" (sent before it: {sent}; not sent: {len(self.files) - index})"


def _read_file_meta(path: Path) -> _DicomFile:
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_file_meta_info

    if path.is_dir():
        raise PacsError(f"{path}: a folder; give the DICOM files in it (e.g. {path / '*.dcm'})")
    if not path.is_file():
        raise PacsError(f"{path}: no such file; give the DICOM file to send (e.g. the --dicom-stl output)")
    try:
        meta = read_file_meta_info(path)
    except (InvalidDicomError, EOFError, OSError, ValueError) as error:
        # InvalidDicomError words it for programmers ("use force=True"); the user needs what to give instead.
        raise PacsError(f"{path}: not a DICOM file (no DICOM Part 10 header: {type(error).__name__}); send the "
                        ".dcm files medprint writes with --dicom-stl, not the STL or the report") from None
    missing = [keyword for keyword in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID",
                                       "TransferSyntaxUID") if not meta.get(keyword)]
    if missing:
        raise PacsError(f"{path}: its DICOM File Meta group lacks {', '.join(missing)}; a PACS cannot file it "
                        "(write it again with --dicom-stl)")
    return _DicomFile(path, str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))


def _store_in_one_association(send: _Send, contexts: Sequence[tuple[str, str]]) -> tuple[StoredFile, ...]:
    from pynetdicom import AE, evt

    ae = AE(ae_title=send.calling_aet)
    ae.connection_timeout = min(send.timeout_s, CONNECT_TIMEOUT_S)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = send.timeout_s
    for sop_class, transfer_syntax in contexts:
        ae.add_requested_context(sop_class, transfer_syntax)
    seen: set[str] = set()
    handlers: list[Any] = [(evt.EVT_CONN_OPEN, lambda event: seen.add("open")),
                           # Only well-formed PDUs get here: an answer in another protocol (HTTP) never does.
                           (evt.EVT_DATA_RECV, lambda event: seen.add(f"pdu {event.data[:1].hex()}"))]
    started = time.monotonic()
    address = send.address
    try:
        association = ae.associate(address.host, address.port, ae_title=address.ae_title, evt_handlers=handlers)
    except socket.gaierror:
        raise PacsError(f"{send.option}: host {address.host!r} of {address} not found (name resolution "
                        "failed); check the host name or give its IP address") from None
    if not association.is_established:
        _wait_for_end(association)
        raise PacsError(_not_associated(association, send, seen, time.monotonic() - started))
    try:
        _check_contexts(association, send)
        return tuple(_store_one(association, send, index) for index in range(len(send.files)))
    finally:
        if association.is_established:
            association.release()
        _wait_for_end(association)


def _wait_for_end(association: Any) -> None:
    # The association's thread logs its last records (a rejection, an abort) after associate() or release()
    # returned: they must come while pynetdicom still logs to us.
    if association.is_alive():
        association.join(timeout=CONNECT_TIMEOUT_S)


def _not_associated(association: Any, send: _Send, seen: set[str], elapsed_s: float) -> str:
    """Why no association came about, as the one line of the error."""
    if association.is_rejected:
        return _rejected(association.acceptor.primitive, send)
    if association.rejected_contexts and not association.accepted_contexts:
        # pynetdicom aborts by itself an association in which the PACS accepted no context.
        return _contexts_refused(association.rejected_contexts, send.files, send)
    if "open" not in seen:
        return (f"{send.option}: no DICOM service at {send.where} ({_connection_problem(send)}); "
                "is the PACS running and the port right?")
    if elapsed_s >= send.timeout_s * 0.9:
        return (f"{send.option}: {send.where} gave no answer to the association request within "
                f"{send.timeout_s:g} s; is it a DICOM port (not the PACS's web port)?")
    titles = f"{send.calling_aet} to {send.address.ae_title}"
    if "pdu 07" in seen:
        return (f"{send.option}: {send.where} aborted the association request ({titles}) instead of accepting or "
                "rejecting it; check both AE titles with the PACS's administrator")
    # pynetdicom tells a peer that hangs up from one that answers in another protocol (a web server's, a
    # proxy's) only in its log: both end in its own abort.
    return (f"{send.option}: {send.where} closed the connection or answered in something that is not DICOM "
            f"instead of answering the association request ({titles}); is it the PACS's DICOM port (not its "
            "web port)?")


def _connection_problem(send: _Send) -> str:
    """What a plain TCP connection to the address meets: pynetdicom logs it but does not return it."""
    timeout_s = min(send.timeout_s, CONNECT_TIMEOUT_S)
    try:
        with socket.create_connection((send.address.host, send.address.port), timeout=timeout_s):
            return "the connection opened only on a second try"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {timeout_s:g} s: host down or a firewall"
    except OSError as error:
        return error.strerror or type(error).__name__


#: What to do for each reason a PACS gives for rejecting an association (PS3.8 9.3.4, pynetdicom's words).
_REJECTION_REMEDY = {
    "Called AE title not recognised": "is {called} the PACS's AE title? (the title before @)",
    "Calling AE title not recognised": "register {calling} on the PACS as a modality, or give --calling-aet "
                                      "with a title it knows",
    "Application context name not supported": "the PACS does not speak standard DICOM on this port",
    "Temporary congestion": "try again later",
    "Local limit exceeded": "the PACS has too many associations open; try again later",
}


def _rejected(primitive: Any, send: _Send) -> str:
    reason = str(primitive.reason_str)
    remedy = _REJECTION_REMEDY.get(reason, "check the AE titles with the PACS's administrator")
    remedy = remedy.format(called=send.address.ae_title, calling=send.calling_aet)
    return (f"{send.option}: {send.address} rejected the association from {send.calling_aet}: {reason} "
            f"({primitive.result_str}, by the {primitive.source_str}); {remedy}")


def _check_contexts(association: Any, send: _Send) -> None:
    accepted = {(c.abstract_syntax, c.transfer_syntax[0]) for c in association.accepted_contexts}
    refused = [file for file in send.files if (file.sop_class_uid, file.transfer_syntax_uid) not in accepted]
    if refused:
        raise PacsError(_contexts_refused(association.rejected_contexts, refused, send))


def _contexts_refused(rejected: Sequence[Any], files: Sequence[_DicomFile], send: _Send) -> str:
    reasons = {context.abstract_syntax: context.status for context in rejected}
    first = files[0]
    reason = reasons.get(first.sop_class_uid) or "not accepted"
    more = f" (and {len(files) - 1} more)" if len(files) > 1 else ""
    return (f"{send.option}: {send.address} does not take {_uid_name(first.sop_class_uid)} in "
            f"{_uid_name(first.transfer_syntax_uid)} ({reason}): {first.path}{more} not sent; ask the PACS's "
            "administrator to accept this SOP Class and transfer syntax")


def _store_one(association: Any, send: _Send, index: int) -> StoredFile:
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS, code_to_category

    file = send.files[index]
    started = time.monotonic()
    status = association.send_c_store(file.path, msg_id=index + 1)
    code = status.get("Status") if status else None
    if code is None:
        silent = time.monotonic() - started >= send.timeout_s * 0.9
        how = f"was silent for {send.timeout_s:g} s" if silent else "aborted the association"
        raise PacsError(f"{send.option}: {send.address} gave no C-STORE status for {file.path} (it {how})"
                        f"{send.sent_before(index)}; a PACS does this when it does not know the calling AE "
                        f"title {send.calling_aet}: register it on the PACS or give --calling-aet")
    code = int(code)
    category = code_to_category(code)
    meaning = STORAGE_SERVICE_CLASS_STATUS.get(code, (category, "not a Storage status code"))[1]
    if "ErrorComment" in status:
        # A PACS's free text may quote the object's header (patient data): only at -vv.
        log.debug("C-STORE of %s: the PACS's error comment: %s", file.path, status.ErrorComment)
    if category not in ("Success", "Warning"):
        raise PacsError(f"{send.option}: {send.address} refused {file.path}: C-STORE status 0x{code:04X} "
                        f"{category} ({meaning or 'no meaning given'}){send.sent_before(index)}; the file stays "
                        "here: ask the PACS's administrator, then send it again with `medprint send`")
    stored = StoredFile(file.path, _uid_name(file.sop_class_uid), code, category, meaning)
    log.debug("%s", stored.line(send.address))
    return stored


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid


_SEND_LOCK = threading.Lock()


@contextmanager
def _sending_as_written() -> Iterator[None]:
    """pynetdicom set to send a file's bytes as written and to log to us at DEBUG, for one send.

    Both are process-wide settings of pynetdicom, so a send holds a lock and puts them back after.
    """
    from pynetdicom import _config

    library_log = logging.getLogger("pynetdicom")
    forward = _ForwardToDebug()
    with _SEND_LOCK:
        chunked, propagate, level = _config.STORE_SEND_CHUNKED_DATASET, library_log.propagate, library_log.level
        _config.STORE_SEND_CHUNKED_DATASET = True
        library_log.propagate = False
        library_log.addHandler(forward)
        library_log.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.CRITICAL + 1)
        try:
            yield
        finally:
            library_log.removeHandler(forward)
            library_log.setLevel(level)
            library_log.propagate = propagate
            _config.STORE_SEND_CHUNKED_DATASET = chunked


class _ForwardToDebug(logging.Handler):
    """pynetdicom's records as DEBUG records of medprint.io.pacs (shown with -vv)."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("pynetdicom: %s", record.getMessage())
