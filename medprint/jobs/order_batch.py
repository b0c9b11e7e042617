"""Batch files: many orders in one TOML (``[defaults]`` + ``[[order]]``) or CSV file, checked as a whole.

Every problem of every order, and every pair of ids that would share a folder, is reported in one
:class:`~medprint.jobs.orders.OrderError` before any order runs.  A CSV batch has a header row; ``id`` and
``input`` columns are required, ``command`` defaults to ``convert``, ``output`` to a name that fits the
command (``model.gcode`` for slice, else ``model.stl``); other columns are option keys whose cells hold the
command line's text (empty: not given; ``true``/``false`` for flags; ``|`` between repeated values)::

    id,command,input,printer,material
    A-1,slice,case1.stl,ender-3,pla
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .order_ids import folder_names
from .order_values import DEFAULT_COMMAND, parse_order
from .orders import Order, OrderError, load_order, read_order_text, read_toml, top_lines

#: The output name of a CSV row that gives none, by command (others: ``model.stl``).
DEFAULT_OUTPUTS = {"slice": "model.gcode"}
_DEFAULT_OUTPUT = "model.stl"


def load_batch_file(path: Path) -> list[Order]:
    """The orders of the batch file ``path`` (see :func:`medprint.jobs.orders.load_batch`)."""
    if path.suffix.lower() == ".csv":
        return _checked(path, *_csv_orders(path))
    data, index = read_toml(path)
    if "order" not in data:
        return [load_order(path)]
    problems: list[str] = []
    extra = sorted(set(data) - {"defaults", "order"})
    for key in extra:
        problems.append(f"{path}:{index.line(key)}: {key}: not a batch key; a batch holds [defaults] and "
                        "[[order]] tables only (put order keys inside them)")
    defaults = data.get("defaults", {})
    tables = data["order"]
    if not isinstance(defaults, Mapping):
        problems.append(f"{path}:{index.line('defaults')}: defaults: must be a table, [defaults]")
        defaults = {}
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        problems.append(f"{path}:{index.line('order')}: order: must be [[order]] tables")
        raise OrderError(problems, source=path)
    orders: list[Order] = []
    for number, table in enumerate(tables):
        merged, lines = _with_defaults(defaults, table, index, number)
        order, found = parse_order(merged, base_dir=path.parent, source=path, lines=lines)
        problems += found
        if order is not None:
            orders.append(order)
    return _checked(path, orders, problems)


def _with_defaults(defaults: Mapping[str, Any], table: Mapping[str, Any], index: Any,
                   number: int) -> tuple[dict[str, Any], dict[str, int]]:
    merged = {**defaults, **table}
    lines = {**top_lines(defaults, index, "defaults"), **top_lines(table, index, "order", number)}
    lines[""] = index.line("order", number)
    shared, own = defaults.get("provenance", {}), table.get("provenance", {})
    if isinstance(shared, Mapping) and isinstance(own, Mapping) and (shared or own):
        merged["provenance"] = {**shared, **own}  # one table per key: an order's own entries win
    return merged, lines


def _csv_orders(path: Path) -> tuple[list[Order], list[str]]:
    try:
        text = read_order_text(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise OrderError([f"{path}: no such batch file"], source=path) from None
    except OSError as error:
        raise OrderError([f"{path}: cannot be read ({error.strerror})"], source=path) from None
    except UnicodeDecodeError as error:
        raise OrderError([f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8 CSV"],
                         source=path) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise OrderError([f"{path}:1: empty; a CSV batch needs a header row (id,input,...)"], source=path) from None
    except csv.Error as error:
        raise OrderError([f"{path}:1: not valid CSV: {error}"], source=path) from None
    problems = _header_problems(path, header)
    if problems:
        raise OrderError(problems, source=path)
    orders: list[Order] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.append(f"{path}:{reader.line_num}: not valid CSV: {error}")
            break
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"{path}:{line}: {len(row)} cells for {len(header)} columns; quote cells that hold "
                            "commas")
            continue
        data = _row_data(header, row)
        order, found = parse_order(data, base_dir=path.parent, source=path, lines={"": line, **{k: line for k in
                                   data}}, text_cells=True)
        problems += found
        if order is not None:
            orders.append(order)
    return orders, problems


def _header_problems(path: Path, header: list[str]) -> list[str]:
    problems = []
    for required in ("id", "input"):
        if required not in header:
            problems.append(f"{path}:1: {required}: no {required!r} column; a CSV batch needs id and input")
    seen: set[str] = set()
    for name in header:
        if not name:
            problems.append(f"{path}:1: a column has no name; name it or remove it")
        elif name in seen:
            problems.append(f"{path}:1: {name}: two columns of that name; keep one")
        seen.add(name)
    return problems


def _row_data(header: list[str], row: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for name, cell in zip(header, row):
        if not cell.strip():
            continue
        if name.startswith("provenance."):
            provenance[name.removeprefix("provenance.")] = cell
        elif name in ("id", "notes", "input", "command"):
            data[name] = cell if name in ("id", "notes") else cell.strip()
        else:
            data[name] = cell
    if provenance:
        data["provenance"] = provenance
    command = data.get("command", DEFAULT_COMMAND)
    data.setdefault("output", DEFAULT_OUTPUTS.get(command, _DEFAULT_OUTPUT))
    return data


def _checked(path: Path, orders: list[Order], problems: list[str]) -> list[Order]:
    """The orders if the whole batch is sound: no problems, ids unique as folder names, at least one order."""
    try:
        folder_names(orders)
    except OrderError as clash:
        problems = problems + clash.problems
    if not orders and not problems:
        problems = [f"{path}: no orders in it"]
    if problems:
        # A bad [defaults] key is the same problem for every order that inherits it: said once.
        raise OrderError(sorted(dict.fromkeys(problems), key=lambda problem: _line_of(path, problem)), source=path)
    return orders


def _line_of(path: Path, problem: str) -> int:
    """The line a ``FILE:LINE: ...`` problem is at (0 for a problem of the whole file), to sort by."""
    rest = problem.removeprefix(f"{path}:")
    number = rest.split(":", 1)[0]
    return int(number) if rest != problem and number.isdigit() else 0


def with_report_format(orders: Sequence[Order], report_format: str) -> list[Order]:
    """The orders, each with ``report = report_format`` where its command has the option and the order sets
    neither ``report`` nor ``no-report`` itself (``medprint batch --report html``).

    The option is an order key like any other: it takes part in the order's parameters digest, so a batch
    run again with ``--report html`` reruns the orders that were done without it.
    """
    chosen = []
    for order in orders:
        takes_it = any(opt.dest == "report_format" for opt in order.spec.options)
        if takes_it and "report_format" not in order.values and not order.values.get("no_report"):
            order = dataclasses.replace(order, values={**order.values, "report_format": report_format})
        chosen.append(order)
    return chosen
