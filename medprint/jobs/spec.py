"""One schema for every job: the options of ``convert``, ``slice`` and ``design``, as data.

A :class:`JobSpec` lists a command's options once.  The CLI builds its click options from it
(:mod:`medprint.commands.job_command`), and an order file's keys are the same names, checked by the
same :class:`Kind` objects (:mod:`medprint.jobs.orders`), so a value the command refuses is refused in
an order with the same words, and a key means what the option means.

An option's *name* is its long CLI name without the dashes (``max-radius``): the order key.  Its
*dest* is the keyword the job's run function receives (``max_radius``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from ..errors import ParameterError
from ..progress import ProgressCallback, no_progress
from ..segment.checks import check_bounds


class ValueProblem(ValueError):
    """A value an option cannot take; the message says why, without the option's name (the caller adds it)."""


# ---------------------------------------------------------------------------------------------------------------
# Kinds: what an option's value is.  ``parse`` takes the CLI's text or an order's TOML value (number, string,
# array, bool) and returns the typed value the run function receives, or raises ValueProblem.
# ---------------------------------------------------------------------------------------------------------------


class Kind:
    """The type of an option's value."""

    #: Shown in ``--help`` and in order errors ("a number", "LO:HI").
    metavar: str = "TEXT"

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def to_order(self, value: Any) -> Any:
        """The value as it is written in a TOML order (inverse of :meth:`parse` up to formatting)."""
        return value


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    raise ValueProblem(f"{value!r} is not {what}")


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 400-digit integer in a message helps no one)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return "<a number too big to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def finite_float(value: int | float) -> float:
    """``float(value)``; an integer too large for a float is a ValueProblem, not an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        raise ValueProblem(f"{shown(value)} is too large to be a number here") from None


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueProblem(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return finite_float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueProblem(f"{value!r} is not a number") from None


@dataclass(frozen=True)
class Number(Kind):
    """A finite float within optional bounds; ``why`` says where a bound comes from."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""
    metavar: str = "FLOAT"

    def parse(self, value: Any) -> float:
        number = _number(value)
        problem = check_bounds(number, low=self.low, high=self.high, low_open=self.low_open,
                               high_open=self.high_open)
        if problem is not None:
            reason = f" ({self.why})" if self.why else ""
            raise ValueProblem(f"{shown(value)} {problem}{reason}")
        return number


@dataclass(frozen=True)
class Whole(Kind):
    """A whole number within closed bounds."""

    low: int
    high: int
    why: str = ""
    metavar: str = "INTEGER"

    def parse(self, value: Any) -> int:
        if isinstance(value, bool):
            raise ValueProblem(f"{value!r} is not a whole number")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            try:
                value = int(str(value).strip())
            except ValueError:
                raise ValueProblem(f"{shown(value)} is not a valid integer") from None
        if not self.low <= value <= self.high:
            reason = f" ({self.why})" if self.why else ""
            raise ValueProblem(f"{shown(value)} is not in the range {self.low}<=x<={self.high}{reason}")
        return value


@dataclass(frozen=True)
class Choice(Kind):
    """One of a fixed set of words."""

    choices: tuple[str, ...]
    case_sensitive: bool = True

    @property
    def metavar(self) -> str:  # type: ignore[override]
        return "[" + "|".join(self.choices) + "]"

    def parse(self, value: Any) -> str:
        text = _text(value, "a word")
        for choice in self.choices:
            if text == choice or (not self.case_sensitive and text.lower() == choice.lower()):
                return choice
        raise ValueProblem(f"{text!r} is not one of {', '.join(map(repr, self.choices))}")


