"""Orders: a job as a file.  One TOML order is one run of ``convert``, ``slice`` or ``design ...``.

An order's keys are the command's long option names, read by the options' own kinds
(:class:`~medprint.jobs.spec.Opt`), so an order refuses what the command line refuses, in the same words.
Every problem of a file is found before anything runs and reported together, one ``FILE:LINE: key: message``
each, in an :class:`OrderError`::

    id = "2026-0412 skull"
    command = "slice"
    input = "skull.stl"            # relative to this file's folder
    output = "skull.gcode"         # inside the output folder given to run_order / medprint run -o
    printer = "ender-3"
    material = "pla"

From a script, the same checks on a mapping (``load_order(path)`` reads a file; ``run_order`` runs it):

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "skull.stl").write_text("solid skull")
>>> order = order_from_mapping({"id": "2026-0412 skull", "command": "slice", "input": "skull.stl",
...                             "output": "skull.gcode", "printer": "ender-3", "material": "pla",
...                             "perimeters": 3}, base_dir=folder)
>>> order.values["perimeters"], order.input == folder / "skull.stl"
(3, True)
>>> print(order_text(order, relative_to=folder), end="")
id = "2026-0412 skull"
command = "slice"
input = "skull.stl"
printer = "ender-3"
material = "pla"
output = "skull.gcode"
perimeters = 3
>>> order_record(order)["parameters"]          # no input path in a report unless show-phi
{'printer': 'ender-3', 'material': 'pla', 'output': 'skull.gcode', 'perimeters': 3}
>>> try:
...     order_from_mapping({"id": "x", "command": "slice", "input": "skull.stl", "output": "a.gcode",
...                         "printer": "ender-3", "material": "pla", "perimeters": "many"}, base_dir=folder)
... except OrderError as error:
...     print(error)
order: 1 problem
order:1: perimeters: 'many' is not a valid integer
>>> import shutil; shutil.rmtree(folder)

Batches (``[defaults]`` + ``[[order]]`` tables, or CSV) are read by :func:`load_batch`
(:mod:`medprint.jobs.order_batch`); folder names from ids by :mod:`medprint.jobs.order_ids`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ParameterError
from ..progress import ProgressCallback, no_progress
from .order_ids import folder_names, safe_folder_name
from .order_lines import TomlLines
from .order_values import (
    check_output_dir,
    is_input,
    is_output,
    parse_order,
    plain,
    resolve_outputs,
    toml_value,
)
from .spec import shown

if TYPE_CHECKING:
    from .spec import JobResult, JobSpec

__all__ = [
    "Order", "OrderError", "check_order_path", "folder_names", "load_batch", "load_order", "order_from_mapping",
    "order_of_request", "order_record", "order_text", "parameters_digest", "run_order", "safe_folder_name",
    "save_order",
]


class OrderError(ParameterError):
    """An order (or batch) that cannot run; ``problems`` holds every one, ``FILE:LINE: key: message`` each.

    ``str(error)`` is a first line naming the file and the count, then the problems, one a line.
    """

    def __init__(self, problems: Sequence[str], *, source: Path | str | None = None,
                 count: int | None = None) -> None:
        # A file of 300,000 bad keys is not read by anyone past the first screen: list the first ones.
        listed = list(problems)[:MAX_LISTED_PROBLEMS]
        count = max(len(problems), count or 0)
        if count > len(listed):
            listed.append(f"... and {count - len(listed)} more problem{'s' if count - len(listed) != 1 else ''}")
        self.problems = listed
        self.source = source
        self.count = count
        head = f"{source if source is not None else 'order'}: {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *self.problems]))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (a batch's worker process or cluster sends it back), not rebuilt from its message.
        return (_order_error, (self.problems, self.source, self.count))


#: An OrderError lists at most this many problems, then says how many more there are.
MAX_LISTED_PROBLEMS = 50


def _order_error(problems: list[str], source: Path | str | None, count: int | None = None) -> OrderError:
    if count is not None and count > len(problems) - 1 and problems and problems[-1].startswith("... and "):
        problems = problems[:-1]
    return OrderError(problems, source=source, count=count)


@dataclass(frozen=True)
class Order:
    """One job to run: which command, on which input, with which options (typed, by dest).

    ``values`` holds only the options the order gives; input paths are absolute, output paths relative (to
    the output folder the order runs into).  ``source`` and ``lines`` (key -> line, ``""``: the order's
    table) say where it was read; they do not take part in equality.

    >>> order = Order(id="A-1", command="slice", input=Path("/data/cube.stl"),
    ...               values={"printer_name": "ender-3", "output_path": Path("cube.gcode")})
    >>> order.output_names()
    (PosixPath('cube.gcode'),)
    """

    id: str
    command: str
    input: Path
    values: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, str] = field(default_factory=dict)
    notes: str | None = None
    source: Path | None = field(default=None, compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "provenance", MappingProxyType(dict(self.provenance)))
        object.__setattr__(self, "lines", MappingProxyType(dict(self.lines)))

    def __hash__(self) -> int:
        # The mappings are not hashable; equal orders share these three.
        return hash((self.id, self.command, self.input))

    @property
    def spec(self) -> JobSpec:
        """The job this order runs (:func:`medprint.jobs.job_spec` of its command)."""
        from . import JOB_MODULES, job_spec

        if not isinstance(self.command, str) or self.command not in JOB_MODULES:
            raise OrderError([f"{where(self, 'command')}: command: {shown(self.command)} is not a command (one of "
                              f"{', '.join(sorted(JOB_MODULES))})"], source=self.source)
        return job_spec(self.command)

    def input_paths(self) -> tuple[Path, ...]:
        """Every file or folder the order reads: its input, then input-role options (labels, profiles)."""
        paths = [self.input]
        for opt in self.spec.options:
            if opt.dest in self.values and is_input(opt):
                paths += _flat(self.values[opt.dest])
        return tuple(paths)

    def output_names(self) -> tuple[Path, ...]:
        """Every file the order writes, relative to its output folder."""
        names: list[Path] = []
        for opt in self.spec.options:
            if opt.dest in self.values and is_output(opt):
                names += _flat(self.values[opt.dest])
        return tuple(names)


def _flat(value: Any) -> list[Path]:
    return [Path(v) for v in value] if isinstance(value, (list, tuple)) else [Path(value)]


def where(order: Order, key: str) -> str:
    """``FILE:LINE`` of ``key`` in the file ``order`` came from (for messages)."""
    line = order.lines.get(key, order.lines.get("", 1))
    return f"{order.source if order.source is not None else 'order'}:{line}"


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------


def read_toml(path: Path | str) -> tuple[dict[str, Any], TomlLines]:
    """The TOML document at ``path`` and its line index; OrderError (with the line) if it cannot be read."""
    path = Path(path)
    try:
        text = read_order_text(path, encoding="utf-8-sig")  # a BOM (Windows Notepad) is not part of the text
    except FileNotFoundError:
        raise OrderError([f"{path}: no such order file"], source=path) from None
    except IsADirectoryError:
        raise OrderError([f"{path}: is a folder; give an order file (.toml)"], source=path) from None
    except OSError as error:
        raise OrderError([f"{path}: cannot be read ({error.strerror})"], source=path) from None
    except UnicodeDecodeError as error:
        raise OrderError([f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8"], source=path) from None
    except ValueError as error:  # a NUL or unencodable character in the name
        raise OrderError([f"{shown(str(path))}: cannot be a file name ({error})"], source=path) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise OrderError([f"{path}: arrays or tables nested too deeply to be an order"], source=path) from None
    except tomllib.TOMLDecodeError as error:
        raise OrderError([_toml_problem(path, text, error)], source=path) from None
    except ValueError as error:  # an integer beyond Python's digit limit
        raise OrderError([f"{path}: not an order: {error}"], source=path) from None
    return data, TomlLines.of(text)


def _toml_problem(path: Path, text: str, error: tomllib.TOMLDecodeError) -> str:
    """tomllib's complaint as ``FILE:LINE: key: message`` with the fix, when the line says which key."""
    from .order_lines import key_of_line

    message = str(error)
    line = getattr(error, "lineno", None) or _line_in(message)
    lines = text.splitlines()
    key = key_of_line(lines[line - 1]) if 0 < line <= len(lines) else None
    if key is None:
        return f"{path}:{line}: not valid TOML: {message}"
    if message.startswith(("Cannot overwrite a value", "Cannot declare")):
        first = TomlLines.of("\n".join(lines[: line - 1])).lines.get(tuple(key.split(".")))
        earlier = f" (first at line {first})" if first else ""
        return f"{path}:{line}: {key}: given twice{earlier}; keep one"
    if message.startswith("Invalid value"):
        return f"{path}:{line}: {key}: not a TOML value; write text in quotes ({key} = \"...\"), numbers and " \
               "true/false bare"
    return f"{path}:{line}: {key}: not valid TOML: {message}"


