"""extract_surface + smooth_surface against analytic phantoms on anisotropic, oblique and mirrored grids."""

from __future__ import annotations

import numpy as np
import pytest

from medprint.errors import SegmentationError
from medprint.geometry import Geometry
from medprint.mesh import assess_mesh, extract_surface, smooth_surface
from medprint.volume import Mask
from tests import phantoms

#: Deviation limit for smoothing in these tests: below the smallest voxel edge (0.5 mm).
LIMIT_MM = 0.4
SHAPES = [phantoms.sphere, phantoms.ellipsoid, phantoms.hollow_sphere, phantoms.cylinder]


@pytest.mark.parametrize("orientation", ["oblique", "flipped"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
def test_smoothed_surface_matches_analytic_shape(shape, orientation):
    mask, volume_mm3, _, signed_distance = shape(orientation=orientation)
    raw = extract_surface(mask)
    mesh, reached = smooth_surface(raw, max_deviation_mm=LIMIT_MM, sampling_grid=mask.geometry)

    assert abs(mesh.volume_mm3() - volume_mm3) < 0.01 * volume_mm3
    tolerance = phantoms.half_voxel_diagonal_mm(mask.geometry.spacing)
    # Marching cubes on a mask puts each vertex on a grid edge between an inside and an
    # outside voxel centre, so within half a voxel diagonal of the true surface.
    assert np.abs(signed_distance(raw.vertices)).max() <= tolerance
    # Smoothing on the sampling grid keeps every vertex inside that band.
    assert np.abs(signed_distance(mesh.vertices)).max() <= tolerance
    assert 0 < reached <= LIMIT_MM
    quality = assess_mesh(mesh)
    assert quality.is_printable, quality
    assert quality.bodies == (2 if shape is phantoms.hollow_sphere else 1)


@pytest.mark.parametrize("orientation", ["oblique", "flipped"])
def test_hollow_sphere_cavity_is_a_negative_inner_body(orientation):
    mask, volume_mm3, _, _ = phantoms.hollow_sphere(orientation=orientation)
    mesh = extract_surface(mask)
    from medprint.mesh import split_bodies

    outer, inner = split_bodies(mesh)
    assert outer.volume_mm3() > 0 > inner.volume_mm3()
    inner_analytic = 4 / 3 * np.pi * 15.0**3
    assert abs(-inner.volume_mm3() - inner_analytic) < 0.02 * inner_analytic
    assert abs(mesh.volume_mm3() - volume_mm3) < 0.01 * volume_mm3


@pytest.mark.parametrize("orientation", ["axial", "oblique", "flipped"])
def test_single_voxel_lands_at_its_patient_position(orientation):
    direction = phantoms.direction_for(orientation)
    geometry = Geometry(spacing=(0.5, 0.5, 2.5), origin=(-3.0, 7.0, 11.0), direction=tuple(direction.ravel()))
    array = np.zeros((5, 6, 7), dtype=bool)
    array[2, 3, 4] = True  # k=2, j=3, i=4
    mesh = extract_surface(Mask(array, geometry))
    centroid = _volume_centroid(mesh.vertices, mesh.faces)
    np.testing.assert_allclose(centroid, geometry.index_to_lps([4, 3, 2]), atol=1e-9)
    assert mesh.volume_mm3() > 0  # outward, also on the mirrored grid


@pytest.mark.parametrize("orientation", ["oblique", "flipped"])
def test_normals_point_away_from_the_centre(orientation):
    mask, *_ = phantoms.sphere(orientation=orientation)
    mesh = extract_surface(mask)
    tri = mesh.vertices[mesh.faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = tri.mean(axis=1) - np.asarray(phantoms.CENTRE_LPS)
    assert np.all(np.einsum("ij,ij->i", normals, outward) > 0)


def test_body_touching_the_border_is_closed():
    mask, *_ = phantoms.sphere(orientation="axial")
    centre_slice = mask.array.shape[0] // 2
    cut = Mask(np.ascontiguousarray(mask.array[centre_slice:]), mask.geometry)
    quality = assess_mesh(extract_surface(cut))
    assert quality.watertight and quality.outward


def test_flying_edges_shares_points():
    mask, *_ = phantoms.sphere(orientation="oblique")
    mesh = extract_surface(mask)
    assert len(np.unique(mesh.vertices, axis=0)) == mesh.vertex_count
    assert mesh.vertices.dtype == np.float64 and mesh.faces.dtype == np.int64


def test_empty_mask_is_refused_with_a_remedy():
    geometry = Geometry(spacing=(1.0, 1.0, 1.0))
    with pytest.raises(SegmentationError, match="nothing selected.*wider"):
        extract_surface(Mask(np.zeros((3, 3, 3), dtype=bool), geometry))


def _volume_centroid(vertices, faces):
    tri = vertices[faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    return (signed[:, None] * tri.sum(axis=1) / 4.0).sum(axis=0) / signed.sum()
