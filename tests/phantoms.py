"""Analytic mask phantoms for tests: shapes whose volume, area and surface are known exactly.

Every phantom is a shape defined in the patient frame (LPS, mm), sampled at the
voxel centres of a grid that is deliberately awkward: anisotropic spacing
(default ``(0.5, 0.5, 2.5)`` mm, like a thick-slice CT) and an oblique or
mirrored direction matrix.  Code that mixes up index order, spacing or
handedness then fails the analytic checks.

Each function returns a :class:`Phantom`, a named tuple that unpacks as
``mask, volume_mm3, area_mm2, signed_distance = sphere()``.

>>> mask, volume_mm3, area_mm2, sdf = sphere(radius_mm=10.0)
>>> round(volume_mm3, 1), round(area_mm2, 1)
(4188.8, 1256.6)
>>> float(sdf(np.array([CENTRE_LPS]))[0])
-10.0
"""

from __future__ import annotations

from typing import Callable, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import elliprg

from medprint.geometry import Geometry
from medprint.volume import Mask

#: Where the phantoms are centred (LPS mm): off the origin so placement errors show.
CENTRE_LPS: tuple[float, float, float] = (12.3, -45.6, 78.9)

#: Default voxel size along i, j, k in mm (thin in-plane, thick slices).
SPACING_MM: tuple[float, float, float] = (0.5, 0.5, 2.5)

Orientation = Literal["axial", "oblique", "flipped"]

#: Signed distance (mm) from ``(N, 3)`` LPS points to the surface; negative inside.
SignedDistance = Callable[[ArrayLike], NDArray[np.float64]]


class Phantom(NamedTuple):
    """A sampled shape and its analytic truth.

    Attributes
    ----------
    mask : Mask
        Voxels whose centre lies inside the shape.
    volume_mm3 : float
        Exact enclosed volume in mm^3.
    area_mm2 : float
        Exact surface area in mm^2.
    signed_distance : callable
        ``signed_distance(points_lps)`` maps ``(N, 3)`` LPS mm points to ``(N,)``
        distances in mm to the surface, negative inside.
    """

    mask: Mask
    volume_mm3: float
    area_mm2: float
    signed_distance: SignedDistance


def rotation_matrix(axis: ArrayLike, angle_deg: float) -> NDArray[np.float64]:
    """Right-handed rotation by ``angle_deg`` about ``axis`` (Rodrigues' formula).

    >>> np.allclose(rotation_matrix([0, 0, 1], 90) @ [1, 0, 0], [0, 1, 0])
    True
    """
    unit = np.asarray(axis, dtype=float)
    unit = unit / np.linalg.norm(unit)
    cross = np.array([[0, -unit[2], unit[1]], [unit[2], 0, -unit[0]], [-unit[1], unit[0], 0]])
    angle = np.deg2rad(angle_deg)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def direction_for(orientation: Orientation) -> NDArray[np.float64]:
    """The 3x3 direction matrix (columns: i, j, k axes in LPS) of a named orientation.

    ``'axial'`` is the identity; ``'oblique'`` is a 30 degree rotation about the
    (1, 2, 3) axis, so no index axis is parallel to a patient axis;
    ``'flipped'`` mirrors the slice axis (k points inferior, det = -1) on top of
    a 20 degree rotation, so index space is left-handed.

    >>> bool(np.linalg.det(direction_for("flipped")) < 0)
    True
    """
    if orientation == "axial":
        return np.eye(3)
    if orientation == "oblique":
        return rotation_matrix([1.0, 2.0, 3.0], 30.0)
    if orientation == "flipped":
        return rotation_matrix([0.0, 1.0, 1.0], 20.0) @ np.diag([1.0, 1.0, -1.0])
    raise ValueError(f"orientation must be 'axial', 'oblique' or 'flipped', got {orientation!r}")


