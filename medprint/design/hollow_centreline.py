"""A lumen's centreline and its ends: where a hollow vessel model is opened, and across which direction.

The centreline is the lumen's curve skeleton (:func:`skimage.morphology.skeletonize`, Lee's thinning, on the
mask's own grid), read as a graph whose edges join 26-neighbouring skeleton voxels, with their lengths in mm.
The local direction at a point is the main axis (PCA) of the skeleton points within a path length of it, so a
cut is square to the vessel there, not to the scan's axes.

An end of the vessel is an end point of the skeleton; the thinning stops about one radius short of a flat end,
so the end *face* is found on the lumen's surface: the vertices beyond the end point, near its axis, whose
normals point along the centreline.  A face that is flat (its normals agree) and about as large as the
vessel's section is where the segmentation was cut -- by the scan's border or by whoever drew the label --
and the vessel is opened there; a rounded blind end (an aneurysm's dome, a bulge's spur) is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph
from skimage.morphology import skeletonize

from ..mesh.model import Mesh
from ..volume import Mask

#: Cap vertices: normal within this angle of the centreline's outward direction.
CAP_ANGLE_DEG = 60.0
#: A cut face is at least this fraction of the vessel's section (pi r^2) in area.
CAP_AREA_FRACTION = 0.3
#: A face's triangles: normals within this angle of the face's mean normal.
FACE_NORMAL_DEG = 30.0
#: Most the direction at an end may turn from the one measured a radius behind it (degrees).
MAX_EXTRAPOLATION_DEG = 20.0
#: Share of the face's points allowed in front of the cut (noise on a smoothed staircase).
CAP_QUANTILE = 0.02


@dataclass(frozen=True)
class Centreline:
    """Skeleton points of a lumen (LPS mm), their graph and the lumen radius at each."""

    points_lps: NDArray[np.float64]     # (N, 3)
    radius_mm: NDArray[np.float64]      # (N,) distance from each point to the lumen's boundary
    graph: sparse.csr_matrix            # (N, N) edge lengths in mm
    degree: NDArray[np.int64]           # (N,) neighbours of each point

    @property
    def end_points(self) -> NDArray[np.intp]:
        return np.flatnonzero(self.degree == 1)

    def nearest(self, lps: NDArray[np.float64]) -> int:
        return int(np.argmin(np.linalg.norm(self.points_lps - lps, axis=1)))

    def direction_at(self, index: int, length_mm: float) -> NDArray[np.float64]:
        """Unit main axis of the skeleton within ``length_mm`` of path from point ``index`` (sign arbitrary)."""
        reach = csgraph.dijkstra(self.graph, indices=index, limit=length_mm)
        near = self.points_lps[np.isfinite(reach)]
        if len(near) < 2:
            return np.array([0.0, 0.0, 1.0])
        centred = near - near.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return np.asarray(vt[0], dtype=float)

    def outward_at_end(self, index: int, length_mm: float) -> NDArray[np.float64]:
        """Direction at end point ``index``, pointing out of the vessel (from the skeleton behind it)."""
        axis = self.direction_at(index, length_mm)
        reach = csgraph.dijkstra(self.graph, indices=index, limit=length_mm)
        behind = self.points_lps[np.isfinite(reach)].mean(axis=0)
        if float(np.dot(self.points_lps[index] - behind, axis)) < 0:
            axis = -axis
        return axis


def lumen_centreline(lumen: Mask, distance_mm: NDArray[np.floating]) -> Centreline:
    """The curve skeleton of ``lumen`` as a graph in LPS mm.

    ``distance_mm``: the lumen's inside distance transform (mm) on its grid, giving each point's radius.
    """
    skeleton = skeletonize(lumen.array)
    zyx = np.argwhere(skeleton)
    if len(zyx) == 0:  # a blob thinner than the thinning's kernel: its centre stands for it
        zyx = np.argwhere(distance_mm == distance_mm.max())[:1]
    points = lumen.geometry.index_to_lps(zyx[:, ::-1].astype(float))
    lookup = np.full(lumen.array.shape, -1, dtype=np.int64)
    lookup[tuple(zyx.T)] = np.arange(len(zyx))
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    shape = np.asarray(lumen.array.shape)
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dz, dy, dx) <= (0, 0, 0):
                    continue  # each undirected pair once
                other = zyx + (dz, dy, dx)
                inside = np.all((other >= 0) & (other < shape), axis=1)
                target = np.full(len(zyx), -1, dtype=np.int64)
                target[inside] = lookup[tuple(other[inside].T)]
                linked = target >= 0
                rows.append(np.flatnonzero(linked))
                cols.append(target[linked])
    source = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    target_all = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    lengths = np.linalg.norm(points[source] - points[target_all], axis=1)
    n = len(zyx)
    graph = sparse.coo_matrix((np.r_[lengths, lengths], (np.r_[source, target_all], np.r_[target_all, source])),
                              shape=(n, n)).tocsr()
    degree = np.diff(graph.indptr).astype(np.int64)
    radius = np.asarray(distance_mm[tuple(zyx.T)], dtype=float)
    return Centreline(points_lps=points, radius_mm=radius, graph=graph, degree=degree)


@dataclass(frozen=True)
class EndFace:
    """Where a vessel's segmentation stops: the plane to open it at, square to the centreline."""

    point_lps: NDArray[np.float64]     # on the cut plane, on the centreline's axis
    outward: NDArray[np.float64]       # unit normal, pointing out of the vessel (the side removed)
    radius_mm: float                   # the lumen's radius at the end point
    flat: bool                         # a flat face as large as the section: a cut in the segmentation
    area_mm2: float
    coherence: float


