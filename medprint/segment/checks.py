"""One check for every number a setting takes: finite, and within its sane range.

Comparisons with NaN are always false, so ``if value < 0: raise`` lets NaN
through; every settings dataclass uses :func:`require_number` instead, and the
CLI's option types use :func:`check_bounds`, so both say the same thing.
"""

from __future__ import annotations

import math
from numbers import Real

from ..errors import ParameterError

#: Largest morphology / opening radius (mm): a 10 cm ball already merges whole organs; larger ones only
#: cost memory (the mask is padded by the radius).
MAX_RADIUS_MM = 50.0
#: Largest body volume a limit may name (mm3): one cubic metre, more than any scanner holds.
MAX_VOLUME_MM3 = 1e9


def _bound_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def check_bounds(value: float, *, low: float | None = None, high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> str | None:
    """Why ``value`` is not a finite number within the bounds, or ``None`` when it is.

    >>> check_bounds(float("nan"), low=0)
    'must be a finite number'
    >>> check_bounds(0.0, low=0, low_open=True)
    'must be > 0'
    >>> check_bounds(5.0, low=0, high=10) is None
    True
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        return "must be a number"
    if not math.isfinite(float(value)):
        return "must be a finite number"
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        return f"must be {_bound_text(low, high, low_open, high_open)}"
    return None


def require_number(value: float, option: str, *, low: float | None = None, high: float | None = None,
                   low_open: bool = False, high_open: bool = False, unit: str = "", why: str = "") -> None:
    """Raise :class:`ParameterError` naming ``option`` unless ``value`` is finite and within the bounds.

    >>> require_number(float("inf"), "--close", low=0, unit="mm")
    Traceback (most recent call last):
    ...
    medprint.errors.ParameterError: --close: inf must be a finite number (mm)
    """
    problem = check_bounds(value, low=low, high=high, low_open=low_open, high_open=high_open)
    if problem is not None:
        detail = ", ".join(part for part in (unit, why) if part)
        raise ParameterError(f"{option}: {value!r} {problem}" + (f" ({detail})" if detail else ""))
