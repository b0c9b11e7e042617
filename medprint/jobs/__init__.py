"""Jobs: every command medprint runs (``convert``, ``slice``, ``design ...``) as data and one run function.

The CLI's commands and the order files (:mod:`medprint.jobs.orders`) are both made from these specs, so an
option and an order key are one name with one meaning and one validation.

>>> sorted(JOB_MODULES)[:2]
['convert', 'design hollow']
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import JobSpec

#: Job name (the words of its command) -> the module holding its ``SPEC``; imported on first use.
JOB_MODULES = {
    "convert": "medprint.jobs.convert",
    "design hollow": "medprint.jobs.design_hollow",
    "design implant": "medprint.jobs.design_implant",
    "design label": "medprint.jobs.design_label",
    "design orthosis": "medprint.jobs.design_orthosis",
    "slice": "medprint.jobs.slice",
    "dicom-stl": "medprint.jobs.dicom_stl",
}


def job_spec(name: str) -> JobSpec:
    """The spec of the job ``name`` (``"convert"``, ``"design implant"``); KeyError for an unknown name."""
    return import_module(JOB_MODULES[name]).SPEC  # type: ignore[no-any-return]
