"""The README's Python API is the real one: every name it imports exists, every keyword it passes is a parameter.

The code blocks of the README's "## Python API" section are parsed, not run (they need scans): each
``from medprint... import X`` must import, each call of an imported name with ``key=value`` must match that
name's signature, and each dotted ``medprint.x.y`` the README names in backticks must resolve.  A function
renamed or a keyword changed in the package fails here until the README follows.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def api_section() -> str:
    text = README.read_text(encoding="utf-8")
    assert "\n## Python API\n" in text, "README.md has no '## Python API' section"
    return text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]


def api_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", api_section(), flags=re.S)


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
