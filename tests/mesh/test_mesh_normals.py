"""Mesh's per-triangle areas and normals and its per-vertex normals."""

from __future__ import annotations

import numpy as np
import trimesh

from medprint.mesh.model import Mesh


def test_areas_and_normals_of_a_box_point_out_and_add_up():
    box = trimesh.creation.box((2.0, 3.0, 4.0))
    mesh = Mesh(np.asarray(box.vertices, float), np.asarray(box.faces, np.int64))
    assert np.isclose(mesh.face_areas_mm2().sum(), 2 * (6 + 8 + 12))
    centres = mesh.vertices[mesh.faces].mean(axis=1)
    assert np.all(np.einsum("ij,ij->i", mesh.face_normals(), centres) > 0)
    assert np.allclose(np.linalg.norm(mesh.face_normals(), axis=1), 1.0)
    vertex = mesh.vertex_normals()
    assert np.allclose(np.linalg.norm(vertex, axis=1), 1.0)
    assert np.all(np.einsum("ij,ij->i", vertex, mesh.vertices) > 0)


def test_a_triangle_of_no_area_has_a_zero_normal():
    mesh = Mesh(np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]]), np.array([[0, 1, 2]]))
    assert np.array_equal(mesh.face_normals(), np.zeros((1, 3)))
    assert mesh.face_areas_mm2()[0] == 0.0
