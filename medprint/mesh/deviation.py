"""How far one surface lies from another, sampled over the triangles, both ways."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from . import _vtk
from .model import Mesh

#: At most this many subdivisions of a triangle's edges when sampling it (a 64-step lattice is 2,145 points).
MAX_SUBDIVISIONS = 64


def surface_samples(mesh: Mesh, spacing_mm: float) -> NDArray[np.float64]:
    """Points on every triangle of ``mesh``, no two lattice neighbours farther apart than ``spacing_mm``.

    Each triangle gets a barycentric lattice of ``n`` steps per edge, ``n``
    chosen from its longest edge, so a large triangle (a filled hole, a
    decimated flat) is sampled as densely as a small one; the vertices, edge
    points and interior points are all included.  Triangles are grouped by
    ``n`` (a handful of groups), so there is no loop over faces.

    Parameters
    ----------
    mesh : Mesh
    spacing_mm : float
        Wanted distance between neighbouring samples (> 0).

    Returns
    -------
    ndarray of shape (N, 3)
    """
    if mesh.is_empty:
        return np.zeros((0, 3))
    corners = mesh.vertices[mesh.faces]
    longest = np.max(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2), axis=1)
    steps = np.clip(np.ceil(longest / spacing_mm), 1, MAX_SUBDIVISIONS).astype(np.int64)
    # The corners once each (shared by about six faces), then each finer lattice without its corners.
    chunks = [mesh.vertices[np.unique(mesh.faces)]]
    for n in np.unique(steps[steps > 1]):
        i, j = np.nonzero(np.add.outer(np.arange(n + 1), np.arange(n + 1)) <= n)
        weights = np.stack([n - i - j, i, j], axis=1) / float(n)
        weights = weights[weights.max(axis=1) < 1.0]
        chunks.append(np.einsum("pk,fkd->fpd", weights, corners[steps == n]).reshape(-1, 3))
    return np.vstack(chunks)


def two_sided_deviation_mm(first: Mesh, second: Mesh, *, spacing_mm: float) -> float:
    """Largest distance from a point of either surface to the other (sampled Hausdorff distance), in mm.

    Each surface is sampled over its triangles (:func:`surface_samples`) and
    the exact point-to-triangle distance to the other surface taken (VTK cell
    locator).  The true Hausdorff distance exceeds this by at most the
    sampling's covering radius (under ``spacing_mm``), since the distance to a
    surface changes by at most as much as the point moves.
    """
    if first.is_empty or second.is_empty:
        return 0.0 if first.is_empty and second.is_empty else float("inf")
    forward = _vtk.distance_to_surface(
        surface_samples(first, spacing_mm), _vtk.polydata_from_arrays(second.vertices, second.faces)
    )
    backward = _vtk.distance_to_surface(
        surface_samples(second, spacing_mm), _vtk.polydata_from_arrays(first.vertices, first.faces)
    )
    return float(max(forward.max(), backward.max()))


def median_edge_mm(mesh: Mesh) -> float:
    """The median edge length, a natural sampling spacing for comparing a mesh with a derived one."""
    corners = mesh.vertices[mesh.faces[:, :2]]
    return float(np.median(np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)))
