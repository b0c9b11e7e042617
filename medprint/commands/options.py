"""Option parsers shared by subcommands, so a flag means the same everywhere.

Every number an option takes goes through :class:`FiniteFloat` or
:class:`BoundedInt`: ``nan``, ``inf`` and values outside the option's sane range
are usage errors (exit 2) that name the option, before any file is read.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import MedprintError
from ..pipeline import MAX_DECIMATE_FACES
from ..progress import ProgressCallback, no_progress
from ..segment import parse_point, parse_threshold
from ..segment.checks import check_bounds


class FiniteFloat(click.FloatRange):
    """A finite float within optional bounds; ``why`` says where an upper bound comes from.

    click's own FloatRange lets NaN through (every comparison with NaN is false), so the value is checked
    with :func:`~medprint.segment.checks.check_bounds`; the range still shows in ``--help``.
    """

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, why: str = "") -> None:
        super().__init__(min=low, max=high, min_open=low_open, max_open=high_open)
        self.why = why

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        problem = check_bounds(number, low=self.min, high=self.max, low_open=self.min_open, high_open=self.max_open)
        if problem is not None:
            reason = f" ({self.why})" if self.why else ""
            self.fail(f"{value!r} {problem}{reason}", param, ctx)
        return number

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


def _bad_parameter(error: MedprintError, ctx: click.Context, param: click.Parameter) -> click.BadParameter:
    # The library's message starts with the option's name; click names it again.
    return click.BadParameter(str(error).split(": ", 1)[-1], ctx=ctx, param=param)


def _option_name(param: click.Parameter) -> str:
    return max(param.opts, key=len) if param.opts else str(param.name)


def parse_threshold_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``LO:HI``, two finite numbers, low below high."""
    if value is None:
        return None
    try:
        return parse_threshold(value, option=_option_name(param))
    except MedprintError as error:
        raise _bad_parameter(error, ctx, param) from None


def parse_percentile_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``LO:HI`` percentiles within 0..100."""
    low_high = parse_threshold_option(ctx, param, value)
    if low_high is not None and not 0 <= low_high[0] < low_high[1] <= 100:
        raise click.BadParameter(f"{value!r}: percentiles must satisfy 0 <= LO < HI <= 100, e.g. 50:100",
                                 ctx=ctx, param=param)
    return low_high


def parse_points_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """Repeated ``X,Y,Z`` points, each three finite numbers."""
    try:
        return tuple(parse_point(text, option=_option_name(param)) for text in value)
    except MedprintError as error:
        raise _bad_parameter(error, ctx, param) from None


def parse_paths_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """Repeated ``X,Y,Z;X,Y,Z[;...]`` paths of clicks."""
    try:
        return tuple(
            tuple(parse_point(point, option=_option_name(param)) for point in path.split(";") if point.strip())
            for path in value
        )
    except MedprintError as error:
        raise _bad_parameter(error, ctx, param) from None


def parse_decimate_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``0.25`` or ``25%`` is a fraction to keep; ``200000`` a triangle count."""
    if value is None:
        return None
    text = value.strip()
    try:
        if text.endswith("%"):
            number = float(text[:-1]) / 100.0
            percent = True
        else:
            number = float(text)
            percent = False
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a fraction (0.25, 25%) nor a triangle count (200000)", ctx=ctx, param=param
        ) from None
    if check_bounds(number) is not None:
        raise click.BadParameter(f"{value!r} is not a finite number; give a fraction (0.25, 25%) or a triangle "
                                 "count (200000)", ctx=ctx, param=param)
    if percent or number < 1:
        if check_bounds(number, low=0, high=1, low_open=True, high_open=True) is not None:
            raise click.BadParameter(
                f"{value!r}: a fraction to keep must lie strictly between 0 and 1 (0%..100%), e.g. 0.25 or 25%",
                ctx=ctx, param=param,
            )
        return ("fraction", number)
    if check_bounds(number, low=4, high=MAX_DECIMATE_FACES) is not None or number != int(number):
        raise click.BadParameter(
            f"{value!r}: a triangle count must be a whole number 4..{MAX_DECIMATE_FACES}, e.g. 200000",
            ctx=ctx, param=param,
        )
    return ("faces", int(number))


def parse_fraction_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``15%`` or ``0.15``: a finite fraction 0..1."""
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a fraction (0.15 or 15%)", ctx=ctx, param=param) from None
    if check_bounds(number, low=0, high=1) is not None:
        raise click.BadParameter(f"{value!r} is not a fraction within 0..100% (0.15 or 15%)", ctx=ctx, param=param)
    return number


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
