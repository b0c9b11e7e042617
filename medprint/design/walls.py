"""Wall thickness of a closed mesh: the diameter of the largest inscribed sphere, located on the surface.

Definition
----------
The thickness of a wall at a surface point is the diameter of the largest
ball that fits inside the solid and touches the surface there (the local
thickness of Hildebrand and Ruegsegger, read on the surface).  Only balls
held between surfaces that *face each other* count as walls: the two points
where a maximal ball touches the surface must be seen from its centre at
least :data:`MIN_SPOKE_ANGLE_DEG` apart (120 deg, i.e. the two sides open by
at most 60 deg).  Without that rule every convex edge would be "thin" (the
balls in a cube's corner shrink to nothing); with it a cube's edges are not
walls, its walls are as thick as the cube, while a knife edge (two faces
meeting at less than 60 deg) is thin, as a printer sees it.

Method
------
1. The exact signed distance ``D`` of the mesh on an isotropic working grid
   (:func:`medprint.design.fields.mesh_distance`: sign by voxelising, libigl
   point-to-triangle distance near the surface).
2. Ridge candidates: grid points where ``D`` bends sharply along a grid axis
   (central second difference above 0.4 grid steps), i.e. where the
   nearest surface point jumps from one side of the wall to the other; walls
   thinner than the grid show there as a sharp valley of ``D`` and are found
   the same way.
3. For every candidate and its two neighbours along each axis ``D`` bends
   on, the nearest surface point and the inward direction (libigl, exact).
   For each pair of grid neighbours along an axis whose nearest points lie on
   facing sides (inward directions at least 120 deg apart), the two sides are
   taken as their tangent planes and the point between the pair where both
   are equally far is the centre of the ball, its radius the distance to
   both; the ball is kept only where the exact distance from its centre to
   the mesh agrees (no third side nearer: a ball off the ridge, in a corner,
   is dropped).  Between two parallel planes this is half the thickness
   exactly, whatever the grid's position; on curved walls the error is of
   the order of ``h**2 / R``.  One ball is kept per grid cell.
4. Each surface vertex (the mesh's triangles split until no edge exceeds two
   grid steps) takes the largest such ball that reaches it: the vertex lies
   within the ball's sphere grown by the sag of a grid step sideways plus
   half a step (or 5 % of the radius), found among the balls touching the
   surface within three steps and then, for up to eight rounds, among the
   balls of its mesh neighbours.  Vertices that no facing-wall ball reaches
   (convex edges and corners of thick parts) have no wall thickness (NaN).

Where it cannot work
--------------------
* Bumpy scanned surfaces: a maximal ball touches the tops of the bumps; a
  vertex in a dimple deeper than the tolerance stays unmeasured (on the real
  calvaria about a fifth of the vertices; ``surface_measured_fraction`` in
  the check's result says how much was read).
* A part with no facing surfaces at all (a tetrahedron: its faces meet at
  less than 120 deg seen from its centre) has no wall; its largest inscribed
  sphere is given instead, and said.
* A part that holds no grid point (thinner than the grid everywhere) is
  refused with the advice to refine the grid; walls far thinner than the grid
  inside a larger part are still found (0.15 mm on a 0.2 mm grid in the tests).

The answer does not depend on the mesh's voxel size or placement, only on the
working grid step ``h``; :func:`default_resolution_mm` takes 0.25 mm or a
quarter of the thinnest wall asked about, whichever is finer, and coarsens it
(a choice that is said) when the part would need more than
:data:`MAX_WALL_GRID_POINTS` grid points.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import igl
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..errors import DesignError, ParameterError
from ..mesh.model import Mesh
from ..segment.checks import require_number
from .fields import Grid, grid_around, mesh_distance

logger = logging.getLogger("medprint")

#: Two sides form a wall when a ball between them touches them at least this far apart, seen from its centre.
MIN_SPOKE_ANGLE_DEG = 120.0
#: Finest and coarsest working grid steps a wall check uses (mm).
FINEST_RESOLUTION_MM = 0.02
COARSEST_RESOLUTION_MM = 2.0
#: The default grid step: this or a quarter of the thinnest wall asked about, whichever is finer.
DEFAULT_RESOLUTION_MM = 0.25
#: Most grid points the default working grid may have (about 160 MB per float32 field); beyond, it is coarsened.
MAX_WALL_GRID_POINTS = 40_000_000
#: Most grid points an explicitly asked resolution may need (a few GB of fields and temporaries).
MAX_ASKED_GRID_POINTS = 120_000_000
#: A grid point is a ridge candidate where D's central second difference along an axis exceeds this many steps.
_RIDGE_BEND = 0.4
#: How far sideways from where a ball touches the surface (in grid steps) a vertex still counts as reached.
_REACH_STEPS = 1.0
#: Rounds of handing a ball on to mesh neighbours it also reaches.
_PROPAGATION_ROUNDS = 8
#: Large balls reach this fraction of their radius beyond their sphere.
_REACH_FRACTION = 0.05
#: Vertices matched to balls at a time.
_VERTEX_CHUNK = 100_000
#: Touch points looked at around a vertex (grid steps).
_SEARCH_STEPS = 3.0
#: ... and how far beyond the ball's sphere (in grid steps): a scanned surface's bumps and the mesh's facets
#: put vertices a little outside the maximal balls that touch their neighbours.
_REACH_NORMAL_STEPS = 0.5
#: A ball whose exact radius falls short of the two-plane model by more than this (steps + fraction) is dropped.
_THIRD_SIDE_STEPS = 0.05
_THIRD_SIDE_FRACTION = 0.02
#: A wall counts as thinner than a limit only below it by more than this (mm): float32 mesh coordinates
#: alone put a 0.8 mm wall at 0.7999992 mm; the measurement itself is good to about a tenth of a grid step.
LIMIT_TOLERANCE_MM = 1e-3
#: Pairs of grid points compared across a ridge: the three axes (dz, dy, dx); every wall has an axis within
#: 55 deg of its normal, and the tangent-plane model does not need the pair to be square to the wall.
_PAIR_STEPS = ((1, 0, 0), (0, 1, 0), (0, 0, 1))


class ThinnerThanGridError(DesignError):
    """The part holds no point of the working grid: every wall is thinner than one grid step."""


@dataclass(frozen=True)
class WallThickness:
    """What :func:`wall_thickness` measured.

    Attributes
    ----------
    surface : Mesh
        The surface the thickness is read on: the mesh itself, its triangles split until no edge is longer
        than two grid steps (the same surface; a box's 12 triangles would give 8 corners to read).
    vertex_thickness_mm : ndarray of float64, shape (V,)
        Wall thickness at each vertex of ``surface`` (diameter of the largest facing-wall ball reaching it);
        NaN where no such ball reaches (convex edges and corners of thick parts).
    min_wall_mm : float or None
        The thinnest wall: smallest finite vertex thickness.  When no two surfaces of the part face each
        other (a tetrahedron), the diameter of the largest inscribed sphere, said in ``choices``; None only
        for a part no grid point falls inside.
    resolution_mm : float
        Working grid step used.
    ball_centres_lps : ndarray, shape (N, 3)
        Centres of the facing-wall balls found (LPS mm).
    ball_radii_mm : ndarray, shape (N,)
    vertex_ball : ndarray of int64, shape (V,)
        Index of the ball that gave each vertex its thickness (-1 where none).
    choices : tuple of str
        Choices made for the caller (a coarsened grid), for the report.
    """

    surface: Mesh
    vertex_thickness_mm: NDArray[np.float64]
    min_wall_mm: float | None
    resolution_mm: float
    ball_centres_lps: NDArray[np.float64]
    ball_radii_mm: NDArray[np.float64]
    vertex_ball: NDArray[np.int64]
    choices: tuple[str, ...] = ()
    method: str = field(default=(
        "diameter of the largest inscribed sphere between facing surfaces (spoke angle >= "
        f"{MIN_SPOKE_ANGLE_DEG:g} deg), centred on the ridge of the exact signed distance field, read at each vertex"
    ))


@dataclass(frozen=True)
class ThinRegion:
    """A connected part of the surface where the walls are thinner than asked (both sides of a wall together).

    Attributes
    ----------
    centroid_lps : tuple of float
        Area-weighted centre of the region's triangles, LPS mm.
    area_mm2 : float
        Surface area of the region (both sides of the wall count).
    min_thickness_mm : float
        Thinnest wall in the region.
    bounds_lps : tuple of two (x, y, z)
        Bounding box of the region, LPS mm.
    """

    centroid_lps: tuple[float, float, float]
    area_mm2: float
    min_thickness_mm: float
    bounds_lps: tuple[tuple[float, float, float], tuple[float, float, float]]

    def as_dict(self) -> dict[str, object]:
        return {
            "centroid_lps_mm": [round(c, 3) for c in self.centroid_lps],
            "area_mm2": round(self.area_mm2, 3),
            "min_thickness_mm": round(self.min_thickness_mm, 3),
            "bounds_lps_mm": [[round(c, 3) for c in corner] for corner in self.bounds_lps],
        }


def default_resolution_mm(mesh: Mesh, thinnest_mm: float | None = None) -> tuple[float, tuple[str, ...]]:
    """The working grid step for a wall check of ``mesh`` and the choice said about it, if any.

    0.25 mm, or a quarter of ``thinnest_mm`` when that is finer (so that a wall just under the limit has
    several grid points across it), coarsened when the bounding box would need more than
    :data:`MAX_WALL_GRID_POINTS` points.
    """
    step = DEFAULT_RESOLUTION_MM if thinnest_mm is None else min(DEFAULT_RESOLUTION_MM, thinnest_mm / 4.0)
    step = max(step, FINEST_RESOLUTION_MM)
    low, high = mesh.bounds_mm()
    extent = np.asarray(high) - np.asarray(low)

    def points_at(spacing: float) -> float:
        return _grid_points(mesh, spacing)

    if points_at(step) <= MAX_WALL_GRID_POINTS:
        return step, ()
    coarse = step * (points_at(step) / MAX_WALL_GRID_POINTS) ** (1.0 / 3.0)
    while points_at(coarse) > MAX_WALL_GRID_POINTS:
        coarse *= 1.02
    coarse = math.ceil(coarse * 100.0) / 100.0
    if coarse > COARSEST_RESOLUTION_MM:
        raise DesignError(
            f"MESH: the part is {np.round(extent).astype(int).tolist()} mm across; a wall check needs a grid step of "
            f"{coarse:g} mm, coarser than {COARSEST_RESOLUTION_MM:g} mm; is it in the wrong unit? export it in mm"
        )
    choice = (f"working grid coarsened from {step:g} mm to {coarse:g} mm to stay under "
              f"{MAX_WALL_GRID_POINTS // 1_000_000} M grid points; walls under about {2 * coarse:g} mm are measured "
              f"to about {coarse / 2:g} mm; give --resolution for a finer check")
    logger.info(choice)
    return coarse, (choice,)


def _grid_points(mesh: Mesh, spacing_mm: float) -> float:
    """Points of the working grid a wall check of ``mesh`` uses at ``spacing_mm`` (6-step margins included)."""
    low, high = mesh.bounds_mm()
    return float(np.prod((np.asarray(high) - np.asarray(low) + 12.0 * spacing_mm) / spacing_mm + 1))


def wall_thickness(mesh: Mesh, *, resolution_mm: float | None = None,
                   thinnest_mm: float | None = None) -> WallThickness:
    """Wall thickness of a closed mesh at every vertex, as the diameter of the largest inscribed sphere.

    Parameters
    ----------
    mesh : Mesh
        A closed (watertight), outward-facing surface in mm.
    resolution_mm : float, optional
        Working grid step in mm (default: :func:`default_resolution_mm`).
    thinnest_mm : float, optional
        The thinnest wall the caller cares about (a material's minimum); refines the default grid.

    Returns
    -------
    WallThickness

    Raises
    ------
    ParameterError
        A resolution that is not a number in 0.02..2 mm, or too fine for the part to fit in memory.
    DesignError
        A mesh that encloses no grid point.
    """
    if thinnest_mm is not None:
        require_number(thinnest_mm, "--min-wall", low=0, low_open=True, high=100, unit="mm")
    choices: tuple[str, ...] = ()
    if resolution_mm is None:
        resolution_mm, choices = default_resolution_mm(mesh, thinnest_mm)
    else:
        require_number(resolution_mm, "--resolution", low=FINEST_RESOLUTION_MM, high=COARSEST_RESOLUTION_MM,
                       unit="mm")
        points = _grid_points(mesh, resolution_mm)
        if points > MAX_ASKED_GRID_POINTS:
            finest = resolution_mm * (points / MAX_ASKED_GRID_POINTS) ** (1.0 / 3.0)
            raise ParameterError(
                f"--resolution: a {resolution_mm:g} mm grid over this part needs {points / 1e6:.0f} M points, more "
                f"than the {MAX_ASKED_GRID_POINTS // 1_000_000} M a wall check can hold in memory; use --resolution "
                f"{math.ceil(finest * 1.05 * 100) / 100:g} or coarser"
            )
    logger.info("wall check on a %g mm working grid", resolution_mm)
    h = float(resolution_mm)
    grid = grid_around(mesh, h, 6.0 * h)
    try:
        values = mesh_distance(mesh, grid, exact_within_mm=(0.0,)).values
    except DesignError as error:
        raise ThinnerThanGridError(
            f"MESH: the part encloses no point of a {h:g} mm grid: it is thinner than {h:g} mm everywhere "
            "(or not closed); give a finer --resolution to measure it"
        ) from error
    centres, radii, touches = _facing_balls(mesh, grid, values, h)
    samples = _sampling_mesh(mesh, 2.0 * h)
    thickness, vertex_ball = _vertex_thickness(samples, centres, radii, touches, h)
    finite = thickness[np.isfinite(thickness)]
    min_wall: float | None = float(finite.min()) if finite.size else None
    if min_wall is None:
        deepest = _largest_inscribed_radius(mesh, grid, values, h)
        if deepest > 0:
            min_wall = 2.0 * deepest
            note = ("no two surfaces of the part face each other (no wall in the sense of this check); the minimum "
                    f"wall given is the diameter of its largest inscribed sphere, {min_wall:.2f} mm")
            logger.info(note)
            choices = (*choices, note)
    return WallThickness(
        surface=samples, vertex_thickness_mm=thickness, min_wall_mm=min_wall, resolution_mm=h, ball_centres_lps=centres,
        ball_radii_mm=radii, vertex_ball=vertex_ball, choices=choices,
    )


def _facing_balls(mesh: Mesh, grid: Grid, values: NDArray[np.float32],
                  h: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Centres, radii and the two touch points ``(N, 2, 3)`` of balls between facing sides."""
    shape = values.shape
    nz, ny, nx = shape
    strides = np.array([ny * nx, nx, 1], dtype=np.int64)
    candidate = np.zeros(shape, dtype=bool)
    core = (slice(1, -1),) * 3
    below = values < h
    flagged = []
    for axis in range(3):
        ahead = [slice(1, -1)] * 3
        behind = [slice(1, -1)] * 3
        ahead[axis] = slice(2, None)
        behind[axis] = slice(None, -2)
        bend = values[tuple(ahead)] + values[tuple(behind)]
        bend -= values[core]  # twice, in place: no grid-sized temporary
        bend -= values[core]
        along = np.zeros(shape, dtype=bool)
        along[core] = bend > _RIDGE_BEND * h
        along &= below
        candidate |= along
        flagged.append(np.flatnonzero(along))
    seeds = np.flatnonzero(candidate)
    empty = (np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2, 3)))
    if seeds.size == 0:
        return empty
    # The seeds and their two neighbours along each axis D bends on: a ridge right on a grid point bends D
    # there only, and its partner across the ridge is one of those neighbours.
    # Seeds are at least one step from the border (second differences need both neighbours).
    points_index = np.unique(np.concatenate(
        [seeds] + [flagged[axis] + sign * strides[axis] for axis in range(3) for sign in (1, -1)]
    ))
    points_index = points_index[values.reshape(-1)[points_index] < 2.0 * h]
    k, j, i = np.unravel_index(points_index, shape)
    origin = np.asarray(grid.geometry.origin, dtype=np.float64)
    points = origin + h * np.column_stack([i, j, k]).astype(np.float64)
    squared, face, closest = igl.point_mesh_squared_distance(points, mesh.vertices, mesh.faces)
    distance = np.sqrt(squared)
    inside = values.reshape(-1)[points_index] < 0
    signed_in = np.where(inside, distance, -distance)  # inward distance to the nearest side
    spoke = points - closest
    with np.errstate(invalid="ignore", divide="ignore"):
        inward = spoke / distance[:, None] * np.where(inside, 1.0, -1.0)[:, None]
    on_surface = distance < 1e-6 * h
    if on_surface.any():
        inward[on_surface] = -mesh.face_normals()[face[on_surface]]
    is_seed = candidate.reshape(-1)[points_index]
    cos_limit = math.cos(math.radians(MIN_SPOKE_ANGLE_DEG))
    first_all, second_all, s_all = [], [], []
    for dz, dy, dx in _PAIR_STEPS:
        step_index = points_index + dz * strides[0] + dy * strides[1] + dx * strides[2]
        where = np.searchsorted(points_index, step_index)
        where = np.minimum(where, len(points_index) - 1)
        found = points_index[where] == step_index
        a = np.flatnonzero(found)
        b = where[a]
        keep = (is_seed[a] | is_seed[b]) & (np.einsum("ij,ij->i", inward[a], inward[b]) <= cos_limit)
        a, b = a[keep], b[keep]
        e = h * np.array([dx, dy, dz], dtype=np.float64)
        e_u1 = inward[a] @ e
        e_u2 = inward[b] @ e
        denominator = e_u1 - e_u2
        usable = np.abs(denominator) > 0.3 * h
        a, b, e_u1, e_u2, denominator = a[usable], b[usable], e_u1[usable], e_u2[usable], denominator[usable]
        # Tangent planes: dA(p + s e) = dA(p) + s e.u1 and dB(p + s e) = dB(p') + (s - 1) e.u2; equal at s.
        s = (signed_in[b] - e_u2 - signed_in[a]) / denominator
        ok = (s >= -0.25) & (s <= 1.25)
        first_all.append(a[ok])
        second_all.append(b[ok])
        s_all.append(s[ok])
    first = np.concatenate(first_all)
    second = np.concatenate(second_all)
    s = np.concatenate(s_all)
    if first.size == 0:
        return empty
    u1, u2 = inward[first], inward[second]
    centres = points[first] + s[:, None] * (points[second] - points[first])
    model_radius = signed_in[first] + np.einsum("ij,ij->i", centres - points[first], u1)
    pair_inside = inside[first] | inside[second]
    good = model_radius > 0
    centres, model_radius, u1, u2 = centres[good], model_radius[good], u1[good], u2[good]
    pair_inside = pair_inside[good]
    if centres.shape[0] == 0:
        return empty
    # Many pairs see the same stretch of ridge: keep the largest ball per grid cell its centre falls in.
    cell = np.round((centres - origin) / h).astype(np.int64)
    cell_key = (cell[:, 2] * ny + cell[:, 1]) * nx + cell[:, 0]
    order = np.lexsort((-model_radius, cell_key))
    first_of_cell = np.ones(order.size, dtype=bool)
    first_of_cell[1:] = cell_key[order][1:] != cell_key[order][:-1]
    keep = order[first_of_cell]
    centres, model_radius, u1, u2 = centres[keep], model_radius[keep], u1[keep], u2[keep]
    pair_inside = pair_inside[keep]
    squared, _, _ = igl.point_mesh_squared_distance(centres, mesh.vertices, mesh.faces)
    exact = -np.sqrt(squared)
    # A centre between an inside grid point and the model's inside is inside; one between two outside grid
    # points (a wall thinner than the grid) is tested (pseudonormal sign: a third of the unsigned speed).
    doubtful = np.flatnonzero(~pair_inside)
    if doubtful.size:
        signed, _, _, _ = igl.signed_distance(centres[doubtful], mesh.vertices, mesh.faces,
                                              sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL)
        exact[doubtful] = signed
    # igl: negative inside.  A centre the model puts inside but that is outside is no ball at all, and one
    # that a third side comes closer to than the two the pair saw is off the ridge (in a corner): not a wall.
    good = (exact < 0) & (-exact >= model_radius - (_THIRD_SIDE_STEPS * h + _THIRD_SIDE_FRACTION * model_radius))
    # The two facing sides set the wall's thickness; a third side within the tolerance (the end of a wall at a
    # convex edge) would only shave the ball, not thin the wall.
    radii = model_radius[good]
    centres, u1, u2 = centres[good], u1[good], u2[good]
    touches = np.stack([centres - radii[:, None] * u1, centres - radii[:, None] * u2], axis=1)
    return centres, radii, touches


