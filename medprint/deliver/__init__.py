"""Outputs built from what a run made, inside the run's transaction: the HTML sign-off report, the DICOM
Encapsulated STL; and sending DICOM objects to a PACS after the run.

A run (``convert_scan``, ``run_design``, the slice job) hands each :class:`ExtraOutput` a
:class:`RunProducts` before it commits, so these files are written with the others or not at all.
"""

from .products import ExtraOutput, RunProducts

__all__ = ["ExtraOutput", "RunProducts"]
