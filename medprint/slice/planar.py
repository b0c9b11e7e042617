"""Cut a closed mesh into planar layers of polygons, all layers at once.

Every (triangle, plane) pair that crosses is found from the triangles' z
ranges with two ``searchsorted`` calls and intersected in one numpy batch.
Each crossing gives one segment from the edge where the surface goes up
through the plane to the edge where it comes down, so that, for outward
normals, material lies on the segment's left: outer contours run
counter-clockwise and holes clockwise, seen from +z.  Segments are chained
into rings by matching the mesh edge at which one ends with the edge at which
the next starts (a key lookup, not a geometric search), and every ring is
put in order by pointer jumping over the successor array, in ``log2(ring
length)`` vectorised steps.  The shared edge point is computed from the
lower-numbered vertex in both triangles, so chained points match exactly.

Rings become polygons with :mod:`shapely` (vectorised); each clockwise ring
(a hole) is put into the smallest counter-clockwise ring of its layer that
contains it, which is the even-odd rule for a correctly oriented mesh and
keeps islands inside holes (a clinoid process inside the cranial cavity).
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

from ..errors import MeshError
from ..progress import ProgressCallback, no_progress
from .paths import follow_pointers

#: Rings enclosing less than this (mm^2) are dropped as slicing noise.
MIN_RING_AREA_MM2 = 1e-3


def layer_planes(height_mm: float, *, first_layer_height_mm: float,
                 layer_height_mm: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cut heights (mid-layer) and layer tops for an object ``height_mm`` tall.

    Returns
    -------
    cut_z, top_z : ndarray of float64, shape (L,)
        Where each layer is sectioned and the nozzle height for it, in mm.

    >>> cut, top = layer_planes(1.0, first_layer_height_mm=0.3, layer_height_mm=0.2)
    >>> [round(float(t), 2) for t in top]
    [0.3, 0.5, 0.7, 0.9, 1.1]
    """
    count = 1 + max(0, int(np.ceil((height_mm - first_layer_height_mm) / layer_height_mm - 1e-9)))
    top = first_layer_height_mm + layer_height_mm * np.arange(count, dtype=np.float64)
    thickness = np.full(count, layer_height_mm)
    thickness[0] = first_layer_height_mm
    return top - thickness / 2.0, top


def _ring_labels(successor: NDArray[np.int64]) -> NDArray[np.int64]:
    """Smallest member of each node's cycle, by min-propagation with pointer doubling.

    After step k a node holds the minimum over the next 2**k nodes of its
    cycle; when a step changes nothing, every window's minimum is that of
    the whole cycle (the windows tile it), so the loop stops there.
    """
    label = np.arange(successor.shape[0], dtype=np.int64)
    jump = successor.copy()
    while True:
        new = np.minimum(label, label[jump])
        if np.array_equal(new, label):
            return label
        label = new
        jump = jump[jump]


