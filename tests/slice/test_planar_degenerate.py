"""Sections through mesh vertices: a plane exactly at the height of a crease or a row of vertices.

The slicer counts a vertex on the plane as below it, so the rings chain exactly, but the section points
of the edges from such a vertex fall on the vertex itself: a ring can run out along a crease and back
(a zero-width spike) or touch itself.  shapely calls such a ring invalid and ``make_valid`` gives a
GeometryCollection of the polygon and a line.  Each test checks that the layer is a valid
MultiPolygon with the same material as a plane a hair above (where the section is generic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
import trimesh

from medprint.cli import main
from medprint.errors import MeshError
from medprint.io.mesh_files import read_mesh_file
from medprint.slice import planar
from medprint.slice.planar import section

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"
#: A plane this far above a vertex row sees the generic section (ring points distinct); it moves a
#: 500 mm outline by about 1e-5 mm^2, far less than the smallest ring kept (1e-3 mm^2).
NUDGE_MM = 1e-8


def grooved_box() -> tuple[np.ndarray, np.ndarray]:
    """Box [0,4] x [0,2] x [0,2] whose top has a V-groove from the front edge to the middle.

    The groove's floor is the edge (2,0,1)-(2,1,1), so the plane z = 1 runs along it: the section there is
    the full 4 x 2 rectangle, reached by a ring that goes in along the floor edge and back.
    """
    vertices = np.array([
        [0, 0, 0], [4, 0, 0], [4, 2, 0], [0, 2, 0],  # bottom corners
        [0, 0, 2], [4, 0, 2], [4, 2, 2], [0, 2, 2],  # top corners
        [2, 0, 1], [2, 1, 1],                        # groove floor: front end, inner end
    ], dtype=np.float64)
    faces = np.array([
        [0, 2, 1], [0, 3, 2],                                      # bottom
        [4, 8, 9], [4, 9, 7], [8, 5, 9], [5, 6, 9], [9, 6, 7],    # grooved top
        [0, 1, 8], [0, 8, 4], [1, 5, 8],                           # front, notched by the groove
        [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7],
    ], dtype=np.int64)
    return vertices, faces


def with_void(vertices: np.ndarray, faces: np.ndarray, low: list[float], high: list[float]
              ) -> tuple[np.ndarray, np.ndarray]:
    """The mesh plus a closed box cavity from ``low`` to ``high`` (faces pointing into it, out of the material)."""
    cube = trimesh.creation.box(bounds=[low, high])
    cavity = np.asarray(cube.faces, dtype=np.int64)[:, ::-1] + vertices.shape[0]
    return np.vstack([vertices, cube.vertices]), np.vstack([faces, cavity])


def test_grooved_box_is_closed_and_outward() -> None:
    vertices, faces = grooved_box()
    shape = trimesh.Trimesh(vertices, faces, process=False)
    assert shape.is_watertight and shape.is_winding_consistent and shape.volume > 0


def assert_same_material(vertices: np.ndarray, faces: np.ndarray, cut_z: np.ndarray) -> list[shapely.MultiPolygon]:
    layers = section(vertices, faces, cut_z)
    generic = section(vertices, faces, cut_z + NUDGE_MM)
    for at, near in zip(layers, generic):
        assert isinstance(at, shapely.MultiPolygon) and at.is_valid
        assert at.area == pytest.approx(near.area, abs=1e-4)
        assert shapely.symmetric_difference(at, near).area < 1e-4
    return layers


def test_plane_along_a_groove_floor_keeps_the_whole_outline() -> None:
    vertices, faces = grooved_box()
    below, at, above = assert_same_material(vertices, faces, np.array([0.5, 1.0, 1.5]))
    rectangle = shapely.box(0, 0, 4, 2)
    assert below.area == pytest.approx(8.0)
    assert shapely.symmetric_difference(at, rectangle).area < 1e-9
    assert above.area < 8.0 - 1.0  # above the floor the groove is open


def test_plane_along_a_groove_floor_with_a_hole_in_the_same_layer() -> None:
    # The grooved box (its layer has no hole) beside a plain box with a cavity (its layer has one).
    grooved = grooved_box()
    block = trimesh.creation.box(bounds=[[5, 0, 0], [7, 2, 2]])
    other = with_void(np.asarray(block.vertices), np.asarray(block.faces, dtype=np.int64), [5.5, 0.5, 0.5],
                      [6.5, 1.5, 1.5])
    vertices = np.vstack([grooved[0], other[0]])
    faces = np.vstack([grooved[1], other[1] + grooved[0].shape[0]])
    (layer,) = assert_same_material(vertices, faces, np.array([1.0]))
    assert layer.area == pytest.approx(8.0 + 4.0 - 1.0)
    assert sorted(len(part.interiors) for part in layer.geoms) == [0, 1]


def test_a_ring_that_encloses_nothing_after_repair_is_a_mesh_error() -> None:
    # A ring that runs out and straight back encloses nothing: make_valid leaves only a line.  (section drops
    # rings this small before repair; this guards the repair against losing a ring silently.)
    flat = shapely.polygons([[0, 0], [2, 0], [1, 0], [0, 0]])
    with pytest.raises(MeshError, match="layer 3:.*encloses no area"):
        planar._repaired(np.array([shapely.box(0, 0, 1, 1), flat], dtype=object), np.array([0, 2]))


@pytest.fixture(scope="module")
def raw_head_surface(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """The sample scan's marching-cubes surface without smoothing (vertex rows at every voxel height)."""
    stl = tmp_path_factory.mktemp("raw") / "head.stl"
    main(["convert", str(SAMPLE), "-o", str(stl), "--smooth", "0", "--no-report"])
    mesh = read_mesh_file(stl)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def test_raw_marching_cubes_surface_cut_at_its_voxel_heights(raw_head_surface) -> None:
    vertices, faces = raw_head_surface
    # Unsmoothed, every vertex lies on a voxel plane or half-way between two: under a hundred heights.
    heights = np.unique(vertices[:, 2])
    assert heights.size < 200
    layers = assert_same_material(vertices, faces, heights[:-1])  # the highest cuts nothing
    assert all(layer.area > 0 for layer in layers)
