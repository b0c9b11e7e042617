"""The README's Python API is the real one: every name it imports exists, every keyword it passes is a parameter.

The code blocks of the README's "## Python API" section are parsed, not run (they need scans): each
``from medprint... import X`` must import, each call of an imported name with ``key=value`` must match that
name's signature, and each dotted ``medprint.x.y`` the README names in backticks must resolve.  The order and
batch examples (TOML, CSV) must use their commands' real option names with values those options take.  A
function, keyword or option renamed in the package fails here until the README follows.
"""

from __future__ import annotations

import ast
import csv
import importlib
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def api_section() -> str:
    text = README.read_text(encoding="utf-8")
    assert "\n## Python API\n" in text, "README.md has no '## Python API' section"
    return text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]


def api_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", api_section(), flags=re.DOTALL)


def imported_names() -> list[tuple[str, str]]:
    """(module, name) of every ``from medprint... import name`` in the API blocks, in order, once each."""
    found: dict[tuple[str, str], None] = {}
    for block in api_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "medprint":
                for alias in node.names:
                    found[(node.module or "", alias.name)] = None
    return list(found)


def keyword_calls() -> list[tuple[str, str, tuple[str, ...]]]:
    """(module, name, keywords) of every call, in the API blocks, of a name imported from medprint."""
    calls = []
    for block in api_blocks():
        tree = ast.parse(block)
        origin = {alias.asname or alias.name: (node.module or "", alias.name)
                  for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                  and (node.module or "").split(".")[0] == "medprint" for alias in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in origin:
                keywords = tuple(k.arg for k in node.keywords if k.arg is not None)
                if keywords:
                    calls.append((*origin[node.func.id], keywords))
    return calls


def resolve(dotted: str) -> Any:
    """The object a dotted name such as ``medprint.pipeline.convert_scan`` stands for (import as far as modules go)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(dotted)


def test_the_api_section_shows_every_stage_in_code() -> None:
    blocks = api_blocks()
    assert len(blocks) >= 5, "the Python API section lost its code blocks (or their ```python fences)"
    for block in blocks:
        ast.parse(block)  # a block that is not Python fails here with its line
    modules = {module for module, _ in imported_names()}
    # load, segment, mesh, design, slice, jobs, orders, batch, errors: each stage shown where a script meets it
    for module in ("medprint.io", "medprint.segment", "medprint.mesh", "medprint.design", "medprint.slice",
                   "medprint.jobs", "medprint.jobs.orders", "medprint.batch", "medprint.errors"):
        assert module in modules, f"the Python API section no longer imports from {module}"


@pytest.mark.parametrize(("module", "name"), imported_names(), ids=lambda value: str(value))
def test_every_imported_name_exists(module: str, name: str) -> None:
    imported = importlib.import_module(module)
    assert hasattr(imported, name), f"README: `from {module} import {name}`, but {module} has no {name}"


@pytest.mark.parametrize(("module", "name", "keywords"), keyword_calls(), ids=lambda value: str(value))
def test_every_keyword_the_readme_passes_is_a_parameter(module: str, name: str, keywords: tuple[str, ...]) -> None:
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    parameters = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = [k for k in keywords if k not in parameters
               or parameters[k].kind is inspect.Parameter.POSITIONAL_ONLY]
    assert not unknown, f"README calls {module}.{name}({', '.join(f'{k}=...' for k in unknown)}); its signature " \
                        f"is {signature}"


def test_dotted_names_in_the_readme_resolve() -> None:
    names = sorted(set(re.findall(r"`(medprint(?:\.\w+)+)", README.read_text(encoding="utf-8"))))
    assert "medprint.pipeline.convert_scan" in names  # the extraction still finds what the README names
    missing = []
    for dotted in names:
        try:
            resolve(dotted)
        except (ImportError, AttributeError):
            missing.append(dotted)
    assert not missing, f"README names {missing}, which do not exist"


# ---------------------------------------------------------------------------------------------------------------
# The order and batch examples
# ---------------------------------------------------------------------------------------------------------------

#: Order keys that are not options of the command (see the README's order example).
ORDER_ONLY_KEYS = {"id", "command", "input", "notes", "provenance"}


def order_examples() -> list[tuple[str, str]]:
    """(kind, text) of every ``toml`` and ``csv`` block in the README's "### Batches and orders"."""
    text = README.read_text(encoding="utf-8")
    assert "\n### Batches and orders\n" in text, "README.md has no '### Batches and orders' section"
    section = text.split("\n### Batches and orders\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"```(toml|csv)\n(.*?)```", section, flags=re.DOTALL)


def example_orders() -> list[tuple[str, dict[str, Any], bool]]:
    """(where, keys, text_cells) of every order the examples hold, [defaults] merged in as a batch does."""
    orders: list[tuple[str, dict[str, Any], bool]] = []
    for number, (kind, text) in enumerate(order_examples(), start=1):
        if kind == "csv":
            for row, cells in enumerate(csv.DictReader(text.splitlines()), start=2):
                orders.append((f"csv example {number}, row {row}", {k: v for k, v in cells.items() if v}, True))
            continue
        data = tomllib.loads(text)
        tables = data.get("order", [data])
        for index, table in enumerate(tables, start=1):
            orders.append((f"toml example {number}, order {index}", {**data.get("defaults", {}), **table}, False))
    return orders


def test_the_examples_show_an_order_a_toml_batch_and_a_csv_batch() -> None:
    kinds = [kind for kind, _ in order_examples()]
    assert kinds.count("toml") >= 2 and "csv" in kinds, kinds
    assert any("provenance" in keys for _, keys, _ in example_orders())


@pytest.mark.parametrize(("where", "keys", "text_cells"),
                         [pytest.param(*order, id=order[0]) for order in example_orders()])
def test_every_order_key_in_the_examples_is_an_option_with_a_valid_value(where: str, keys: dict[str, Any],
                                                                         text_cells: bool) -> None:
    from medprint.jobs import JOB_MODULES, job_spec

    command = keys.get("command", "convert")
    assert command in JOB_MODULES, f"{where}: command {command!r} is not one of {sorted(JOB_MODULES)}"
    spec = job_spec(command)
    for key, value in keys.items():
        if key in ORDER_ONLY_KEYS or key.startswith("provenance."):
            continue
        try:
            opt = spec.option(key)
        except KeyError:
            raise AssertionError(f"{where}: {key!r} is not an option of {command}") from None
        assert opt.in_order, f"{where}: {key!r} is an option orders may not set"
        if text_cells and opt.multiple:
            value = value.split("|")
        opt.parse(value)  # raises ValueProblem for a value the option refuses
