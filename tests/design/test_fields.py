"""Signed distance fields: exact where designs read them, watertight surfaces by construction."""

from __future__ import annotations

import numpy as np
import pytest

from medprint.design import fields
from medprint.errors import ParameterError
from medprint.geometry import Geometry
from medprint.mesh import assess_mesh
from medprint.mesh.model import Mesh
from medprint.volume import Mask


def _ball_mask(radius: float, spacing: tuple[float, float, float]) -> Mask:
    sx, sy, sz = spacing
    extent = radius + 6
    geometry = Geometry(spacing=spacing, origin=(-extent, -extent, -extent))
    nx, ny, nz = (int(2 * extent / s) + 1 for s in spacing)
    z, y, x = np.meshgrid(np.arange(nz) * sz - extent, np.arange(ny) * sy - extent, np.arange(nx) * sx - extent,
                          indexing="ij")
    return Mask(np.sqrt(x * x + y * y + z * z) < radius, geometry, "ball")


def _icosphere(radius: float) -> Mesh:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=5, radius=radius)
    return Mesh(np.asarray(sphere.vertices, float), np.asarray(sphere.faces, np.int64), "sphere")


def test_mesh_distance_is_exact_near_the_surface_and_the_asked_level():
    sphere = _icosphere(20.0)
    grid = fields.grid_around(sphere, 0.5, 4.0)
    field = fields.mesh_distance(sphere, grid, exact_within_mm=(0.0, 2.0))
    radius = np.linalg.norm(field.points_lps(), axis=1)
    # The icosphere's faces lie up to ~0.02 mm inside the sphere they approximate.
    truth = radius - 20.0
    values = field.values.ravel()
    near = (np.abs(truth) < 0.8) | (np.abs(truth - 2.0) < 0.8)
    assert np.abs(values[near] - truth[near]).max() < 0.03
    # Elsewhere the sign is right and the size within a grid step.
    assert np.all(np.sign(values[np.abs(truth) > 0.5]) == np.sign(truth[np.abs(truth) > 0.5]))
    assert np.abs(values - truth).max() < 0.5


def test_shell_of_a_ball_on_an_anisotropic_grid_has_the_asked_wall():
    mask = _ball_mask(15.0, (0.7, 0.7, 1.4))
    distance = fields.mask_distance(mask, smooth_iterations=20, exact_within_mm=(0.0, 1.5))
    wall = fields.shell(distance, 1.5)
    mesh = fields.field_surface(wall, "wall")
    quality = assess_mesh(mesh)
    assert quality.is_printable and quality.shells == 1 and quality.cavities == 1
    radius = np.linalg.norm(mesh.vertices, axis=1)
    inner, outer = radius[radius < radius.mean()], radius[radius >= radius.mean()]
    # The inner face is the mask's surface (within the staircase of 1.4 mm slices); the wall on top of it is 1.5 mm.
    assert abs(np.median(outer) - np.median(inner) - 1.5) < 0.1


def test_field_surface_volume_matches_the_analytic_solid():
    sphere = _icosphere(12.0)
    grid = fields.grid_around(sphere, 0.4, 2.0)
    solid = fields.mesh_distance(sphere, grid)
    cut = fields.intersection(solid, fields.plane_field(grid, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)))
    mesh = fields.field_surface(cut, "half")
    quality = assess_mesh(mesh)
    assert quality.is_printable and quality.shells == 1
    assert quality.volume_mm3 == pytest.approx(2 / 3 * np.pi * 12.0**3, rel=0.01)
    assert mesh.vertices[:, 2].max() < 0.01  # superior (+z) half removed


def test_union_difference_and_offset_follow_min_max_and_shift():
    sphere = _icosphere(10.0)
    grid = fields.grid_around(sphere, 0.5, 3.0)
    a = fields.mesh_distance(sphere, grid)
    grown = fields.offset(a, 1.0)
    assert fields.field_surface(grown, "grown").volume_mm3() == pytest.approx(4 / 3 * np.pi * 11.0**3, rel=0.01)
    hollow = fields.difference(grown, a)
    assert fields.field_surface(hollow, "hollow").volume_mm3() == pytest.approx(
        4 / 3 * np.pi * (11.0**3 - 10.0**3), rel=0.03)
    assert np.array_equal(fields.union(a, grown).values, grown.values)


def test_bad_grids_and_planes_are_refused():
    with pytest.raises(ParameterError, match="--resolution"):
        fields.working_grid((0, 0, 0), (1000, 1000, 1000), 0.05)
    with pytest.raises(ParameterError, match="--resolution"):
        fields.working_grid((0, 0, 0), (10, 10, 10), 0.0)
    grid = fields.working_grid((0, 0, 0), (10, 10, 10), 1.0)
    with pytest.raises(ParameterError, match="normal"):
        fields.plane_field(grid, (0, 0, 0), (0, 0, 0))


def test_voxelising_in_slabs_gives_the_points_of_the_whole_mesh():
    import trimesh

    tall = trimesh.creation.capsule(height=60.0, radius=8.0, count=[24, 24])
    mesh = Mesh(np.asarray(tall.vertices, float), np.asarray(tall.faces, np.int64), "capsule")
    grid = fields.grid_around(mesh, 0.37, 1.0)
    assert grid.shape[0] > 2 * fields.SLAB_SLICES  # several slabs, and a last one of another size
    assert np.array_equal(fields.voxelise(mesh, grid), fields._voxelise_whole(mesh, grid))
