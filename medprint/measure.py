"""Measurements on meshes: vessel diameters in a cutting plane.

Clinicians size aortic roots, stents and valves by the diameters of the lumen
in a plane across the vessel (the annulus, the sinotubular junction).  This
module cuts a :class:`~medprint.mesh.Mesh` with a plane, keeps the closed loop
around a point of that plane and reports the usual diameters of that loop:

* ``max_mm``: the largest distance between two points of the loop (maximum
  Feret diameter; what TotalSegmentator's aorta report calls ``diameter``);
* ``perpendicular_mm``: the extent of the loop across the maximum diameter,
  in the plane (close to the report's ``diameter_pd``);
* ``min_mm``: the smallest caliper width (minimum Feret diameter);
* ``area_equivalent_mm``: the diameter of the circle with the loop's area;
* ``perimeter_equivalent_mm``: the diameter of the circle with its perimeter.

The cut is done here, vectorised over the triangles, so no mesh library is
needed: each triangle straddling the plane gives one segment joining the
points where two of its edges cross the plane; segments sharing a crossed
mesh edge are joined into loops.  Segment directions follow the (outward)
face orientation, so areas come out signed and holes subtract.

>>> from medprint.measure import cross_section_diameters, plane_from_mask
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull, QhullError

from .errors import MeshError, ParameterError, SegmentationError
from .mesh.model import Mesh
from .volume import Mask

__all__ = ["cross_section_diameters", "plane_from_mask"]


def cross_section_diameters(mesh: Mesh, plane_point_lps: ArrayLike, plane_normal: ArrayLike) -> dict[str, Any]:
    """Diameters of the mesh's cross-section around a point of a plane.

    Parameters
    ----------
    mesh : Mesh
        Closed, outward-facing surface in LPS mm.
    plane_point_lps : (3,) array_like
        A point of the cutting plane (LPS mm) inside the lumen to measure; the
        loop that encloses it is the one measured.
    plane_normal : (3,) array_like
        Normal of the plane (any length, any sign).

    Returns
    -------
    dict
        ``max_mm``, ``perpendicular_mm``, ``min_mm``, ``area_mm2``,
        ``area_equivalent_mm`` (``2 sqrt(area / pi)``), ``perimeter_mm``,
        ``perimeter_equivalent_mm`` (``perimeter / pi``), ``max_endpoints_lps``
        (2, 3) the two points at maximum distance, ``points_lps`` (N, 3) the
        loop's points (unordered), ``loops`` the number of loops in the whole
        section.

    Raises
    ------
    ParameterError
        A point or normal that is not three finite numbers, or a zero normal.
    MeshError
        The plane misses the mesh, or no closed loop of the section encloses
        the point (the message says how many loops there were).

    Examples
    --------
    A unit cube cut half-way up:

    >>> vertices = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    >>> faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
    ...                   [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    >>> d = cross_section_diameters(Mesh(vertices, faces), (0.5, 0.5, 0.5), (0, 0, 1))
    >>> round(d["max_mm"], 4), round(d["min_mm"], 4), round(d["area_mm2"], 4)
    (1.4142, 1.0, 1.0)
    """
    point = _vector(plane_point_lps, "plane point")
    normal = _vector(plane_normal, "plane normal")
    length = float(np.linalg.norm(normal))
    if not length > 0:
        raise ParameterError("plane normal: must not be zero; give the direction across the vessel")
    normal = normal / length
    if mesh.is_empty:
        raise MeshError(f"cannot measure the {mesh.name} mesh: it has no faces")

    start, end, keys_start, keys_end = _cut(mesh, point, normal)
    if len(start) == 0:
        raise MeshError(
            f"the plane through {_fmt(point)} with normal {_fmt(normal)} misses the {mesh.name} mesh; "
            "check that the plane and the mesh are in the same (LPS mm) frame"
        )
    loop_of_segment, loop_count = _loops(keys_start, keys_end)

    # In-plane frame: u, v span the plane, (u, v, normal) right-handed.
    u = np.cross(normal, [1.0, 0.0, 0.0])
    if np.linalg.norm(u) < 0.5:
        u = np.cross(normal, [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    frame = np.stack([u, v])
    a2 = (start - point) @ frame.T
    b2 = (end - point) @ frame.T

    cross = a2[:, 0] * b2[:, 1] - a2[:, 1] * b2[:, 0]
    signed_area = np.bincount(loop_of_segment, weights=cross / 2.0, minlength=loop_count)
    seg_length = np.linalg.norm(b2 - a2, axis=1)
    perimeter = np.bincount(loop_of_segment, weights=seg_length, minlength=loop_count)
    # Crossing number of a ray from the point along +u, per loop.
    straddles = (a2[:, 1] > 0) != (b2[:, 1] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = a2[:, 0] + (0.0 - a2[:, 1]) * (b2[:, 0] - a2[:, 0]) / (b2[:, 1] - a2[:, 1])
    hits = straddles & (x_at > 0)
    crossings = np.bincount(loop_of_segment, weights=hits.astype(float), minlength=loop_count)
    enclosing = np.flatnonzero(crossings.astype(int) % 2 == 1)
    if len(enclosing) == 0:
        raise MeshError(
            f"none of the {loop_count} loop(s) where the plane cuts the {mesh.name} mesh encloses the point "
            f"{_fmt(point)}; put the plane point inside the lumen"
        )
    # The innermost loop around the point is the lumen wall there.
    chosen = int(enclosing[np.argmin(np.abs(signed_area[enclosing]))])
    in_loop = loop_of_segment == chosen
    points2 = a2[in_loop]
    points3 = start[in_loop]
    area = float(abs(signed_area[chosen]))
    loop_perimeter = float(perimeter[chosen])

    max_mm, pair, min_mm, perpendicular_mm = _feret(points2)
    return {
        "max_mm": max_mm,
        "perpendicular_mm": perpendicular_mm,
        "min_mm": min_mm,
        "area_mm2": area,
        "area_equivalent_mm": 2.0 * float(np.sqrt(area / np.pi)),
        "perimeter_mm": loop_perimeter,
        "perimeter_equivalent_mm": loop_perimeter / np.pi,
        "max_endpoints_lps": points3[list(pair)],
        "points_lps": points3,
        "loops": int(loop_count),
    }


def plane_from_mask(mask: Mask) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Plane through a thin landmark mask (a valve annulus, a junction ring).

    Principal component analysis of the voxel centres in LPS mm: the plane
    passes through their centroid and its normal is the direction of least
    spread.

    Parameters
    ----------
    mask : Mask
        A thin, roughly planar selection (a disc or a ring) on any grid.

    Returns
    -------
    centroid_lps : ndarray, shape (3,)
        Centroid of the voxel centres, LPS mm.
    normal : ndarray, shape (3,)
        Unit normal; the sign is chosen so that its largest component is
        positive (the sign of a plane's normal carries no meaning).

    Raises
    ------
    SegmentationError
        Fewer than three voxels, or voxels on one line (no plane defined).

    Examples
    --------
    >>> from medprint.geometry import Geometry
    >>> array = np.zeros((5, 6, 7), bool); array[2, 1:5, 1:6] = True
    >>> centre, normal = plane_from_mask(Mask(array, Geometry(spacing=(1.0, 1.0, 2.0))))
    >>> centre.round(3).tolist(), normal.round(3).tolist()
    ([3.0, 2.5, 4.0], [0.0, 0.0, 1.0])
    """
    zyx = np.argwhere(mask.array)
    if len(zyx) < 3:
        raise SegmentationError(
            f"the {mask.label} mask has {len(zyx)} voxel(s); a plane needs at least three that are not on one line"
        )
    points = mask.geometry.index_to_lps(zyx[:, ::-1].astype(float))
    centroid = points.mean(axis=0)
    _, singular, axes = np.linalg.svd(points - centroid, full_matrices=False)
    if singular[1] <= 1e-9 * max(singular[0], 1.0):
        raise SegmentationError(f"the {mask.label} mask's voxels lie on one line: it defines no plane")
    normal = axes[2]
    if normal[int(np.argmax(np.abs(normal)))] < 0:
        normal = -normal
    return centroid, normal / np.linalg.norm(normal)


def _cut(
    mesh: Mesh, point: NDArray[np.float64], normal: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Segments of the section, oriented by the faces, and the mesh edge each end lies on."""
    vertices = mesh.vertices
    faces = mesh.faces
    distance = (vertices - point) @ normal
    # A vertex exactly on the plane counts as above it: every edge is then cut
    # at most once and the loops stay closed.
    above = distance >= 0
    side = above[faces]
    count = side.sum(axis=1)
    cut = (count == 1) | (count == 2)
    faces = faces[cut]
    side = side[cut]
    lone_above = count[cut] == 1
    # The vertex alone on its side, and the two after it in the face's order.
    lone = np.where(lone_above, np.argmax(side, axis=1), np.argmin(side, axis=1))
    rows = np.arange(len(faces))
    v0 = faces[rows, lone]
    v1 = faces[rows, (lone + 1) % 3]
    v2 = faces[rows, (lone + 2) % 3]
    p01 = _crossing(vertices, distance, v0, v1)
    p02 = _crossing(vertices, distance, v0, v2)
    # Outward faces: walking the loop with the material on the left (seen from
    # +normal) means going from edge (v0, v1) to edge (v0, v2) when v0 is the
    # vertex below the plane, and the other way round when it is above.
    start = np.where(lone_above[:, None], p02, p01)
    end = np.where(lone_above[:, None], p01, p02)
    key01 = _edge_key(v0, v1, len(vertices))
    key02 = _edge_key(v0, v2, len(vertices))
    keys_start = np.where(lone_above, key02, key01)
    keys_end = np.where(lone_above, key01, key02)
    return start, end, keys_start, keys_end


def _crossing(
    vertices: NDArray[np.float64], distance: NDArray[np.float64], a: NDArray[np.int64], b: NDArray[np.int64]
) -> NDArray[np.float64]:
    da, db = distance[a], distance[b]
    t = da / (da - db)
    return vertices[a] + t[:, None] * (vertices[b] - vertices[a])


def _edge_key(a: NDArray[np.int64], b: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    low, high = np.minimum(a, b), np.maximum(a, b)
    return low.astype(np.int64) * n + high


def _loops(keys_start: NDArray[np.int64], keys_end: NDArray[np.int64]) -> tuple[NDArray[np.intp], int]:
    """Which loop each segment belongs to: segments sharing a cut edge are joined."""
    nodes, inverse = np.unique(np.concatenate([keys_start, keys_end]), return_inverse=True)
    count = len(keys_start)
    a, b = inverse[:count], inverse[count:]
    graph = coo_matrix((np.ones(count), (a, b)), shape=(len(nodes), len(nodes)))
    loop_count, node_loop = connected_components(graph, directed=False)
    return node_loop[a], int(loop_count)


def _feret(points2: NDArray[np.float64]) -> tuple[float, tuple[int, int], float, float]:
    """Maximum Feret diameter (and its end points), minimum caliper width, width across the maximum."""
    try:
        hull_index = ConvexHull(points2).vertices
    except QhullError as error:
        raise MeshError(f"the cross-section is degenerate (its points are collinear): {error}") from None
    hull = points2[hull_index]
    difference = hull[:, None, :] - hull[None, :, :]
    distance = np.linalg.norm(difference, axis=2)
    i, j = np.unravel_index(int(np.argmax(distance)), distance.shape)
    max_mm = float(distance[i, j])
    # Minimum caliper width: over the hull's edge directions, the farthest
    # hull point from the edge's line (a classic rotating-calipers fact).
    edges = np.roll(hull, -1, axis=0) - hull
    edge_unit = edges / np.linalg.norm(edges, axis=1, keepdims=True)
    edge_normal = np.stack([-edge_unit[:, 1], edge_unit[:, 0]], axis=1)
    projections = np.einsum("ek,hk->eh", edge_normal, hull)
    widths = projections.max(axis=1) - projections.min(axis=1)
    min_mm = float(widths.min())
    across = (hull[j] - hull[i]) / max_mm
    across_normal = np.array([-across[1], across[0]])
    extent = hull @ across_normal
    perpendicular_mm = float(extent.max() - extent.min())
    return max_mm, (int(hull_index[i]), int(hull_index[j])), min_mm, perpendicular_mm


def _vector(value: ArrayLike, name: str) -> NDArray[np.float64]:
    array = np.asarray(value, dtype=float).reshape(-1)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ParameterError(f"{name}: need three finite numbers (x, y, z in LPS mm), got {value!r}")
    return array


def _fmt(vector: NDArray[np.float64]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in vector) + ")"