def _largest_inscribed_radius(mesh: Mesh, grid: Grid, values: NDArray[np.float32], h: float) -> float:
    """Radius of the largest inscribed sphere, refined off the grid.

    Around the deepest grid point, the sides nearest to the 5x5x5 grid points about it are taken as their
    tangent half-spaces, and the largest ball inside all of them (their Chebyshev centre, a linear programme)
    is the answer, capped by the exact distance from its centre to the mesh.
    """
    from scipy.optimize import linprog

    deepest = int(np.argmin(values))
    if values.reshape(-1)[deepest] >= 0:
        return 0.0
    centre_ijk = np.array(np.unravel_index(deepest, values.shape))
    around = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), axis=-1).reshape(-1, 3) + centre_ijk
    around = around[np.all((around >= 0) & (around < np.array(values.shape)), axis=1)]
    origin = np.asarray(grid.geometry.origin, dtype=np.float64)
    points = origin + h * around[:, ::-1].astype(np.float64)
    _, _, closest = igl.point_mesh_squared_distance(points, mesh.vertices, mesh.faces)
    spoke = points - closest
    length = np.linalg.norm(spoke, axis=1)
    usable = (length > 1e-6 * h) & (values[tuple(around.T)] < 0)
    inward, feet = spoke[usable] / length[usable, None], closest[usable]
    start = origin + h * centre_ijk[::-1].astype(np.float64)
    # maximise r subject to (x - f_i).u_i >= r, x within two steps of the deepest grid point
    a_ub = np.column_stack([-inward, np.ones(len(inward))])
    b_ub = -np.einsum("ij,ij->i", inward, feet)
    bounds = [(c - 2 * h, c + 2 * h) for c in origin + h * centre_ijk[::-1]] + [(0, None)]
    solved = linprog(c=[0, 0, 0, -1], A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    centre = solved.x[:3] if solved.success else start
    model = float(solved.x[3]) if solved.success else float(-values.reshape(-1)[deepest])
    exact, _, _, _ = igl.signed_distance(centre[None, :], mesh.vertices, mesh.faces,
                                         sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL)
    at_grid = float(length[np.flatnonzero(np.all(around == centre_ijk, axis=1))[0]])
    return max(min(model, float(-exact[0])), at_grid)


def _sampling_mesh(mesh: Mesh, max_edge_mm: float) -> Mesh:
    """The same surface with every triangle split (in four, repeatedly) until no edge exceeds ``max_edge_mm``."""
    import trimesh

    tri = mesh.vertices[mesh.faces]
    longest = float(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max())
    if longest <= max_edge_mm:
        return mesh
    iterations = max(int(math.ceil(math.log2(longest / max_edge_mm))) + 1, 1)
    vertices, faces = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=max_edge_mm,
                                                      max_iter=iterations)
    # subdivide_to_size leaves the split triangles' midpoints unshared between neighbours; merge them.
    merged = trimesh.Trimesh(vertices, faces, process=False)
    merged.merge_vertices()
    return Mesh(np.asarray(merged.vertices, dtype=np.float64), np.asarray(merged.faces, dtype=np.int64), mesh.name)


