"""Orthosis on the forearm phantom: gap, thickness, opening, holes and rounded edges measured against the analytic skin.

Every figure is measured on the written mesh, independently of the design code: distances from its vertices to
the analytic skin (a mesh within microns of the ruled surface, :func:`phantoms_limb.forearm_truth`), positions
along and around the phantom's own axis, holes counted from the mesh's topology (genus) and found as clusters of
vertices that run through the wall.  Vertices are classified by position only: near a cutting plane or an
opening's edge (edge), near a hole (hole), else they lie on the inner or the outer face and must be within
0.1 mm of the gap or of gap + thickness from the skin.
"""

from __future__ import annotations

import math

import igl
import numpy as np
import pytest
from phantoms_limb import (
    AXIS,
    LENGTH_MM,
    MINOR,
    START_LPS,
    forearm_ct,
    forearm_mesh,
    forearm_truth,
)
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from medprint.design.orthosis import OrthosisSettings, design_orthosis
from medprint.design.part import finish_part
from medprint.errors import DesignError, InputError, ParameterError

TOLERANCE_MM = 0.1


@pytest.fixture(scope="module")
def truth():
    return forearm_truth()


@pytest.fixture(scope="module")
def forearm_volume():
    return forearm_ct()


def _frame():
    """The documented angle convention, on the phantom's true axis: 0 at patient anterior (-y) projected."""
    anterior = np.array([0.0, -1.0, 0.0])
    reference = anterior - (anterior @ AXIS) * AXIS
    reference /= np.linalg.norm(reference)
    return reference, np.cross(AXIS, reference)


def _along_and_angle(points):
    rel = points - START_LPS
    reference, normal = _frame()
    return rel @ AXIS, np.degrees(np.arctan2(rel @ normal, rel @ reference)) % 360.0, rel


def _half_plane_distance(rel, angle_deg):
    """Distance to the half-plane bounded by the axis at ``angle_deg`` (an opening's edge)."""
    reference, normal = _frame()
    a = math.radians(angle_deg)
    along_ray = rel @ (math.cos(a) * reference + math.sin(a) * normal)
    across = np.abs(rel @ (-math.sin(a) * reference + math.cos(a) * normal))
    return np.where(along_ray > 0, across, np.hypot(across, along_ray))


def _distances(mesh, truth):
    squared, _, _ = igl.point_mesh_squared_distance(mesh.vertices, truth.vertices, truth.faces)
    return np.sqrt(squared)


def _genus(mesh):
    faces = mesh.faces
    pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    edges = len(np.unique(pairs[:, 0] * mesh.vertex_count + pairs[:, 1]))
    return (2 - (mesh.vertex_count - edges + mesh.face_count)) // 2


def _check_faces(mesh, distance, away, gap, thickness):
    """Every vertex away from edges and holes is on the inner or the outer face, within the tolerance, and the
    outer face is the thickness away from the inner one (distances from its vertices to the inner face's
    triangles)."""
    inner_error = np.abs(distance[away] - gap)
    outer_error = np.abs(distance[away] - gap - thickness)
    on_inner = inner_error < outer_error
    assert on_inner.mean() > 0.3 and (~on_inner).mean() > 0.3, on_inner.mean()
    worst_inner = float(inner_error[on_inner].max())
    worst_outer = float(outer_error[~on_inner].max())
    assert worst_inner <= TOLERANCE_MM, f"inner face {worst_inner:.3f} mm off the {gap} mm gap"
    assert worst_outer <= TOLERANCE_MM, f"outer face {worst_outer:.3f} mm off gap + thickness {gap + thickness} mm"
    # The inner face: every triangle whose corners are all at the gap (near edges and holes too).
    inner_vertex = np.abs(distance - gap) < TOLERANCE_MM
    inner_faces = mesh.faces[inner_vertex[mesh.faces].all(axis=1)]
    outer_points = mesh.vertices[np.flatnonzero(away)[~on_inner]]
    wall = np.sqrt(igl.point_mesh_squared_distance(outer_points, mesh.vertices, inner_faces)[0])
    assert np.abs(wall - thickness).max() <= TOLERANCE_MM, np.abs(wall - thickness).max()
    return worst_inner, worst_outer


