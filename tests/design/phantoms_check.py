"""Closed meshes with walls of known thickness, for the wall check (``medprint check``).

Built with manifold3d booleans (exact, watertight) or trimesh's icospheres, in mm; ``rotated`` turns one by
30 deg about an oblique axis and moves it off the grid, so an answer cannot depend on the axes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from medprint.mesh.model import Mesh

#: The oblique placement every test repeats: 30 deg about (1, 2, 3), then a shift that is no multiple of a grid step.
ROTATION = Rotation.from_rotvec(np.radians(30.0) * np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)).as_matrix()
SHIFT = np.array([3.1, -7.3, 11.7])


def _box(low: tuple[float, float, float], high: tuple[float, float, float]):  # type: ignore[no-untyped-def]
    import manifold3d

    lo, hi = np.asarray(low, float), np.asarray(high, float)
    return manifold3d.Manifold.cube(hi - lo).translate(lo)


def _mesh(solid, name: str) -> Mesh:  # type: ignore[no-untyped-def]
    geometry = solid.to_mesh()
    return Mesh(np.asarray(geometry.vert_properties[:, :3], dtype=np.float64),
                np.asarray(geometry.tri_verts, dtype=np.int64), name)


def place(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Where ``rotated`` puts points of the axis-aligned phantom."""
    return np.asarray(points, float) @ ROTATION.T + SHIFT


def rotated(mesh: Mesh) -> Mesh:
    return Mesh(place(mesh.vertices), mesh.faces, mesh.name)


#: The partition's box in ``partitioned_block``: x 14.6..15.4 (0.8 mm), y 2..18, z 2..10.
PARTITION_LOW = (14.6, 2.0, 2.0)
PARTITION_HIGH = (15.4, 18.0, 10.0)


def partitioned_block() -> Mesh:
    """A 30x20x10 mm tray with 2 mm outer walls and floor, two pockets split by a 0.8 mm partition."""
    solid = (_box((0, 0, 0), (30, 20, 10)) - _box((2, 2, 2), (14.6, 18, 11))
             - _box((15.4, 2, 2), (28, 18, 11)))
    return _mesh(solid, "tray")


def stepped_plate() -> Mesh:
    """A 20x20 mm plate, 3 mm thick for x < 10 and 1 mm thick for x > 10 (bottom flush at z = 0)."""
    return _mesh(_box((0, 0, 0), (20, 20, 3)) - _box((10, -1, 1), (21, 21, 4)), "plate")


def solid_cube(edge: float = 20.0) -> Mesh:
    return _mesh(_box((0, 0, 0), (edge, edge, edge)), "cube")


def hollow_sphere(outer_mm: float = 10.0, wall_mm: float = 1.2) -> Mesh:
    """An outer sphere and an inward-facing inner one (icospheres, 20480 triangles each)."""
    import trimesh

    outer = trimesh.creation.icosphere(subdivisions=5, radius=outer_mm)
    inner = trimesh.creation.icosphere(subdivisions=5, radius=outer_mm - wall_mm)
    vertices = np.vstack([outer.vertices, inner.vertices])
    faces = np.vstack([outer.faces, inner.faces[:, ::-1] + len(outer.vertices)])
    return Mesh(vertices.astype(np.float64), faces.astype(np.int64), "shell")


def open_box() -> Mesh:
    """A 10 mm cube with one triangle missing: not watertight."""
    import trimesh

    box = trimesh.creation.box((10.0, 10.0, 10.0))
    return Mesh(np.asarray(box.vertices, float), np.asarray(box.faces[:-1], np.int64), "open")


def wedge_prism(apex_deg: float = 30.0, height_mm: float = 20.0, length_mm: float = 20.0) -> Mesh:
    """An isosceles triangular prism along y: apex edge at x = 0, z = height, base on z = 0 (a knife edge)."""
    import manifold3d

    half = height_mm * np.tan(np.radians(apex_deg) / 2.0)
    section = manifold3d.CrossSection([[(-half, 0.0), (half, 0.0), (0.0, height_mm)]])
    solid = manifold3d.Manifold.extrude(section, length_mm)  # along +z: (x, y_section, z_extrude)
    geometry = solid.to_mesh()
    xyz = np.asarray(geometry.vert_properties[:, :3], dtype=np.float64)
    # (x, y, z) -> (x, z, y) swaps the handedness: flip the triangles to keep them outward.
    return Mesh(xyz[:, [0, 2, 1]], np.asarray(geometry.tri_verts, dtype=np.int64)[:, ::-1].copy(), "wedge")