def sphere(
    radius_mm: float = 25.0,
    *,
    orientation: Orientation = "oblique",
    spacing: tuple[float, float, float] = SPACING_MM,
    centre_lps: tuple[float, float, float] = CENTRE_LPS,
) -> Phantom:
    """A solid ball of ``radius_mm`` centred at ``centre_lps``."""
    centre = np.asarray(centre_lps, dtype=float)

    def sdf(points: ArrayLike) -> NDArray[np.float64]:
        return np.linalg.norm(np.asarray(points, dtype=float) - centre, axis=-1) - radius_mm

    half = np.full(3, radius_mm)
    mask = _sample(lambda p: sdf(p) < 0.0, centre, half, orientation, spacing, "sphere")
    return Phantom(mask, 4.0 / 3.0 * np.pi * radius_mm**3, 4.0 * np.pi * radius_mm**2, sdf)


def hollow_sphere(
    outer_radius_mm: float = 25.0,
    inner_radius_mm: float = 15.0,
    *,
    orientation: Orientation = "oblique",
    spacing: tuple[float, float, float] = SPACING_MM,
    centre_lps: tuple[float, float, float] = CENTRE_LPS,
) -> Phantom:
    """A spherical shell: a ball with a closed, concentric spherical cavity.

    The surface has two bodies (outer shell facing out, cavity facing in); the
    area counts both and the volume is the shell's.
    """
    if not 0 < inner_radius_mm < outer_radius_mm:
        raise ValueError("need 0 < inner_radius_mm < outer_radius_mm")
    centre = np.asarray(centre_lps, dtype=float)

    def sdf(points: ArrayLike) -> NDArray[np.float64]:
        radius = np.linalg.norm(np.asarray(points, dtype=float) - centre, axis=-1)
        return np.maximum(radius - outer_radius_mm, inner_radius_mm - radius)

    half = np.full(3, outer_radius_mm)
    mask = _sample(lambda p: sdf(p) < 0.0, centre, half, orientation, spacing, "hollow_sphere")
    volume = 4.0 / 3.0 * np.pi * (outer_radius_mm**3 - inner_radius_mm**3)
    area = 4.0 * np.pi * (outer_radius_mm**2 + inner_radius_mm**2)
    return Phantom(mask, volume, area, sdf)


def ellipsoid(
    semi_axes_mm: tuple[float, float, float] = (30.0, 22.0, 16.0),
    *,
    orientation: Orientation = "oblique",
    spacing: tuple[float, float, float] = SPACING_MM,
    centre_lps: tuple[float, float, float] = CENTRE_LPS,
) -> Phantom:
    """A solid ellipsoid with semi-axes along L, P and S.

    The area is exact (Carlson's symmetric integral,
    ``4 pi R_G(a^2 b^2, a^2 c^2, b^2 c^2)``); the distance is the exact
    Euclidean distance to the ellipsoid, found by bisection on the foot-point
    parameter (precise to ~1e-9 mm).
    """
    axes = np.asarray(semi_axes_mm, dtype=float)
    if axes.shape != (3,) or np.any(axes <= 0):
        raise ValueError(f"semi_axes_mm must be three positive lengths, got {semi_axes_mm}")
    centre = np.asarray(centre_lps, dtype=float)

    def sdf(points: ArrayLike) -> NDArray[np.float64]:
        return _ellipsoid_distance(np.asarray(points, dtype=float) - centre, axes)

    def inside(points: ArrayLike) -> NDArray[np.bool_]:
        # The implicit function is enough to sample the mask and much cheaper than the distance.
        return np.sum(((np.asarray(points, dtype=float) - centre) / axes) ** 2, axis=-1) < 1.0

    mask = _sample(inside, centre, axes, orientation, spacing, "ellipsoid")
    a, b, c = axes
    volume = 4.0 / 3.0 * np.pi * a * b * c
    area = 4.0 * np.pi * float(elliprg(a * a * b * b, a * a * c * c, b * b * c * c))
    return Phantom(mask, volume, area, sdf)


