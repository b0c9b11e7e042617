"""Wall thickness as the largest inscribed sphere, on shapes whose walls are known (issue 10 point 8)."""

from __future__ import annotations

import numpy as np
import pytest

from medprint.design.walls import (
    MAX_WALL_GRID_POINTS,
    WallThickness,
    default_resolution_mm,
    thin_regions,
    wall_thickness,
)
from medprint.errors import ParameterError
from medprint.mesh.model import Mesh
from phantoms_check import (
    PARTITION_HIGH,
    PARTITION_LOW,
    ROTATION,
    SHIFT,
    hollow_sphere,
    partitioned_block,
    place,
    rotated,
    solid_cube,
    stepped_plate,
)

TOLERANCE_MM = 0.1


def _back(points: np.ndarray) -> np.ndarray:
    """Undo :func:`phantoms_check.place`."""
    return (np.asarray(points, float) - SHIFT) @ ROTATION


@pytest.fixture(scope="module", params=["axis", "rotated"])
def tray(request: pytest.FixtureRequest) -> tuple[str, Mesh, WallThickness]:
    mesh = partitioned_block() if request.param == "axis" else rotated(partitioned_block())
    return request.param, mesh, wall_thickness(mesh, thinnest_mm=1.0)


@pytest.fixture(scope="module", params=["axis", "rotated"])
def sphere(request: pytest.FixtureRequest) -> tuple[str, Mesh, WallThickness]:
    mesh = hollow_sphere() if request.param == "axis" else rotated(hollow_sphere())
    return request.param, mesh, wall_thickness(mesh)


@pytest.fixture(scope="module", params=["axis", "rotated"])
def plate(request: pytest.FixtureRequest) -> tuple[str, Mesh, WallThickness]:
    mesh = stepped_plate() if request.param == "axis" else rotated(stepped_plate())
    return request.param, mesh, wall_thickness(mesh, thinnest_mm=2.0)


@pytest.fixture(scope="module", params=["axis", "rotated"])
def cube(request: pytest.FixtureRequest) -> tuple[str, Mesh, WallThickness]:
    mesh = solid_cube() if request.param == "axis" else rotated(solid_cube())
    return request.param, mesh, wall_thickness(mesh)


def test_partition_of_08_mm_found_where_it_is(tray: tuple[str, Mesh, WallThickness]) -> None:
    placement, _, walls = tray
    assert walls.min_wall_mm == pytest.approx(0.8, abs=TOLERANCE_MM)
    regions = thin_regions(walls, 1.0)
    # One wall: both faces of the partition (and its top) are one region, nothing else of the 2 mm tray.
    assert len(regions) == 1, [r.as_dict() for r in regions]
    region = regions[0]
    assert region.min_thickness_mm == pytest.approx(0.8, abs=TOLERANCE_MM)
    centre = np.asarray(region.centroid_lps)
    if placement == "rotated":
        centre = _back(centre)
    assert abs(centre[0] - 15.0) < 0.2
    assert 2.0 <= centre[1] <= 18.0 and 2.0 <= centre[2] <= 10.0
    # Region corners inside the partition's box (the bounds are those of the rotated box when rotated).
    corners = np.array(region.bounds_lps)
    if placement == "axis":
        assert np.all(corners[0] >= np.array(PARTITION_LOW) - 0.3)
        assert np.all(corners[1] <= np.array(PARTITION_HIGH) + 0.3)
    # Both faces (16 x 8 mm each) and the 0.8 x 16 mm top: 268.8 mm2; the strips along its convex edges,
    # where no ball between facing sides reaches, may be left out.
    assert 0.8 * 268.8 <= region.area_mm2 <= 1.05 * 268.8


def test_the_2_mm_walls_are_2_mm(tray: tuple[str, Mesh, WallThickness]) -> None:
    _, _, walls = tray
    outer = walls.vertex_thickness_mm[np.isfinite(walls.vertex_thickness_mm)]
    # The outer walls and floor are 2 mm thick: the commonest reading, exactly.
    values, counts = np.unique(np.round(outer, 1), return_counts=True)
    assert values[np.argmax(counts)] == pytest.approx(2.0, abs=TOLERANCE_MM)
    assert not thin_regions(walls, 0.7)


