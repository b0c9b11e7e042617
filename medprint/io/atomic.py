"""Write outputs whole or not at all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from .outputs import RunOutputs, check_writable, current_run

__all__ = ["atomic_path", "check_writable"]


@contextlib.contextmanager
def atomic_path(path: Path, *, overwrite: bool, option: str = "-o/--output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    Inside an active :class:`~medprint.io.outputs.RunOutputs` the file joins
    that run and is renamed with the run's other files at its commit;
    otherwise it is a run of its own.  On any error (disk full included, as
    one :class:`~medprint.errors.OutputError` line) the temporary file is
    removed, so readers never see a half-written output.
    """
    run = current_run()
    if run is not None:
        with run.stage(Path(path)) as temp:
            yield temp
        return
    with RunOutputs(overwrite=overwrite) as alone:
        alone.reserve(Path(path), option)
        with alone.stage(Path(path)) as temp:
            yield temp
        alone.commit()
