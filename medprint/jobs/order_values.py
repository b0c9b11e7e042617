"""An order's keys checked by the options' own kinds: every problem collected, none raised half-way.

:func:`parse_order` is the one reader behind :func:`~medprint.jobs.orders.load_order`, batches and CSV rows:
it returns the order, or the list of problems (``FILE:LINE: key: message``), never some of each.

>>> from medprint.jobs.spec import Opt, Number
>>> toml_value(Opt("smooth", "smooth", Number()), 20.0)
20.0
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from ..errors import MedprintError, OutputError
from .spec import Argument, Conflict, FilePath, Flag, JobSpec, Opt, ValueProblem, shown

if TYPE_CHECKING:
    from .orders import Order

#: The command of an order that names none.
DEFAULT_COMMAND = "convert"

#: Keys of every order that are not options of its command.
ORDER_KEYS = ("id", "command", "notes", "provenance")

#: Options of the command line only: they say how to run, not what to make.
CLI_ONLY = {"json": "prints the report; `medprint run --json` does that for an order",
            "save-order": "the order file is this file"}

#: Words of a provenance key that say it carries a patient's identity on their own ...
_IDENTITY_WORDS = frozenset({"patient", "birth", "birthdate", "dob", "mrn", "ssn", "phone", "telephone", "mobile",
                             "email", "surname", "forename"})
#: ... and words that do only after one of these (``given_name``, ``home_address``; not ``department_name``).
_IDENTITY_PAIRS = {"name": frozenset({"patient", "given", "family", "first", "last", "middle", "full", "maiden"}),
                   "address": frozenset({"home", "street", "postal", "mailing", "patient"})}

#: Flag cells of a CSV batch (the command line's flags have no text).
_FLAG_WORDS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False,
               "off": False}

#: A CSV cell of a repeatable option holds its values separated by this.
CSV_SEPARATOR = "|"


def is_input(opt: Opt) -> bool:
    return isinstance(opt.kind, FilePath) and opt.kind.role == "input"


def is_output(opt: Opt) -> bool:
    return isinstance(opt.kind, FilePath) and opt.kind.role == "output"


def plain(value: Any) -> Any:
    """``value`` with tuples as lists and paths as POSIX text: what TOML and canonical JSON hold."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, PurePath):
        return value.as_posix()
    return value


def toml_value(opt: Opt, value: Any) -> Any:
    """An option's typed value as an order writes it (the kind's ``to_order``; paths as text)."""
    if isinstance(opt.kind, FilePath):
        return plain(value)
    if opt.multiple and isinstance(value, (list, tuple)):
        return [plain(opt.kind.to_order(item)) for item in value]
    return plain(opt.kind.to_order(value)) if value is not None else None


def order_keys(spec: JobSpec) -> list[str]:
    """Every key an order of ``spec`` may hold."""
    return [*ORDER_KEYS, spec.argument.key, *(opt.name for opt in spec.options if opt.in_order)]


class ProblemList(list):  # type: ignore[type-arg]
    """The first problems of an order (in the order of their lines) and ``total``, how many there are."""

    total: int = 0


#: Problems worded in full; past these only counted (a difflib suggestion for 300,000 bad keys takes minutes).
_WORDED = 50


class _Problems:
    """Problems of one order, each ``FILE:LINE: key: message`` (``message`` may be a function: worded late)."""

    def __init__(self, source: Path | None, lines: Mapping[str, int]) -> None:
        self.label = str(source) if source is not None else "order"
        self.lines = lines
        self._found: list[tuple[int, int, str, str | Callable[[], str]]] = []

    def add(self, key: str, message: str | Callable[[], str]) -> None:
        line = self.lines.get(key)
        if line is None:
            # A dotted name (perimeters.count): the line of its first part, the first line below it.
            line = self.lines.get(key.split(".")[0], self.lines.get("", 1))
        self._found.append((line, len(self._found), key, message))

    def __bool__(self) -> bool:
        return bool(self._found)

    @property
    def items(self) -> ProblemList:
        """The first problems in the order of their lines (as an editor shows the file), worded."""
        first = sorted(self._found, key=lambda found: found[:2])[:_WORDED]
        items = ProblemList(f"{self.label}:{line}: {key}: {message if isinstance(message, str) else message()}"
                            for line, _, key, message in first)
        items.total = len(self._found)
        return items