def test_hollow_sphere_wall_of_12_mm(sphere: tuple[str, Mesh, WallThickness]) -> None:
    _, mesh, walls = sphere
    assert walls.min_wall_mm == pytest.approx(1.2, abs=TOLERANCE_MM)
    values = walls.vertex_thickness_mm
    # Every vertex of both surfaces is measured, all within the tolerance.
    assert np.isfinite(values).all()
    assert np.abs(values - 1.2).max() <= TOLERANCE_MM
    # Against 1.3 mm the whole shell (inner and outer surface: one wall) is one thin region.
    regions = thin_regions(walls, 1.3)
    assert len(regions) == 1
    assert regions[0].area_mm2 == pytest.approx(mesh.area_mm2(), rel=0.01)
    assert not thin_regions(walls, 1.1)


def test_sphere_agrees_with_rays_cast_inwards(sphere: tuple[str, Mesh, WallThickness]) -> None:
    """Cross-check with an independent method: rays along the inward vertex normal (libigl ray casting)."""
    import igl
    import trimesh

    _, mesh, walls = sphere
    normals = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).vertex_normals
    rng = np.random.default_rng(4)
    picks = rng.choice(mesh.vertex_count // 2, 100, replace=False)  # vertices of the outer surface
    ray_thickness = []
    for vertex in picks:
        origin = mesh.vertices[vertex] - 1e-4 * normals[vertex]
        hits = igl.ray_mesh_intersect(origin, -normals[vertex], mesh.vertices, mesh.faces, first=True)
        assert hits, "a ray from the outer surface inwards must meet the inner one"
        ray_thickness.append(hits[0][1] + 1e-4)
    # The sampling surface is the mesh itself here (its edges are short enough): same vertex numbers.
    assert walls.surface.vertex_count == mesh.vertex_count
    assert np.abs(walls.vertex_thickness_mm[picks] - np.array(ray_thickness)).max() <= TOLERANCE_MM


def test_step_plate_flags_only_the_1_mm_part(plate: tuple[str, Mesh, WallThickness]) -> None:
    placement, _, walls = plate
    assert walls.min_wall_mm == pytest.approx(1.0, abs=TOLERANCE_MM)
    regions = thin_regions(walls, 2.0)
    assert len(regions) == 1
    thin = walls.vertex_thickness_mm < 2.0 - 1e-3
    where = walls.surface.vertices[thin]
    if placement == "rotated":
        where = _back(where)
    # Thin vertices: the 1 mm part (x > 10), and the bottom just under the step, where the wall grows
    # from 1 to 3 mm; nothing of the 3 mm part further than one thick-wall away.
    assert where[:, 0].min() > 10.0 - 1.5
    assert where[:, 2].max() < 1.0 + 0.5  # the foot of the step's face, in the concave corner
    # Top and bottom of the thin part: 2 x 10 x 20 mm.
    assert 0.85 * 400 <= regions[0].area_mm2 <= 1.15 * 400
    thick_side = walls.surface.vertices[:, 0] if placement == "axis" else _back(walls.surface.vertices)[:, 0]
    far = (thick_side < 6.0) & np.isfinite(walls.vertex_thickness_mm)
    assert np.median(walls.vertex_thickness_mm[far]) == pytest.approx(3.0, abs=TOLERANCE_MM)


def test_solid_cube_wall_is_its_edge(cube: tuple[str, Mesh, WallThickness]) -> None:
    _, _, walls = cube
    assert walls.min_wall_mm == pytest.approx(20.0, abs=TOLERANCE_MM)
    # Its convex edges and corners are no thin walls.
    assert not thin_regions(walls, 5.0)
    assert not (walls.vertex_thickness_mm < 19.9).any()


def test_placement_does_not_change_the_answers() -> None:
    straight = wall_thickness(stepped_plate(), resolution_mm=0.25)
    turned = wall_thickness(rotated(stepped_plate()), resolution_mm=0.25)
    assert straight.min_wall_mm == pytest.approx(turned.min_wall_mm, abs=0.05)
    a, b = thin_regions(straight, 2.0), thin_regions(turned, 2.0)
    assert len(a) == len(b) == 1
    assert a[0].area_mm2 == pytest.approx(b[0].area_mm2, rel=0.05)
    assert np.linalg.norm(place(np.array(a[0].centroid_lps)) - np.array(b[0].centroid_lps)) < 0.5


def test_resolution_is_refused_out_of_range() -> None:
    with pytest.raises(ParameterError, match="--resolution"):
        wall_thickness(solid_cube(), resolution_mm=0.0)
    with pytest.raises(ParameterError, match="--resolution"):
        wall_thickness(solid_cube(), resolution_mm=float("nan"))


def test_default_grid_coarsened_on_a_huge_part_and_said() -> None:
    big = Mesh(solid_cube().vertices * np.array([40.0, 40.0, 1.0]), solid_cube().faces)  # 800 x 800 x 20 mm
    step, choices = default_resolution_mm(big, 0.8)
    low, high = big.bounds_mm()
    points = np.prod((np.asarray(high) - np.asarray(low) + 12 * step) / step + 1)
    assert step > 0.2 and points <= MAX_WALL_GRID_POINTS
    assert choices and "coarsened" in choices[0]
    fine, none = default_resolution_mm(solid_cube(), 0.8)
    assert fine == pytest.approx(0.2) and none == ()


@pytest.mark.parametrize("wall_mm", [0.3, 0.5, 1.5])
def test_partition_thickness_to_a_tenth_rotated(wall_mm: float) -> None:
    from phantoms_check import _box, _mesh

    solid = (_box((0, 0, 0), (30, 20, 10)) - _box((2, 2, 2), (15 - wall_mm / 2, 18, 11))
             - _box((15 + wall_mm / 2, 2, 2), (28, 18, 11)))
    walls = wall_thickness(rotated(_mesh(solid, "tray")), thinnest_mm=0.8)
    assert walls.min_wall_mm == pytest.approx(wall_mm, abs=TOLERANCE_MM)
    regions = thin_regions(walls, wall_mm + 0.2)
    assert len(regions) == 1
    assert abs(_back(np.array(regions[0].centroid_lps))[0] - 15.0) < 0.2



def test_too_fine_a_resolution_for_the_part_is_refused_with_the_finest_that_fits() -> None:
    big = Mesh(solid_cube().vertices * 10.0, solid_cube().faces)  # 200 mm cube
    with pytest.raises(ParameterError, match=r"--resolution: a 0.05 mm grid .* use --resolution"):
        wall_thickness(big, resolution_mm=0.05)


def test_knife_edge_is_thin_but_its_75_deg_corners_are_not() -> None:
    from phantoms_check import wedge_prism

    from medprint.mesh import assess_mesh

    wedge = wedge_prism(30.0)
    assert assess_mesh(wedge).is_printable
    walls = wall_thickness(wedge, thinnest_mm=1.0)
    regions = thin_regions(walls, 1.0)
    assert len(regions) == 1
    # Two faces meeting at 30 deg: the inscribed ball shrinks to nothing at the edge.
    assert regions[0].min_thickness_mm < 0.3
    thin = walls.vertex_thickness_mm < 1.0 - 1e-3
    vertices = walls.surface.vertices[thin]
    # Only near the apex edge (x = 0, z = 20): a 1 mm wall lies 1.93 mm below it; the 75 deg base corners
    # (spokes 105 deg apart, under the 120 deg of a wall) are no walls.
    assert np.all(np.hypot(vertices[:, 0], vertices[:, 2] - 20.0) < 2.2)


@pytest.mark.parametrize("placement", ["axis", "rotated"])
def test_anisotropically_stretched_shell(placement: str) -> None:
    """The 1.2 mm hollow sphere stretched x2 along z: 1.2 mm at the equator, 2.4 mm at the poles."""
    shell = hollow_sphere()
    stretched = Mesh(shell.vertices * np.array([1.0, 1.0, 2.0]), shell.faces, "ellipsoid")
    walls = wall_thickness(stretched if placement == "axis" else rotated(stretched))
    vertices = walls.surface.vertices if placement == "axis" else _back(walls.surface.vertices)
    values = walls.vertex_thickness_mm
    assert np.isfinite(values).all()
    assert walls.min_wall_mm == pytest.approx(1.2, abs=TOLERANCE_MM)
    equator = np.abs(vertices[:, 2]) < 1.0
    assert np.abs(values[equator] - 1.2).max() <= TOLERANCE_MM
    poles = np.abs(vertices[:, 2]) > 19.0
    assert values[poles].max() == pytest.approx(2.4, abs=TOLERANCE_MM)
    assert values.max() <= 2.4 + TOLERANCE_MM
