"""Who and what a DICOM object medprint writes belongs to: patient, study, frame of reference, source images.

This is the one place where patient identity is read for output, and it goes only into the DICOM object meant
for the patient's record (:mod:`medprint.io.dicom_stl`); nothing else medprint writes sees it.
"""
# OWNER: helper "dicom-stl". Interface fixed by the lead; fill in the bodies (fields may grow).

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IdentityOptions:
    """Patient and study identity given explicitly (for a NIfTI/NRRD input, which carries none)."""

    patient_name: str | None = None
    patient_id: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    study_uid: str | None = None
    accession_number: str | None = None
    study_description: str | None = None

    def given(self) -> bool:
        return any(value is not None for value in vars(self).values())


@dataclass(frozen=True)
class IdentitySource:
    """Where a run's DICOM identity comes from: a DICOM series (``path``, ``series`` selector as --series),
    or explicit options; both may be given (options then override the series' values)."""

    path: Path | None = None
    series: str | None = None
    options: IdentityOptions = IdentityOptions()
