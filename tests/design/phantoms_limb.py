"""A forearm phantom for the orthosis tests: a tapered cylinder with an elliptic section.

The limb runs from ``START_LPS`` along the unit vector ``AXIS`` (tilted off the scanner's z axis, so nothing may
assume an axis-aligned limb) for ``LENGTH_MM``; its cross-section at distance ``t`` from the start is an ellipse
with semi-axes ``a(t)`` along ``MAJOR`` and ``b(t)`` along ``MINOR``, both shrinking linearly from the elbow to the
wrist; the ends are flat.  The lateral surface is a ruled surface (straight along the axis for every angle), so a
mesh with rings a few millimetres apart and thousands of points around is within microns of it: that mesh is the
analytic truth the tests measure distances to, independently of how the orthosis code finds the skin.

Three forms:

* :func:`forearm_ct` -- a CT volume (int16 HU) on an anisotropic grid: air -1000, a 1.5 mm skin at +30 HU,
  fat at -90 HU, muscle at +45 HU and two bones, with partial-volume edges (each voxel's value mixes air and
  skin by the fraction of the voxel inside the limb, as a scanner's finite resolution does), 8 HU noise, and a
  plastic board under the arm (the "table" a skin threshold must not keep);
* :func:`forearm_mesh` -- a closed surface as a 3-D scanner would give it (``closed=False``: the ends left open);
* :func:`forearm_truth` -- the fine analytic mesh (distances to it are the distances to the true skin).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from medprint.geometry import Geometry
from medprint.mesh.model import Mesh
from medprint.volume import Volume

LENGTH_MM = 220.0
#: Semi-axes at the elbow (t = 0) and at the wrist (t = LENGTH_MM), mm.
A_ELBOW, A_WRIST = 34.0, 27.0
B_ELBOW, B_WRIST = 27.0, 19.0
START_LPS = np.array([-20.3, 35.7, -140.2])
_tilt = np.array([0.14, -0.08, 1.0])
AXIS = _tilt / np.linalg.norm(_tilt)
_major = np.cross(AXIS, [0.0, 1.0, 0.0])
MAJOR = _major / np.linalg.norm(_major)  # roughly patient left-right
MINOR = np.cross(AXIS, MAJOR)            # roughly anterior-posterior
SPACING_XYZ = (0.8, 0.7, 2.0)
SKIN_HU, FAT_HU, MUSCLE_HU, BONE_HU, AIR_HU = 30.0, -90.0, 45.0, 900.0, -1000.0


def semi_axes(t: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Semi-axes ``a(t), b(t)`` in mm at distances ``t`` (mm) along the axis from the elbow."""
    f = np.clip(np.asarray(t, dtype=float) / LENGTH_MM, 0.0, 1.0)
    return A_ELBOW + (A_WRIST - A_ELBOW) * f, B_ELBOW + (B_WRIST - B_ELBOW) * f