@dataclass(frozen=True)
class SurfacePatches:
    """A surface as its triangles' centres, unit normals and areas (any tessellation, CAD or marching cubes)."""

    centres: NDArray[np.float64]
    normals: NDArray[np.float64]
    areas: NDArray[np.float64]

    @classmethod
    def of(cls, mesh: Mesh) -> SurfacePatches:
        return cls(mesh.vertices[mesh.faces].mean(axis=1), mesh.face_normals(), mesh.face_areas_mm2())


def surface_axis(patches: SurfacePatches, centre: NDArray[np.float64], guess: NDArray[np.float64], ball_mm: float,
                 behind: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None) -> NDArray[np.float64]:
    """The vessel's direction near ``centre``, from the lumen surface's normals (which are square to it).

    The direction is the one the area-weighted normals within ``ball_mm`` of ``centre`` are most square
    to (the least eigenvector of their scatter matrix, as for fitting a cylinder's axis); normals within
    50 degrees of it (an end cap, a branch's mouth) are left out and the fit repeated.  Signed like
    ``guess``; ``guess`` itself when too few normals are near.  ``behind``: (point, normal) of a plane; only
    the surface behind it is used (not the end cap beyond an end's plane).
    """
    normals, areas = patches.normals, patches.areas
    near = np.linalg.norm(patches.centres - centre, axis=1) < ball_mm
    if behind is not None:
        near &= (patches.centres - behind[0]) @ behind[1] < 0
    axis = np.asarray(guess, dtype=float) / np.linalg.norm(guess)
    for _ in range(4):
        use = near & (np.abs(normals @ axis) < np.cos(np.radians(50.0)))
        if np.count_nonzero(use) < 12:
            return axis
        n = normals[use]
        scatter = (n * areas[use, None]).T @ n
        _, vectors = np.linalg.eigh(scatter)
        found = vectors[:, 0]
        axis = found if float(found @ axis) >= 0 else -found
    return axis


