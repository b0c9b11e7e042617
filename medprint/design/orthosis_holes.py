"""Ventilation holes of an orthosis, and what is measured on the finished shell.

Holes are placed on the wall's mid-surface (the skin offset by ``gap + thickness / 2``): candidate points at
least ``margin + diameter / 2`` from every cut are taken greedily in order along the axis and around it, each
at least the spacing from those already taken, so no hole reaches an edge and the bridges between holes are
at least ``spacing - diameter`` wide: the shell cannot fall apart.  Each hole is a cylinder along the skin's
normal there (the gradient of the distance field), subtracted with rounded rims from the piece of wall it is
drilled through.  The cylinder reaches ``diameter / 2`` beyond the wall's faces on each side, so it goes right
through a wall that the curved skin tilts by up to 45 degrees across the hole (a cylinder only as long as the
wall is thick leaves slivers of the faces standing in the hole where the wall is tilted, loose crumbs of
shell); it is cut only from the connected piece of wall at the hole's centre, so another fold of the shell that
passes within that reach (behind an ear, between fingers) is left whole.  The work per hole is done in a small
box around it, never over the whole grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cc3d
import igl
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import DesignError
from ..mesh.model import Mesh
from .fields import DistanceField, field_surface

if TYPE_CHECKING:
    from .orthosis import OrthosisSettings, Region
    from .orthosis_axis import LimbAxis

#: Most vertices the report's gap and thickness figures are measured at (an even subsample beyond).
MEASURED_VERTICES = 100_000

CutDistance = Callable[[NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True)
class Hole:
    """A ventilation hole: centre on the wall's mid-surface and the skin's outward normal there (LPS)."""

    centre: NDArray[np.float64]
    normal: NDArray[np.float64]


def place_holes(distance: DistanceField, axis: LimbAxis, region: Region, settings: OrthosisSettings,
                cut_distance: CutDistance) -> list[Hole]:
    """Hole centres and directions (see the module notes); refused when not one fits."""
    diameter, spacing = settings.hole_diameter_mm, settings.hole_spacing_mm
    mid = settings.gap_mm + settings.thickness_mm / 2
    surface = field_surface(distance, "mid-surface", level=mid)
    points = surface.vertices
    clearance = settings.hole_margin_mm + diameter / 2 + settings.edge_radius_mm
    points = points[cut_distance(points) <= -clearance]
    # Off the grid's padded border (a closed flat face there is no wall).
    low = np.asarray(distance.geometry.origin) + 2 * distance.grid.spacing_mm
    high = np.asarray(distance.geometry.origin) + (np.asarray(distance.grid.shape[::-1]) - 3) * distance.grid.spacing_mm
    points = points[((points > low) & (points < high)).all(axis=1)]
    if len(points) == 0:
        raise DesignError(
            f"--holes {diameter:g}:{spacing:g}: no {diameter:g} mm hole fits {settings.hole_margin_mm:g} mm from every "
            "edge of the region; give smaller holes, a smaller --hole-margin or a larger region"
        )
    cell = max(spacing / 4.0, distance.grid.spacing_mm)
    _, first = np.unique(np.floor(points / cell).astype(np.int64), axis=0, return_index=True)
    candidates = points[np.sort(first)]
    t = axis.along(candidates)
    angle = axis.angle_deg(candidates)
    order = np.lexsort((angle, np.round(t / (spacing * math.sqrt(3) / 2))))
    tree = cKDTree(candidates)
    alive = np.ones(len(candidates), dtype=bool)
    chosen: list[int] = []
    for index in order:  # one pass over a few thousand candidates, one ball query per hole kept
        if not alive[index]:
            continue
        chosen.append(int(index))
        alive[tree.query_ball_point(candidates[index], r=spacing * (1 - 1e-9))] = False
    centres = candidates[chosen]
    return [Hole(centre=c, normal=n) for c, n in zip(centres, _normals(distance, centres))]


def _normals(distance: DistanceField, points: NDArray[np.float64]) -> NDArray[np.float64]:
    h = distance.grid.spacing_mm
    gradient = np.empty_like(points)
    for k in range(3):
        step = np.zeros(3)
        step[k] = h
        gradient[:, k] = distance.sample(points + step) - distance.sample(points - step)
    return gradient / np.linalg.norm(gradient, axis=1, keepdims=True)


def _half_length(settings: OrthosisSettings, spacing: float) -> float:
    """Half the cylinder's length: the wall's half-thickness and the hole's radius (a wall tilted by up to 45
    degrees across the hole is cut through), the rounding and two grid steps."""
    return settings.thickness_mm / 2 + settings.hole_diameter_mm / 2 + settings.edge_radius_mm + 2 * spacing


def apply_holes(values: NDArray[np.float32], distance: DistanceField, holes: list[Hole],
                settings: OrthosisSettings) -> NDArray[np.float32]:
    """Subtract each hole's cylinder from the shell's field (rounded rims), in a box around the hole."""
    from .orthosis import round_intersection

    grid = distance.grid
    h = grid.spacing_mm
    x, y, z = grid.axes_lps()
    radius = settings.hole_diameter_mm / 2
    length = _half_length(settings, h)
    reach = radius + settings.edge_radius_mm + 2 * h
    reach_axial = length + settings.edge_radius_mm + 2 * h
    for hole in holes:
        n = hole.normal
        extent = reach_axial * np.abs(n) + reach * np.sqrt(np.clip(1 - n * n, 0, 1)) + h
        low = np.floor((hole.centre - extent - grid.geometry.origin) / h).astype(int)
        high = np.ceil((hole.centre + extent - grid.geometry.origin) / h).astype(int) + 1
        low = np.maximum(low, 0)
        high = np.minimum(high, np.asarray(grid.shape[::-1]))
        box = (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))
        rx = (x[low[0]:high[0]] - hole.centre[0])[None, None, :]
        ry = (y[low[1]:high[1]] - hole.centre[1])[None, :, None]
        rz = (z[low[2]:high[2]] - hole.centre[2])[:, None, None]
        axial = rx * n[0] + ry * n[1] + rz * n[2]
        radial = np.sqrt(np.maximum(rx * rx + ry * ry + rz * rz - axial * axial, 0))
        cylinder = np.maximum(radial - radius, np.abs(axial) - length)
        local = values[box]
        zone = (radial < reach) & (np.abs(axial) < reach_axial)
        drilled = _wall_at_hole(local < 0, zone, axial, radial, h)
        local[drilled] = round_intersection(local[drilled], -cylinder[drilled].astype(np.float32),
                                            settings.edge_radius_mm)
    return values


def _wall_at_hole(material: NDArray[np.bool_], zone: NDArray[np.bool_], axial: NDArray[np.float64],
                  radial: NDArray[np.float64], h: float) -> NDArray[np.bool_]:
    """The grid points of a hole's box the hole changes: the connected piece of wall (26-neighbours) within the
    hole's reach that holds the hole's centre, and the points next to it (where its faces are read); the whole
    reach if no wall is at the centre (the hole then cuts whatever is there)."""
    labels = cc3d.connected_components(material & zone, connectivity=26)
    centre = (labels > 0) & (np.abs(axial) <= 2 * h) & (radial <= 2 * h)
    if not centre.any():
        return zone
    chosen = np.unique(labels[centre])
    piece = np.isin(labels, chosen[chosen > 0])
    return np.asarray(ndimage.binary_dilation(piece, structure=np.ones((3, 3, 3), dtype=bool)) & zone)


def _stats(values: NDArray[np.float64]) -> dict[str, float | int]:
    if len(values) == 0:
        return {"points": 0}
    return {"points": int(len(values)), "min": round(float(values.min()), 4),
            "p1": round(float(np.percentile(values, 1)), 4), "median": round(float(np.median(values)), 4),
            "p99": round(float(np.percentile(values, 99)), 4), "max": round(float(values.max()), 4)}


def measure_orthosis(mesh: Mesh, skin: Mesh, axis: LimbAxis, holes: list[Hole], settings: OrthosisSettings,
                     cut_distance: CutDistance, spacing: float) -> dict[str, Any]:
    """Gap, thickness, angle covered, holes and extent measured on the finished shell (for the report).

    Vertices are told apart by their normal against the skin's normal at the nearest skin point (inner face:
    facing the skin, outer face: facing away); those within the edge radius and two grid steps of a cut or a
    hole are edge and hole vertices, left out of the gap and thickness.  The gap is the exact distance from the
    inner face's vertices to the skin; the thickness, from the outer face's vertices to the inner face.
    """
    # Every vertex up to MEASURED_VERTICES, else an even subsample (every k-th): the figures are order statistics.
    stride = max(1, math.ceil(mesh.vertex_count / MEASURED_VERTICES))
    sample = np.arange(0, mesh.vertex_count, stride)
    vertices = mesh.vertices[sample]
    squared, face, _ = igl.point_mesh_squared_distance(vertices, skin.vertices, skin.faces)
    to_skin = np.sqrt(squared)
    tri = skin.vertices[skin.faces[face]]
    skin_normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    skin_normal /= np.maximum(np.linalg.norm(skin_normal, axis=1, keepdims=True), 1e-12)
    vertex_normals = mesh.vertex_normals()
    facing = np.einsum("ij,ij->i", vertex_normals[sample], skin_normal)
    near_edge = cut_distance(vertices) > -(settings.edge_radius_mm + 2 * spacing)
    near_hole = np.zeros(len(sample), dtype=bool)
    radius = settings.hole_diameter_mm / 2
    hole_diameters = []
    length = _half_length(settings, spacing)
    reach = math.hypot(length, radius + settings.edge_radius_mm + 2 * spacing)
    sample_tree = cKDTree(vertices, balanced_tree=False, compact_nodes=False)
    all_tree = cKDTree(mesh.vertices, balanced_tree=False, compact_nodes=False)
    for hole in holes:
        for tree, points, flags in ((sample_tree, vertices, near_hole), (all_tree, mesh.vertices, None)):
            index = np.asarray(tree.query_ball_point(hole.centre, r=reach), dtype=np.int64)
            if len(index) == 0:
                continue
            rel = points[index] - hole.centre
            axial = rel @ hole.normal
            radial = np.linalg.norm(rel - np.outer(axial, hole.normal), axis=1)
            close = np.abs(axial) <= length
            if flags is not None:
                flags[index[close & (radial < radius + settings.edge_radius_mm + 2 * spacing)]] = True
            else:
                wall = close & (np.abs(axial) <= settings.thickness_mm / 2) & (radial < radius + 1.0)
                if wall.any():
                    hole_diameters.append(2 * float(radial[wall].min()))
    is_inner = (facing < -0.9) & ~near_edge & ~near_hole
    is_outer = (facing > 0.9) & ~near_edge & ~near_hole
    skin_side = np.zeros(mesh.vertex_count, dtype=bool)
    skin_side[sample[facing < -0.9]] = True
    inner_faces = mesh.faces[skin_side[mesh.faces].any(axis=1)]
    thickness = np.empty(0)
    if len(inner_faces) and is_outer.any():
        squared_t, _, _ = igl.point_mesh_squared_distance(vertices[is_outer], mesh.vertices, inner_faces)
        thickness = np.sqrt(squared_t)
    faces = mesh.faces
    pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    keys = np.sort(pairs[:, 0] * np.int64(mesh.vertex_count) + pairs[:, 1])
    edge_count = 1 + int(np.count_nonzero(np.diff(keys)))
    euler = mesh.vertex_count - edge_count + mesh.face_count
    t = axis.along(mesh.vertices)
    return {
        "measured_vertices": int(len(sample)),
        "gap_mm": {"asked": settings.gap_mm, **_stats(to_skin[is_inner])},
        "thickness_mm": {"asked": settings.thickness_mm, **_stats(thickness)},
        "angle": _angle_covered(axis.angle_deg(mesh.vertices[_off_axis(mesh.vertices, axis)])),
        "extent_along_axis_mm": [round(float(t.min()), 3), round(float(t.max()), 3)],
        "holes": {
            "asked_diameter_mm": settings.hole_diameter_mm, "spacing_mm": settings.hole_spacing_mm,
            "margin_mm": settings.hole_margin_mm, "placed": len(holes),
            "through_holes_in_mesh": int(round((2 - euler) / 2)),
            "diameter_measured_mm": ([round(min(hole_diameters), 4), round(max(hole_diameters), 4)]
                                     if hole_diameters else None),
            "centres_lps_mm": [[round(float(v), 3) for v in hole.centre] for hole in holes],
            "normals_lps": [[round(float(v), 5) for v in hole.normal] for hole in holes],
        },
        "edge_radius_mm": settings.edge_radius_mm,
        "area_mm2": round(mesh.area_mm2(), 2),
        "volume_mm3": round(mesh.volume_mm3(), 2),
    }


def _off_axis(points: NDArray[np.float64], axis: LimbAxis) -> NDArray[np.bool_]:
    """Points farther from the axis than half the median: near it (an uncut end's pole) every angle is met."""
    rel = points - axis.start
    radial = np.linalg.norm(rel - np.outer(rel @ axis.direction, axis.direction), axis=1)
    return np.asarray(radial > 0.5 * np.median(radial))


def _angle_covered(angles: NDArray[np.float64]) -> dict[str, Any]:
    """The angular range the shell covers around the axis, in whole degrees (1-degree bins)."""
    bins = np.zeros(360, dtype=bool)
    bins[np.floor(angles).astype(int) % 360] = True
    covered = int(bins.sum())
    if covered == 360:
        return {"covered_deg": 360, "kept_from_deg": None, "kept_to_deg": None}
    # The opening is the longest run of empty bins (circular); the shell covers the rest.
    empty = np.concatenate([~bins, ~bins])
    best_len, best_start, run = 0, 0, 0
    for index, value in enumerate(empty):  # 720 bins
        run = run + 1 if value else 0
        if run > best_len:
            best_len, best_start = run, index - run + 1
    best_len = min(best_len, 360)
    kept_from = (best_start + best_len) % 360
    kept_to = best_start % 360
    return {"covered_deg": covered, "kept_from_deg": kept_from, "kept_to_deg": kept_to,
            "opening_deg": best_len}
