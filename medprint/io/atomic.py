"""Write outputs whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError


def check_writable(path: Path, *, overwrite: bool, option: str = "-o/--output") -> None:
    """Fail early (before any work) when ``path`` cannot or must not be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not overwrite:
        raise OutputError(f"{option}: {path} already exists; pass --overwrite to replace it")
    if path.is_dir():
        raise OutputError(f"{option}: {path} is a folder; give a file name")
    if not folder.is_dir():
        raise OutputError(f"{option}: folder {folder} does not exist; create it first")
    _probe_writable(folder, option)


def _probe_writable(folder: Path, option: str) -> None:
    # Permission bits lie for root and read-only mounts; creating a file is the only honest test.
    try:
        handle, probe = tempfile.mkstemp(prefix=".medprint-probe-", dir=folder)
    except OSError as error:
        raise OutputError(
            f"{option}: folder {folder} is not writable ({error.strerror}); choose another output folder"
        ) from None
    os.close(handle)
    os.unlink(probe)


@contextlib.contextmanager
def atomic_path(path: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any error the temporary file is removed, so readers never see a
    half-written output.
    """
    check_writable(path, overwrite=overwrite)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
