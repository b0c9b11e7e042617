"""Wall thickness on a real skull: the calvaria of ../shared/data/invesalius_cranium_ct, against rays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import assert_succeeded, run_cli
from medprint.design.walls import wall_thickness
from medprint.io.mesh_files import read_mesh_file
from medprint.mesh import assess_mesh
from medprint.mesh.model import Mesh


def _calvaria(skull: Mesh) -> Mesh:
    """The top 25 mm of the skull inside a 50 x 50 mm square around its middle (manifold3d intersection)."""
    import manifold3d

    low, high = skull.bounds_mm()
    solid = manifold3d.Manifold(manifold3d.Mesh(vert_properties=skull.vertices.astype(np.float32),
                                                tri_verts=skull.faces.astype(np.uint32)))
    centre = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, high[2] - 25.0])
    box = manifold3d.Manifold.cube([50.0, 50.0, 30.0]).translate(centre - [25.0, 25.0, 0.0])
    cut = (solid ^ box).to_mesh()
    return Mesh(np.asarray(cut.vert_properties[:, :3], np.float64), np.asarray(cut.tri_verts, np.int64), "calvaria")


@pytest.mark.realdata
def test_calvaria_walls_agree_with_rays(real_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import igl
    import trimesh

    scan = real_data("invesalius_cranium_ct/cranium_ct.nii.gz")
    assert_succeeded(run_cli("convert", scan, "-o", tmp_path / "skull.stl", "--no-report"))
    calvaria = _calvaria(read_mesh_file(tmp_path / "skull.stl"))
    assert assess_mesh(calvaria).is_printable
    walls = wall_thickness(calvaria)
    surface, values = walls.surface, walls.vertex_thickness_mm
    low, high = calvaria.bounds_mm()
    # The outer and inner tables, 3 mm or more from the cut faces.
    tables = np.all((surface.vertices > np.array(low) + 3) & (surface.vertices < np.array(high) - 3), axis=1)
    assert np.isfinite(values[tables]).mean() > 0.7
    measured = np.flatnonzero(tables & np.isfinite(values))
    # An adult calvaria is 3-10 mm thick.
    assert 3.0 < np.median(values[measured]) < 10.0
    normals = trimesh.Trimesh(surface.vertices, surface.faces, process=False).vertex_normals
    picks = np.random.default_rng(7).choice(measured, 300, replace=False)
    ours, rays = [], []
    for vertex in picks:
        origin = surface.vertices[vertex] - 1e-4 * normals[vertex]
        hits = igl.ray_mesh_intersect(origin, -normals[vertex], surface.vertices, surface.faces, first=True)
        if not hits:
            continue
        face, distance = hits[0][0], hits[0][1]
        corners = surface.vertices[surface.faces[face]]
        face_normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
        if face_normal @ normals[vertex] < -0.9 * np.linalg.norm(face_normal):  # the ray meets the facing table
            ours.append(values[vertex])
            rays.append(distance)
    ours_mm, rays_mm = np.array(ours), np.array(rays)
    assert len(ours_mm) > 50
    # A ball that touches a vertex fits in the chord along its normal: never much thicker than the ray...
    assert np.mean(ours_mm <= rays_mm + 0.1) > 0.9
    # ... and on the plate-like calvaria the two agree closely.
    assert np.median(np.abs(ours_mm - rays_mm)) < 0.3
