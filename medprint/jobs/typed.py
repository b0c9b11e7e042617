"""Values from a Python caller, read and checked by each option's kind, as the CLI and an order read them.

A script may pass a job typed values (what the CLI's parsing gives), text (``"226:3071"``) or TOML-like lists
(``[226, 3071]``); :func:`typed_values` reads each by its option's kind, so a bad one is a ParameterError naming
the option, never a TypeError deep in the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from .spec import Custom, FilePath, JobRequest, Opt, ValueProblem, option_flag


def typed_values(options: Sequence[Opt], request: JobRequest) -> dict[str, Any]:
    """``request``'s values with each option's value read by its kind; ParameterError names a bad one.

    Typed values (what the CLI's parsing gives) pass unchanged; text (``"226:3071"``) and TOML-like lists
    (``[226, 3071]``) are read as the CLI and an order read them, and numbers and words get the CLI's bounds.
    """
    values = dict(request.values)
    for opt in options:
        value = values.get(opt.dest)
        if value is None or (opt.multiple and isinstance(value, (list, tuple)) and not value):
            if opt.required:
                raise ParameterError(f"{_flags(opt)}: missing; this option is required")
            values[opt.dest] = () if opt.multiple else value
            continue
        try:
            values[opt.dest] = _typed(opt, value)
        except ValueProblem as problem:
            raise ParameterError(f"{_flags(opt)}: {problem}") from None
    return values


def _flags(opt: Opt) -> str:
    return f"-{opt.short}/{option_flag(opt.name)}" if opt.short else option_flag(opt.name)


def _typed(opt: Opt, value: Any) -> Any:
    if not opt.multiple:
        return _typed_item(opt, value)
    one_point = isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    items = value if isinstance(value, (list, tuple)) and not one_point else [value]
    return tuple(_typed_item(opt, item) for item in items)


def _typed_item(opt: Opt, item: Any) -> Any:
    kind = opt.kind
    if isinstance(kind, Custom):
        # A tuple is already the kind's value (a point, LO:HI, ("fraction", 0.25)); text and lists are read.
        return item if isinstance(item, tuple) else kind.parse(item)
    if isinstance(kind, FilePath) and isinstance(item, os.PathLike):
        return Path(item)
    return kind.parse(item)
