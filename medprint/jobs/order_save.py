"""``--save-order FILE``: the order a command-line run came from, written so ``medprint run FILE`` repeats it.

:mod:`medprint.commands.job_command` calls :func:`check_order_path` before the run (so a bad path costs no
work) and :func:`save_order` after it succeeded.

>>> # medprint slice cube.stl -o out/cube.gcode --printer ender-3 --material pla --save-order o.toml
>>> # medprint run o.toml -o again/          -> again/cube.gcode, the same bytes
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .order_values import is_input, is_output

if TYPE_CHECKING:
    from .orders import Order
    from .spec import JobRequest, JobSpec


def check_order_path(path: Path | str, *, overwrite: bool, spec: JobSpec | None = None,
                     request: JobRequest | None = None) -> None:
    """Fail before a run (``--save-order FILE``) when the order file could not be written after it.

    With the run's ``spec`` and ``request``, also refuse a path that is one of the run's own files: its
    input, an input-role option (labels, profiles), an output, or an output's report (``<stem>.report.json``)
    -- writing the order there would destroy the file the run reads or writes, ``--overwrite`` or not.
    That is a :class:`ParameterError` (a usage error); a path that cannot be written an OutputError.
    """
    from ..errors import ParameterError
    from ..io.outputs import check_writable

    path = Path(path)
    if spec is not None and request is not None:
        own = _own_files(spec, request)
        mine = _resolved_key(path)
        for role, other in own:
            if mine is not None and mine == _resolved_key(other):
                raise ParameterError(f"--save-order: {path} is the run's {role}; give the order file its own name")
    check_writable(path, overwrite=overwrite, option="--save-order")


def _own_files(spec: JobSpec, request: JobRequest) -> list[tuple[str, Path]]:
    """(role, path) of every file the run reads or writes, reports beside outputs included."""
    from ..report import report_path_for

    files: list[tuple[str, Path]] = [("input", Path(request.values[spec.argument.dest]))]
    for opt in spec.options:
        value = request.values.get(opt.dest)
        if not value or not (is_input(opt) or is_output(opt)):
            continue
        for item in _paths(value):
            item = Path(str(item).rpartition("#")[0]) if is_input(opt) and getattr(opt.kind, "fragment", False) and "#" in str(item) \
                else item
            if is_input(opt):
                files.append((f"input (--{opt.name})", item))
            else:
                files.append((f"output (--{opt.name})", item))
                try:
                    files.append((f"report (beside --{opt.name})", report_path_for(item)))
                except (OSError, ValueError):
                    pass
    return files


def _resolved_key(path: Path) -> str | None:
    try:
        return os.path.normcase(os.path.realpath(path))
    except (OSError, ValueError):
        return None


def save_order(spec: JobSpec, request: JobRequest, path: Path | str, *, overwrite: bool) -> Order:
    """Write the order that reproduces a command-line run (``--save-order``); the order written.

    Only the options the user gave are written (plus input and output).  Input paths are written relative
    to the order file's folder; output paths relative to the folder of the run's outputs, so
    ``medprint run FILE -o DIR`` makes the same files in ``DIR``.  Written atomically.
    """
    from ..io.atomic import atomic_path

    path = Path(path)
    order, text = order_file_text(spec, request, path)
    with atomic_path(path, overwrite=overwrite, option="--save-order") as temp:
        Path(temp).write_text(text, encoding="utf-8")
    return order


def order_file_text(spec: JobSpec, request: JobRequest, path: Path) -> tuple[Order, str]:
    """The order of a command-line run and its TOML text, for the file ``path`` (nothing written)."""
    from .orders import order_text

    order = order_of_request(spec, request, order_id=_id_of(spec, request))
    return order, order_text(order, relative_to=Path(path).parent)


def _id_of(spec: JobSpec, request: JobRequest) -> str:
    # The main output's name: the user chose it, and a command line has no id of its own.
    for opt in spec.options:
        if is_output(opt) and request.values.get(opt.dest) and not opt.multiple:
            stem = Path(request.values[opt.dest]).stem
            # An id `medprint run` refuses (blank, control characters) would make an order that cannot run.
            if stem.strip() and stem.isprintable():
                return stem
    return spec.name.replace(" ", "-")


def order_of_request(spec: JobSpec, request: JobRequest, *, order_id: str) -> Order:
    """The order of a run made from the command line: the given options, paths made order-style."""
    given = [opt for opt in spec.options if request.was_given(opt.dest) and opt.in_order]
    outputs = [opt for opt in spec.options if is_output(opt) and request.values.get(opt.dest)]
    chosen = {opt.dest: opt for opt in [*given, *(o for o in outputs if o not in given)]}
    output_paths = [Path(os.path.abspath(p)) for opt in outputs for p in _paths(request.values[opt.dest])]
    common = Path(os.path.commonpath([p.parent for p in output_paths])) if output_paths else Path.cwd()
    values: dict[str, Any] = {}
    for dest, opt in chosen.items():
        value = request.values[dest]
        if is_input(opt):
            value = _map_paths(value, lambda p: Path(os.path.normpath(os.path.abspath(p))))
        elif is_output(opt):
            value = _map_paths(value, lambda p: Path(os.path.relpath(os.path.abspath(p), common)))
        values[dest] = value
    from .orders import Order  # orders.py imports this module

    source_input = Path(os.path.normpath(os.path.abspath(request.values[spec.argument.dest])))
    return Order(id=order_id, command=spec.name, input=source_input, values=values)


def _map_paths(value: Any, change: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(change(Path(v)) for v in value)
    return change(Path(value))


def _paths(value: Any) -> list[Path]:
    return [Path(v) for v in value] if isinstance(value, (list, tuple)) else [Path(value)]