def _hole_clusters(mesh, distance, away_from_edges, gap, thickness, diameter):
    """Vertices through the wall (neither face) away from the edges, grouped by proximity: one group per hole."""
    through = away_from_edges & (distance > gap + 0.3) & (distance < gap + thickness - 0.3)
    points = mesh.vertices[through]
    # Linked up to one hole diameter: a hole's wall is one group however sparsely the grid samples it, and
    # neighbouring holes (spacing - diameter apart) stay apart.
    pairs = cKDTree(points).query_pairs(r=diameter, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(points), len(points)))
    count, labels = connected_components(graph, directed=False)
    return points, count, labels


def test_ct_phantom_gap_thickness_opening_and_holes(forearm_volume, truth):
    gap, thickness, diameter = 1.5, 2.5, 5.0
    settings = OrthosisSettings(gap_mm=gap, thickness_mm=thickness, from_mm=25, to_mm=195,
                                keep_angle_deg=(200, 100), hole_diameter_mm=diameter, hole_spacing_mm=14,
                                hole_margin_mm=4, resolution_mm=0.8)
    part, quality = finish_part(design_orthosis(forearm_volume, settings))
    assert quality.is_printable and quality.shells == 1 and quality.cavities == 0
    _check_axis_and_skin(part, truth)
    mesh = part.mesh
    distance = _distances(mesh, truth)
    t, angle, rel = _along_and_angle(mesh.vertices)

    # The region: the shell spans the planes asked (the axis starts at the skin's lowest point, the elbow).
    assert abs(t.min() - 25) < 1.0 and abs(t.max() - 195) < 1.0
    # The opening: the shell covers 200 -> 360 -> 100 degrees and nothing of 100..200 (1-degree bins).
    covered = np.zeros(360, dtype=bool)
    covered[np.floor(angle).astype(int) % 360] = True
    assert not covered[102:198].any(), np.flatnonzero(covered[100:200]) + 100
    assert covered[np.r_[201:360, 0:99]].all()

    # Edge vertices: within 1 mm of the part's own cut faces (the planes sit where the tool's axis, estimated from
    # 2 mm slices, puts them: within a millimetre of the asked distances, checked above) or of the opening's edges.
    edge_band = 1.0
    near_edge = ((t - t.min() < edge_band) | (t.max() - t < edge_band)
                 | (_half_plane_distance(rel, 200) < edge_band) | (_half_plane_distance(rel, 100) < edge_band))
    points, clusters, labels = _hole_clusters(mesh, distance, ~near_edge, gap, thickness, diameter)
    holes = part.measurements["holes"]
    assert holes["placed"] >= 40
    assert clusters == holes["placed"] == _genus(mesh)
    # Each hole: its wall vertices on a circle of the asked diameter across the skin's normal there (least-squares
    # circle fit, so a partly sampled wall is measured as well as a full one).
    centres = np.array([points[labels == label].mean(axis=0) for label in range(clusters)])
    _, _, closest = igl.point_mesh_squared_distance(centres, truth.vertices, truth.faces)
    for label in range(clusters):
        wall = points[labels == label]
        centre = centres[label]
        normal = centre - closest[label]
        normal /= np.linalg.norm(normal)
        e1 = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(normal, e1)
        x, y = (wall - centre) @ e1, (wall - centre) @ e2
        (a, b, c), *_ = np.linalg.lstsq(np.column_stack([2 * x, 2 * y, np.ones_like(x)]), x * x + y * y, rcond=None)
        fitted = 2 * math.sqrt(c + a * a + b * b)
        assert abs(fitted - diameter) <= TOLERANCE_MM, (label, fitted)
        # The margin: no hole's rim comes closer than 4 mm to the part's cut ends, or to its opening's edges.
        ct, _, crel = _along_and_angle(wall)
        assert ct.min() - t.min() > 4 - TOLERANCE_MM and t.max() - ct.max() > 4 - TOLERANCE_MM
        assert _half_plane_distance(crel, 200).min() > 4 - 0.3 and _half_plane_distance(crel, 100).min() > 4 - 0.3
    near_hole = np.zeros(mesh.vertex_count, dtype=bool)
    for centre in np.asarray(holes["centres_lps_mm"]):
        near_hole |= np.linalg.norm(mesh.vertices - centre, axis=1) < diameter / 2 + 1.5
    _check_faces(mesh, distance, ~near_edge & ~near_hole, gap, thickness)
    # The report says the same as the independent measurement.
    assert abs(part.measurements["gap_mm"]["median"] - gap) < 0.05
    assert abs(part.measurements["thickness_mm"]["median"] - thickness) < 0.05
    assert holes["through_holes_in_mesh"] == holes["placed"]


