"""``medprint design implant``: the cranial implant that fills a skull defect, from a CT (the options are
:data:`medprint.jobs.design_implant.SPEC`)."""

from __future__ import annotations

from ..jobs.design_implant import SPEC
from .job_command import job_command

command = job_command(SPEC, name="implant")
