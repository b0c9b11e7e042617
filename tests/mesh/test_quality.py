"""assess_mesh and make_printable on hand-made broken meshes."""

from __future__ import annotations

import numpy as np
import pytest

from medprint.errors import MeshError
from medprint.mesh import Mesh, assess_mesh, make_printable, split_bodies

CUBE_VERTICES = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float
)
# Counter-clockwise seen from outside.
CUBE_FACES = np.array(
    [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
     [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]],
    dtype=np.int64,
)


def cube(offset=(0.0, 0.0, 0.0), size=1.0) -> Mesh:
    return Mesh(vertices=CUBE_VERTICES * size + np.asarray(offset), faces=CUBE_FACES.copy())


def combine(*meshes: Mesh) -> Mesh:
    offsets = np.cumsum([0] + [m.vertex_count for m in meshes[:-1]])
    return Mesh(
        vertices=np.vstack([m.vertices for m in meshes]),
        faces=np.vstack([m.faces + o for m, o in zip(meshes, offsets)]),
    )


def test_good_cube_is_printable():
    quality = assess_mesh(cube())
    assert quality.is_printable and quality.bodies == 1
    assert cube().volume_mm3() == pytest.approx(1.0)


def test_missing_face_leaves_boundary_edges():
    quality = assess_mesh(Mesh(CUBE_VERTICES, CUBE_FACES[1:]))
    assert not quality.watertight and quality.boundary_edges == 3 and quality.open_bodies == 1
    assert not quality.is_printable


def test_flipped_face_breaks_winding():
    faces = CUBE_FACES.copy()
    faces[0] = faces[0, ::-1]
    quality = assess_mesh(Mesh(CUBE_VERTICES, faces))
    assert quality.watertight and not quality.winding_consistent and not quality.is_printable


def test_inside_out_cube_is_not_outward():
    quality = assess_mesh(Mesh(CUBE_VERTICES, CUBE_FACES[:, ::-1].copy()))
    assert quality.watertight and quality.winding_consistent and not quality.outward


def test_duplicate_and_degenerate_faces_are_counted():
    faces = np.vstack([CUBE_FACES, CUBE_FACES[3][[1, 2, 0]], [[0, 0, 1]], [[0, 1, 1]]])
    quality = assess_mesh(Mesh(CUBE_VERTICES, faces))
    assert quality.duplicate_faces == 1 and quality.degenerate_faces == 2
    assert not quality.is_printable


def test_zero_area_sliver_is_degenerate():
    vertices = np.vstack([CUBE_VERTICES, [[0.5, 0.0, 0.0]]])  # on the edge 0-1
    faces = np.vstack([CUBE_FACES, [[0, 8, 1]]])
    assert assess_mesh(Mesh(vertices, faces)).degenerate_faces == 1


def test_two_disjoint_cubes_are_two_bodies():
    mesh = combine(cube(), cube(offset=(5, 0, 0)))
    quality = assess_mesh(mesh)
    assert quality.bodies == 2 and quality.is_printable
    assert [b.face_count for b in split_bodies(mesh)] == [12, 12]


def test_three_faces_on_one_edge_is_non_manifold():
    vertices = np.vstack([CUBE_VERTICES, [[0.5, -1.0, -1.0]]])
    faces = np.vstack([CUBE_FACES, [[0, 1, 8]]])  # a fin on the edge 0-1
    quality = assess_mesh(Mesh(vertices, faces))
    assert quality.nonmanifold_edges == 1 and not quality.manifold and not quality.watertight


def test_cavity_must_face_inwards():
    outer, inner = cube(size=4.0), cube(offset=(1, 1, 1), size=2.0)
    cavity = Mesh(inner.vertices, inner.faces[:, ::-1].copy())
    assert assess_mesh(combine(outer, cavity)).is_printable
    # A cavity wall facing outwards claims material that is not there.
    assert not assess_mesh(combine(outer, inner)).outward
    # Two separate solids side by side are both positive.
    assert assess_mesh(combine(cube(), cube(offset=(3, 0, 0)))).outward