def section(vertices: NDArray[np.float64], faces: NDArray[np.int64], cut_z: NDArray[np.float64], *,
            progress: ProgressCallback = no_progress) -> list[shapely.MultiPolygon]:
    """Cross-sections of a closed, outward-facing mesh at heights ``cut_z``.

    Parameters
    ----------
    vertices : ndarray of float64, shape (V, 3)
        Placed vertices, mm.
    faces : ndarray of int64, shape (F, 3)
        Outward-facing triangles.
    cut_z : ndarray of float64, shape (L,)
        Increasing plane heights, mm.

    Returns
    -------
    list of shapely.MultiPolygon, length L
        The material in each plane (possibly empty), islands with their holes.
    """
    z = vertices[:, 2]
    corner_z = z[faces]
    first = np.searchsorted(cut_z, corner_z.min(axis=1), side="left")
    last = np.searchsorted(cut_z, corner_z.max(axis=1), side="left")
    counts = last - first
    total = int(counts.sum())
    layers = cut_z.shape[0]
    if total == 0:
        return [shapely.MultiPolygon() for _ in range(layers)]
    face_of = np.repeat(np.arange(faces.shape[0]), counts)
    starts = np.cumsum(counts) - counts
    plane_of = first[face_of] + (np.arange(total) - starts[face_of])
    progress("section", 0, layers)

    tri = faces[face_of]
    plane = cut_z[plane_of]
    above = z[tri] > plane[:, None]
    # For each (face, plane), the corner k where the boundary enters: corner k below, k+1 above (CCW order);
    # and the corner m where it leaves: m above, m+1 below.
    nxt_above = np.roll(above, -1, axis=1)
    enter_k = np.argmax(~above & nxt_above, axis=1)
    leave_k = np.argmax(above & ~nxt_above, axis=1)
    rows = np.arange(total)
    a_in, b_in = tri[rows, enter_k], tri[rows, (enter_k + 1) % 3]
    a_out, b_out = tri[rows, leave_k], tri[rows, (leave_k + 1) % 3]
    del above, nxt_above, enter_k, leave_k, rows, tri

    vcount = np.int64(vertices.shape[0])

    plane_key = plane_of.astype(np.int64) * (vcount * vcount)

    def edge_point(a: NDArray[np.int64], b: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        zl, zh = z[lo], z[hi]
        t = (plane - zl) / (zh - zl)
        point = vertices[lo, :2] + t[:, None] * (vertices[hi, :2] - vertices[lo, :2])
        return point, plane_key + lo * vcount + hi

    # Segment from the leaving edge to the entering edge keeps material on the left (outer contours CCW).
    start_xy, start_key = edge_point(a_out, b_out)
    end_key = edge_point(a_in, b_in)[1]
    del a_in, b_in, a_out, b_out

    order = np.argsort(start_key, kind="stable")
    found = np.searchsorted(start_key, end_key, sorter=order)
    found = np.minimum(found, total - 1)
    successor = order[found]
    bad = start_key[successor] != end_key
    if bad.any():
        raise MeshError(
            f"the mesh is not closed: {int(bad.sum())} section segments have no continuation; "
            "repair it first (make_printable)"
        )
    del order, found, start_key, end_key

    label = _ring_labels(successor)
    nxt = successor.copy()
    end = successor == label
    nxt[end] = np.flatnonzero(end)
    nxt, dist = follow_pointers(nxt, (~end).astype(np.int64))
    del nxt, end, successor

    # Sort by plane, ring, then position along the ring (root first: largest distance to the end).
    ring_order = np.lexsort((-dist, label, plane_of))
    label = label[ring_order]
    xy = start_xy[ring_order]
    ring_plane = plane_of[ring_order]
    del dist, start_xy, plane_of
    ring_start = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
    ring_len = np.diff(np.r_[ring_start, label.shape[0]])
    ring_layer = ring_plane[ring_start]
    # Signed area per ring (shoelace), positive for counter-clockwise.
    ring_id = np.repeat(np.arange(ring_start.shape[0]), ring_len)
    nxt_idx = np.arange(xy.shape[0]) + 1
    ring_end = ring_start + ring_len
    nxt_idx[ring_end - 1] = ring_start
    cross = xy[:, 0] * xy[nxt_idx, 1] - xy[nxt_idx, 0] * xy[:, 1]
    signed_area = np.bincount(ring_id, weights=cross, minlength=ring_start.shape[0]) / 2.0
    keep_ring = (ring_len >= 3) & (np.abs(signed_area) >= MIN_RING_AREA_MM2)
    keep_point = keep_ring[ring_id]
    # linearrings wants consecutive indices: renumber the kept rings.
    new_id = np.cumsum(keep_ring) - 1
    rings = shapely.linearrings(xy[keep_point], indices=new_id[ring_id[keep_point]])
    kept = np.flatnonzero(keep_ring)
    polygons = shapely.polygons(rings)
    areas = signed_area[kept]
    layer_of = ring_layer[kept]
    result = _assemble_layers(polygons, areas, layer_of, layers, progress)
    progress("section", layers, layers)
    return result


def _assemble_layers(polygons: NDArray[np.object_], areas: NDArray[np.float64], layer_of: NDArray[np.int64],
                     layers: int, progress: ProgressCallback) -> list[shapely.MultiPolygon]:
    """Put every hole into the smallest shell of its layer that contains it."""
    out: list[shapely.MultiPolygon] = [shapely.MultiPolygon() for _ in range(layers)]
    bounds = np.searchsorted(layer_of, np.arange(layers + 1))
    polygons = _repaired(polygons, layer_of)
    for layer in range(layers):
        lo, hi = bounds[layer], bounds[layer + 1]
        if lo == hi:
            continue
        polys = polygons[lo:hi]
        area = areas[lo:hi]
        shells = np.flatnonzero(area > 0)
        holes = np.flatnonzero(area < 0)
        if shells.size == 0:
            continue
        shell_polys = polys[shells]
        if holes.size == 0:
            out[layer] = _as_multipolygon(shapely.union_all(shell_polys) if _overlapping(shell_polys) else
                                          shapely.multipolygons(shapely.get_parts(shell_polys)))
            continue
        tree = shapely.STRtree(shell_polys)
        probe = shapely.point_on_surface(polys[holes])
        hole_idx, shell_idx = tree.query(probe, predicate="within")
        # Smallest containing shell per hole.
        order = np.lexsort((area[shells][shell_idx], hole_idx))
        hole_idx, shell_idx = hole_idx[order], shell_idx[order]
        firsts = np.r_[True, hole_idx[1:] != hole_idx[:-1]]
        hole_idx, shell_idx = hole_idx[firsts], shell_idx[firsts]
        pieces = shell_polys.copy()
        if hole_idx.size:
            # difference per shell with the union of its holes (handles touching holes robustly)
            by_shell = np.argsort(shell_idx, kind="stable")
            sh_sorted = shell_idx[by_shell]
            ho_sorted = hole_idx[by_shell]
            cuts = np.flatnonzero(np.r_[True, sh_sorted[1:] != sh_sorted[:-1]])
            groups = np.split(polys[holes][ho_sorted], cuts[1:])
            targets = sh_sorted[cuts]
            hole_union = np.array([shapely.union_all(g) if len(g) > 1 else g[0] for g in groups], dtype=object)
            pieces[targets] = shapely.difference(shell_polys[targets], hole_union)
        out[layer] = _as_multipolygon(shapely.union_all(pieces) if _overlapping(shell_polys) else
                                      shapely.multipolygons(shapely.get_parts(pieces)))
        if layer % 32 == 0:
            progress("section", layer, layers)
    return out


def _repaired(polygons: NDArray[np.object_], layer_of: NDArray[np.int64]) -> NDArray[np.object_]:
    """Invalid ring polygons made valid, keeping only their polygonal parts (Polygon or MultiPolygon).

    A plane through mesh vertices (a raw marching-cubes surface has whole rows of them at each voxel
    height) counts them as below it, so chaining stays exact, but the section points of every edge
    from such a vertex fall on the vertex itself: a ring can touch itself or run out along a crease
    and back (a zero-width spike).  :func:`shapely.make_valid` then returns a GeometryCollection of
    the polygon and the spike's line; the line has no area, so dropping it loses no material.
    """
    invalid = np.flatnonzero(~shapely.is_valid(polygons))
    if invalid.size == 0:
        return polygons
    fixed = shapely.make_valid(polygons[invalid])
    fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
    lost = shapely.is_empty(fixed)
    if lost.any():
        raise MeshError(
            f"layer {int(layer_of[invalid[lost][0]]) + 1}: a section outline of the mesh encloses no area "
            "after repair (the surface crosses itself); repair the mesh first (make_printable)"
        )
    polygons = polygons.copy()
    polygons[invalid] = fixed
    return polygons


def _polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """The Polygon or MultiPolygon part of ``geometry`` (lines and points have no area)."""
    if isinstance(geometry, (shapely.Polygon, shapely.MultiPolygon)):
        return geometry
    parts = shapely.get_parts(geometry)
    parts = parts[shapely.get_dimensions(parts) == 2]
    return shapely.union_all(parts) if parts.size else shapely.Polygon()


def _overlapping(polys: NDArray[np.object_]) -> bool:
    if len(polys) < 2:
        return False
    tree = shapely.STRtree(polys)
    a, b = tree.query(polys, predicate="intersects")
    return bool(np.any(a != b))


def _as_multipolygon(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    if isinstance(geometry, shapely.MultiPolygon):
        return geometry
    if isinstance(geometry, shapely.Polygon):
        return shapely.MultiPolygon([geometry]) if not geometry.is_empty else shapely.MultiPolygon()
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, (shapely.Polygon, shapely.MultiPolygon))]
    polys: list[shapely.Polygon] = []
    for g in parts:
        polys.extend(g.geoms if isinstance(g, shapely.MultiPolygon) else [g])
    return shapely.MultiPolygon([p for p in polys if not p.is_empty])
