"""Hollow vessel models on a bent tube of known lumen (half a torus leaving an anisotropic grid twice).

Every figure is measured on the written mesh against the analytic torus or the mesh's own other face
(closest points, rays), never read from the distance field that built it.
"""

from __future__ import annotations

import igl
import numpy as np
import pytest
import trimesh

from medprint.design.hollow import HollowSettings, design_hollow
from medprint.design.part import finish_part
from medprint.errors import DesignError, InputError, ParameterError
from design.phantoms_tube import BentTube, bent_tube

WALL = 1.5


@pytest.fixture(scope="module", params=[0.0, 25.0], ids=["axis-aligned", "oblique"])
def tube(request) -> BentTube:
    """The bent tube on an axis-aligned anisotropic grid, and turned with its grid 25 degrees (oblique)."""
    return bent_tube(tilt_deg=request.param)


@pytest.fixture(scope="module")
def hollow(tube: BentTube):
    part = design_hollow(tube.mask, HollowSettings(wall_mm=WALL))
    return finish_part(part)


def _faces_of(mesh, keep, tube: BentTube | None = None):
    """Triangles whose corners are all ``keep``; with ``tube``, not those of the end faces (square to the axis)."""
    faces = mesh.faces[np.all(keep[mesh.faces], axis=1)]
    if tube is None:
        return faces
    tri = mesh.vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    phi = tube.angle(tri.mean(axis=1))
    tangent = np.column_stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)]) @ tube.rotation.T
    return faces[np.abs(np.einsum("ij,ij->i", normal, tangent)) < 0.7]


def _away_from_ends(tube: BentTube, mesh, mm: float = 2.5):
    phi = tube.angle(mesh.vertices)
    return (phi > phi.min() + mm / tube.major_mm) & (phi < phi.max() - mm / tube.major_mm)


