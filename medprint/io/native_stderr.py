"""Keep what native code (DICOM decoders, ITK) writes to file descriptor 2 off the terminal.

Shared by the DICOM decoders (:mod:`medprint.io.dicom_headers`) and the ITK
reads of NRRD and MetaImage files (:mod:`medprint.io.image_files`): their C,
C++ and Rust code writes to the process's stderr past Python, so a handled
error would still print raw text before medprint's one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Self

#: Bytes of captured native output kept: the message and the top of a backtrace.
_CAPTURE_SHOWN = 4096
_log = logging.getLogger("medprint")


class NativeStderr:
    """Keep native code's writes to file descriptor 2 off the terminal, as DEBUG records.

    pylibjpeg-rle's Rust panics (with a whole backtrace under RUST_BACKTRACE),
    OpenJPEG, CharLS, GDCM and ITK's MetaIO write to the process's stderr past
    Python, so a handled error would still print a traceback-like block.  One
    temporary file serves a whole series (open it with ``with NativeStderr() as
    stderr:``); :meth:`capture` wraps only the native call, so that medprint's
    own log records are never written into it.  :attr:`last` keeps the text of
    the latest capture, for a message that says what the native code found.
    """

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self.last = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @contextlib.contextmanager
    def capture(self, label: str) -> Iterator[None]:
        """Send fd 2 to the capture file while the body runs; log what arrived there under ``label``."""
        self.last = ""
        try:
            sys.stderr.flush()  # what Python has buffered belongs on the terminal, before the switch
            if self._file is None:
                self._file = tempfile.TemporaryFile()  # noqa: SIM115 - kept for the series, closed in __exit__
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            # No stderr to protect (closed fd 2, or no sys.stderr): run without capture.
            yield
            return
        try:
            os.dup2(self._file.fileno(), 2)
            yield
        finally:
            # Restored even on KeyboardInterrupt: the terminal must get its stderr back.
            os.dup2(saved, 2)
            os.close(saved)
            self._report(label)

    def _report(self, label: str) -> None:
        assert self._file is not None
        size = self._file.tell()
        if not size:
            return
        self._file.seek(0)
        captured = self._file.read(_CAPTURE_SHOWN).decode("utf-8", "replace")
        self.last = " | ".join(line.strip() for line in captured.splitlines() if line.strip())
        more = f" ... ({size} bytes in all)" if size > _CAPTURE_SHOWN else ""
        _log.debug("%s: the decoder wrote to stderr: %s%s", label, self.last, more)
        self._file.seek(0)
        self._file.truncate()