def cylinder(
    radius_mm: float = 15.0,
    length_mm: float = 50.0,
    *,
    orientation: Orientation = "oblique",
    spacing: tuple[float, float, float] = SPACING_MM,
    centre_lps: tuple[float, float, float] = CENTRE_LPS,
) -> Phantom:
    """A solid capped cylinder along the S axis (sharp rims: a test for edges)."""
    centre = np.asarray(centre_lps, dtype=float)
    half_length = length_mm / 2.0

    def sdf(points: ArrayLike) -> NDArray[np.float64]:
        local = np.asarray(points, dtype=float) - centre
        radial = np.linalg.norm(local[..., :2], axis=-1) - radius_mm
        axial = np.abs(local[..., 2]) - half_length
        outside = np.hypot(np.maximum(radial, 0.0), np.maximum(axial, 0.0))
        return outside + np.minimum(np.maximum(radial, axial), 0.0)

    half = np.array([radius_mm, radius_mm, half_length])
    mask = _sample(lambda p: sdf(p) < 0.0, centre, half, orientation, spacing, "cylinder")
    volume = np.pi * radius_mm**2 * length_mm
    area = 2.0 * np.pi * radius_mm * (radius_mm + length_mm)
    return Phantom(mask, volume, area, sdf)


def half_voxel_diagonal_mm(spacing: tuple[float, float, float] = SPACING_MM) -> float:
    """Half the length of a voxel's space diagonal in mm (a natural tolerance).

    >>> round(half_voxel_diagonal_mm((0.5, 0.5, 2.5)), 3)
    1.299
    """
    return 0.5 * float(np.linalg.norm(spacing))


def _sample(
    inside: Callable[[NDArray[np.float64]], NDArray[np.bool_]],
    centre: NDArray[np.float64],
    half_extent: NDArray[np.float64],
    orientation: Orientation,
    spacing: tuple[float, float, float],
    label: str,
) -> Mask:
    """Sample ``inside`` at the voxel centres of a grid that covers the shape's box with a two-voxel margin."""
    direction = direction_for(orientation)
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half_extent
    # Index coordinates of the box corners relative to the centre: ijk = S^-1 D^T lps.
    corner_ijk = corners @ direction / np.asarray(spacing)
    low = np.floor(corner_ijk.min(axis=0)) - 2
    shape_ijk = (np.ceil(corner_ijk.max(axis=0)) + 2 - low + 1).astype(int)
    origin = centre + direction @ (np.asarray(spacing) * low)
    geometry = Geometry(spacing=spacing, origin=tuple(origin), direction=tuple(direction.ravel()))
    kk, jj, ii = np.indices(tuple(shape_ijk[::-1]), dtype=float)
    lps = geometry.index_to_lps(np.stack([ii, jj, kk], axis=-1))
    return Mask(array=np.asarray(inside(lps), dtype=bool), geometry=geometry, label=label)


def _ellipsoid_distance(local: NDArray[np.float64], axes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signed Euclidean distance from ``(..., 3)`` points (ellipsoid frame) to the ellipsoid.

    The foot point of ``p`` is ``x_i = a_i^2 p_i / (a_i^2 + t)`` where ``t`` solves
    ``sum (a_i p_i / (a_i^2 + t))^2 = 1``; the left side falls monotonically in
    ``t`` on ``(-min a_i^2, inf)``, so bisection is safe.  Points exactly on a
    symmetry plane inside the ellipsoid can have their foot point off that
    branch; the phantoms only evaluate near the surface, where this is exact.
    """
    flat = np.abs(local.reshape(-1, 3))
    sq_axes = axes**2
    level = np.sum((flat / axes) ** 2, axis=1)
    low = np.full(len(flat), -sq_axes.min() + 1e-12)
    high = np.full(len(flat), float(np.linalg.norm(flat, axis=1).max() * axes.max() + 1.0))
    for _ in range(100):
        mid = 0.5 * (low + high)
        value = np.sum((axes * flat / (sq_axes + mid[:, None])) ** 2, axis=1)
        outside = value > 1.0
        low = np.where(outside, mid, low)
        high = np.where(outside, high, mid)
    t = 0.5 * (low + high)
    foot = sq_axes * flat / (sq_axes + t[:, None])
    distance = np.linalg.norm(flat - foot, axis=1)
    return np.where(level < 1.0, -distance, distance).reshape(local.shape[:-1])
