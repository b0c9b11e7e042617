"""STL facet normals: unit length and outward, (0, 0, 0) where a face has no area (binary and ASCII)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import stl.mesh

from medprint.io import write_mesh
from medprint.mesh import Mesh


def _box(size: tuple[float, float, float], origin: tuple[float, float, float]) -> Mesh:
    corners = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], dtype=float)
    faces = np.array([
        [0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
        [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5],
    ])
    return Mesh(vertices=corners * size + origin, faces=faces, name="box")


def _expected_normals(mesh: Mesh) -> np.ndarray:
    tri = mesh.vertices[mesh.faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return cross / np.linalg.norm(cross, axis=1, keepdims=True)


@pytest.mark.parametrize("ascii", [False, True], ids=["binary", "ascii"])
def test_stl_normals_are_unit_and_outward(tmp_path: Path, ascii: bool) -> None:
    # A 40 x 25 x 3 mm box far from the origin (patient coordinates): the raw cross products are 6..1000 long.
    mesh = _box((40.0, 25.0, 3.0), (-120.0, 85.0, 1400.0))
    path = write_mesh(mesh, tmp_path / "box.stl", ascii=ascii)

    read = stl.mesh.Mesh.from_file(str(path), calculate_normals=False)

    lengths = np.linalg.norm(read.normals.astype(float), axis=1)
    assert np.allclose(lengths, 1.0, atol=1e-6), lengths
    assert np.allclose(read.normals, _expected_normals(mesh), atol=1e-6)
    centre = mesh.vertices.mean(axis=0)
    outward = np.einsum("ij,ij->i", read.normals.astype(float), read.vectors.mean(axis=1) - centre)
    assert np.all(outward > 0)


@pytest.mark.parametrize("ascii", [False, True], ids=["binary", "ascii"])
def test_stl_normal_of_a_face_without_area_is_zero(tmp_path: Path, ascii: bool) -> None:
    box = _box((10.0, 10.0, 10.0), (0.0, 0.0, 0.0))
    # One face with a repeated vertex and one sliver whose corners lie on a line.
    extra = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [10.0, 10.0, 10.0]])
    mesh = Mesh(
        vertices=np.vstack([box.vertices, extra]),
        faces=np.vstack([box.faces, [[0, 1, 1], [8, 9, 10]]]),
        name="box",
    )
    path = write_mesh(mesh, tmp_path / "box.stl", ascii=ascii)

    normals = stl.mesh.Mesh.from_file(str(path), calculate_normals=False).normals.astype(float)

    assert np.array_equal(normals[-2:], np.zeros((2, 3)))
    assert np.allclose(np.linalg.norm(normals[:-2], axis=1), 1.0, atol=1e-6)