def _section_loops(tm: trimesh.Trimesh, origin, normal) -> list[np.ndarray]:
    """Closed curves where a plane cuts the mesh, each as its points."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    segments = trimesh.intersections.mesh_plane(tm, plane_normal=normal, plane_origin=origin)
    points = np.round(segments.reshape(-1, 3), 6)
    unique, index = np.unique(points, axis=0, return_inverse=True)
    index = index.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(index)), (index[:, 0], index[:, 1])), shape=(len(unique), len(unique)))
    count, labels = connected_components(graph, directed=False)
    return [unique[labels == k] for k in range(count)]


def test_bent_tube_is_one_watertight_body(hollow) -> None:
    part, quality = hollow
    assert quality.is_printable, quality.describe()
    assert quality.shells == 1


def test_wall_is_the_thickness_asked_everywhere(tube: BentTube, hollow) -> None:
    mesh = hollow[0].mesh
    analytic = tube.lumen_distance(mesh.vertices)
    inner = analytic < WALL / 2
    middle = _away_from_ends(tube, mesh)
    inner_faces = _faces_of(mesh, inner, tube)
    outer_faces = _faces_of(mesh, ~inner, tube)
    out_to_in = np.sqrt(igl.point_mesh_squared_distance(mesh.vertices[~inner & middle], mesh.vertices,
                                                        inner_faces)[0])
    in_to_out = np.sqrt(igl.point_mesh_squared_distance(mesh.vertices[inner & middle], mesh.vertices,
                                                        outer_faces)[0])
    thickness = np.r_[out_to_in, in_to_out]
    assert len(thickness) > 5000
    # never thinner than asked; thicker only at the inside corners of the mask's slice steps, where any
    # offset is (its nearest point is farther than the wall): at most 1 % of the surface, by under 0.2 mm
    assert thickness.min() >= WALL - 0.1, thickness.min()
    assert np.mean(np.abs(thickness - WALL) <= 0.1) >= 0.99
    assert thickness.max() <= WALL + 0.2, thickness.max()
    # Rays from the inner face along its normal (into the wall) meet the outer face at the wall's thickness.
    tri = mesh.vertices[inner_faces]
    centres = tri.mean(axis=1)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= -np.linalg.norm(normals, axis=1)[:, None]  # the inner face looks into the lumen: turn to the wall
    phi = tube.angle(centres)
    ends = tube.angle(mesh.vertices)
    keep = np.flatnonzero((phi > ends.min() + 0.15) & (phi < ends.max() - 0.15))
    lengths = []
    for index in keep[::max(1, len(keep) // 300)]:
        hits = igl.ray_mesh_intersect(centres[index], normals[index], mesh.vertices, outer_faces, first=True)
        if hits:
            lengths.append(hits[0][1])  # (face, distance along the unit ray, u, v)
    lengths = np.asarray(lengths)
    assert len(lengths) >= 250
    assert abs(float(np.median(lengths)) - WALL) <= 0.1
    assert float(np.percentile(np.abs(lengths - WALL), 95)) <= 0.1


def test_lumen_keeps_its_size(tube: BentTube, hollow) -> None:
    mesh = hollow[0].mesh
    analytic = tube.lumen_distance(mesh.vertices)
    inner = (analytic < WALL / 2) & _away_from_ends(tube, mesh)
    # the mask's own staircase is the only error: within half a voxel diagonal of the true lumen
    half_diagonal = 0.5 * float(np.linalg.norm(tube.mask.geometry.spacing))
    assert np.all(np.abs(analytic[inner]) <= half_diagonal)
    assert abs(float(np.median(analytic[inner]))) <= 0.1
    outer = (analytic >= WALL / 2) & _away_from_ends(tube, mesh)
    assert abs(float(np.median(analytic[outer])) - WALL) <= 0.1


def test_both_ends_are_open_and_square_to_the_centreline(tube: BentTube, hollow) -> None:
    part, _ = hollow
    mesh = part.mesh
    # a pipe: one surface of genus 1 (Euler characteristic 0); capped ends would leave a closed cavity
    edges = mesh.face_count * 3 // 2
    assert mesh.vertex_count - edges + mesh.face_count == 0
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    phi = tube.angle(mesh.vertices)
    for end_phi in (phi.min(), phi.max()):
        # the section just inside each end is a ring: an outer loop around an inner one (the open lumen)
        inward = end_phi - np.sign(end_phi) * 2.0 / tube.major_mm
        centre = tube.point(inward)
        tangent = tube.tangent(inward)
        loops = _section_loops(tm, centre, tangent)
        assert len(loops) == 2  # a ring: the wall around the open lumen
        radii = sorted(float(np.mean(np.linalg.norm(loop - centre, axis=1))) for loop in loops)
        assert abs(radii[0] - tube.minor_mm) <= 0.3
        assert abs(radii[1] - tube.minor_mm - WALL) <= 0.3
        # the end face is square to the centreline: all its points at one angle around the torus axis
        normals = igl.per_vertex_normals(mesh.vertices, mesh.faces)
        along = np.abs(np.einsum("ij,j->i", normals, tube.tangent(end_phi))) > 0.95
        face = along & (np.abs(phi - end_phi) * tube.major_mm < 3.0)
        assert np.count_nonzero(face) > 50
        assert np.ptp(phi[face]) * tube.major_mm <= 2 * (tube.minor_mm + WALL) * np.tan(np.radians(6))
        # opened where the tube leaves the grid, not far inside it
        assert (tube.border_angle() - abs(end_phi)) * tube.major_mm <= (tube.minor_mm + WALL) * 0.5 + 2.0
    # the lumen is outside the part's material all along
    middle = tube.point(0.0)[None, :]
    assert igl.winding_number(mesh.vertices, mesh.faces, middle)[0] < 0.5
    openings = part.measurements["openings"]
    assert [o["kind"] for o in openings] == ["scan border", "scan border"]
    for opening in openings:
        assert abs(opening["inner_diameter_mm"] - 2 * tube.minor_mm) <= 0.3
        # reported at the lumen's centre in the cut's plane: on the centreline
        assert tube.lumen_distance(np.asarray(opening["point_lps_mm"]))[0] <= -tube.minor_mm + 0.3


def test_inside_wall_keeps_the_outer_surface(tube: BentTube) -> None:
    part, quality = finish_part(design_hollow(tube.mask, HollowSettings(wall_mm=1.2, side="inside")))
    assert quality.is_printable and quality.shells == 1
    mesh = part.mesh
    analytic = tube.lumen_distance(mesh.vertices)
    middle = _away_from_ends(tube, mesh)
    outer = (analytic > -0.6) & middle
    inner = (analytic <= -0.6) & middle
    assert abs(float(np.median(analytic[outer]))) <= 0.1
    assert abs(float(np.median(analytic[inner])) + 1.2) <= 0.1
    far = np.sqrt(igl.point_mesh_squared_distance(mesh.vertices[inner], mesh.vertices,
                                                  _faces_of(mesh, analytic > -0.6, tube))[0])
    assert far.min() >= 1.2 - 0.1 and np.mean(np.abs(far - 1.2) <= 0.1) >= 0.99 and far.max() <= 1.2 + 0.2


def test_a_cut_goes_square_to_the_centreline_and_drops_the_smaller_side(tube: BentTube) -> None:
    at = np.radians(35.0)
    point = tuple(tube.point(at))
    part, quality = finish_part(design_hollow(tube.mask, HollowSettings(wall_mm=WALL, cuts_lps=(point,))))
    assert quality.shells == 1
    phi = tube.angle(part.mesh.vertices)
    assert abs(phi.max() - at) * tube.major_mm <= 0.3
    normals = igl.per_vertex_normals(part.mesh.vertices, part.mesh.faces)
    along = np.abs(normals @ tube.tangent(at)) > 0.95
    face = along & ((at - phi) * tube.major_mm < 2.0)
    assert np.count_nonzero(face) > 50
    # square to the centreline within 3 degrees across the whole end face
    assert np.ptp(phi[face]) * tube.major_mm <= 2 * (tube.minor_mm + WALL) * np.tan(np.radians(3))
    assert phi.min() < -np.radians(60)  # the long side, down to the other end, stays
    kinds = sorted(o["kind"] for o in part.measurements["openings"])
    assert kinds == ["cut", "scan border", "scan border"]


def test_drains_at_the_bottom_of_a_u_that_holds_resin(tube: BentTube) -> None:
    # ends up (towards -x), the bend down: the U holds resin and drains at its lowest point
    up = tube.rotation @ np.array([-1.0, 0.0, 0.0])
    cup = finish_part(design_hollow(tube.mask, HollowSettings(wall_mm=WALL, drain_mm=2.5, up=tuple(up))))
    drains = cup[0].measurements["drains"]
    assert len(drains) == 1
    where = tube.local(np.asarray(drains[0]["point_lps_mm"]))[0]
    # at the lowest point of the lumen (its height within half a grid step of the true lowest, x = R + r),
    # at the bottom of the bend
    assert abs(where[0] - (tube.major_mm + tube.minor_mm)) <= 0.5
    assert abs(where[2]) <= 1.5 and abs(np.arctan2(where[1], where[0])) * tube.major_mm <= 3.0
    mesh = cup[0].mesh
    # the hole goes through the wall there: a ray down from inside the lumen above it leaves the part
    start = np.asarray(drains[0]["point_lps_mm"]) + 2.0 * up
    assert not igl.ray_mesh_intersect(start, -up, mesh.vertices, mesh.faces)
    assert cup[1].shells == 1
    # ends down: resin runs out of them, no hole is made
    hanging = design_hollow(tube.mask, HollowSettings(wall_mm=WALL, drain_mm=2.5, up=tuple(-up)))
    assert hanging.measurements["drains"] == []


@pytest.mark.parametrize("settings, error, words", [
    (dict(wall_mm=0.0), ParameterError, ["--wall", "> 0"]),
    (dict(wall_mm=-1.0), ParameterError, ["--wall"]),
    (dict(wall_mm=float("nan")), ParameterError, ["--wall", "finite"]),
    (dict(wall_mm=0.6), ParameterError, ["--wall", "--resolution"]),
    (dict(drain_mm=1.5), ParameterError, ["--drain", ">= 2"]),
    (dict(up=(0.0, 0.0, 1.0)), ParameterError, ["--up", "--drain"]),
    (dict(side="middle"), ParameterError, ["--side"]),
])
def test_settings_refuse_impossible_values(settings, error, words) -> None:
    with pytest.raises(error) as raised:
        HollowSettings(**settings)
    for word in words:
        assert word in str(raised.value)


def test_a_wall_larger_than_the_vessel_is_refused(tube: BentTube) -> None:
    with pytest.raises(DesignError, match="larger than the vessel"):
        design_hollow(tube.mask, HollowSettings(wall_mm=10.0))
    with pytest.raises(DesignError, match="fills it"):
        design_hollow(tube.mask, HollowSettings(wall_mm=5.0, side="inside"))


def test_empty_or_everywhere_masks_are_refused(tube: BentTube) -> None:
    empty = tube.mask.replace(np.zeros_like(tube.mask.array))
    with pytest.raises(InputError, match="empty"):
        design_hollow(empty, HollowSettings())
    everywhere = tube.mask.replace(np.ones_like(tube.mask.array))
    with pytest.raises(InputError, match="touches every border"):
        design_hollow(everywhere, HollowSettings())


def test_a_cut_off_the_vessel_is_refused(tube: BentTube) -> None:
    with pytest.raises(DesignError, match="off the vessel"):
        above = tube.rotation @ [tube.major_mm, 0.0, 4.0 + tube.minor_mm]
        design_hollow(tube.mask, HollowSettings(cuts_lps=(tuple(above),)))


# --------------------------------------------------------------------------------------------------------------
# a closed lumen surface (a valve root or vessel STL) instead of a mask
# --------------------------------------------------------------------------------------------------------------

def _oblique_cylinder(radius: float = 6.0, length: float = 40.0):
    """A closed, flat-ended cylinder mesh (CAD tessellation) on an oblique axis; its axis and centre."""
    from medprint.mesh.model import Mesh

    solid = trimesh.creation.cylinder(radius=radius, height=length, sections=96)
    turn = trimesh.transformations.rotation_matrix(0.5, [1.0, 1.0, 0.0])
    solid.apply_transform(turn)
    solid.apply_translation([10.0, -20.0, 30.0])
    axis = turn[:3, :3] @ np.array([0.0, 0.0, 1.0])
    return Mesh(np.asarray(solid.vertices, float), np.asarray(solid.faces, np.int64), "root"), axis


def test_a_closed_surface_is_hollowed_and_its_flat_ends_opened() -> None:
    surface, axis = _oblique_cylinder()
    part, quality = finish_part(design_hollow(surface, HollowSettings(wall_mm=WALL)))
    assert quality.is_printable and quality.shells == 1
    mesh = part.mesh
    assert mesh.vertex_count - mesh.face_count * 3 // 2 + mesh.face_count == 0  # a pipe: both ends open
    centre = np.array([10.0, -20.0, 30.0])
    rel = mesh.vertices - centre
    along = rel @ axis
    radial = np.linalg.norm(rel - np.outer(along, axis), axis=1)
    side = np.abs(along) < along.max() - 1.0
    inner, outer = side & (radial < 6.0 + WALL / 2), side & (radial >= 6.0 + WALL / 2)
    assert np.all(np.abs(radial[inner] - 6.0) <= 0.05)
    assert np.all(np.abs(radial[outer] - 6.0 - WALL) <= 0.1)
    openings = part.measurements["openings"]
    assert [o["kind"] for o in openings] == ["cut face", "cut face"]
    for opening in openings:
        assert abs(abs(float(np.dot(opening["outward"], axis))) - 1.0) <= 1 - np.cos(np.radians(2))
        assert abs(opening["inner_diameter_mm"] - 12.0) <= 0.2
    # the ends are cut where the surface's flat faces were, within a margin of the working grid
    assert along.max() >= 20.0 - 1.5 and along.min() <= -20.0 + 1.5


def test_an_open_surface_is_refused_or_repaired_and_said() -> None:
    from medprint.mesh.model import Mesh

    # a flat sheet (a surface scan's patch) encloses nothing: no repair can give it an inside
    sheet = Mesh(np.array([[0.0, 0, 0], [20, 0, 0], [20, 20, 0], [0, 20, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
                 "sheet")
    with pytest.raises(InputError, match="not closed"):
        design_hollow(sheet, HollowSettings())
    surface, _ = _oblique_cylinder()
    holed = Mesh(surface.vertices, surface.faces[:-1], "holed")  # one triangle missing from an end cap
    part = design_hollow(holed, HollowSettings(wall_mm=WALL))
    assert any("repaired" in choice for choice in part.choices)


def test_a_cut_that_does_not_cut_an_end_off_is_refused() -> None:
    # a closed ring of vessel: one cut leaves it whole on both sides
    ring = bent_tube(x_min_mm=-30.0)
    assert not ring.mask.array[:, :, 0].any()
    with pytest.raises(DesignError, match="--cut .* does not cut an end off"):
        design_hollow(ring.mask, HollowSettings(cuts_lps=((ring.major_mm, 0.0, 0.0),)))


def test_a_mirrored_grid_gives_the_same_model_in_place() -> None:
    # a left-handed grid (i towards -x, k towards -z): the same tube, the same wall, in the same place
    tube = bent_tube(mirrored=True)
    part, quality = finish_part(design_hollow(tube.mask, HollowSettings(wall_mm=WALL)))
    assert quality.is_printable and quality.shells == 1
    mesh = part.mesh
    analytic = tube.lumen_distance(mesh.vertices)
    middle = _away_from_ends(tube, mesh)
    inner = (analytic < WALL / 2) & middle
    outer = (analytic >= WALL / 2) & middle
    assert abs(float(np.median(analytic[inner]))) <= 0.1
    assert abs(float(np.median(analytic[outer])) - WALL) <= 0.1
    assert mesh.vertex_count - mesh.face_count * 3 // 2 + mesh.face_count == 0
    assert mesh.volume_mm3() > 0  # outward-facing


def test_a_bulge_near_an_end_neither_moves_its_cut_nor_opens_twice() -> None:
    import manifold3d

    from medprint.mesh.model import Mesh

    # a tube with a side bulge (a branch's mouth, a sinus) 7 mm from its lower flat end
    solid = manifold3d.Manifold.cylinder(40.0, 6.0, 6.0, 96).translate((0.0, 0.0, -20.0)) \
        + manifold3d.Manifold.sphere(3.5, 48).translate((6.0, 0.0, -13.0))
    raw = solid.to_mesh()
    surface = Mesh(np.asarray(raw.vert_properties[:, :3], float), np.asarray(raw.tri_verts, np.int64), "root")
    part, quality = finish_part(design_hollow(surface, HollowSettings(wall_mm=WALL)))
    assert quality.shells == 1
    openings = part.measurements["openings"]
    assert [o["kind"] for o in openings] == ["cut face", "cut face"]
    z = part.mesh.vertices[:, 2]
    assert z.min() <= -20.0 + 1.5 and z.max() >= 20.0 - 1.5  # cut at the faces, not at the bulge
    assert part.mesh.vertices[:, 0].max() >= 6.0 + 3.5 + WALL - 0.2  # the bulge is kept, walled