def _check_axis_and_skin(part, truth):
    """The estimated axis is the phantom's; the skin found is the arm's to a tenth of a millimetre (the -500 HU
    level of its partial-volume edge), and the plastic board beside the arm is not in it."""
    axis = part.measurements["axis"]
    direction = np.asarray(axis["direction_lps"])
    assert math.degrees(math.acos(min(1.0, abs(direction @ AXIS)))) < 0.5
    start = np.asarray(axis["start_lps_mm"]) - START_LPS
    assert np.linalg.norm(start - (start @ AXIS) * AXIS) < 0.5  # the line runs through the limb's centres
    assert abs(axis["length_mm"] - LENGTH_MM) < 2.0
    skin = part.extras["anatomy"]
    t, _, _ = _along_and_angle(skin.vertices)
    lateral = (t > 5) & (t < LENGTH_MM - 5)
    assert _distances(skin, truth)[lateral].max() < TOLERANCE_MM
    assert _distances(skin, truth).max() < 1.5


def test_default_region_is_said():
    limb = forearm_mesh(around=120, ring_step_mm=20.0)
    part = design_orthosis(limb, OrthosisSettings(gap_mm=1.0, thickness_mm=2.0, open_side="right", resolution_mm=2.0))
    region = part.measurements["region"]
    assert abs(region["from_mm"] - 10) < 1e-6 and abs(region["to_mm"] - (LENGTH_MM - 10)) < 0.01
    assert any("--from not given" in c for c in part.choices) and any("--to not given" in c for c in part.choices)
    # Planes through points (on the skin, as clicked in a viewer) cut the limb where the points are along it.
    at_60, at_150 = (START_LPS + t * AXIS + 27.0 * MINOR for t in (60.0, 150.0))
    part = design_orthosis(limb, OrthosisSettings(gap_mm=1.0, thickness_mm=4.0, start_point=tuple(at_60),
                                                  end_point=tuple(at_150), resolution_mm=2.0))
    region = part.measurements["region"]
    assert abs(region["from_mm"] - 60) < 0.01 and abs(region["to_mm"] - 150) < 0.01
    t = (part.mesh.vertices - START_LPS) @ AXIS
    assert abs(t.min() - 60) < 0.05 and abs(t.max() - 150) < 0.05


