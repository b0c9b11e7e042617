"""Values with their own syntax, shared by the options of every job.

Each takes the CLI's text (``226:3071``, ``-12.5,30,101``, ``25%``) and, in an order, the same text or the
natural TOML value (``[226, 3071]``, ``[-12.5, 30, 101]``, ``0.25``).  The library's own parsers
(:func:`~medprint.segment.parse_threshold`, :func:`~medprint.segment.parse_point`) do the reading, so the
messages are theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import MedprintError
from ..segment import parse_point, parse_threshold
from ..segment.checks import check_bounds
from .spec import Custom, ValueProblem, finite_float, shown

#: Largest triangle count to decimate to (same bound as :data:`medprint.pipeline.MAX_DECIMATE_FACES`).
MAX_DECIMATE_FACES = 100_000_000


def _library(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A library parser whose "--option: why" message becomes a ValueProblem saying why."""

    def parse_text(text: str) -> Any:
        try:
            return parse(text)
        except MedprintError as error:
            raise ValueProblem(str(error).split(": ", 1)[-1]) from None

    return parse_text


def _numbers(value: Any, count: int | None, what: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or (count is not None and len(value) != count) \
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueProblem(f"{shown(value)} is not {what}")
    return [finite_float(v) for v in value]


def _join(values: Any, sep: str) -> str:
    # repr, not :g: an order's [12.34567891, ...] must reach the parser with every digit.
    return sep.join(repr(float(v)) for v in values)


def intensity_range(option: str) -> Custom:
    """``LO:HI`` (or ``[LO, HI]``): two finite numbers, low below high."""
    parse_text = _library(lambda text: parse_threshold(text, option=option))
    return Custom(parse_text, "LO:HI",
                  parse_value=lambda v: parse_text(_join(_numbers(v, 2, "[LO, HI], two numbers"), ":")),
                  format_value=lambda v: [float(v[0]), float(v[1])])


def percentiles(option: str) -> Custom:
    """``LO:HI`` percentiles within 0..100."""
    parse_range = intensity_range(option)

    def check(value: Any) -> tuple[float, float]:
        low_high: tuple[float, float] = parse_range.parse(value)
        if not 0 <= low_high[0] < low_high[1] <= 100:
            # The value as given ('1:200'), as the CLI has always said it.
            raise ValueProblem(f"{value!r}: percentiles must satisfy 0 <= LO < HI <= 100, e.g. 50:100")
        return low_high

    return Custom(check, "LO:HI", parse_value=check, format_value=parse_range.format_value)


def point(option: str) -> Custom:
    """``X,Y,Z`` (or ``[X, Y, Z]``): a point or direction in patient mm (LPS)."""
    parse_text = _library(lambda text: parse_point(text, option=option))
    return Custom(parse_text, "X,Y,Z",
                  parse_value=lambda v: parse_text(_join(_numbers(v, 3, "[X, Y, Z], three numbers"), ",")),
                  format_value=lambda v: [float(c) for c in v])


def points_path(option: str) -> Custom:
    """``X,Y,Z;X,Y,Z[;...]`` (or ``[[X, Y, Z], ...]``): clicks in order along a path."""
    one = point(option)

    def from_text(text: str) -> tuple[Any, ...]:
        return tuple(one.parse(p) for p in text.split(";") if p.strip())

    def from_value(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise ValueProblem(f"{value!r} is not a list of points [[X, Y, Z], ...]")
        return tuple(one.parse(p) for p in value)

    return Custom(from_text, "X,Y,Z;X,Y,Z[;...]", parse_value=from_value,
                  format_value=lambda path: [[float(c) for c in p] for p in path])


def plane(option: str) -> Custom:
    """``X,Y,Z:NX,NY,NZ`` (or ``[[X, Y, Z], [NX, NY, NZ]]``): a point on a plane and its normal."""
    one = point(option)

    def from_text(text: str) -> tuple[Any, Any]:
        point_text, colon, normal_text = text.partition(":")
        if not colon:
            raise ValueProblem(f"{text!r}: give a point and a normal as X,Y,Z:NX,NY,NZ (e.g. 0,0,0:1,0,0)")
        return one.parse(point_text), one.parse(normal_text)

    def from_value(value: Any) -> tuple[Any, Any]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueProblem(f"{value!r} is not [[X, Y, Z], [NX, NY, NZ]], a point and a normal")
        return one.parse(value[0]), one.parse(value[1])

    return Custom(from_text, "X,Y,Z:NX,NY,NZ", parse_value=from_value,
                  format_value=lambda v: [[float(c) for c in v[0]], [float(c) for c in v[1]]])


def _fraction_or_count(text: str) -> tuple[str, float]:
    stripped = text.strip()
    try:
        percent = stripped.endswith("%")
        number = float(stripped[:-1]) / 100.0 if percent else float(stripped)
    except ValueError:
        raise ValueProblem(f"{text!r} is neither a fraction (0.25, 25%) nor a triangle count (200000)") from None
    if check_bounds(number) is not None:
        raise ValueProblem(f"{text!r} is not a finite number; give a fraction (0.25, 25%) or a triangle count "
                           "(200000)")
    if percent or number < 1:
        if check_bounds(number, low=0, high=1, low_open=True, high_open=True) is not None:
            raise ValueProblem(f"{text!r}: a fraction to keep must lie strictly between 0 and 1 (0%..100%), "
                               "e.g. 0.25 or 25%")
        return ("fraction", number)
    if check_bounds(number, low=4, high=MAX_DECIMATE_FACES) is not None or number != int(number):
        raise ValueProblem(f"{text!r}: a triangle count must be a whole number 4..{MAX_DECIMATE_FACES}, e.g. 200000")
    return ("faces", int(number))


def _number_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueProblem(f"{shown(value)} is not a number")
    return repr(finite_float(value)) if isinstance(value, int) and abs(value) > 2**53 else repr(value)


#: ``--decimate``: ``0.25`` or ``25%`` is a fraction to keep; ``200000`` a triangle count.
DECIMATE = Custom(_fraction_or_count, "FRACTION|COUNT",
                  parse_value=lambda v: _fraction_or_count(_number_value(v)),
                  format_value=lambda v: v[1] if v[0] == "fraction" else int(v[1]))


def _fraction(text: str) -> float:
    stripped = text.strip()
    try:
        number = float(stripped[:-1]) / 100.0 if stripped.endswith("%") else float(stripped)
    except ValueError:
        raise ValueProblem(f"{text!r} is not a fraction (0.15 or 15%)") from None
    if check_bounds(number, low=0, high=1) is not None:
        raise ValueProblem(f"{text!r} is not a fraction within 0..100% (0.15 or 15%)")
    return number


#: ``--infill-density``: ``15%`` or ``0.15``.
FRACTION = Custom(_fraction, "FRACTION", parse_value=lambda v: _fraction(_number_value(v)))
