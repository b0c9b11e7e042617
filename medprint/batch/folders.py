"""The batch's folders: the output folder, its lock, the staging area, and moving a finished order into place.

An order runs in ``OUTDIR/.staging/<name>-<nonce>/`` and becomes ``OUTDIR/<name>/`` in one ``os.rename``, so
``OUTDIR/<name>`` is always either absent, the previous complete result, or the new complete result.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError
from .manifest import fsync_folder

STAGING_NAME = ".staging"
LOCK_NAME = ".lock"

#: Files the batch itself writes into every order folder; an order may not name an output so.
ORDER_FILE = "order.toml"
LOG_FILE = "log.txt"
RESULT_FILE = "result.json"
REPORT_FILE = "report.json"
BATCH_FILES = (ORDER_FILE, LOG_FILE, RESULT_FILE, REPORT_FILE)


def prepare_output_dir(output_dir: Path) -> Path:
    """The absolute output folder, created if missing; OutputError when it cannot be used."""
    output_dir = Path(output_dir).absolute()
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"-o/--output: {output_dir} is a file; give a folder for the batch's results")
    if not output_dir.parent.is_dir():
        raise OutputError(f"-o/--output: {output_dir.parent} does not exist; create it first")
    try:
        output_dir.mkdir(exist_ok=True)
        (output_dir / STAGING_NAME).mkdir(exist_ok=True)
    except OSError as error:
        raise OutputError(f"-o/--output: cannot write in {output_dir} ({error.strerror}); choose a writable "
                          f"folder") from None
    if not os.access(output_dir, os.W_OK):
        raise OutputError(f"-o/--output: {output_dir} is not writable; choose a writable folder")
    return output_dir


@contextlib.contextmanager
def batch_lock(output_dir: Path) -> Iterator[None]:
    """Hold ``OUTDIR/.lock`` for the batch, so two batches never share a folder (released even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one batch per folder is then the user's rule
        yield
        return
    with open(output_dir / LOCK_NAME, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"-o/--output: another batch is running in {output_dir}; wait for it or choose "
                              f"another folder") from None
        yield


def staging_root(output_dir: Path) -> Path:
    return output_dir / STAGING_NAME


def remove_stale_staging(output_dir: Path) -> int:
    """Remove what interrupted runs left in the staging area (call with the lock held); returns how many."""
    root = staging_root(output_dir)
    stale = list(root.iterdir()) if root.is_dir() else []
    for entry in stale:
        remove_tree(entry)
    return len(stale)


def new_staging_folder(root: Path, name: str) -> Path:
    """A fresh, empty ``<root>/<name>-<nonce>`` folder for one attempt at an order."""
    folder = root / f"{name}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    return folder


def move_into_place(staging: Path, target: Path) -> None:
    """Make ``staging`` become ``target`` in one rename; an older ``target`` is renamed aside first, then removed."""
    aside = None
    if target.exists():
        aside = staging.parent / f"{staging.name}.replaced"
        os.rename(target, aside)
    os.rename(staging, target)
    fsync_folder(target.parent)
    if aside is not None:
        remove_tree(aside)


def remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