def test_mesh_input_rounded_edges_and_open_side(truth):
    gap, thickness, radius = 0.0, 3.0, 1.2
    settings = OrthosisSettings(gap_mm=gap, thickness_mm=thickness, from_mm=40, to_mm=180, open_side="left",
                                edge_radius_mm=radius, resolution_mm=0.6)
    part, quality = finish_part(design_orthosis(forearm_mesh(), settings))
    assert quality.is_printable and quality.shells == 1
    mesh = part.mesh
    distance = _distances(mesh, truth)
    t, angle, rel = _along_and_angle(mesh.vertices)
    # Open on the patient's left (+x): kept the right half, centred on the reference frame's 270 degrees.
    reference, normal = _frame()
    left = np.array([1.0, 0.0, 0.0])
    left_angle = math.degrees(math.atan2(left @ normal, left @ reference)) % 360
    offset = (angle - left_angle + 180) % 360 - 180  # -180..180 around the patient's left
    assert np.abs(offset).min() > 89.0
    assert np.abs(offset).max() > 179.0
    band = radius + 1.0
    assert abs(t.min() - 40) < 0.05 and abs(t.max() - 180) < 0.05  # a mesh input: the axis is exact
    near_edge = ((np.abs(t - 40) < band) | (np.abs(t - 180) < band)
                 | (_half_plane_distance(rel, left_angle + 90) < band)
                 | (_half_plane_distance(rel, left_angle - 90) < band))
    _check_faces(mesh, distance, ~near_edge, gap, thickness)
    # Rounded edges at the wrist-side cut: in the corner squares of side r (within r of the cut and of a face),
    # every vertex lies on the quarter circle of radius r tangent to both (a sharp edge would put them on the
    # plane and the face instead, up to r * (sqrt(2) - 1) off the circle).
    end = t > 180 - radius - 0.5
    assert end.sum() > 100
    mid_angle = np.abs(offset) > 100  # away from the opening's edges
    for corner in (gap + radius, gap + thickness - radius):
        in_corner = end & mid_angle & (t > 180 - radius) & (np.abs(distance - corner) < radius)
        beyond = (distance > corner) if corner > gap + thickness / 2 else (distance < corner)
        arc = in_corner & beyond
        assert arc.sum() > 20
        from_centre = np.hypot(t[arc] - (180 - radius), distance[arc] - corner)
        assert np.abs(from_centre - radius).max() <= 0.15, np.abs(from_centre - radius).max()


def test_open_mesh_is_closed_only_outside_the_region():
    open_mesh = forearm_mesh(around=180, ring_step_mm=10.0, closed=False)
    part = design_orthosis(open_mesh, OrthosisSettings(gap_mm=1.0, thickness_mm=2.0, from_mm=30, to_mm=150,
                                                       keep_angle_deg=(0, 180), resolution_mm=1.5))
    finish_part(part)
    assert any("input mesh" in c for c in part.choices)
    with pytest.raises(DesignError, match="hole in the input mesh"):
        design_orthosis(open_mesh, OrthosisSettings(gap_mm=1.0, thickness_mm=2.0, from_mm=2, to_mm=150,
                                                    resolution_mm=1.5))


def test_open_mesh_with_a_hole_under_the_shell_is_refused():
    """A scanner's gap in the middle of the forearm: filling it would guess the skin the shell rests on."""
    limb = forearm_mesh(around=180, ring_step_mm=10.0)
    t, angle, _ = _along_and_angle(limb.vertices[limb.faces].mean(axis=1))
    gap_in_scan = (np.abs(t - 100) < 12) & (angle > 30) & (angle < 60)
    holed = type(limb)(vertices=limb.vertices, faces=limb.faces[~gap_in_scan])
    with pytest.raises(DesignError, match=r"hole in the input mesh .* at about 10\d mm along"):
        design_orthosis(holed, OrthosisSettings(gap_mm=1.0, thickness_mm=2.0, from_mm=30, to_mm=190,
                                                resolution_mm=1.5))


@pytest.mark.parametrize("settings, message", [
    (dict(gap_mm=-0.5, thickness_mm=2.0), "--gap"),
    (dict(gap_mm=1.0, thickness_mm=0.0), "--thickness"),
    (dict(gap_mm=1.0, thickness_mm=float("nan")), "--thickness"),
    (dict(gap_mm=1.0, thickness_mm=2.0, edge_radius_mm=1.5), "--edge-radius"),
    (dict(gap_mm=1.0, thickness_mm=2.0, hole_diameter_mm=8, hole_spacing_mm=8.5), "--holes"),
    (dict(gap_mm=1.0, thickness_mm=2.0, keep_angle_deg=(10, 10)), "--keep-angle"),
    (dict(gap_mm=1.0, thickness_mm=2.0, open_side="up"), "--open-side"),
    (dict(gap_mm=1.0, thickness_mm=2.0, from_mm=10, start_point=(0, 0, 0)), "--from and --start"),
])
def test_settings_refuse_bad_values(settings, message):
    with pytest.raises(ParameterError, match=message):
        OrthosisSettings(**settings)