def _vertex_thickness(mesh: Mesh, centres: NDArray[np.float64], radii: NDArray[np.float64],
                      touches: NDArray[np.float64], h: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per vertex: the diameter of the largest ball reaching it (NaN where none) and that ball's index.

    A ball reaches a vertex lying within its sphere grown by :func:`_allowed_gap`.  Candidates are the
    balls whose touch points lie within a few grid steps; then, for a few rounds, the balls of a vertex's
    mesh neighbours (a maximal ball on a bumpy scanned surface touches only the tops of the bumps).
    """
    count = mesh.vertex_count
    thickness = np.full(count, np.nan)
    best = np.full(count, -1, dtype=np.int64)
    if radii.size == 0:
        return thickness, best
    tree = cKDTree(touches.reshape(-1, 3))
    for start in range(0, count, _VERTEX_CHUNK):  # chunks: (V, 16, 3) temporaries would take GBs on a skull
        vertices = mesh.vertices[start:start + _VERTEX_CHUNK]
        distance, index = tree.query(vertices, k=16, distance_upper_bound=_SEARCH_STEPS * h)
        valid = np.isfinite(distance)
        ball = np.where(valid, index // 2, 0)
        gap = np.linalg.norm(vertices[:, None, :] - centres[ball], axis=2) - radii[ball]
        reached = valid & (gap <= _allowed_gap(radii[ball], h))
        score = np.where(reached, radii[ball], -np.inf)
        pick = np.argmax(score, axis=1)
        rows = np.arange(len(vertices))
        hit = reached[rows, pick]
        best[start:start + len(vertices)][hit] = ball[rows, pick][hit]
    edges = np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])  # both directions: (to, from)
    for _ in range(_PROPAGATION_ROUNDS):
        open_edge = (best[edges[:, 0]] < 0) & (best[edges[:, 1]] >= 0)
        if not open_edge.any():
            break
        target, offer = edges[open_edge, 0], best[edges[open_edge, 1]]
        gap_offer = np.linalg.norm(mesh.vertices[target] - centres[offer], axis=1) - radii[offer]
        fits = gap_offer <= _allowed_gap(radii[offer], h)
        if not fits.any():
            break
        target, offer = target[fits], offer[fits]
        # Largest offered ball per vertex: sort by radius, the last write wins.
        order = np.argsort(radii[offer], kind="stable")
        best[target[order]] = offer[order]
    measured = best >= 0
    thickness[measured] = 2.0 * radii[best[measured]]
    return thickness, best


def _allowed_gap(radius: NDArray[np.float64], h: float) -> NDArray[np.float64]:
    """How far outside a ball's sphere a vertex it touches may lie: the sag of a grid step sideways plus
    half a step (facets, a scanned surface's roughness), or 5 % of the radius on large balls."""
    sag = np.sqrt(radius**2 + (_REACH_STEPS * h) ** 2) - radius
    return sag + np.maximum(_REACH_NORMAL_STEPS * h, _REACH_FRACTION * radius)


def thin_regions(walls: WallThickness, min_wall_mm: float) -> list[ThinRegion]:
    """Connected parts of the surface thinner than ``min_wall_mm``, thinnest first.

    A vertex is thin below ``min_wall_mm - LIMIT_TOLERANCE_MM``; a triangle is thin when at least two of its vertices are; thin triangles that share a vertex, or whose
    vertices were measured by the same ball (the two sides of one wall), form one region.
    """
    require_number(min_wall_mm, "--min-wall", low=0, low_open=True, unit="mm")
    mesh = walls.surface
    with np.errstate(invalid="ignore"):
        thin_vertex = walls.vertex_thickness_mm < min_wall_mm - LIMIT_TOLERANCE_MM
    thin_face = thin_vertex[mesh.faces].sum(axis=1) >= 2
    if not thin_face.any():
        return []
    faces = mesh.faces[thin_face]
    vertex_count = mesh.vertex_count
    ball_count = walls.ball_radii_mm.size
    # Nodes: vertices, then balls.  Edges: the thin faces' edges, and each thin vertex to its ball.
    rows = [faces[:, 0], faces[:, 1], faces[:, 2]]
    cols = [faces[:, 1], faces[:, 2], faces[:, 0]]
    linked = np.flatnonzero(thin_vertex & (walls.vertex_ball >= 0))
    rows.append(linked)
    cols.append(vertex_count + walls.vertex_ball[linked])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    size = vertex_count + ball_count
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(size, size)).tocsr()
    _, labels = connected_components(graph, directed=False)
    face_label = labels[faces[:, 0]]
    tri = mesh.vertices[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) / 2.0
    centre = tri.mean(axis=1)
    regions = []
    for label in np.unique(face_label):
        members = face_label == label
        region_area = float(area[members].sum())
        weights = area[members] if region_area > 0 else np.ones(int(members.sum()))
        centroid = (centre[members] * weights[:, None]).sum(axis=0) / weights.sum()
        vertices = np.unique(faces[members])
        values = walls.vertex_thickness_mm[vertices]
        corners = mesh.vertices[vertices]
        regions.append(ThinRegion(
            centroid_lps=tuple(float(v) for v in centroid),  # type: ignore[arg-type]
            area_mm2=region_area,
            min_thickness_mm=float(np.nanmin(values)),
            bounds_lps=(tuple(float(v) for v in corners.min(axis=0)),  # type: ignore[arg-type]
                        tuple(float(v) for v in corners.max(axis=0))),
        ))
    regions.sort(key=lambda region: (region.min_thickness_mm, -region.area_mm2))
    return regions


def check_min_wall(value: float, option: str = "--min-wall") -> None:
    """Refuse a minimum wall that is not a positive number of mm (at most 100)."""
    require_number(value, option, low=0, low_open=True, high=100, unit="mm")


__all__ = [
    "MIN_SPOKE_ANGLE_DEG",
    "ThinRegion",
    "ThinnerThanGridError",
    "WallThickness",
    "check_min_wall",
    "default_resolution_mm",
    "thin_regions",
    "wall_thickness",
]