@dataclass(frozen=True)
class Text(Kind):
    """Free text (a profile name, a label name)."""

    metavar: str = "TEXT"

    def parse(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueProblem(f"{value!r} is not text")
        return str(value)


@dataclass(frozen=True)
class Flag(Kind):
    """On or off (``--fill-cavities``; ``fill-cavities = true`` in an order)."""

    metavar: str = ""

    def parse(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise ValueProblem(f"{value!r} is not true or false")


#: Where a path option's relative paths start in an order: inputs from the order file's folder, outputs
#: inside the order's output folder (and nowhere above it).
PathRole = Literal["input", "output"]


@dataclass(frozen=True)
class FilePath(Kind):
    """A file or folder.  ``fragment``: a ``FILE#part`` suffix (``--labels-names map.json#map``) is kept."""

    role: PathRole = "input"
    fragment: bool = False
    metavar: str = "PATH"

    def parse(self, value: Any) -> Path:
        if isinstance(value, PurePath):  # a script's Path is a path as much as its text
            value = str(value)
        text = _text(value, "a path")
        if not text.strip():
            raise ValueProblem("an empty path; give a file name")
        if "\x00" in text:
            raise ValueProblem("a path with a NUL character")
        if self.role == "output":
            # Checked on the text: Path("sub/") is Path("sub"), and would be written as a file.
            if text.endswith(("/", "\\")):
                raise ValueProblem(f"{shown(text)} ends with a slash, a folder; give a file name, e.g. sub/model.stl")
        return Path(text)

    def to_order(self, value: Any) -> Any:
        return str(value)


@dataclass(frozen=True)
class Custom(Kind):
    """A value with its own syntax (``LO:HI``, ``X,Y,Z``, ``25%``); ``parse_text`` reads the CLI's text and
    ``parse_value`` an order's TOML value (default: the same text)."""

    parse_text: Callable[[str], Any]
    metavar: str = "TEXT"
    parse_value: Callable[[Any], Any] | None = None
    format_value: Callable[[Any], Any] | None = None

    def parse(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.parse_text(value)
        if self.parse_value is not None:
            return self.parse_value(value)
        raise ValueProblem(f"{value!r}: write it as text, {self.metavar}")

    def to_order(self, value: Any) -> Any:
        return self.format_value(value) if self.format_value is not None else value


# ---------------------------------------------------------------------------------------------------------------
# Options and jobs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """One option of a job: its CLI long name (= order key), the run function's keyword, its kind.

    ``multiple``: repeatable on the CLI, a TOML array in an order.  ``secondary``: the off switch of a
    boolean pair (``--supports/--no-supports``).  ``in_order``: False for options a batch decides itself
    (``overwrite``).  ``short``: a one-letter alias (``-o``).
    """

    name: str
    dest: str
    kind: Kind
    help: str = ""
    default: Any = None
    multiple: bool = False
    required: bool = False
    show_default: bool = False
    secondary: str | None = None
    short: str | None = None
    metavar: str | None = None
    in_order: bool = True

    def parse(self, value: Any) -> Any:
        """The typed value, or ValueProblem.  A multiple option takes a list (one item is accepted alone)."""
        if not self.multiple:
            return self.kind.parse(value)
        items = value if isinstance(value, (list, tuple)) and not self._is_one_item(value) else [value]
        return tuple(self.kind.parse(item) for item in items)

    def _is_one_item(self, value: Sequence[Any]) -> bool:
        # A point [x, y, z] given alone for a repeatable point option: numbers, not a list of points.
        return bool(value) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) \
            and isinstance(self.kind, Custom)


@dataclass(frozen=True)
class Argument:
    """A job's positional argument: the order key ``input`` (its CLI metavar is only for ``--help``)."""

    dest: str
    metavar: str
    kind: FilePath = FilePath("input")
    key: str = "input"


@dataclass(frozen=True)
class Conflict:
    """Options that do not go together, and the fix; ``names`` are the options involved (for the line)."""

    message: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRequest:
    """A job's values by dest (every option present, defaults filled in) and which of them were given."""

    values: Mapping[str, Any]
    given: frozenset[str] = frozenset()
    progress: ProgressCallback = no_progress
    #: The order this job comes from, as its reports record it (see :func:`medprint.jobs.orders.order_record`).
    order: Mapping[str, Any] | None = None

    def __getitem__(self, dest: str) -> Any:
        return self.values[dest]

    def was_given(self, dest: str) -> bool:
        return dest in self.given


@dataclass(frozen=True)
class JobResult:
    """What a job made: every file written, its report (JSON-ready), and lines for a terminal."""

    outputs: tuple[Path, ...]
    report: Mapping[str, Any]
    summary: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobSpec:
    """A command as data: its name (``convert``, ``design implant``), argument, options and functions.

    ``check`` returns every conflict between options (empty: fine) without touching a file; ``run`` does the
    job and returns a :class:`JobResult`.  Both take a :class:`JobRequest`.
    """

    name: str
    help: str
    argument: Argument
    options: tuple[Opt, ...]
    run: Callable[[JobRequest], JobResult]
    check: Callable[[JobRequest], list[Conflict]] = field(default=lambda request: [])
    #: Optional: builds the job's settings (profiles may be loaded; the input is never read) and returns
    #: what they refuse as conflicts, so an order is refused whole before it runs.  The CLI does not call
    #: it: the run raises the same errors (exit 1), as it always has.
    validate: Callable[[JobRequest], list[Conflict]] | None = None

    def option(self, name: str) -> Opt:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)

    def by_dest(self, dest: str) -> Opt:
        for opt in self.options:
            if opt.dest == dest:
                return opt
        raise KeyError(dest)

    def defaults(self) -> dict[str, Any]:
        return {opt.dest: (() if opt.multiple and opt.default is None else opt.default) for opt in self.options}

    def request(self, values: Mapping[str, Any], *, given: frozenset[str] | None = None,
                progress: ProgressCallback = no_progress, order: Mapping[str, Any] | None = None) -> JobRequest:
        """A request from typed values by dest; unknown dests are a ParameterError (a programming slip)."""
        known = {opt.dest for opt in self.options} | {self.argument.dest}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"{self.name}: no option {', '.join(unknown)}")
        merged = {**self.defaults(), **values}
        return JobRequest(merged, frozenset(values) if given is None else given, progress, order)

    def first_conflict(self, request: JobRequest) -> Conflict | None:
        conflicts = self.check(request)
        return conflicts[0] if conflicts else None


_LEADING_OPTION = re.compile(r"^(?:Invalid value for )?--([a-z0-9][a-z0-9-]*)")


def settings_conflicts(*builders: Callable[[], Any], fallback: tuple[str, ...] = ()) -> list[Conflict]:
    """Call each builder; each MedprintError one raises becomes a :class:`Conflict` for ``validate`` hooks.

    The conflict names the option its message starts with (``--min-wall: ...``), else ``fallback``.  Each
    builder stops at its first refusal, so independent settings go in separate builders to be reported
    together.
    """
    from ..errors import MedprintError

    conflicts = []
    for build in builders:
        try:
            build()
        except MedprintError as error:
            message = str(error)
            found = _LEADING_OPTION.match(message)
            conflicts.append(Conflict(message, (found.group(1),) if found else fallback))
    return conflicts


def every_refusal(build: Callable[[JobRequest], Any], request: JobRequest, options: Sequence[Opt], *,
                  limit: int = 20) -> list[Conflict]:
    """Every option a settings builder refuses, not only the first: the option a refusal names is put back
    to its default and ``build`` tried again, until it builds (or a refusal names no option, or one seen).

    For ``validate`` hooks of settings classes that stop at their first bad value (``ImplantSettings``).
    """
    from dataclasses import replace

    from ..errors import MedprintError

    by_name = {opt.name: opt for opt in options}
    values = dict(request.values)
    conflicts: list[Conflict] = []
    for _ in range(limit):
        try:
            build(replace(request, values=values))
            break
        except MedprintError as error:
            message = str(error)
            found = _LEADING_OPTION.match(message)
            opt = by_name.get(found.group(1)) if found else None
            if conflicts and (opt is None or any(opt.name in c.names for c in conflicts)):
                break  # a refusal of the defaults put back, not of the order
            conflicts.append(Conflict(message, (opt.name,) if opt is not None else ()))
            if opt is None:
                break
            values[opt.dest] = () if opt.multiple and opt.default is None else opt.default
    return conflicts


def option_flag(name: str) -> str:
    """``max-radius`` -> ``--max-radius``."""
    return f"--{name}"


# ---------------------------------------------------------------------------------------------------------------
# Options every job that writes files shares, so they mean the same everywhere.
# ---------------------------------------------------------------------------------------------------------------

OVERWRITE = Opt("overwrite", "overwrite", Flag(), "Replace existing output files.", default=False, in_order=False)
NO_REPORT = Opt("no-report", "no_report", Flag(), "Do not write the JSON report file.", default=False,
                in_order=False)
SHOW_PHI = Opt("show-phi", "show_phi", Flag(),
               "Record the input path in the report; show names from inside the input folder in messages.",
               default=False)


def output_option(help: str, *, dest: str = "output_path") -> Opt:
    """``-o/--output``: the job's main output file."""
    return Opt("output", dest, FilePath("output"), help, required=True, short="o")


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
