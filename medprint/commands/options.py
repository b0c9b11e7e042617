"""Option parsers shared by subcommands, so a flag means the same everywhere."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import MedprintError
from ..progress import ProgressCallback, no_progress
from ..segment import parse_threshold


def parse_threshold_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_threshold(value)
    except MedprintError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1], ctx=ctx, param=param) from None


def parse_decimate_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``0.25`` or ``25%`` is a fraction to keep; ``200000`` a triangle count."""
    if value is None:
        return None
    text = value.strip()
    try:
        if text.endswith("%"):
            return ("fraction", float(text[:-1]) / 100.0)
        number = float(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a fraction (0.25, 25%) nor a triangle count (200000)", ctx=ctx, param=param
        ) from None
    return ("fraction", number) if number < 1 else ("faces", int(number))


class progress_reporter:
    """A progress bar on an interactive terminal; silence when piped."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._stage = ""

    def __enter__(self) -> ProgressCallback:
        return self.update if self.enabled else no_progress

    def __exit__(self, *exc: object) -> None:
        self._close()

    def update(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self._close()
            self._stage = stage
            self._bar = click.progressbar(length=total, label=stage, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
