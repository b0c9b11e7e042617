"""``medprint convert``: scan to printable mesh in one step (the options are :data:`medprint.jobs.convert.SPEC`)."""

from __future__ import annotations

from ..jobs.convert import SPEC
from .job_command import job_command

command = job_command(SPEC)