def test_make_printable_cleans_and_reorients():
    inside_out = Mesh(CUBE_VERTICES + 3.0, CUBE_FACES[:, ::-1].copy())
    # Duplicate vertex 0 (so coincident vertices need merging) plus a duplicate and a degenerate face.
    vertices = np.vstack([CUBE_VERTICES, CUBE_VERTICES[:1]])
    faces = CUBE_FACES.copy()
    faces[0, 0] = 8
    messy = combine(Mesh(vertices, np.vstack([faces, CUBE_FACES[5], [[1, 1, 2]]])), inside_out)
    result = make_printable(messy)
    assert result.quality.is_printable and result.quality == assess_mesh(result.mesh)
    assert result.mesh.volume_mm3() == pytest.approx(2.0)
    text = " ".join(result.actions)
    assert "merged 1" in text and "duplicate" in text and "degenerate" in text and "inside-out" in text


def test_make_printable_closes_a_hole_with_pymeshfix():
    sphere = _icosphere()
    holed = Mesh(sphere.vertices, sphere.faces[1:])
    result = make_printable(holed)
    assert assess_mesh(result.mesh).is_printable
    assert any("pymeshfix" in a for a in result.actions)


def test_make_printable_refuses_what_it_cannot_fix():
    with pytest.raises(MeshError, match="empty"):
        make_printable(Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)))
    # A lone triangle has no inside; pymeshfix cannot make a solid of it.
    lone = Mesh(np.eye(3), np.array([[0, 1, 2]], dtype=np.int64))
    with pytest.raises(MeshError, match="watertight.*--smooth 0"):
        make_printable(lone)


def test_fine_sphere_is_printable_with_exact_area_and_volume():
    # Speed is measured in benchmarks/, not here; this checks the big-mesh code path gives right answers.
    big = _icosphere(subdivisions=6)  # 82k faces
    quality = assess_mesh(big)
    assert quality.is_printable and quality.shells == 1
    assert quality.volume_mm3 == pytest.approx(big.volume_mm3(), rel=1e-9)
    assert quality.area_mm2 == pytest.approx(big.area_mm2(), rel=1e-9)
    assert 0.995 * 4 / 3 * np.pi * 1000 < quality.volume_mm3 < 4 / 3 * np.pi * 1000


def _icosphere(subdivisions: int = 2) -> Mesh:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=10.0)
    return Mesh(np.asarray(sphere.vertices, dtype=float), np.asarray(sphere.faces, dtype=np.int64))


def test_cavities_and_islands_are_counted_by_nesting_depth():
    outer = cube(size=10.0)
    cavity = cube(offset=(2, 2, 2), size=6.0)
    island = cube(offset=(4, 4, 4), size=2.0)
    beside = cube(offset=(20, 0, 0))
    mesh = combine(outer, Mesh(cavity.vertices, cavity.faces[:, ::-1].copy()), island, beside)
    quality = assess_mesh(mesh)
    assert quality.is_printable
    assert (quality.bodies, quality.shells, quality.cavities) == (4, 3, 1)
    assert "3 shells, 1 cavity" in quality.describe()


def test_nesting_is_exact_when_rays_pass_through_edges_and_vertices():
    # Marching cubes on an axis-aligned grid: every cavity vertex's vertical ray runs
    # exactly through vertices and edges of the outer skin's projection.
    from medprint.geometry import Geometry
    from medprint.mesh import extract_surface
    from medprint.volume import Mask

    block = np.ones((12, 14, 16), dtype=bool)
    for z, y, x in np.ndindex(2, 2, 3):
        block[2 + 5 * z : 5 + 5 * z, 2 + 5 * y : 5 + 5 * y, 2 + 4 * x : 5 + 4 * x] = False
    block[8, 8, 11] = True  # an island in the last cavity
    geometry = Geometry(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=tuple(np.eye(3).ravel()))
    mesh = extract_surface(Mask(array=block, geometry=geometry, label="block"))
    quality = assess_mesh(mesh)
    assert quality.is_printable
    assert (quality.shells, quality.cavities) == (2, 12)
    # Every body turned inside out is still classified by depth, so make_printable puts it right.
    inside_out = Mesh(mesh.vertices, mesh.faces[:, ::-1].copy())
    assert not assess_mesh(inside_out).outward
    result = make_printable(inside_out)
    assert result.quality == quality and result.actions == ("turned 14 inside-out bodies the right way round",)


def test_make_printable_returns_a_printable_mesh_untouched():
    mesh = combine(cube(size=4.0), Mesh(cube(offset=(1, 1, 1), size=2.0).vertices, CUBE_FACES[:, ::-1].copy()))
    result = make_printable(mesh)
    assert result.mesh is mesh and result.actions == ()
    assert result.quality == assess_mesh(mesh) and result.quality.cavities == 1
