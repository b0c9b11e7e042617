"""Mask -> printable triangle surface: extract, smooth, decimate, check, repair.

>>> from medprint.mesh import extract_surface, smooth_surface, decimate_surface, assess_mesh
"""

from .decimate import decimate_surface
from .model import Mesh
from .quality import (
    MeshQuality,
    RepairResult,
    assess_mesh,
    check_printable_size,
    make_printable,
    split_bodies,
)
from .smooth import smooth_surface
from .surface import extract_surface

__all__ = [
    "Mesh",
    "MeshQuality",
    "RepairResult",
    "assess_mesh",
    "check_printable_size",
    "decimate_surface",
    "extract_surface",
    "make_printable",
    "smooth_surface",
    "split_bodies",
]