def find_end_face(centreline: Centreline, end: int, patches: SurfacePatches, *, margin_mm: float,
                  border: NDArray[np.bool_] | None = None,
                  voxel_axes: NDArray[np.float64] | None = None) -> EndFace:
    """The end face beyond skeleton end point ``end`` on the lumen ``surface`` and the plane to open it at.

    The plane is square to the vessel's direction at the face (from the surface's normals behind it,
    extrapolated to the face, see :func:`surface_axis`), ``margin_mm`` in front of the nearest point of the
    face (so the rounded rim of a staircase surface goes too).  Without a face the plane goes through the
    end point.  ``border``: the surface's vertices on the caps the scan's border put on the lumen; an end
    whose face lies there is opened wherever the border cuts it, however oblique.  ``voxel_axes``: the mask's
    voxel edges (columns, LPS mm); a face is flat within two voxels measured along its normal (an axial face
    on thick slices keeps a slice's staircase, a face across the fine in-plane grid only a fine voxel's),
    within ``2 * margin_mm`` without it.
    """

    def tolerance(direction: NDArray[np.float64]) -> float:
        if voxel_axes is None:
            return 2 * margin_mm
        return 2 * float(np.abs(direction @ voxel_axes).sum())

    e = centreline.points_lps[end]
    radius = max(float(centreline.radius_mm[end]), 1e-3)
    outward = centreline.outward_at_end(end, max(3.0 * radius, 4.0 * margin_mm))
    face = _cap(e, outward, radius, patches, border, tolerance(outward))
    for _ in range(2):
        at = face[2] - margin_mm if face[3] else 0.0
        plane = e + at * outward
        cut = (plane - 0.5 * margin_mm * outward, outward)
        # balls of 2 r reach 1.7 r along the vessel from centres on its axis: the nearer one ends at the plane
        near = surface_axis(patches, plane - 1.8 * radius * outward, outward, 2 * radius, cut)
        far = surface_axis(patches, plane - 3.6 * radius * outward, outward, 2 * radius, cut)
        extrapolated = 2 * near - far
        extrapolated /= np.linalg.norm(extrapolated)
        # the bend carried on to the face; a turn of more than 20 degrees over one radius (a tight bend of the
        # phantom turns 12) is noise of the surface, not a bend
        outward = extrapolated if float(extrapolated @ near) >= np.cos(np.radians(MAX_EXTRAPOLATION_DEG)) else near
        face = _cap(e, outward, radius, patches, border, tolerance(outward))
    area, coherence, front, flat = face
    at = front - margin_mm if flat else 0.0
    return EndFace(point_lps=e + at * outward, outward=outward, radius_mm=radius, flat=bool(flat), area_mm2=area,
                   coherence=coherence)


def _cap(e: NDArray[np.float64], outward: NDArray[np.float64], radius: float, patches: SurfacePatches,
         border: NDArray[np.bool_] | None, tolerance_mm: float) -> tuple[float, float, float, bool]:
    """Area, normal coherence and nearest position (along ``outward`` from ``e``) of the end face; is it flat.

    A flat face is at least :data:`CAP_AREA_FRACTION` of the vessel's section, in one plane within
    ``tolerance_mm`` (a voxel: the staircase a smoothed face keeps).
    """
    normals, areas = patches.normals, patches.areas
    rel = patches.centres - e
    t = rel @ outward
    radial = np.linalg.norm(rel - np.outer(t, outward), axis=1)
    near = (t > -2 * radius) & (t < 2.5 * radius) & (radial < 1.6 * radius)
    if border is not None and np.any(near & border):
        cap = near & border
        area = float(areas[cap].sum())
        mean_normal = (normals[cap] * areas[cap, None]).sum(axis=0) / max(area, 1e-12)
        return area, float(np.linalg.norm(mean_normal)), float(np.quantile(t[cap], CAP_QUANTILE)), True
    near &= t > -radius
    cap = near & (normals @ outward >= np.cos(np.radians(CAP_ANGLE_DEG)))
    if not cap.any():
        return 0.0, 0.0, 0.0, False
    # The cap's far end only: a plane tilted up to 30 degrees spans 1.2 r along the vessel.
    far = float(np.quantile(t[cap], 1 - CAP_QUANTILE))
    cap &= t >= far - 1.2 * radius
    total = float(areas[cap].sum())
    if total <= 0:
        return 0.0, 0.0, 0.0, False
    mean_normal = (normals[cap] * areas[cap, None]).sum(axis=0) / total
    coherence = float(np.linalg.norm(mean_normal))
    # The face proper: the cap's triangles that lie in its farthest plane.  What faces the same way further
    # back (the underside of a branch's mouth, a bulge) or curves away (a dome's flanks) is not part of it.
    facing = mean_normal / max(coherence, 1e-12)
    aligned = cap & (normals @ facing >= np.cos(np.radians(FACE_NORMAL_DEG)))
    offset = patches.centres @ facing
    face = aligned & (offset >= np.quantile(offset[aligned], 1 - CAP_QUANTILE) - tolerance_mm) if aligned.any() \
        else aligned
    area = float(areas[face].sum())
    flat = area >= CAP_AREA_FRACTION * np.pi * radius**2
    front = float(np.quantile(t[face], CAP_QUANTILE)) if flat else float(np.quantile(t[cap], CAP_QUANTILE))
    return area, coherence, front, bool(flat)
