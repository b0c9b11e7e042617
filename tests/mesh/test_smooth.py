"""smooth_surface: keeps volume, never moves a vertex further than the limit, reports the truth."""

from __future__ import annotations

import numpy as np
import pytest

from medprint.errors import ParameterError
from medprint.mesh import extract_surface, smooth_surface
from tests import phantoms


@pytest.fixture(scope="module")
def raw_ellipsoid():
    return extract_surface(phantoms.ellipsoid(orientation="oblique").mask)


@pytest.mark.parametrize("limit_mm", [0.1, 0.4, 2.0])
def test_displacement_is_bounded_and_reported(raw_ellipsoid, limit_mm):
    mesh, reached = smooth_surface(raw_ellipsoid, max_deviation_mm=limit_mm)
    moved = np.linalg.norm(mesh.vertices - raw_ellipsoid.vertices, axis=1)
    assert moved.max() <= limit_mm + 1e-12
    assert reached == pytest.approx(moved.max(), abs=1e-12)
    np.testing.assert_array_equal(mesh.faces, raw_ellipsoid.faces)


def test_volume_kept_and_staircase_reduced(raw_ellipsoid):
    mesh, _ = smooth_surface(raw_ellipsoid, max_deviation_mm=2.0)
    assert abs(mesh.volume_mm3() - raw_ellipsoid.volume_mm3()) < 0.01 * raw_ellipsoid.volume_mm3()
    # Voxel steps inflate the area; smoothing must take some of that out.
    assert mesh.area_mm2() < raw_ellipsoid.area_mm2() * 0.98


def test_zero_iterations_is_identity(raw_ellipsoid):
    mesh, reached = smooth_surface(raw_ellipsoid, iterations=0, max_deviation_mm=1.0)
    assert mesh is raw_ellipsoid and reached == 0.0


@pytest.mark.parametrize(
    ("options", "word"),
    [({"iterations": -1}, "iterations"), ({"passband": 0.0}, "pass band"), ({"max_deviation_mm": 0.0}, "max_deviation_mm")],
)
def test_bad_options_are_named(raw_ellipsoid, options, word):
    kwargs = {"max_deviation_mm": 1.0, **options}
    with pytest.raises(ParameterError, match=word):
        smooth_surface(raw_ellipsoid, **kwargs)


def test_sampling_band_slack_depends_on_the_cut_edge():
    from medprint.mesh.smooth import sampling_band_slack_mm

    mask, *_ = phantoms.sphere(orientation="oblique")
    raw = extract_surface(mask)
    slack = sampling_band_slack_mm(raw, mask.geometry)
    half_diagonal = phantoms.half_voxel_diagonal_mm(mask.geometry.spacing)
    # Vertices on 2.5 mm slice edges may move 1.299 - 1.25 mm; those on 0.5 mm pixel edges 1.299 - 0.25 mm.
    assert set(np.round(np.unique(np.round(slack, 6)), 3)) == {round(half_diagonal - 1.25, 3), round(half_diagonal - 0.25, 3)}
