"""Cross-section diameters and landmark planes on analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest
from phantoms import CENTRE_LPS, cylinder, rotation_matrix

from medprint.errors import MeshError, ParameterError, SegmentationError
from medprint.geometry import Geometry
from medprint.measure import cross_section_diameters, plane_from_mask
from medprint.mesh import Mesh, extract_surface
from medprint.volume import Mask

SEGMENTS = 256


def tube(semi_axes_mm=(10.0, 10.0), length_mm=60.0, *, inner=None, centre=(0.0, 0.0, 0.0), rotation=None) -> Mesh:
    """A closed, outward-facing elliptic cylinder along z (optionally hollow), sampled exactly on the ellipse."""
    a, b = semi_axes_mm
    angle = np.linspace(0.0, 2 * np.pi, SEGMENTS, endpoint=False)
    rings = []
    for ax, bx in [(a, b)] + ([inner] if inner else []):
        ring = np.stack([ax * np.cos(angle), bx * np.sin(angle)], axis=1)
        rings.append(ring)
    vertices, faces = [], []

    def add_wall(ring, outward):
        base = sum(len(v) for v in vertices)
        bottom = np.column_stack([ring, np.full(len(ring), -length_mm / 2)])
        top = np.column_stack([ring, np.full(len(ring), length_mm / 2)])
        vertices.append(np.vstack([bottom, top]))
        n = len(ring)
        i = np.arange(n)
        j = (i + 1) % n
        quads = np.stack([np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)], 1).reshape(-1, 3)
        faces.append(base + (quads if outward else quads[:, ::-1]))
        return base

    outer_base = add_wall(rings[0], True)
    n = SEGMENTS
    if inner:
        inner_base = add_wall(rings[1], False)
        i = np.arange(n)
        j = (i + 1) % n
        for level, flip in ((0, True), (n, False)):  # annular caps joining the two walls
            o_i, o_j, n_i, n_j = outer_base + level + i, outer_base + level + j, inner_base + level + i, inner_base + level + j
            caps = np.concatenate([np.stack([o_i, n_j, o_j], 1), np.stack([o_i, n_i, n_j], 1)])
            faces.append(caps if flip else caps[:, ::-1])
    else:
        centres = np.array([[0.0, 0.0, -length_mm / 2], [0.0, 0.0, length_mm / 2]])
        vertices.append(centres)
        c0 = outer_base + 2 * n
        i = np.arange(n)
        j = (i + 1) % n
        faces.append(np.stack([np.full(n, c0), outer_base + j, outer_base + i], 1))
        faces.append(np.stack([np.full(n, c0 + 1), outer_base + n + i, outer_base + n + j], 1))
    points = np.vstack(vertices)
    if rotation is not None:
        points = points @ np.asarray(rotation).T
    return Mesh(vertices=points + np.asarray(centre), faces=np.vstack(faces).astype(np.int64), name="tube")


def polygon_area(a, b):
    return 0.5 * SEGMENTS * a * b * np.sin(2 * np.pi / SEGMENTS)


def test_mesh_is_closed_and_outward():
    mesh = tube()
    assert mesh.volume_mm3() == pytest.approx(polygon_area(10, 10) * 60.0, rel=1e-9)


def test_circle_cut_across():
    d = cross_section_diameters(tube(), (0.0, 0.0, 5.0), (0.0, 0.0, 1.0))
    assert d["max_mm"] == pytest.approx(20.0, abs=1e-9)
    assert 20.0 * np.cos(np.pi / SEGMENTS) - 1e-9 <= d["min_mm"] <= 20.0
    assert d["area_mm2"] == pytest.approx(polygon_area(10, 10), rel=1e-9)
    assert 20.0 * 0.9999 <= d["area_equivalent_mm"] <= 20.0
    assert 20.0 * 0.9999 <= d["perimeter_equivalent_mm"] <= 20.0
    assert d["loops"] == 1
    assert np.linalg.norm(d["max_endpoints_lps"][0] - d["max_endpoints_lps"][1]) == pytest.approx(d["max_mm"])


def test_ellipse_and_oblique_plane_and_sign_of_normal():
    mesh = tube((12.0, 7.0), centre=CENTRE_LPS)
    d = cross_section_diameters(mesh, CENTRE_LPS, (0.0, 0.0, -3.0))
    assert d["max_mm"] == pytest.approx(24.0, abs=1e-9)
    assert 14.0 * np.cos(np.pi / SEGMENTS) - 1e-9 <= d["min_mm"] <= 14.0 + 1e-9
    assert d["perpendicular_mm"] == pytest.approx(14.0, abs=0.01)
    assert d["area_mm2"] == pytest.approx(polygon_area(12, 7), rel=1e-9)
    # A plane tilted by 30 degrees about the x axis: an ellipse stretched along y by 1/cos(30).
    tilt = np.radians(30.0)
    circle = tube((10.0, 10.0), centre=CENTRE_LPS)
    t = cross_section_diameters(circle, CENTRE_LPS, (0.0, np.sin(tilt), np.cos(tilt)))
    assert t["max_mm"] == pytest.approx(20.0 / np.cos(tilt), rel=1e-3)
    assert t["min_mm"] == pytest.approx(20.0, rel=1e-3)
    assert t["area_mm2"] == pytest.approx(polygon_area(10, 10) / np.cos(tilt), rel=1e-9)


def test_rotated_tube_cut_along_its_axis_normal():
    rotation = rotation_matrix((1.0, 2.0, 0.5), 40.0)
    mesh = tube((9.0, 6.0), rotation=rotation, centre=CENTRE_LPS)
    d = cross_section_diameters(mesh, CENTRE_LPS, rotation @ [0.0, 0.0, 1.0])
    assert d["max_mm"] == pytest.approx(18.0, abs=1e-6)
    assert d["area_mm2"] == pytest.approx(polygon_area(9, 6), rel=1e-9)


def test_hollow_tube_lumen_and_wall():
    mesh = tube((10.0, 10.0), inner=(7.0, 7.0))
    lumen = cross_section_diameters(mesh, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    assert lumen["max_mm"] == pytest.approx(14.0, abs=1e-9)
    assert lumen["loops"] == 2
    # A point in the wall is enclosed by the outer loop only.
    wall = cross_section_diameters(mesh, (8.5, 0.0, 0.0), (0.0, 0.0, 1.0))
    assert wall["max_mm"] == pytest.approx(20.0, abs=1e-9)


def test_picks_the_loop_around_the_point():
    left = tube((5.0, 5.0), centre=(-20.0, 0.0, 0.0))
    right = tube((8.0, 8.0), centre=(20.0, 0.0, 0.0))
    both = Mesh(
        vertices=np.vstack([left.vertices, right.vertices]),
        faces=np.vstack([left.faces, right.faces + len(left.vertices)]),
    )
    assert cross_section_diameters(both, (-20.0, 1.0, 0.0), (0, 0, 1))["max_mm"] == pytest.approx(10.0)
    assert cross_section_diameters(both, (21.0, 0.0, 3.0), (0, 0, 1))["max_mm"] == pytest.approx(16.0)
    with pytest.raises(MeshError, match="none of the 2 loop"):
        cross_section_diameters(both, (0.0, 0.0, 0.0), (0, 0, 1))


def test_voxelised_cylinder_on_an_oblique_anisotropic_grid():
    radius = 12.0
    mask = cylinder(radius_mm=radius, length_mm=40.0, orientation="oblique", spacing=(0.5, 0.6, 1.2)).mask
    d = cross_section_diameters(extract_surface(mask), CENTRE_LPS, (0.0, 0.0, 1.0))
    # Marching cubes on a 0/1 mask: the boundary lies within about half a voxel of the truth.
    assert abs(d["max_mm"] - 2 * radius) <= 1.2
    assert abs(d["area_equivalent_mm"] - 2 * radius) <= 0.6
    assert abs(d["min_mm"] - 2 * radius) <= 1.2


def test_bad_input():
    mesh = tube()
    with pytest.raises(ParameterError, match="plane normal: must not be zero"):
        cross_section_diameters(mesh, (0, 0, 0), (0, 0, 0))
    with pytest.raises(ParameterError, match="plane point: need three finite numbers"):
        cross_section_diameters(mesh, (0, 0), (0, 0, 1))
    with pytest.raises(MeshError, match="misses the tube mesh"):
        cross_section_diameters(mesh, (0, 0, 100.0), (0, 0, 1))


def test_plane_from_a_tilted_ring_mask():
    geometry = Geometry(spacing=(0.8, 0.8, 1.5), origin=(-30.0, -30.0, -30.0))
    k, j, i = np.indices((40, 75, 75), dtype=float)
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1))
    normal = rotation_matrix((1.0, 0.0, 0.0), 25.0) @ [0.0, 0.0, 1.0]
    height = lps @ normal
    radial = np.linalg.norm(lps - height[..., None] * normal, axis=-1)
    ring = (np.abs(height) <= 1.0) & (radial >= 9.0) & (radial <= 12.0)
    centre, found = plane_from_mask(Mask(ring, geometry, "ring"))
    assert np.linalg.norm(centre) <= 0.2
    assert np.degrees(np.arccos(abs(float(found @ normal)))) <= 1.0
    assert np.linalg.norm(found) == pytest.approx(1.0)


def test_plane_from_mask_refuses_too_few_voxels_or_a_line():
    geometry = Geometry(spacing=(1.0, 1.0, 1.0))
    array = np.zeros((5, 5, 5), bool)
    array[2, 2, 2] = True
    with pytest.raises(SegmentationError, match="has 1 voxel"):
        plane_from_mask(Mask(array, geometry, "annulus"))
    array[2, 2, :] = True
    with pytest.raises(SegmentationError, match="on one line"):
        plane_from_mask(Mask(array, geometry, "annulus"))
