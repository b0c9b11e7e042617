"""``medprint design orthosis``: a splint or orthosis shell around the skin of a CT or a scanner's mesh (the
options are :data:`medprint.jobs.design_orthosis.SPEC`)."""

from __future__ import annotations

from ..jobs.design_orthosis import SPEC
from .job_command import job_command

command = job_command(SPEC, name="orthosis")
