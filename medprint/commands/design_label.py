"""``medprint design label``: text on a part (the options are :data:`medprint.jobs.design_label.SPEC`)."""

from __future__ import annotations

from ..jobs.design_label import SPEC
from .job_command import job_command

command = job_command(SPEC, name="label")