def local_coordinates(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """``(t, u, v)``: distance along the axis from the start and the offsets along MAJOR and MINOR (mm)."""
    rel = np.asarray(points, dtype=float) - START_LPS
    return rel @ AXIS, rel @ MAJOR, rel @ MINOR


def approximate_signed_distance(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """First-order signed distance to the capped limb (exact on the surface, good to ~0.02 mm within 1 mm of it)
    and the unit outward normal of the lateral surface, for building the partial-volume CT."""
    t, u, v = local_coordinates(points)
    a, b = semi_axes(t)
    da, db = (A_WRIST - A_ELBOW) / LENGTH_MM, (B_WRIST - B_ELBOW) / LENGTH_MM
    f = np.sqrt((u / a) ** 2 + (v / b) ** 2) + 1e-12
    grad_u, grad_v = u / (a * a * f), v / (b * b * f)
    grad_t = -(u * u * da / a**3 + v * v * db / b**3) / f
    norm = np.sqrt(grad_u**2 + grad_v**2 + grad_t**2)
    lateral = (f - 1.0) / norm
    cap = np.maximum(-t, t - LENGTH_MM)
    distance = np.maximum(lateral, cap)
    normal = (grad_u[:, None] * MAJOR + grad_v[:, None] * MINOR + grad_t[:, None] * AXIS) / norm[:, None]
    on_cap = cap > lateral
    normal[on_cap] = np.where((t[on_cap] < 0)[:, None], -AXIS, AXIS)
    return distance, normal


def forearm_grid(spacing_xyz: tuple[float, float, float] = SPACING_XYZ, direction: NDArray[np.float64] | None = None,
                 margin_mm: float = 14.0) -> tuple[Geometry, tuple[int, int, int]]:
    """A grid around the limb with anisotropic voxels and any direction matrix (default axial), and its shape
    ``(nz, ny, nx)``."""
    matrix = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    corners = _surface_points(64, 3)
    local = corners @ matrix  # coordinates along the grid's i, j, k directions (columns of the matrix)
    low = local.min(axis=0) - margin_mm
    high = local.max(axis=0) + margin_mm
    counts = np.ceil((high - low) / np.asarray(spacing_xyz)).astype(int) + 1
    origin = matrix @ low
    geometry = Geometry(spacing=spacing_xyz, origin=tuple(float(c) for c in origin),  # type: ignore[arg-type]
                        direction=tuple(float(v) for v in matrix.ravel()))  # type: ignore[arg-type]
    return geometry, (int(counts[2]), int(counts[1]), int(counts[0]))


def forearm_ct(spacing_xyz: tuple[float, float, float] = SPACING_XYZ, *, direction: NDArray[np.float64] | None = None,
               board: bool = True, noise_hu: float = 8.0, seed: int = 7) -> Volume:
    """The forearm as a CT volume (int16 HU) on an anisotropic grid, with partial-volume edges."""
    geometry, (nz, ny, nx) = forearm_grid(spacing_xyz, direction)
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    points = geometry.index_to_lps(np.column_stack([i.ravel(), j.ravel(), k.ravel()]))
    distance, normal = approximate_signed_distance(points)
    # A voxel's value mixes air and tissue by the fraction of it inside the limb: for a plane at signed distance
    # d through a box, that fraction runs from 1 to 0 over the box's width along the normal (linear ramp model).
    width = np.abs(normal @ geometry.direction_matrix) @ np.asarray(spacing_xyz)
    inside = np.clip(0.5 - distance / width, 0.0, 1.0)
    depth = -distance
    tissue = np.where(depth < 1.5, SKIN_HU, np.where(depth < 6.0, FAT_HU, MUSCLE_HU))
    t, u, v = local_coordinates(points)
    a, b = semi_axes(t)
    for centre_u, radius in ((-0.45, 0.22), (0.45, 0.18)):  # radius and ulna, as fractions of the semi-axes
        in_bone = ((u - centre_u * a) / (radius * a)) ** 2 + (v / (radius * b * 1.4)) ** 2 < 1.0
        tissue = np.where(in_bone & (depth > 6.0), BONE_HU, tissue)
    values = AIR_HU + inside * (tissue - AIR_HU)
    if board:
        # A 12 mm plastic board 10 mm below the arm (the posterior side, +MINOR), never touching it.
        below = v - b
        values = np.where((below > 10.0) & (below < 22.0) & (t > -5) & (t < LENGTH_MM + 5), 120.0, values)
    rng = np.random.default_rng(seed)
    values = values + rng.normal(0.0, noise_hu, size=values.shape)
    array = np.round(values).astype(np.int16).reshape(nz, ny, nx)
    return Volume(array=array, geometry=geometry, modality="CT")


def _surface_points(around: int, rings: int) -> NDArray[np.float64]:
    theta = np.linspace(0.0, 2 * np.pi, around, endpoint=False)
    t = np.linspace(0.0, LENGTH_MM, rings)
    a, b = semi_axes(t)
    tt, th = np.meshgrid(t, theta, indexing="ij")
    aa, bb = np.meshgrid(a, theta, indexing="ij")[0], np.meshgrid(b, theta, indexing="ij")[0]
    return (START_LPS + tt.reshape(-1, 1) * AXIS + (aa * np.cos(th)).reshape(-1, 1) * MAJOR
            + (bb * np.sin(th)).reshape(-1, 1) * MINOR)


def forearm_mesh(around: int = 360, ring_step_mm: float = 5.0, *, closed: bool = True) -> Mesh:
    """The limb's surface as a triangle mesh (LPS mm, outward-facing); ``closed=False`` leaves the ends open."""
    rings = int(round(LENGTH_MM / ring_step_mm)) + 1
    vertices = _surface_points(around, rings)
    ring = np.arange(rings - 1)[:, None] * around
    i = np.arange(around)[None, :]
    a, b_ = ring + i, ring + (i + 1) % around
    c, d = a + around, b_ + around
    # theta runs counter-clockwise about AXIS (MAJOR -> MINOR = AXIS x MAJOR), so (a, b, d) faces outward.
    faces = np.concatenate([np.stack([a, b_, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    if closed:
        centres = np.array([START_LPS, START_LPS + LENGTH_MM * AXIS])
        first, last = len(vertices), len(vertices) + 1
        vertices = np.vstack([vertices, centres])
        rim0 = np.arange(around)
        rim1 = (rings - 1) * around + np.arange(around)
        cap0 = np.stack([np.full(around, first), (rim0 + 1) % around, rim0], -1)
        cap1 = np.stack([np.full(around, last), rim1, (rim1 - (rings - 1) * around + 1) % around
                         + (rings - 1) * around], -1)
        faces = np.concatenate([faces, cap0, cap1])
    return Mesh(vertices=vertices, faces=faces.astype(np.int64), name="forearm")


def forearm_truth() -> Mesh:
    """The analytic skin to within a micron (4096 points around, rings every 2 mm): distances are measured to it."""
    return forearm_mesh(around=4096, ring_step_mm=2.0, closed=True)
