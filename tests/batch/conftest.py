"""Batches run real ``medprint`` subprocesses; they must import this checkout's medprint."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).parent
# Appended, not put first: other tests import the root conftest by name (``from conftest import data_root``).
if str(_HERE) not in sys.path:
    sys.path.append(str(_HERE))

REPO_ROOT = _HERE.parents[1]


@pytest.fixture(autouse=True)
def children_import_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


@pytest.fixture
def cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    from cluster_helpers import Cluster

    started = Cluster(tmp_path / "cluster")
    try:
        yield started
    finally:
        started.stop()