@pytest.mark.parametrize("settings, message", [
    (dict(from_mm=300), "--from: the cutting plane at 300.0 mm"),
    (dict(to_mm=-5), "misses the limb"),
    (dict(end_point=tuple(START_LPS + 400 * AXIS)), "--end: the cutting plane at 400.0 mm"),
    (dict(start_point=tuple(START_LPS + 100 * AXIS + [0.0, 300.0, 0.0])), "--start: the point is .* mm from the limb.s axis"),
    (dict(from_mm=100, to_mm=60), "shorter than"),
    (dict(from_mm=30, to_mm=60, hole_diameter_mm=40, hole_spacing_mm=60), "no 40 mm hole fits"),
])
def test_design_refuses_what_cannot_be_made(settings, message):
    limb = forearm_mesh(around=120, ring_step_mm=20.0)
    with pytest.raises(DesignError, match=message):
        design_orthosis(limb, OrthosisSettings(gap_mm=1.0, thickness_mm=2.0, resolution_mm=1.5, **settings))


def test_wall_larger_than_the_limb_is_refused():
    finger = forearm_mesh(around=120, ring_step_mm=20.0)
    small = type(finger)(vertices=START_LPS + (finger.vertices - START_LPS) * 0.25, faces=finger.faces)
    with pytest.raises(DesignError, match="--thickness 20 mm is more than the limb"):
        design_orthosis(small, OrthosisSettings(gap_mm=1.0, thickness_mm=20.0, resolution_mm=1.5))


def test_mr_volume_is_refused(forearm_volume):
    mr = type(forearm_volume)(array=forearm_volume.array, geometry=forearm_volume.geometry, modality="MR")
    with pytest.raises(InputError, match="surface mesh"):
        design_orthosis(mr, OrthosisSettings(gap_mm=1.0, thickness_mm=2.0))


def test_mirrored_oblique_ct_keeps_the_patient_frame(truth):
    """A CT whose index frame is mirrored and tilted: the skin lands where the limb is, the opening on its left."""
    a = math.radians(20.0)
    tilt = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    volume = forearm_ct((1.0, 0.9, 2.5), direction=tilt @ np.diag([-1.0, 1.0, 1.0]), board=False)
    assert volume.geometry.is_left_handed
    part, quality = finish_part(design_orthosis(volume, OrthosisSettings(
        gap_mm=1.0, thickness_mm=2.0, from_mm=40, to_mm=180, open_side="left", resolution_mm=1.0)))
    assert quality.is_printable and quality.shells == 1
    skin = part.extras["anatomy"]
    t, _, _ = _along_and_angle(skin.vertices)
    assert _distances(skin, truth)[(t > 5) & (t < LENGTH_MM - 5)].max() < 0.2
    # Nothing of the shell on the patient's left (+x in LPS) half of the limb.
    rel = part.mesh.vertices - START_LPS
    left = np.array([1.0, 0.0, 0.0]) - AXIS[0] * AXIS
    left /= np.linalg.norm(left)
    radial = rel - np.outer(rel @ AXIS, AXIS)
    cosine = (radial @ left) / np.linalg.norm(radial, axis=1)
    assert cosine.max() < math.cos(math.radians(89.0)) and cosine.min() < -0.99


def test_holes_go_right_through_a_wall_the_skin_tilts():
    """Big holes near the wrist's narrow sides, where the skin curves (radius ~13 mm) so the wall tilts by 25
    degrees across a 12 mm hole: each hole is drilled through the whole wall, no sliver of a face is left standing
    in it (a cylinder only as long as the wall is thick left seven bodies here), with no crumb to drop."""
    gap, thickness, diameter = 1.0, 3.0, 12.0
    settings = OrthosisSettings(gap_mm=gap, thickness_mm=thickness, from_mm=130, to_mm=205, open_side="right",
                                hole_diameter_mm=diameter, hole_spacing_mm=17, hole_margin_mm=3, resolution_mm=0.5)
    part = design_orthosis(forearm_mesh(), settings)
    assert part.measurements["crumbs_dropped"] == {"count": 0, "volume_mm3": 0.0}
    part, quality = finish_part(part)
    assert quality.is_printable and quality.shells == 1
    holes = part.measurements["holes"]
    assert holes["placed"] >= 10 and _genus(part.mesh) == holes["placed"]
    vertices = part.mesh.vertices
    for centre, normal in zip(np.asarray(holes["centres_lps_mm"]), np.asarray(holes["normals_lps"])):
        rel = vertices - centre
        axial = rel @ normal
        radial = np.linalg.norm(rel - np.outer(axial, normal), axis=1)
        standing = (radial < diameter / 2 - TOLERANCE_MM) & (np.abs(axial) < thickness + diameter)
        assert not standing.any(), (centre, radial[standing].min())


