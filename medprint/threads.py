"""How many threads one medprint process may use, so parallel orders do not fight over the cores.

A batch of N orders on C cores runs each order with C // N threads: without a budget every order's
distance transforms, VTK filters, ITK filters and BLAS start one thread per core, and two orders on two
cores spend their time switching (measured: 2 workers gave 1.5x instead of 1.9x).  ``MEDPRINT_THREADS``
sets the budget; the libraries read their own variables, which :func:`thread_environment` sets together.
"""

from __future__ import annotations

import os

#: The budget medprint's own parallel code reads (edt passes, the orthosis's distance workers).
THREADS_VARIABLE = "MEDPRINT_THREADS"

#: The variables the libraries medprint uses read at start-up for their thread pools.
_LIBRARY_VARIABLES = (
    "OMP_NUM_THREADS",  # OpenMP (scikit-image, SciPy's OpenMP builds)
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",  # SimpleITK
    "VTK_SMP_MAX_THREADS",  # VTK's SMP tools (flying edges, windowed sinc)
    "IGL_NUM_THREADS",  # libigl's parallel_for
)


def cpu_count() -> int:
    """The cores this process may run on (its affinity where the system says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_budget() -> int:
    """``MEDPRINT_THREADS`` when it is a whole number >= 1, else the cores available.

    >>> thread_budget() >= 1
    True
    """
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    if text.isdigit() and int(text) >= 1:
        return min(int(text), cpu_count())
    return cpu_count()


def thread_environment(threads: int) -> dict[str, str]:
    """The environment variables that hold a child process (medprint and its libraries) to ``threads``.

    >>> thread_environment(2)["OMP_NUM_THREADS"]
    '2'
    """
    value = str(max(1, int(threads)))
    return {THREADS_VARIABLE: value, **{name: value for name in _LIBRARY_VARIABLES}}
