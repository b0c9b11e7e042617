"""Exception hierarchy.

Every error medprint raises on purpose derives from :class:`MedprintError` and
carries a message that names the file or option, the value found and the fix.
The CLI turns these into one line and exit code 1.
"""

from __future__ import annotations


class MedprintError(Exception):
    """Root of all errors raised deliberately by medprint."""


class InputError(MedprintError, ValueError):
    """A scan, file or folder given to medprint cannot be used as it is."""


class ParameterError(MedprintError, ValueError):
    """An option or argument has a value medprint cannot work with."""


class GeometryError(InputError):
    """The scan's spatial layout (slice positions, orientation) is unusable."""


class SegmentationError(MedprintError, ValueError):
    """Segmentation produced nothing printable (e.g. an empty mask)."""


class MeshError(MedprintError, RuntimeError):
    """A mesh could not be made watertight, manifold and outward-facing."""


class DesignError(MedprintError, ValueError):
    """A part cannot be designed as asked (no defect found, text that does not fit, a wall thicker than the part)."""


class OutputError(MedprintError, OSError):
    """An output cannot be written (exists, folder missing or not writable)."""