def _box(low, high):
    import trimesh

    from medprint.mesh.model import Mesh

    box = trimesh.creation.box(bounds=[low, high])
    return Mesh(vertices=np.asarray(box.vertices, dtype=float), faces=np.asarray(box.faces, dtype=np.int64),
                name="orthosis")


def _merged(*meshes):
    from medprint.mesh.model import Mesh

    offsets = np.cumsum([0] + [m.vertex_count for m in meshes[:-1]])
    return Mesh(vertices=np.vstack([m.vertices for m in meshes]),
                faces=np.vstack([m.faces + o for m, o in zip(meshes, offsets)]), name="orthosis")


def test_loose_crumbs_are_dropped_and_said_real_pieces_refused():
    from medprint.design.orthosis import _one_body
    from medprint.design.orthosis_axis import estimate_axis

    shell = _box([0, 0, 0], [10, 10, 100])
    axis = estimate_axis(shell, np.array([0.0, 0.0, 1.0]))
    settings = OrthosisSettings(gap_mm=1.0, thickness_mm=3.0)
    crumb = _box([20, 0, 50], [20.4, 0.5, 50.3])
    kept, crumbs = _one_body(_merged(shell, crumb), axis, settings, 0.5)
    assert kept.face_count == shell.face_count and abs(kept.volume_mm3() - 10 * 10 * 100) < 1e-6
    assert crumbs["count"] == 1 and abs(crumbs["volume_mm3"] - 0.4 * 0.5 * 0.3) < 1e-4
    assert _one_body(shell, axis, settings, 0.5)[1]["count"] == 0
    piece = _box([20, 0, 50], [24, 4, 54])  # as large across as the wall is thick: a part of the shell
    with pytest.raises(DesignError, match="falls apart: a piece of 64 mm3"):
        _one_body(_merged(shell, piece), axis, settings, 0.5)


def test_exact_distances_shared_out_are_the_same_as_in_one_process():
    from medprint.design.orthosis import _PARALLEL_POINTS, squared_distances

    limb = forearm_mesh(around=90, ring_step_mm=20.0)
    rng = np.random.default_rng(7)
    points = limb.vertices[rng.integers(0, limb.vertex_count, _PARALLEL_POINTS + 1001)]
    points = points + rng.normal(0.0, 4.0, points.shape)
    expected = igl.point_mesh_squared_distance(points, limb.vertices, limb.faces)[0]
    assert np.array_equal(squared_distances(points, limb), expected)


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "open_ends_repaired"])
def test_coarsely_triangulated_limb_keeps_the_whole_region(closed, truth):
    """Rings 73 mm apart: no vertex lies in most of the region, its triangles cross it.  The grid sized from the
    vertices gave a shell 53..94 mm long for 10..100 mm; the part must span the region asked, at the gap and
    thickness asked from the (piecewise flat) skin it was given."""
    coarse = forearm_mesh(around=48, ring_step_mm=73.0, closed=closed)
    assert not np.any((_along(coarse.vertices) > 10.0) & (_along(coarse.vertices) < 70.0))
    part = design_orthosis(coarse, OrthosisSettings(gap_mm=1.5, thickness_mm=3.0, from_mm=10, to_mm=100,
                                                    resolution_mm=1.5))
    finished, quality = finish_part(part)
    assert quality.watertight and quality.bodies == 1
    t = _along(finished.mesh.vertices)
    assert abs(t.min() - 10.0) <= 1.5 and abs(t.max() - 100.0) <= 1.5, (t.min(), t.max())
    given = forearm_mesh(around=48, ring_step_mm=73.0, closed=True)
    distance = np.sqrt(igl.point_mesh_squared_distance(finished.mesh.vertices, given.vertices, given.faces)[0])
    middle = (t > 20.0) & (t < 90.0)
    assert distance[middle].min() >= 1.5 - 0.1 and distance[middle].max() <= 4.5 + 0.1
    assert np.any(middle & (distance < 1.6)) and np.any(middle & (distance > 4.4))


