"""Shared fixtures: where the real cases live (MEDPRINT_DATA, default ../shared/data)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# importlib mode puts no test folder on sys.path; shared helpers (dicom_phantoms,
# phantoms) are imported by plain name from any test package.
# The hostile suite's harness and the design phantoms are imported the same way (``from harness import ...``).
for _helpers in (REPO_ROOT / "tests", REPO_ROOT / "tests" / "hostile", REPO_ROOT / "tests" / "design"):
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))


def data_root() -> Path:
    """The folder of real cases: $MEDPRINT_DATA, else ../shared/data from the repo root."""
    return Path(os.environ.get("MEDPRINT_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def real_data() -> Callable[[str], Path]:
    """``real_case(name) -> Path`` of a real case sub-path; skips the test when it is absent."""

    def real_case(name: str) -> Path:
        path = data_root() / name
        if not path.exists():
            pytest.skip(f"real case {name} not found in {data_root()} (set MEDPRINT_DATA)")
        return path

    return real_case