def parse_order(data: Mapping[str, Any], *, base_dir: Path, source: Path | None, lines: Mapping[str, int],
                text_cells: bool = False) -> tuple[Order | None, list[str]]:
    """The order of ``data`` (order keys -> TOML values, or CSV text when ``text_cells``), or its problems."""
    from .orders import Order  # orders.py imports this module

    problems = _Problems(source, lines)
    spec = _spec(data, problems)
    order_id = _order_id(data, problems)
    notes = _text_key(data, "notes", problems)
    provenance = _provenance(data, problems)
    if spec is None:
        return None, problems.items
    base_dir = Path(os.path.abspath(base_dir))
    input_path = _input(spec.argument, data, base_dir, problems)
    values = _option_values(spec, data, base_dir, problems, text_cells=text_cells)
    if problems or input_path is None or order_id is None:
        return None, problems.items
    conflicts = _conflicts(spec, input_path, values)
    if not conflicts and spec.validate is not None:
        conflicts = _validated(spec, input_path, values)
    for conflict in conflicts:
        key = next((name for name in conflict.names if name in data), conflict.names[0] if conflict.names else
                   "command")
        message = conflict.message
        # "--printer: no printer called ''" at the key printer: the line names the key already.
        message = message[len(f"--{key}: "):] if message.startswith(f"--{key}: ") else message
        problems.add(key, message)
    for key, message in _clashing_outputs(spec, input_path, values, base_dir):
        problems.add(key, message)
    if problems:
        return None, problems.items
    order = Order(id=order_id, command=spec.name, input=input_path, values=values, provenance=provenance,
                       notes=notes, source=source, lines=dict(lines))
    return order, []


def _spec(data: Mapping[str, Any], problems: _Problems) -> JobSpec | None:
    from . import JOB_MODULES, job_spec

    command = data.get("command", DEFAULT_COMMAND)
    if not isinstance(command, str):
        problems.add("command", f"{command!r} is not a command name; one of {', '.join(sorted(JOB_MODULES))}")
        return None
    if command not in JOB_MODULES:
        problems.add("command", f"{command!r} is not a command{_did_you_mean(command, list(JOB_MODULES))} "
                                f"(one of {', '.join(sorted(JOB_MODULES))})")
        return None
    try:
        return job_spec(command)
    except ImportError:
        problems.add("command", f"{command!r} is not available in this medprint")
        return None


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _order_id(data: Mapping[str, Any], problems: _Problems) -> str | None:
    if "id" not in data:
        problems.add("id", 'missing; every order needs an id, e.g. id = "2026-0412 skull"')
        return None
    order_id = data["id"]
    if not isinstance(order_id, str):
        problems.add("id", f'{order_id!r} is not text; write it in quotes, id = "{order_id}"')
        return None
    if not order_id.strip():
        problems.add("id", "empty; give the order a name")
        return None
    return order_id


def _text_key(data: Mapping[str, Any], key: str, problems: _Problems) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    problems.add(key, f"{value!r} is not text")
    return None


def _provenance(data: Mapping[str, Any], problems: _Problems) -> dict[str, str]:
    table = data.get("provenance", {})
    if not isinstance(table, Mapping):
        problems.add("provenance", "must be a table of texts ([provenance] with indication = \"...\", ...)")
        return {}
    provenance = {}
    for key, value in table.items():
        if not isinstance(key, str):
            problems.add("provenance", f"key {shown(key)} is not text")
            continue
        name = f"provenance.{key}"
        if not isinstance(value, str):
            problems.add(name, f"{value!r} is not text; provenance values are free text")
        elif looks_like_identity(key):
            problems.add(name, "looks like patient identity; an order records the job (indication, department, "
                               "clinician role), never who the patient is")
        else:
            provenance[key] = value
    return provenance