def test_a_part_shorter_than_the_region_is_refused(monkeypatch):
    """The final guard: were the working grid (or anything else) to cut the shell short of a cutting plane, the
    design is refused, never written silently shorter."""
    import medprint.design.orthosis as orthosis

    sized = orthosis._grid

    def short_grid(skin, axis, region, settings, spacing):
        return sized(skin, axis, orthosis.Region(region.low_mm + 40.0, region.high_mm, region.angle_deg),
                     settings, spacing)

    monkeypatch.setattr(orthosis, "_grid", short_grid)
    with pytest.raises(DesignError, match="--from: the shell made reaches"):
        design_orthosis(forearm_mesh(around=90, ring_step_mm=10.0),
                        OrthosisSettings(gap_mm=1.0, thickness_mm=2.0, from_mm=40, to_mm=150, resolution_mm=1.5))


def _along(points):
    return (np.asarray(points) - START_LPS) @ AXIS


def _slow_share(start, stop):
    import signal
    import time

    if start == 0:  # the parent's own share: stopped, as a SIGTERM turned into KeyboardInterrupt would
        raise KeyboardInterrupt("SIGTERM")
    time.sleep(120)
    return np.zeros(stop - start), signal.getsignal(signal.SIGTERM)


def _disposition_share(start, stop):
    """Each worker's distances replaced by how it handles SIGTERM and SIGINT: 0 default, 1 ignored, 2 a handler."""
    import os
    import signal

    def code(handler):
        return 0 if handler == signal.SIG_DFL else 1 if handler == signal.SIG_IGN else 2

    in_worker = os.getpid() != _PARENT_PID
    value = 10 * code(signal.getsignal(signal.SIGTERM)) + code(signal.getsignal(signal.SIGINT)) if in_worker else -1
    return np.full(stop - start, float(value))


_PARENT_PID = __import__("os").getpid()


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork")
def test_a_stop_during_shared_out_distances_ends_the_workers_at_once(monkeypatch):
    """Stopped while its workers compute (the CLI turns SIGTERM into KeyboardInterrupt): the stop goes up at
    once and no worker is left running (before, the pool waited for every worker's share to end)."""
    import multiprocessing
    import time

    import medprint.design.orthosis as orthosis

    monkeypatch.setattr(orthosis, "EDT_THREADS", 2)
    monkeypatch.setattr(orthosis, "_squared_distance_share", _slow_share)
    limb = forearm_mesh(around=30, ring_step_mm=40.0)
    points = np.zeros((orthosis._PARALLEL_POINTS + 10, 3))
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        orthosis.squared_distances(points, limb)
    assert time.monotonic() - began < 60.0  # the worker sleeps 120 s: not waited for
    assert not multiprocessing.active_children()


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork")
def test_shared_out_workers_do_not_run_the_parents_stop_handler(monkeypatch):
    """A forked worker ends at SIGTERM and ignores Ctrl-C (the parent ends it): it must not inherit the CLI's
    handler, which would clean up the parent's run from inside the worker."""
    import signal

    import medprint.design.orthosis as orthosis

    monkeypatch.setattr(orthosis, "EDT_THREADS", 2)
    monkeypatch.setattr(orthosis, "_squared_distance_share", _disposition_share)
    previous = signal.signal(signal.SIGTERM, lambda *a: None)  # as the CLI's stop handler
    try:
        codes = orthosis.squared_distances(np.zeros((orthosis._PARALLEL_POINTS + 10, 3)),
                                           forearm_mesh(around=30, ring_step_mm=40.0))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (codes == -1).any()  # the parent's own share
    assert set(codes[codes != -1]) == {1.0}  # SIGTERM default, SIGINT ignored in every worker
