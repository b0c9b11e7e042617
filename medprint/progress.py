"""Progress reporting hook shared by the long-running stages."""

from __future__ import annotations

from typing import Callable

#: Called as ``progress(stage, done, total)``; the library never prints.
ProgressCallback = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """The default callback: report nothing."""
