"""The triangle surface type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import MeshError


@dataclass(frozen=True)
class Mesh:
    """A triangle surface in the patient frame.

    Parameters
    ----------
    vertices : ndarray of float64, shape (V, 3)
        Vertex positions in LPS mm.
    faces : ndarray of int64, shape (F, 3)
        Vertex indices per triangle, counter-clockwise seen from outside
        (normals point out of the body).
    name : str
        What the surface shows (``'bone'``, ``'tumour'``); used in file names and 3MF objects.
    """

    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]
    name: str = "mesh"

    def __post_init__(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise MeshError(f"vertices must have shape (V, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise MeshError(f"faces must have shape (F, 3), got {self.faces.shape}")

    @property
    def face_count(self) -> int:
        return int(self.faces.shape[0])

    @property
    def vertex_count(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def is_empty(self) -> bool:
        return self.face_count == 0

    def bounds_mm(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Axis-aligned bounding box ``(min_xyz, max_xyz)`` in LPS mm."""
        if self.vertex_count == 0:
            raise MeshError("the mesh is empty: it has no bounding box")
        low = self.vertices.min(axis=0)
        high = self.vertices.max(axis=0)
        return (tuple(map(float, low)), tuple(map(float, high)))  # type: ignore[return-value]

    def volume_mm3(self) -> float:
        """Enclosed volume in mm^3 (divergence theorem; positive when outward-facing)."""
        tri = self.vertices[self.faces]
        return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)

    def area_mm2(self) -> float:
        """Surface area in mm^2."""
        return float(self.face_areas_mm2().sum())

    def face_areas_mm2(self) -> NDArray[np.float64]:
        """Area of each triangle in mm^2."""
        return np.linalg.norm(self._face_cross(), axis=1) / 2.0

    def face_normals(self) -> NDArray[np.float64]:
        """Unit normal of each triangle (outward for an outward-facing mesh); zero for a triangle of no area."""
        cross = self._face_cross()
        length = np.linalg.norm(cross, axis=1, keepdims=True)
        return cross / np.where(length > 0, length, 1.0)

    def vertex_normals(self) -> NDArray[np.float64]:
        """Unit normal at each vertex: the sum of its triangles' normals weighted by their areas."""
        cross = self._face_cross()
        corners = self.faces.reshape(-1)
        summed = np.column_stack([np.bincount(corners, weights=np.repeat(cross[:, k], 3),
                                              minlength=self.vertex_count) for k in range(3)])
        return summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)

    def _face_cross(self) -> NDArray[np.float64]:
        tri = self.vertices[self.faces]
        return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])

    def with_name(self, name: str) -> "Mesh":
        return Mesh(vertices=self.vertices, faces=self.faces, name=name)
