"""``medprint slice``: a mesh to printer-ready G-code (the options are :data:`medprint.jobs.slice.SPEC`)."""

from __future__ import annotations

from ..jobs.slice import SPEC
from .job_command import job_command

command = job_command(SPEC)
