"""Non-shrinking surface smoothing with a hard bound on how far the surface moves."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ParameterError
from . import _vtk
from .model import Mesh

logger = logging.getLogger("medprint")


def smooth_surface(
    mesh: Mesh,
    *,
    iterations: int = 20,
    passband: float = 0.05,
    max_deviation_mm: float,
) -> tuple[Mesh, float]:
    """Remove voxel staircases without shrinking, moving no vertex more than a limit.

    A windowed-sinc low-pass filter (VTK, coordinates normalised to a unit
    box so the pass band does not depend on the model's size) smooths the
    surface while keeping its volume (Taubin's signal-processing view: unlike
    Laplacian smoothing it does not shrink).  Each vertex's displacement ``d``
    is then clamped to ``max_deviation_mm``:
    ``new = old + d * min(1, L / |d|)``.  Every point of a triangle is a
    convex combination of its three vertices, and each vertex moved at most
    ``L``, so every point of the new surface lies within ``L`` of the
    corresponding point of the old one: the Hausdorff distance from the new
    surface to the old is at most ``L`` (the topology is unchanged).

    Parameters
    ----------
    mesh : Mesh
        Surface in LPS mm.
    iterations : int
        Filter iterations (>= 1; 0 returns the mesh unchanged); 20 is a good
        default for marching-cubes output.
    passband : float
        Pass band in (0, 2); lower smooths more.
    max_deviation_mm : float
        Largest distance (mm) any vertex may move; > 0.

    Returns
    -------
    mesh : Mesh
        Smoothed surface, same faces.
    max_displacement_mm : float
        Largest vertex displacement actually applied (<= ``max_deviation_mm``).

    Raises
    ------
    ParameterError
        If an option is out of range.

    Notes
    -----
    On a 2.6 M-triangle mesh (2 cores) VTK's filter took 0.9 s against 1.5 s
    for trimesh's Taubin filter, hence VTK.
    """
    if iterations < 0:
        raise ParameterError(f"smoothing iterations must be 0 or more, got {iterations}")
    if not 0.0 < passband < 2.0:
        raise ParameterError(f"smoothing pass band must be between 0 and 2 (lower smooths more), got {passband}")
    if not max_deviation_mm > 0.0:
        raise ParameterError(f"max_deviation_mm must be a positive distance in mm, got {max_deviation_mm}")
    if iterations == 0 or mesh.is_empty:
        return mesh, 0.0
    smoothed = _windowed_sinc(mesh, iterations, passband)
    displacement = smoothed - mesh.vertices
    length = np.linalg.norm(displacement, axis=1)
    scale = np.minimum(1.0, max_deviation_mm / np.maximum(length, np.finfo(float).tiny))
    vertices = mesh.vertices + displacement * scale[:, None]
    reached = float(np.linalg.norm(vertices - mesh.vertices, axis=1).max())
    clamped = int(np.count_nonzero(scale < 1.0))
    if clamped:
        logger.info(
            "smoothing: %d of %d vertices held to the %.3g mm deviation limit",
            clamped, mesh.vertex_count, max_deviation_mm,
        )
    return Mesh(vertices=vertices, faces=mesh.faces, name=mesh.name), reached


def _windowed_sinc(mesh: Mesh, iterations: int, passband: float) -> np.ndarray:
    # Work near the origin: VTK normalises coordinates, but float precision is better centred.
    centre = mesh.vertices.mean(axis=0)
    polydata = _vtk.polydata_from_arrays(mesh.vertices - centre, mesh.faces)
    smoother = _vtk.vtk.vtkWindowedSincPolyDataFilter()
    smoother.SetInputData(polydata)
    smoother.SetNumberOfIterations(iterations)
    smoother.SetPassBand(passband)
    smoother.NormalizeCoordinatesOn()
    # Feature-edge and boundary handling would pin the voxel steps we want to remove.
    smoother.FeatureEdgeSmoothingOff()
    smoother.BoundarySmoothingOff()
    smoother.NonManifoldSmoothingOn()
    smoother.Update()
    vertices, _ = _vtk.arrays_from_polydata(smoother.GetOutput())
    if len(vertices) != mesh.vertex_count:
        raise RuntimeError("VTK smoothing changed the number of points")  # would break the face indices
    return vertices + centre
