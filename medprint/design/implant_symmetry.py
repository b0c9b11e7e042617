"""The mid-sagittal plane: the plane across which the skull best matches its own mirror image.

Registration of the skull to its mirror image, as an iterative closest point on surface points: reflect the points
across the current plane, pair each with its nearest neighbour among the originals, and re-estimate the plane from
the pairs (the pair's midpoints lie on the plane, the vectors between them are along its normal).  The worst
pairs are trimmed each round, so a defect on one side (points with no mirror partner) does not pull the plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

#: Share of the point pairs kept each round (the rest, farthest apart, are the defect and true asymmetries).
_TRIM_KEEP = 0.8


@dataclass(frozen=True)
class SymmetryPlane:
    """The plane ``normal . x = offset`` (LPS mm) and how well the skull matched its mirror image across it.

    ``residual_mm``: root mean square distance between the mirrored surface points and their nearest original
    points, over the best 80 % of them (the registration residual).
    """

    normal: NDArray[np.float64]
    offset: float
    residual_mm: float
    iterations: int
    estimated: bool

    @property
    def point(self) -> NDArray[np.float64]:
        return self.normal * self.offset

    def signed_distance(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(points, float) @ self.normal - self.offset

    def reflect(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        points = np.asarray(points, float)
        return points - 2.0 * self.signed_distance(points)[..., None] * self.normal

    def describe(self, near: NDArray[np.float64] | None = None) -> dict[str, object]:
        """The plane for a report: its point nearest ``near`` (e.g. the skull's centre), normal, residual."""
        point = self.point if near is None else self.reflect(np.asarray(near, float)) / 2 + np.asarray(near) / 2
        return {
            "point_lps_mm": [round(float(x), 3) for x in point],
            "normal_lps": [round(float(x), 5) for x in self.normal],
            "estimated": self.estimated,
            "registration_residual_mm": round(self.residual_mm, 3),
        }


def mirror_residual(points: NDArray[np.float64], normal: NDArray[np.float64], offset: float,
                    tree: cKDTree | None = None) -> float:
    """Trimmed RMS distance (mm) from the points mirrored across the plane to the nearest original points."""
    tree = tree if tree is not None else cKDTree(points)
    mirrored = points - 2.0 * (points @ normal - offset)[:, None] * normal
    distances, _ = tree.query(mirrored)
    kept = np.sort(distances)[: max(1, int(len(distances) * _TRIM_KEEP))]
    return float(np.sqrt(np.mean(kept ** 2)))


def estimate_symmetry_plane(points: NDArray[np.float64], initial_normal: NDArray[np.float64],
                            initial_point: NDArray[np.float64], *, iterations: int = 40,
                            tolerance: float = 1e-5) -> SymmetryPlane:
    """Fit the mirror plane of a point cloud (LPS mm) by trimmed iterative closest points.

    Parameters
    ----------
    points : ndarray, shape (N, 3)
        Surface points of the skull.
    initial_normal, initial_point : array_like
        Starting plane (e.g. the patient's left-right axis through the skull's centre).
    """
    points = np.asarray(points, float)
    tree = cKDTree(points)
    normal = np.asarray(initial_normal, float) / np.linalg.norm(initial_normal)
    offset = float(np.asarray(initial_point, float) @ normal)
    done = 0
    for done in range(1, iterations + 1):
        mirrored = points - 2.0 * (points @ normal - offset)[:, None] * normal
        distances, nearest = tree.query(mirrored)
        keep = distances <= np.quantile(distances, _TRIM_KEEP)
        p, q = points[keep], points[nearest[keep]]
        along = p - q
        # Pairs straddling the plane give the normal; pairs of near-plane points (tiny vectors) barely count.
        scatter = along.T @ along
        eigenvalues, eigenvectors = np.linalg.eigh(scatter)
        new_normal = eigenvectors[:, -1]
        if new_normal @ normal < 0:
            new_normal = -new_normal
        new_offset = float(np.median(((p + q) / 2) @ new_normal))
        change = float(np.linalg.norm(new_normal - normal)) + abs(new_offset - offset) / 100.0
        normal, offset = new_normal, new_offset
        if change < tolerance:
            break
    return SymmetryPlane(normal=normal, offset=offset, residual_mm=mirror_residual(points, normal, offset, tree),
                         iterations=done, estimated=True)
