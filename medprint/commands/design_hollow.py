"""``medprint design hollow``: a hollow vessel model (the options are :data:`medprint.jobs.design_hollow.SPEC`)."""

from __future__ import annotations

from ..jobs.design_hollow import SPEC
from .job_command import job_command

command = job_command(SPEC, name="hollow")
