"""``medprint dicom-stl``: a mesh as a DICOM Encapsulated STL (the options are :data:`medprint.jobs.dicom_stl.SPEC`)."""

from __future__ import annotations

from ..jobs.dicom_stl import SPEC
from .job_command import job_command

command = job_command(SPEC)