#: An order is a few hundred bytes, a batch of thousands of orders a few MB: anything bigger is not one.
MAX_ORDER_FILE_BYTES = 64 * 1024 * 1024


def read_order_text(path: Path, *, encoding: str) -> str:
    """The text of an order or batch file (OSError, UnicodeDecodeError as raised; OrderError if too big)."""
    with path.open("rb") as file:
        data = file.read(MAX_ORDER_FILE_BYTES + 1)
    if len(data) > MAX_ORDER_FILE_BYTES:
        raise OrderError([f"{path}: more than {MAX_ORDER_FILE_BYTES // 2**20} MB; not an order file"], source=path)
    return data.decode(encoding)


def _line_in(message: str) -> int:
    import re

    found = re.search(r"at line (\d+)", message)
    return int(found.group(1)) if found else 1


def top_lines(data: Mapping[str, Any], index: TomlLines, *prefix: str | int) -> dict[str, int]:
    """Line of each key of one order's table (``provenance.x`` for its provenance), ``""`` for the table."""
    lines = {"": index.line(*prefix)}
    for key, value in data.items():
        lines[key] = index.line(*prefix, key)
        if key == "provenance" and isinstance(value, Mapping):
            for inner in value:
                lines[f"provenance.{inner}"] = index.line(*prefix, key, inner)
    return lines


