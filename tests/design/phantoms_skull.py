"""Skull phantoms for the implant tests: a symmetric ellipsoidal vault with a round piece of bone removed.

The vault is the shell between two ellipsoids (outer semi-axes ``OUTER_MM``, a wall ``WALL_MM`` thick, an outer
and inner table of dense bone with a lighter diploe between them), sampled with one voxel of partial volume on an
anisotropic (optionally oblique) grid.  A defect is the bone inside a ball centred on the outer table, replaced by
soft tissue (~20 HU), as in the real case; the truth is exactly the bone removed.  Also the metrics: the mesh
voxelised on a grid, Dice and the 95th-percentile symmetric surface distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import igl
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medprint.geometry import Geometry
from medprint.mesh.model import Mesh
from medprint.volume import Mask, Volume

OUTER_MM = (72.0, 88.0, 66.0)  # x (left-right), y (posterior-anterior), z (superior) semi-axes
WALL_MM = 6.0
TABLE_HU, DIPLOE_HU, SOFT_HU, AIR_HU = 1400.0, 700.0, 30.0, -1000.0
BONE_LOW_HU = 226.0


@dataclass(frozen=True)
class SkullCase:
    volume: Volume
    removed: Mask          # the bone removed: the ideal implant at gap 0
    defect_point: tuple[float, float, float]


def _ellipsoid_distance(points: NDArray[np.float64], axes: tuple[float, float, float]) -> NDArray[np.float64]:
    """First-order signed distance to an ellipsoid (negative inside): ``(q - 1) / |grad q|``, q = |p / axes|."""
    a = np.asarray(axes)
    scaled = points / a
    q = np.linalg.norm(scaled, axis=-1)
    gradient = scaled / a / np.maximum(q, 1e-9)[..., None]
    return (q - 1.0) / np.maximum(np.linalg.norm(gradient, axis=-1), 1e-9)


def outer_point(direction: tuple[float, float, float]) -> NDArray[np.float64]:
    """Where the ray from the centre along ``direction`` meets the outer table."""
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    return d / np.linalg.norm(d / np.asarray(OUTER_MM))


@lru_cache(maxsize=4)
def _vault(spacing: tuple[float, float, float], rotation_deg: float, centre: tuple[float, float, float],
           diploe_hu: float = DIPLOE_HU, diploe_mm: float = 2.0) -> tuple[Geometry, NDArray[np.float32], NDArray[np.float32]]:
    """The intact vault's CT values and every voxel's LPS position (cached: phantoms share one vault)."""
    angle = np.deg2rad(rotation_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    half = np.asarray(OUTER_MM) + 12.0
    counts = np.ceil(2 * half / np.asarray(spacing)).astype(int) + 1
    # Origin so that the grid (rotated about z) is centred on the skull's centre.
    origin = np.asarray(centre) - rotation @ (np.asarray(spacing) * (counts - 1) / 2)
    geometry = Geometry(spacing=spacing, origin=tuple(origin), direction=tuple(rotation.ravel()))
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in counts[::-1]), indexing="ij")
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3)).astype(np.float32)
    local = lps - np.asarray(centre, np.float32)
    outer = _ellipsoid_distance(local, OUTER_MM)
    inner = -WALL_MM - outer  # negative inside the wall's inner face
    head = _ellipsoid_distance(local, tuple(a + 6.0 for a in OUTER_MM))
    voxel = float(np.mean(spacing))
    wall = np.clip(0.5 - np.maximum(outer, inner) / voxel, 0.0, 1.0)
    diploe = np.clip(0.5 - np.maximum(outer + (WALL_MM - diploe_mm) / 2, -(WALL_MM + diploe_mm) / 2 - outer) / voxel, 0.0, 1.0)
    values = np.where(head < 0, SOFT_HU, AIR_HU) + wall * (TABLE_HU - SOFT_HU) - diploe * (TABLE_HU - diploe_hu)
    return geometry, values.reshape(tuple(counts[::-1])).astype(np.float32), lps


def skull_phantom(*, spacing: tuple[float, float, float] = (0.9, 0.9, 1.8), rotation_deg: float = 0.0,
                  defect_direction: tuple[float, float, float] | None = (1.0, 0.15, 0.35),
                  defect_radius_mm: float = 20.0, centre: tuple[float, float, float] = (5.0, -12.0, 30.0),
                  diploe_hu: float = DIPLOE_HU, diploe_mm: float = 2.0,
                  thin_direction: tuple[float, float, float] | None = None, thin_radius_mm: float = 18.0,
                  thin_peak_hu: float = 130.0) -> SkullCase:
    """A CT of the phantom vault, centred at ``centre`` (LPS), with a defect (or none when direction is None).

    ``thin_direction``: also a patch (the wall inside a ball of ``thin_radius_mm`` about the outer table there)
    where the bone is present but thinner than the voxels: a sheet in mid-wall whose partial-volume bump peaks at
    ``thin_peak_hu``, under the bone threshold (as temporal squama and thin frontal bone look on a real CT).
    """
    geometry, values, lps = _vault(tuple(spacing), float(rotation_deg), tuple(centre), float(diploe_hu), float(diploe_mm))
    if thin_direction is not None:
        local = lps - np.asarray(centre, np.float32)
        mid_wall = _ellipsoid_distance(local, OUTER_MM) + WALL_MM / 2
        patch = (np.linalg.norm(local - outer_point(thin_direction), axis=1) <= thin_radius_mm)
        patch &= np.abs(mid_wall) <= WALL_MM / 2 + 2.0
        sheet = SOFT_HU + (thin_peak_hu - SOFT_HU) * np.clip(1.0 - np.abs(mid_wall) / float(np.mean(spacing)), 0, 1)
        values = np.where(patch.reshape(values.shape), sheet.reshape(values.shape), values).astype(np.float32)
    bone = values >= BONE_LOW_HU
    removed = np.zeros_like(bone)
    point = (0.0, 0.0, 0.0)
    if defect_direction is not None:
        p = np.asarray(centre) + outer_point(defect_direction)
        point = tuple(float(x) for x in p)
        ball = (np.linalg.norm(lps - p, axis=1) <= defect_radius_mm).reshape(bone.shape)
        removed = bone & ball
        values = np.where(removed, 20.0, values)
    volume = Volume(values.astype(np.int16), geometry, modality="CT")
    return SkullCase(volume=volume, removed=Mask(removed, geometry, "removed"), defect_point=point)


def voxelise(mesh: Mesh, geometry: Geometry, shape_zyx: tuple[int, int, int]) -> NDArray[np.bool_]:
    """Voxels of the grid whose centre is inside the closed mesh (generalised winding number > 1/2)."""
    low, high = mesh.bounds_mm()
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    index = geometry.lps_to_index(corners)
    lo = np.maximum(np.floor(index.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 1, np.asarray(shape_zyx[::-1]) - 1)
    k, j, i = np.meshgrid(*(np.arange(a, b + 1) for a, b in zip(lo[::-1], hi[::-1])), indexing="ij")
    points = geometry.index_to_lps(np.column_stack([i.ravel(), j.ravel(), k.ravel()]).astype(float))
    winding = igl.fast_winding_number(np.ascontiguousarray(mesh.vertices, dtype=np.float64), np.ascontiguousarray(mesh.faces, dtype=np.int64), points)
    inside = np.zeros(shape_zyx, bool)
    inside[k.ravel(), j.ravel(), i.ravel()] = winding > 0.5
    return inside


def dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return float(2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


def hd95_mm(a: NDArray[np.bool_], b: NDArray[np.bool_], spacing_zyx: tuple[float, float, float]) -> float:
    """95th-percentile symmetric surface distance between two masks (their border voxels, mm): the larger of the
    two directed 95th percentiles, as the SkullBreak/SkullFix evaluations compute it."""
    border_a = a & ~ndimage.binary_erosion(a)
    border_b = b & ~ndimage.binary_erosion(b)
    to_b = ndimage.distance_transform_edt(~border_b, sampling=spacing_zyx)[border_a]
    to_a = ndimage.distance_transform_edt(~border_a, sampling=spacing_zyx)[border_b]
    return float(max(np.percentile(to_b, 95), np.percentile(to_a, 95)))
