"""Each order of a batch gets its share of the cores, so parallel orders do not oversubscribe them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from medprint.batch.runner import _threads_per_order
from medprint.errors import ParameterError
from medprint.threads import (
    THREADS_VARIABLE,
    cpu_count,
    thread_budget,
    thread_environment,
)


def test_local_orders_share_the_cores_and_cluster_orders_take_one() -> None:
    cores = cpu_count()
    assert _threads_per_order(None, 1, None) == cores
    assert _threads_per_order(None, cores, None) == 1
    assert _threads_per_order(None, 4 * cores, None) == 1
    assert _threads_per_order(None, 1, "tcp://127.0.0.1:8786") == 1
    assert _threads_per_order(3, 2, None) == 3
    with pytest.raises(ParameterError, match="--threads-per-order"):
        _threads_per_order(0, 2, None)


def test_the_budget_reaches_the_child_and_its_libraries(tmp_path: pytest.TempPathFactory) -> None:
    code = ("import os; from medprint.segment.voxels import EDT_THREADS; "
            "print(EDT_THREADS, os.environ['OMP_NUM_THREADS'], os.environ['ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS'])")
    environment = {**os.environ, **thread_environment(1)}
    out = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "1"]


def test_a_bad_budget_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, "zero")
    assert thread_budget() == cpu_count()
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    assert thread_budget() == 1