def load_order(path: Path | str) -> Order:
    """The order in the TOML file ``path``; relative input paths start at the file's folder.

    Raises :class:`OrderError` with every problem of the file (syntax, unknown keys, values the options
    refuse, missing inputs, conflicts between options), each ``FILE:LINE: key: message``.

    >>> order = load_order("skull.toml")        # doctest: +SKIP
    >>> order.command, order.values["printer_name"]        # doctest: +SKIP
    ('slice', 'ender-3')
    """
    path = _order_path(path, "load_order")
    data, index = read_toml(path)
    if isinstance(data.get("order"), list):
        problem = (f"{path}:{index.line('order', 0)}: order: this is a batch ([[order]] tables); "
                   "read it with load_batch (medprint batch)")
        raise OrderError([problem], source=path)
    return order_from_mapping(data, base_dir=path.parent, source=path, lines=top_lines(data, index))


def order_from_mapping(data: Mapping[str, Any], *, base_dir: Path | str, source: Path | None = None,
                       lines: Mapping[str, int] | None = None) -> Order:
    """An order from a mapping of order keys to TOML values (for scripts); the same checks as a file.

    ``base_dir``: where relative input paths start.  ``lines``: key -> line for messages (default: none).

    >>> order = order_from_mapping({"id": "A-1", "command": "slice", "input": "cube.stl",
    ...                             "output": "cube.gcode", "printer": "ender-3", "material": "pla"},
    ...                            base_dir="/data")      # doctest: +SKIP
    """
    if not isinstance(data, Mapping):
        raise OrderError([f"order: {type(data).__name__} is not an order; give a mapping of order keys to values "
                          "({'id': ..., 'input': ..., ...})"], source=source)
    strange = [key for key in data if not isinstance(key, str)]
    if strange:
        raise OrderError([f"order: key {shown(key)} is not text; order keys are option names" for key in strange],
                         source=source)
    if not isinstance(base_dir, (str, os.PathLike)) or "\0" in str(base_dir):
        raise OrderError([f"order: base_dir {shown(base_dir)} is not a folder path; give the folder relative "
                          "input paths start at"], source=source)
    order, problems = parse_order(data, base_dir=Path(base_dir), source=source, lines=lines or {})
    if problems or order is None:
        raise OrderError(problems, source=source, count=getattr(problems, "total", None))
    return order


