"""click types and helpers shared by subcommands, so a flag means the same everywhere.

Every number an option takes goes through :class:`FiniteFloat` or
:class:`BoundedInt`: ``nan``, ``inf`` and values outside the option's sane range
are usage errors (exit 2) that name the option, before any file is read.  Values with a syntax of their own
(``LO:HI``, ``X,Y,Z``, ``25%``) are read by the job layer's kinds (:mod:`medprint.jobs.kinds`).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..jobs.spec import Number, ValueProblem
from ..progress import ProgressCallback, no_progress


class FiniteFloat(click.FloatRange):
    """A finite float within optional bounds; ``why`` says where an upper bound comes from.

    click's own FloatRange lets NaN through (every comparison with NaN is false), so the value is checked
    by the job layer's :class:`~medprint.jobs.spec.Number`; the range still shows in ``--help``.
    """

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, why: str = "") -> None:
        super().__init__(min=low, max=high, min_open=low_open, max_open=high_open)
        self.why = why

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        # The job layer's Number reads and bounds it, so an order refuses the same values in the same words.
        try:
            return Number(self.min, self.max, low_open=self.min_open, high_open=self.max_open,
                          why=self.why).parse(value)
        except ValueProblem as problem:
            self.fail(str(problem), param, ctx)

    def _describe_range(self) -> str:
        # click shows "x<=None" for a range with neither bound; finite is all there is to say.
        return "" if self.min is None and self.max is None else super()._describe_range()

    def __repr__(self) -> str:
        return f"FiniteFloat({self.min}, {self.max})"


class BoundedInt(click.IntRange):
    """A whole number within closed bounds (click's IntRange, with the bound's reason in the message)."""

    name = "integer"

    def __init__(self, low: int, high: int, *, why: str = "") -> None:
        super().__init__(low, high)
        self.why = why

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as error:
            if self.why and error.message and self.why not in error.message:
                self.fail(f"{error.message} ({self.why})", param, ctx)
            raise


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user typed the option ``name`` (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source not in (click.core.ParameterSource.DEFAULT,
                                                 click.core.ParameterSource.DEFAULT_MAP)


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
