"""decimate_surface: printable output, honest deviation, backs off when the limit is tight."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medprint.errors import ParameterError
from medprint.mesh import Mesh, assess_mesh, decimate_surface, extract_surface, smooth_surface
from medprint.mesh import _vtk
from tests import phantoms


@pytest.fixture(scope="module")
def smooth_sphere() -> Mesh:
    mask, *_ = phantoms.sphere(orientation="oblique")
    mesh, _ = smooth_surface(extract_surface(mask), max_deviation_mm=0.4)
    return mesh


def _random_surface_points(mesh: Mesh, count: int, seed: int) -> np.ndarray:
    """Points spread uniformly by area over the triangles (not only at vertices)."""
    rng = np.random.default_rng(seed)
    tri = mesh.vertices[mesh.faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(mesh.face_count, size=count, p=area / area.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    return tri[face, 0] + u[:, None] * (tri[face, 1] - tri[face, 0]) + v[:, None] * (tri[face, 2] - tri[face, 0])


def _measured_deviation(original: Mesh, reduced: Mesh, count: int = 200_000) -> float:
    """Hausdorff-like: from points all over each surface to the other, both ways (exact point-to-triangle)."""
    forward = _vtk.distance_to_surface(
        _random_surface_points(original, count, 1), _vtk.polydata_from_arrays(reduced.vertices, reduced.faces)
    )
    backward = _vtk.distance_to_surface(
        _random_surface_points(reduced, count, 2), _vtk.polydata_from_arrays(original.vertices, original.faces)
    )
    return float(max(forward.max(), backward.max()))


def _median_edge(mesh: Mesh) -> float:
    return float(np.median(np.linalg.norm(mesh.vertices[mesh.faces[:, 1]] - mesh.vertices[mesh.faces[:, 0]], axis=1)))


@pytest.mark.parametrize("options", [{"target_fraction": 0.1}, {"target_faces": 8000}])
def test_decimated_mesh_is_printable_and_within_limit(smooth_sphere, options):
    mesh, deviation = decimate_surface(smooth_sphere, max_deviation_mm=1.0, **options)
    assert assess_mesh(mesh).is_printable
    assert deviation <= 1.0
    # An independent measurement over the faces, both ways, stays within the limit, and the reported figure
    # is what it finds up to the reported sampling's spacing.
    measured = _measured_deviation(smooth_sphere, mesh)
    assert measured <= 1.0
    assert measured <= deviation + _median_edge(smooth_sphere)
    assert abs(mesh.volume_mm3() - smooth_sphere.volume_mm3()) < 0.01 * smooth_sphere.volume_mm3()
    assert mesh.face_count < 0.5 * smooth_sphere.face_count


def test_tight_limit_decimates_less_and_says_so(smooth_sphere, caplog):
    with caplog.at_level(logging.INFO, logger="medprint"):
        mesh, deviation = decimate_surface(smooth_sphere, target_fraction=0.02, max_deviation_mm=0.1)
    assert deviation <= 0.1
    assert _measured_deviation(smooth_sphere, mesh) <= 0.1 + 0.1 * _median_edge(smooth_sphere)
    assert mesh.face_count > 0.02 * smooth_sphere.face_count * 2
    assert mesh.face_count < smooth_sphere.face_count
    assert assess_mesh(mesh).is_printable
    assert "instead of" in caplog.text


def test_fraction_one_is_identity(smooth_sphere):
    mesh, deviation = decimate_surface(smooth_sphere, target_fraction=1.0, max_deviation_mm=0.1)
    assert mesh is smooth_sphere and deviation == 0.0


@pytest.mark.parametrize(
    "options",
    [{}, {"target_faces": 10, "target_fraction": 0.5}, {"target_fraction": 0.0}, {"target_faces": 2}],
)
def test_bad_options_name_the_flag(smooth_sphere, options):
    with pytest.raises(ParameterError, match="--decimate"):
        decimate_surface(smooth_sphere, max_deviation_mm=1.0, **options)


def _pinned_cap(mesh: Mesh) -> np.ndarray:
    # Pin the vertices of one side, as a boundary shared with a neighbouring part would be.
    return mesh.vertices[:, 0] > np.percentile(mesh.vertices[:, 0], 80)


def _faces_as_point_sets(mesh: Mesh, faces: np.ndarray) -> set[frozenset[tuple[float, ...]]]:
    return {frozenset(map(tuple, mesh.vertices[face])) for face in faces}


def _check_pinned_kept(original: Mesh, pinned: np.ndarray, reduced: Mesh) -> None:
    kept = {tuple(p) for p in reduced.vertices}
    assert all(tuple(p) in kept for p in original.vertices[pinned])  # exactly, not approximately
    # Every face that touches a pinned vertex is still there, corner for corner.
    touching = original.faces[pinned[original.faces].any(axis=1)]
    assert _faces_as_point_sets(original, touching) <= _faces_as_point_sets(reduced, reduced.faces)


def test_pinned_vertices_and_their_faces_survive_decimation(smooth_sphere):
    pinned = _pinned_cap(smooth_sphere)

    mesh, deviation = decimate_surface(smooth_sphere, target_fraction=0.2, max_deviation_mm=1.0, pinned=pinned)

    assert assess_mesh(mesh).is_printable
    assert mesh.face_count < 0.5 * smooth_sphere.face_count  # the free part was decimated
    _check_pinned_kept(smooth_sphere, pinned, mesh)
    assert _measured_deviation(smooth_sphere, mesh) <= 1.0


def test_pinned_decimation_without_border_locking_falls_back_to_vertex_removal(smooth_sphere, monkeypatch, caplog):
    import fast_simplification

    original_simplify = fast_simplification.simplify

    def old_simplify(*args, **kwargs):
        if "preserve_border" in kwargs:
            raise TypeError("simplify() got an unexpected keyword argument 'preserve_border'")
        return original_simplify(*args, **kwargs)

    monkeypatch.setattr(fast_simplification, "simplify", old_simplify)
    pinned = _pinned_cap(smooth_sphere)

    with caplog.at_level(logging.INFO, logger="medprint"):
        mesh, _ = decimate_surface(smooth_sphere, target_fraction=0.2, max_deviation_mm=1.0, pinned=pinned)

    assert "cannot lock a border" in caplog.text
    assert assess_mesh(mesh).is_printable and mesh.face_count < 0.7 * smooth_sphere.face_count
    _check_pinned_kept(smooth_sphere, pinned, mesh)