def load_batch(path: Path | str) -> list[Order]:
    """Every order of a batch: TOML (``[defaults]`` + ``[[order]]`` tables, or one order) or CSV (``.csv``).

    Ids must be unique, also as folder names (:func:`folder_names`).  All problems of the file are raised
    together in one :class:`OrderError`.

    >>> orders = load_batch("week-12.csv")           # doctest: +SKIP
    >>> [order.id for order in orders]               # doctest: +SKIP
    ['A-1', 'A-2']
    """
    from .order_batch import load_batch_file

    return load_batch_file(_order_path(path, "load_batch"))


def _order_path(path: Any, caller: str) -> Path:
    """``path`` as a Path; OrderError for what cannot be a file name (None, NUL)."""
    if not isinstance(path, (str, os.PathLike)) or "\0" in str(path):
        raise OrderError([f"{caller}: {shown(path)} is not a file path; give the order file's path"])
    return Path(path)


# ---------------------------------------------------------------------------------------------------------------
# Running and recording
# ---------------------------------------------------------------------------------------------------------------


def order_record(order: Order) -> dict[str, Any]:
    """What a report records of the order it comes from; no input path unless the order sets ``show-phi``.

    >>> order_record(order)["parameters"]       # doctest: +SKIP
    {'output': 'cube.gcode', 'printer': 'ender-3', 'material': 'pla'}
    """
    # Imported here, as the job specs are (deliver's options are part of them).
    from .deliver import IDENTITY_OPTIONS

    spec = order.spec
    show_phi = bool(order.values.get("show_phi"))
    # Patient identity given for a DICOM object goes into that object only, not into the reports.
    identity = {opt.dest for opt in IDENTITY_OPTIONS}
    parameters: dict[str, Any] = {}
    if show_phi:
        parameters[spec.argument.key] = str(order.input)
    for opt in spec.options:
        if opt.dest in order.values and (show_phi or not (is_input(opt) or opt.dest in identity)):
            parameters[opt.name] = toml_value(opt, order.values[opt.dest])
    return {
        "id": order.id,
        "command": order.command,
        "parameters": parameters,
        "provenance": dict(order.provenance),
        "notes": order.notes,
        "sha256": parameters_digest(order),
        "medprint_version": __version__,
    }