def looks_like_identity(key: str) -> bool:
    """Whether a provenance key names a patient's identity, word by word (not by substring).

    The key is split into words at ``_``, ``-``, ``.``, spaces and camelCase.  It is refused when a word is
    one that means identity on its own (patient, birth, dob, mrn, ssn, phone, email, ...), or is ``name``
    after patient/given/family/first/last/middle/full/maiden, or ``address`` after home/street/postal/
    mailing/patient.  So ``department_name``, ``ip_address`` and ``surgeon_role`` are kept.  A heuristic
    against slips, not a guarantee: the values are free text and never checked.

    >>> [looks_like_identity(k) for k in ("patient_id", "given-name", "HomeAddress", "department_name")]
    [True, True, True, False]
    """
    import re

    words = [w.lower() for w in re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", key) if w]
    for before, word in zip([None, *words], words):
        if word in _IDENTITY_WORDS:
            return True
        if word in _IDENTITY_PAIRS and (before in _IDENTITY_PAIRS[word] or len(words) == 1):
            return True
    return False


def _input(argument: Argument, data: Mapping[str, Any], base_dir: Path, problems: _Problems) -> Path | None:
    key = argument.key
    if key not in data:
        problems.add(key, f"missing; give the {argument.metavar} to work on, e.g. {key} = \"case12\" "
                          "(relative to the order file's folder)")
        return None
    try:
        path = argument.kind.parse(data[key])
    except ValueProblem as problem:
        problems.add(key, str(problem))
        return None
    return _existing_input(key, path, base_dir, problems, fragment=argument.kind.fragment)


def _exists(path: Path) -> bool | str:
    """Whether ``path`` exists; the reason as text when the system cannot even look (a name too long)."""
    try:
        return path.exists()
    except OSError as error:
        return error.strerror or str(error)
    except ValueError as error:  # NUL, or a name the file system encoding cannot hold
        return str(error)


def _existing_input(key: str, path: Path, base_dir: Path, problems: _Problems, *, fragment: bool) -> Path | None:
    try:
        full = Path(os.path.normpath(base_dir / path.expanduser()))
    except RuntimeError:  # ~user of no such user
        problems.add(key, f"{shown(str(path))}: no such user's home folder; give the path in full")
        return None
    found = _exists(full)
    if isinstance(found, str):
        problems.add(key, f"{shown(str(path))} cannot be looked up ({found}); give a shorter, plain path")
        return None
    if found:
        return full
    if fragment and "#" in full.name and _exists(Path(str(full).rpartition("#")[0])) is True:
        return full
    relative = "" if path.is_absolute() else f" (relative to {base_dir}, the order file's folder)"
    problems.add(key, f"{shown(str(path))} does not exist{relative}")
    return None


def _option_values(spec: JobSpec, data: Mapping[str, Any], base_dir: Path, problems: _Problems, *,
                   text_cells: bool) -> dict[str, Any]:
    options = {opt.name: opt for opt in spec.options}
    secondary = {opt.secondary: opt for opt in spec.options if opt.secondary}
    known = order_keys(spec)
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key in ORDER_KEYS or key == spec.argument.key:
            continue
        opt = options.get(key)
        if opt is not None and opt.in_order and isinstance(raw, Mapping):
            problems.add(dotted_name(key, raw), f"a table is not a value; write {key} = ... on one line")
            continue
        if opt is None or not opt.in_order:
            name = dotted_name(key, raw) if opt is None else key
            problems.add(name, lambda name=name, opt=opt, key=key: _not_a_key(  # type: ignore[misc]
                name, opt, secondary.get(key), spec, known))
            continue
        try:
            value = opt.parse(_from_cell(opt, raw) if text_cells else raw)
        except (ValueError, TypeError, OverflowError, MedprintError) as problem:
            problems.add(key, str(problem))
            continue
        value = _checked_paths(opt, value, base_dir, problems)
        if value is not None:
            values[opt.dest] = value
    for opt in spec.options:
        if opt.required and opt.in_order and opt.name not in data:
            problems.add(opt.name, f"missing; the {spec.name} command needs it ({opt.name} = ...)")
    return values


def dotted_name(key: str, value: Any) -> str:
    """``perimeters.count`` for ``perimeters.count = 3`` (TOML gives ``{"perimeters": {"count": 3}}``)."""
    name = key
    while isinstance(value, Mapping) and len(value) >= 1:
        inner = next(iter(value))
        name, value = f"{name}.{inner}", value[inner]
    return name


def _not_a_key(key: str, opt: Opt | None, pair: Opt | None, spec: JobSpec, known: list[str]) -> str:
    if opt is not None:
        return f"not an order key: --{key} is for the command line (medprint run --{key})"
    if pair is not None:
        return f"not an order key; write {pair.name} = false"
    if key in CLI_ONLY:
        return f"not an order key: --{key} {CLI_ONLY[key]}"
    if key.startswith("provenance."):
        return (f"unknown key (quoted, so not part of the provenance table); write it in a [provenance] table: "
                f"{key.removeprefix('provenance.')} = \"...\"")
    return f"unknown key for {spec.name}{_did_you_mean(key, known)}"


def _from_cell(opt: Opt, text: Any) -> Any:
    """A CSV cell as the value the option's kind reads (flags and lists have no command-line text)."""
    if not isinstance(text, str):
        return text
    if isinstance(opt.kind, Flag):
        word = text.strip().lower()
        if word not in _FLAG_WORDS:
            raise ValueProblem(f"{text!r} is not true or false")
        return _FLAG_WORDS[word]
    if opt.multiple:
        return [item.strip() for item in text.split(CSV_SEPARATOR) if item.strip()]
    return text


def _checked_paths(opt: Opt, value: Any, base_dir: Path, problems: _Problems) -> Any:
    if not isinstance(opt.kind, FilePath):
        return value
    items = list(value) if opt.multiple else [value]
    checked = []
    for path in items:
        if opt.kind.role == "input":
            found = _existing_input(opt.name, path, base_dir, problems, fragment=opt.kind.fragment)
        else:
            found = _safe_output(opt.name, path, problems)
        if found is None:
            return None
        checked.append(found)
    return tuple(checked) if opt.multiple else checked[0]


def _safe_output(key: str, path: Path, problems: _Problems) -> Path | None:
    """An output name that stays inside the output folder: relative, no ``..``, no control characters."""
    text = str(path)
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        problems.add(key, f"{text!r} holds a control character (newline, tab, NUL); give a plain file name")
    elif PurePosixPath(text).is_absolute() or PureWindowsPath(text).anchor:
        problems.add(key, f"{text!r} is an absolute path; give a name inside the output folder (-o DIR)")
    elif ".." in PurePosixPath(text.replace("\\", "/")).parts:
        problems.add(key, f"{text!r} reaches out of the output folder with '..'; give a name inside it")
    elif not PurePosixPath(text.replace("\\", "/")).parts or text.endswith(("/", "\\")):
        problems.add(key, f"{text!r} names no file; give a file name, e.g. model.stl")
    elif "\\" in text:
        problems.add(key, f"{shown(text)} holds a backslash; separate folders with / (it works everywhere)")
    else:
        return Path(os.path.normpath(text))
    return None


def _validated(spec: JobSpec, input_path: Path, values: Mapping[str, Any]) -> list[Conflict]:
    """The job's own ``validate`` hook: what its settings refuse, found before anything runs."""
    assert spec.validate is not None
    request = spec.request({spec.argument.dest: input_path, **values},
                           given=frozenset(values) | {spec.argument.dest})
    try:
        return spec.validate(request)
    except MedprintError as error:
        return [Conflict(str(error))]


def _clashing_outputs(spec: JobSpec, input_path: Path, values: Mapping[str, Any],
                      base_dir: Path) -> list[tuple[str, str]]:
    """Output names given twice (``rim`` = ``output``), and outputs that are the input when the order runs
    into its own folder (checked again, against the real folder, when it runs)."""
    seen: dict[str, str] = {}
    clashes = []
    for opt in spec.options:
        if opt.dest not in values or not is_output(opt):
            continue
        for name in (values[opt.dest] if opt.multiple else [values[opt.dest]]):
            key = os.path.normcase(os.path.normpath(str(name)))
            if key in seen:
                clashes.append((opt.name, f"{str(name)!r} is also the {seen[key]} file; give each output its own "
                                          "name"))
            else:
                seen[key] = opt.name
    return clashes


def _conflicts(spec: JobSpec, input_path: Path, values: Mapping[str, Any]) -> list[Conflict]:
    request = spec.request({spec.argument.dest: input_path, **values},
                           given=frozenset(values) | {spec.argument.dest})
    return spec.check(request)


# ---------------------------------------------------------------------------------------------------------------
# Running: output paths inside the output folder
# ---------------------------------------------------------------------------------------------------------------


def resolve_outputs(spec: JobSpec, values: Mapping[str, Any], output_dir: Path,
                    problem: Callable[[str, str], Exception]) -> dict[str, Any]:
    """Output-role values joined to ``output_dir``; one that a symbolic link leads out of it is refused."""
    try:
        inside = os.path.realpath(output_dir)
    except (OSError, ValueError) as error:
        raise problem("output", f"the output folder {shown(str(output_dir))} cannot be used ({error})") from None
    resolved: dict[str, Any] = {}
    for opt in spec.options:
        if opt.dest not in values or not is_output(opt):
            continue
        targets = [output_dir / name for name in (values[opt.dest] if opt.multiple else [values[opt.dest]])]
        for target in targets:
            try:
                real = os.path.realpath(target)
            except (OSError, ValueError) as error:
                raise problem(opt.name, f"{shown(str(target))} cannot be used ({error})") from None
            if os.path.commonpath([inside, real]) != inside:
                raise problem(opt.name, f"{values[opt.dest]} leads out of the output folder {output_dir} "
                                        "(an absolute path, '..' or a symbolic link); give a name inside it")
        resolved[opt.dest] = tuple(targets) if opt.multiple else targets[0]
    return resolved


@contextlib.contextmanager
def check_output_dir(output_dir: Path, names: Sequence[Path]) -> Iterator[None]:
    """Make ``output_dir`` and the folders of ``names`` in it; if the run fails, remove those it made, if empty."""
    made: list[Path] = []
    for folder in [output_dir, *(output_dir / name.parent for name in names)]:
        for step in reversed([folder, *folder.parents]):
            found = _exists(step)
            if isinstance(found, str):
                raise OutputError(f"-o/--output-dir: cannot use {shown(str(step))} ({found}); choose a shorter path")
            if found:
                if not step.is_dir():
                    raise OutputError(f"-o/--output-dir: {step} is a file, not a folder; choose a folder")
                continue
            try:
                step.mkdir()
            except OSError as error:
                raise OutputError(f"-o/--output-dir: cannot create {step} ({error.strerror})") from None
            made.append(step)
    try:
        yield
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