def parameters_digest(order: Order) -> str:
    """sha256 of the command and every option's value (defaults filled in), input paths left out.

    Two orders that would make the same outputs from the same input bytes have the same digest, whatever
    their ids, folders or the order of their keys; an option left at its default counts as given.

    >>> parameters_digest(order)     # doctest: +SKIP
    '3f1c...'
    """
    spec = order.spec
    values = {**spec.defaults(), **order.values}
    parameters = {opt.name: toml_value(opt, values[opt.dest]) for opt in spec.options
                  if opt.in_order and not is_input(opt)}
    canonical = json.dumps({"command": order.command, "parameters": parameters}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def run_order(order: Order, output_dir: Path | str, *, overwrite: bool = False,
              progress: ProgressCallback = no_progress) -> JobResult:
    """Run ``order`` with its outputs inside ``output_dir`` (made if missing); the job's result.

    Every report the job writes records the order (:func:`order_record`).  Conflicts between options raise
    :class:`OrderError`; the job's own errors (a bad mesh, a full disk) are raised as they are.

    >>> result = run_order(load_order("skull.toml"), "out/")      # doctest: +SKIP
    >>> result.outputs                                            # doctest: +SKIP
    (PosixPath('out/skull.gcode'),)
    """
    spec = order.spec
    if not isinstance(output_dir, (str, os.PathLike)) or "\0" in str(output_dir):
        raise OrderError([f"run_order: output_dir {shown(output_dir)} is not a folder path"], source=order.source)
    output_dir = Path(output_dir)
    values: dict[str, Any] = {spec.argument.dest: order.input, **order.values}
    values.update(resolve_outputs(spec, order.values, output_dir, problem=_run_problem(order)))
    if any(opt.dest == "overwrite" for opt in spec.options):
        values["overwrite"] = overwrite
    given = frozenset(order.values) | {spec.argument.dest}
    request = spec.request(values, given=given, progress=progress, order=order_record(order))
    conflicts = spec.check(request)
    if conflicts:
        raise OrderError([f"{where(order, _first_key(order, c.names))}: {_first_key(order, c.names)}: "
                          f"{c.message}" for c in conflicts], source=order.source)
    _refuse_outputs_onto_inputs(order, spec, values)
    with check_output_dir(output_dir, order.output_names()):
        return spec.run(request)


def _refuse_outputs_onto_inputs(order: Order, spec: JobSpec, values: Mapping[str, Any]) -> None:
    """An output that would land on one of the order's inputs (``-o`` the input's own folder) is refused."""
    inputs = {os.path.realpath(p): p for p in order.input_paths()}
    problems = []
    for opt in spec.options:
        if opt.dest in order.values and is_output(opt):
            for target in _flat(values[opt.dest]):
                if os.path.realpath(target) in inputs:
                    problems.append(f"{where(order, opt.name)}: {opt.name}: {target} is the order's input; "
                                    "give the output a name of its own, or another output folder")
    if problems:
        raise OrderError(problems, source=order.source)


def _run_problem(order: Order) -> Any:
    def problem(key: str, message: str) -> OrderError:
        return OrderError([f"{where(order, key)}: {key}: {message}"], source=order.source)

    return problem


def _first_key(order: Order, names: Sequence[str]) -> str:
    for name in names:
        if name in order.lines:
            return name
    return names[0] if names else "command"


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------


def order_text(order: Order, *, relative_to: Path | str | None = None) -> str:
    """The order as TOML; input paths absolute, or relative to ``relative_to`` (the file's folder).

    :func:`load_order` of the text (saved in ``relative_to``) gives an equal order.

    >>> print(order_text(order))      # doctest: +SKIP
    id = "A-1"
    command = "slice"
    input = "/data/cube.stl"
    output = "cube.gcode"
    printer = "ender-3"
    material = "pla"
    """
    import tomli_w

    spec = order.spec
    base = Path(relative_to) if relative_to is not None else None
    document: dict[str, Any] = {"id": order.id, "command": order.command,
                                spec.argument.key: _path_text(order.input, base)}
    for opt in spec.options:
        if opt.dest not in order.values:
            continue
        value = order.values[opt.dest]
        if value is None:  # TOML has no null: an option set to nothing is an option not given
            continue
        if is_input(opt):
            texts = [_path_text(p, base) for p in _flat(value)]
            document[opt.name] = texts if opt.multiple else texts[0]
        else:
            document[opt.name] = toml_value(opt, value)
    if order.notes is not None:
        document["notes"] = order.notes
    if order.provenance:
        document["provenance"] = dict(order.provenance)
    return tomli_w.dumps(plain(document))


def _path_text(path: Path, base: Path | None) -> str:
    if base is None:
        return str(path)
    try:
        return os.path.relpath(path, os.path.abspath(base))
    except ValueError:  # another drive (Windows): only an absolute path reaches it
        return str(path)


# The --save-order pair lives in order_save.py (it builds an order from a command line's request).
from .order_save import check_order_path, order_of_request, save_order
