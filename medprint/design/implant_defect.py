"""Finding a skull defect and reconstructing the two tables across it, on rays from the skull's centre.

The steps, each a plain function:

1. :func:`skull_centre` -- a point inside the vault (least-squares sphere through the vault's surface voxels).
2. :func:`find_defects` -- a coarse map of rays over the whole sphere of directions; the defects are the patches of
   directions whose rays meet no bone although they stay inside the scan, in the vault (above the skull base);
   :func:`thin_bone` then tells a hole from bone thinner than the scan's voxels (a partial-volume bump under the
   threshold where the tables should be), which is not taken as a defect unless --near asks for it.
3. :func:`trace_chart` -- a fine chart of rays over the chosen defect and a ring of healthy bone around it: both
   tables' radii on every ray, measured where there is bone.
4. :func:`tables_from_rim` / :func:`tables_from_mirror` -- the tables across the defect: a thin-plate spline of
   each table's radius over the ring (the rim method), or the mirrored skull's tables read through the defect's
   own rays with a thin-plate spline correction that makes them meet the rim exactly (the mirror method).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.interpolate import RBFInterpolator

from ..errors import DesignError
from .implant_rays import (
    Chart,
    ScanSampler,
    TableTrace,
    label_wrapped,
    sphere_directions,
    trace_tables,
)
from .implant_symmetry import SymmetryPlane

log = logging.getLogger("medprint")

#: Angular step of the whole-sphere search for defects (degrees): ~3 mm on a skull, finer than any defect sought.
SEARCH_STEP_DEG = 1.5
#: Smallest hole reported as a defect (mm2 on the outer table): ~8 mm across.  Smaller holes are foramina,
#: emissary veins or bone thinner than the threshold.
MIN_DEFECT_AREA_MM2 = 50.0
#: Without --near, defects are searched in the vault: directions at most this far below the centre's axial plane
#: (degrees).  Lower, the skull base's natural openings (foramen magnum, orbits) look like holes.
VAULT_LOWEST_ELEVATION_DEG = -20.0
#: Vault surface points used for the centre: within this height below the top of the skull (mm).
VAULT_HEIGHT_MM = 80.0
#: The ring of healthy bone the tables are fitted on: from this far outside the defect's edge (mm; the cut edge's
#: partial rays are skipped) ...
RING_INNER_MM = 2.0
#: ... to this far (mm).  A wider ring follows the skull's curvature over a larger patch.
RING_OUTER_MM = 14.0
#: Ring points used in a spline fit (subsampled evenly): the dense solve is cubic in their number.
MAX_SPLINE_POINTS = 1200
#: How far rays look beyond the ring's tables (mm).
RAY_WINDOW_MARGIN_MM = 8.0
#: A ray without bone counts as a hole only if it stays in the scan this far (mm) beyond the skull's outer radius
#: around it; rays that leave the scan sooner may have missed a skull the scan cuts off.
SCAN_END_MARGIN_MM = 2.0
#: Share of the defect's mirrored rays that must meet bone for the mirror method.
MIN_MIRROR_COVERAGE = 0.98
#: Thickest vault wall (mm): a ray with more bone than this between its first and last crossing saw something
#: else (the skull base, a calcified falx) through the inner table.
MAX_VAULT_THICKNESS_MM = 15.0
#: Thinnest wall the reconstruction may give before it is clamped (mm); the implant's --min-wall (plus a grid
#: step, so that the opening by half of it keeps a core) raises it.
MIN_TABLE_GAP_MM = 1.0


@dataclass(frozen=True)
class Defect:
    """A hole in the skull seen from its centre.

    ``directions``: (N, 3) unit directions of the coarse rays through it; ``area_mm2``: its area on the outer table;
    ``radius_mm``: the outer table's typical radius around it; ``point_lps``: its centre on the outer table.
    """

    directions: NDArray[np.float64]
    area_mm2: float
    radius_mm: float
    point_lps: NDArray[np.float64]
    mean_elevation_deg: float

    @property
    def diameter_mm(self) -> float:
        """Diameter of the disc of the same area."""
        return float(2.0 * np.sqrt(self.area_mm2 / np.pi))

    def describe(self) -> str:
        x, y, z = self.point_lps
        return f"{self.diameter_mm:.0f} mm across at ({x:.0f}, {y:.0f}, {z:.0f}) mm LPS"


@dataclass(frozen=True)
class SkullRays:
    """The coarse whole-sphere map: what every direction's ray met."""

    centre: NDArray[np.float64]
    directions: NDArray[np.float64]
    shape: tuple[int, int]
    elevations: NDArray[np.float64]
    trace: TableTrace
    r_out_filled: NDArray[np.float64]


def skull_centre(surface_lps: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """A point inside the vault and the vault's radius: the least-squares sphere through its surface points."""
    top = float(surface_lps[:, 2].max())
    vault = surface_lps[surface_lps[:, 2] > top - VAULT_HEIGHT_MM]
    if len(vault) < 100:
        vault = surface_lps
    design = np.column_stack([2.0 * vault, np.ones(len(vault))])
    solution, *_ = np.linalg.lstsq(design, (vault ** 2).sum(axis=1), rcond=None)
    centre = solution[:3]
    radius = float(np.sqrt(max(solution[3] + centre @ centre, 1.0)))
    return centre, radius


def survey_skull(sampler: ScanSampler, centre: NDArray[np.float64], near_mm: float, far_mm: float) -> SkullRays:
    """Trace the coarse rays over every direction, from ``near_mm`` to ``far_mm`` from the centre."""
    directions, shape, elevations = sphere_directions(SEARCH_STEP_DEG)
    # Half a voxel, but no finer than 0.4 mm: a bone plate is still sampled inside, and fine scans cost no more.
    step = max(0.5 * min(sampler.geometry.spacing), 0.4)
    trace = trace_tables(sampler, centre, directions, near_mm, far_mm, step)
    hit = trace.hit.reshape(shape)
    if not hit.any():
        raise DesignError("no ray from the skull's centre meets bone: the bone threshold selects no skull")
    _, nearest = ndimage.distance_transform_edt(~hit, return_indices=True)
    r_out = trace.r_out.reshape(shape)
    filled = r_out[nearest[0], nearest[1]]
    return SkullRays(centre=centre, directions=directions, shape=shape, elevations=elevations, trace=trace,
                     r_out_filled=filled)


def find_defects(rays: SkullRays, *, vault_only: bool) -> list[Defect]:
    """Every hole of at least :data:`MIN_DEFECT_AREA_MM2`, largest first.

    A ray that meets no bone is a hole only when it stays in the scan beyond the skull's radius there (a ray
    that leaves the scan first may just have missed a skull the scan cuts off).
    """
    hit = rays.trace.hit.reshape(rays.shape)
    exit_r = rays.trace.exit_r.reshape(rays.shape)
    unknown = ~hit & (exit_r < rays.r_out_filled + SCAN_END_MARGIN_MM)
    labels, count = label_wrapped(~hit & ~unknown)
    if count == 0:
        return []
    step = np.deg2rad(SEARCH_STEP_DEG)
    cell_area = step ** 2 * np.cos(rays.elevations)[:, None] * rays.r_out_filled ** 2
    flat_labels = labels.ravel()
    areas = ndimage.sum_labels(cell_area, labels, index=np.arange(1, count + 1))
    touches_unknown = ndimage.maximum(ndimage.binary_dilation(unknown, structure=np.ones((3, 3), bool)),
                                      labels, index=np.arange(1, count + 1))
    elevation_map = np.broadcast_to(np.rad2deg(rays.elevations)[:, None], rays.shape)
    defects = []
    for index in np.flatnonzero((areas >= MIN_DEFECT_AREA_MM2) & ~np.asarray(touches_unknown, bool)):
        member = flat_labels == index + 1
        mean_elevation = float(elevation_map.ravel()[member].mean())
        if vault_only and mean_elevation < VAULT_LOWEST_ELEVATION_DEG:
            continue
        directions = rays.directions[member]
        mean_direction = directions.mean(axis=0)
        mean_direction /= np.linalg.norm(mean_direction)
        radius = float(np.median(rays.r_out_filled.ravel()[member]))
        defects.append(Defect(directions=directions, area_mm2=float(areas[index]), radius_mm=radius,
                              point_lps=rays.centre + radius * mean_direction, mean_elevation_deg=mean_elevation))
    return sorted(defects, key=lambda d: -d.area_mm2)


@dataclass(frozen=True)
class ChartTrace:
    """The fine rays over a defect: the chart, the hole ``H`` on it, the healthy ring, the measured tables."""

    chart: Chart
    centre: NDArray[np.float64]
    radius_mm: float
    trace: TableTrace
    hole: NDArray[np.bool_]
    ring: NDArray[np.bool_]
    r_lo: float
    r_hi: float
    ray_step_mm: float

    @property
    def pixel_mm(self) -> float:
        """A chart cell's size on the outer table near the chart's centre (mm)."""
        return self.chart.step * self.radius_mm

    def grid(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        return values.reshape(self.chart.n, self.chart.n)

    def hole_distance_mm(self, dilate_mm: float = 0.0) -> NDArray[np.float64]:
        """Signed distance (mm, on the outer table, negative inside) to the hole grown by ``dilate_mm``."""
        outside = ndimage.distance_transform_edt(~self.hole) * self.pixel_mm
        inside = ndimage.distance_transform_edt(self.hole) * self.pixel_mm
        return np.where(self.hole, -inside + 0.5 * self.pixel_mm, outside - 0.5 * self.pixel_mm) - dilate_mm


def trace_chart(sampler: ScanSampler, rays: SkullRays, defect: Defect, resolution_mm: float) -> ChartTrace:
    """Trace fine rays (one per ``resolution_mm`` on the outer table) over the defect and its ring."""
    centre, radius = rays.centre, defect.radius_mm
    d0 = defect.directions.mean(axis=0)
    d0 /= np.linalg.norm(d0)
    spread = float(np.arccos(np.clip(defect.directions @ d0, -1, 1)).max()) + np.deg2rad(SEARCH_STEP_DEG)
    reach = spread + (RING_OUTER_MM + 4 * RING_INNER_MM) / radius
    if reach >= np.deg2rad(75):
        raise DesignError(
            f"the defect ({defect.describe()}) spans more than 150 degrees of the skull as seen from its centre; "
            "the reconstruction works on defects smaller than a hemisphere"
        )
    chart = Chart.about(d0, float(np.tan(reach)), resolution_mm / radius)
    # The window along the rays: the tables of the healthy bone around the defect, with a margin.
    neighbour = np.arccos(np.clip(rays.directions @ d0, -1, 1)) <= reach
    near_hits = neighbour & rays.trace.hit
    if not near_hits.any():
        raise DesignError(f"no bone around the defect ({defect.describe()}) to reconstruct it from")
    r_lo = max(0.0, float(np.percentile(rays.trace.r_in[near_hits], 2)) - RAY_WINDOW_MARGIN_MM)
    r_hi = float(np.percentile(rays.trace.r_out[near_hits], 98)) + RAY_WINDOW_MARGIN_MM
    ray_step = 0.5 * min(sampler.geometry.spacing)
    trace = trace_tables(sampler, centre, chart.directions(), r_lo, r_hi, ray_step)
    n = chart.n
    no_hit = ~trace.hit.reshape(n, n)
    labels, count = ndimage.label(no_hit)
    # The chart's hole is the no-hit patch that holds most of the coarse defect's rays.
    u, v = chart.to_uv(defect.directions)
    iu = np.clip(np.round((u + chart.half_width) / chart.step).astype(int), 0, n - 1)
    iv = np.clip(np.round((v + chart.half_width) / chart.step).astype(int), 0, n - 1)
    votes = np.bincount(labels[iv, iu], minlength=count + 1)
    votes[0] = 0
    if votes.max() == 0:
        raise DesignError(f"the defect ({defect.describe()}) closes when traced finely: it is bone thinner than "
                          "the threshold rather than a hole; lower the bone threshold or give --near")
    hole = labels == int(np.argmax(votes))
    pixel = chart.step * radius
    from_hole = ndimage.distance_transform_edt(~hole) * pixel
    from_any_gap = ndimage.distance_transform_edt(~no_hit) * pixel
    ring = ~no_hit & (from_hole <= RING_OUTER_MM) & (from_any_gap >= RING_INNER_MM)
    if hole[0, :].any() or hole[-1, :].any() or hole[:, 0].any() or hole[:, -1].any():
        raise DesignError(f"the defect ({defect.describe()}) runs out of the region traced around it: it is not "
                          "a hole surrounded by bone (a skull cut off by the scan?); give --near on a closed defect")
    if ring.sum() < 30:
        raise DesignError(f"too little healthy bone around the defect ({defect.describe()}) to reconstruct it from")
    return ChartTrace(chart=chart, centre=centre, radius_mm=radius, trace=trace, hole=hole, ring=ring,
                      r_lo=r_lo, r_hi=r_hi, ray_step_mm=ray_step)


@dataclass(frozen=True)
class Tables:
    """The reconstructed tables over the chart, (n, n) maps of radii in mm.

    ``r_in`` / ``r_out``: inner and outer surface; ``gap_in`` / ``gap_out``: a cavity between them (frontal sinus,
    diploe under the threshold) where the surrounding bone has one, NaN elsewhere.
    """

    r_in: NDArray[np.float64]
    r_out: NDArray[np.float64]
    gap_in: NDArray[np.float64]
    gap_out: NDArray[np.float64]
    fit_residual_mm: float
    notes: tuple[str, ...] = ()


#: Cells farther than this from the hole (mm) are not used by the implant's fields: splines are evaluated inside.
_EVALUATE_WITHIN_MM = 10.0
#: Thinnest cavity reproduced (mm) and thinnest table kept on each side of it (mm).
MIN_CAVITY_MM = 1.0
MIN_CAVITY_WALL_MM = 0.5
#: Thin-plate spline smoothing (kernel in mm) of the outer table's radius and the wall's thickness (nearly
#: interpolating: the rim is measured to a fraction of a voxel) and of a cavity's width and middle (stiffer: a
#: sinus's edge is ragged).
OUTER_SMOOTHING = 1.0
THICKNESS_SMOOTHING = 1.0
CAVITY_SMOOTHING = 5.0
#: Smoothing of the mirror method's bend (measured minus mirrored tables over the ring): a gentle, large-scale
#: correction of the skull's asymmetry, not a copy of the rim's noise.
CORRECTION_SMOOTHING = 1000.0
#: Splines are evaluated on every this many chart cells and interpolated between.
_EVALUATION_STRIDE = 3


def _spline_fit(ct: ChartTrace, values: NDArray[np.float64], where: NDArray[np.bool_],
                smoothing: float) -> tuple[NDArray[np.float64], float]:
    """Thin-plate spline of ``values`` (n*n) over the chart cells ``where``, robust to outliers; (map, RMS residual).

    The map is evaluated near the hole, where the implant is built, and carried out to the rest of the chart by
    its nearest evaluated value.
    """
    u, v = ct.chart.uv()
    points_mm = np.column_stack([u.ravel(), v.ravel()]) * ct.radius_mm
    chosen = np.flatnonzero(where.ravel() & np.isfinite(values))
    if len(chosen) < 20:
        raise DesignError("too little healthy bone around the defect to fit its tables to; give --near on a defect "
                          "surrounded by bone")
    if len(chosen) > MAX_SPLINE_POINTS:
        chosen = chosen[np.linspace(0, len(chosen) - 1, MAX_SPLINE_POINTS).astype(int)]
    keep = np.ones(len(chosen), bool)
    residual = np.zeros(len(chosen))
    for _ in range(3):
        spline = RBFInterpolator(points_mm[chosen[keep]], values[chosen[keep]], kernel="thin_plate_spline",
                                 smoothing=smoothing, degree=1)
        residual = values[chosen] - spline(points_mm[chosen])
        spread = 1.4826 * float(np.median(np.abs(residual[keep] - np.median(residual[keep]))))
        new_keep = np.abs(residual) <= max(3.0 * spread, 0.5)
        if new_keep.sum() < 20 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    rms = float(np.sqrt(np.mean(residual[keep] ** 2)))
    # The spline is smooth on the scale of millimetres: evaluate it on every third cell near the hole and
    # interpolate between (the evaluation, not the solve, is what costs).
    n, stride = ct.chart.n, _EVALUATION_STRIDE
    coarse_axis = np.arange(0, n + stride - 1, stride)
    evaluate = ct.hole_distance_mm(_EVALUATE_WITHIN_MM + stride * ct.pixel_mm) <= 0
    coarse_u, coarse_v = np.meshgrid(coarse_axis, coarse_axis, indexing="xy")
    wanted = evaluate[np.minimum(coarse_v, n - 1), np.minimum(coarse_u, n - 1)]
    coarse = np.full(coarse_u.shape, np.nan)
    at_mm = (np.column_stack([coarse_u[wanted], coarse_v[wanted]]) * ct.chart.step - ct.chart.half_width) * ct.radius_mm
    coarse[wanted] = spline(at_mm)
    _, nearest = ndimage.distance_transform_edt(~wanted, return_indices=True)
    coarse = coarse[nearest[0], nearest[1]]
    fine = np.arange(n) / stride
    rows, cols = np.meshgrid(fine, fine, indexing="ij")
    result = ndimage.map_coordinates(coarse, [rows.ravel(), cols.ravel()], order=1, mode="nearest")
    return result.reshape(n, n), rms


def _clamped(r_in: NDArray[np.float64], r_out: NDArray[np.float64], hole: NDArray[np.bool_],
             min_gap_mm: float) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    """The inner table kept at least ``min_gap_mm`` under the outer one (splines fitted apart may cross)."""
    min_gap_mm = max(MIN_TABLE_GAP_MM, min_gap_mm)
    thin = (r_out - r_in < min_gap_mm) & hole
    if thin.any():
        note = (f"the reconstructed tables came closer than {min_gap_mm:g} mm over "
                f"{100.0 * thin.sum() / max(1, hole.sum()):.0f} % of the defect; the wall was kept {min_gap_mm:g} mm "
                "thick there")
        return np.minimum(r_in, r_out - min_gap_mm), (note,)
    return r_in, ()


def _cavity(gap_in: NDArray[np.float64], gap_out: NDArray[np.float64], r_in: NDArray[np.float64],
            r_out: NDArray[np.float64], skin_mm: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A cavity kept inside the tables with skins of at least ``skin_mm`` (and :data:`MIN_CAVITY_WALL_MM`) on
    each side, filled (NaN) where that leaves it thinner than :data:`MIN_CAVITY_MM`."""
    skin_mm = max(MIN_CAVITY_WALL_MM, skin_mm)
    low = np.maximum(gap_in, r_in + skin_mm)
    high = np.minimum(gap_out, r_out - skin_mm)
    # A cavity narrower than the skin is no more printable than the skin (a slot that thin fills in), nor held
    # by the working grid: filled.
    real = np.isfinite(low) & np.isfinite(high) & (high - low >= max(MIN_CAVITY_MM, skin_mm))
    return np.where(real, low, np.nan), np.where(real, high, np.nan)


def _vault_ring(ct: ChartTrace, thickness: NDArray[np.float64]) -> NDArray[np.bool_]:
    """The ring's rays whose bone is one vault wall: at most :data:`MAX_VAULT_THICKNESS_MM` thick."""
    return ct.ring & (ct.grid(np.nan_to_num(thickness, nan=np.inf)) <= MAX_VAULT_THICKNESS_MM)


def tables_from_rim(ct: ChartTrace, min_wall_mm: float = MIN_TABLE_GAP_MM) -> Tables:
    """Both tables interpolated across the defect from the ring of bone around it (thin-plate splines).

    A cavity between the tables (a frontal sinus) is interpolated the same way, as its width (0 where the ring's
    bone is solid) and its middle radius, so it closes smoothly where the surrounding bone has none.  The wall is
    kept at least ``min_wall_mm`` thick, and so is each skin of bone over the cavity (it is filled where not).
    """
    trace = ct.trace
    r_out, res_out = _spline_fit(ct, trace.r_out, ct.ring, OUTER_SMOOTHING)
    # The inner table as the wall's thickness under the outer one: smoother than its radius, and rays whose first
    # bone is no vault (the skull base's ridges, seen past the inner table) are known by their thickness.
    thickness = trace.r_out - trace.r_in
    thickness_map, res_in = _spline_fit(ct, thickness, _vault_ring(ct, thickness), THICKNESS_SMOOTHING)
    r_in, notes = _clamped(r_out - thickness_map, r_out, ct.hole, min_wall_mm)
    has_gap = np.isfinite(trace.gap_in)
    ring = ct.ring.ravel() & trace.hit
    gap_in = np.full((ct.chart.n, ct.chart.n), np.nan)
    gap_out = gap_in.copy()
    if has_gap[ring].mean() > 0.02:
        width = np.where(has_gap, trace.gap_out - trace.gap_in, 0.0)
        middle = np.where(has_gap, (trace.gap_in + trace.gap_out) / 2, (trace.r_in + trace.r_out) / 2)
        width_map, _ = _spline_fit(ct, width, ct.ring, CAVITY_SMOOTHING)
        middle_map, _ = _spline_fit(ct, middle, ct.ring, CAVITY_SMOOTHING)
        gap_in, gap_out = _cavity(middle_map - width_map / 2, middle_map + width_map / 2, r_in, r_out, min_wall_mm)
    return Tables(r_in=r_in, r_out=r_out, gap_in=gap_in, gap_out=gap_out, fit_residual_mm=max(res_out, res_in),
                  notes=notes)


def mirror_coverage(sampler: ScanSampler, ct: ChartTrace, plane: SymmetryPlane) -> tuple[float, TableTrace]:
    """Share of the defect's rays whose mirror image meets bone, and the mirrored trace."""
    mirrored = trace_tables(sampler, ct.centre, ct.chart.directions(), ct.r_lo, ct.r_hi, ct.ray_step_mm,
                            reflect=(plane.normal, plane.offset))
    hole = ct.hole.ravel()
    return float(mirrored.hit[hole].mean()), mirrored


def tables_from_mirror(ct: ChartTrace, mirrored: TableTrace, min_wall_mm: float = MIN_TABLE_GAP_MM) -> Tables:
    """The mirrored skull's tables over the defect, bent (thin-plate spline of the differences over the ring) so
    that they meet the healthy bone at the rim; wall and cavity skins at least ``min_wall_mm`` thick."""
    n = ct.chart.n
    both = ct.ring & mirrored.hit.reshape(n, n)
    maps = []
    residuals = []
    vault = both & _vault_ring(ct, ct.trace.r_out - ct.trace.r_in) & _vault_ring(ct, mirrored.r_out - mirrored.r_in)
    for measured, opposite, where in ((ct.trace.r_out, mirrored.r_out, both), (ct.trace.r_in, mirrored.r_in, vault)):
        correction, residual = _spline_fit(ct, measured - opposite, where, CORRECTION_SMOOTHING)
        base = ct.grid(opposite)
        # Where the mirror image has no bone, the spline of the measured table stands in.
        if not np.isfinite(base).all():
            fallback, _ = _spline_fit(ct, measured, ct.ring, OUTER_SMOOTHING)
            base = np.where(np.isfinite(base), base, fallback - correction)
        maps.append(base + correction)
        residuals.append(residual)
    r_out = maps[0]
    r_in, notes = _clamped(maps[1], r_out, ct.hole, min_wall_mm)
    shift_out = r_out - np.where(np.isfinite(ct.grid(mirrored.r_out)), ct.grid(mirrored.r_out), r_out)
    shift_in = r_in - np.where(np.isfinite(ct.grid(mirrored.r_in)), ct.grid(mirrored.r_in), r_in)
    gap_in, gap_out = _cavity(ct.grid(mirrored.gap_in) + shift_in, ct.grid(mirrored.gap_out) + shift_out, r_in,
                              r_out, min_wall_mm)
    return Tables(r_in=r_in, r_out=r_out, gap_in=gap_in, gap_out=gap_out, fit_residual_mm=max(residuals),
                  notes=notes)


def defect_area_mm2(ct: ChartTrace, tables: Tables) -> float:
    """Area of the hole on the reconstructed outer table."""
    return float((ct.chart.solid_angle() * tables.r_out ** 2)[ct.hole].sum())


#: A candidate defect is bone too thin for the scan (partial volume), not a hole, when along its rays the CT shows
#: a bump at the table's depth that reaches at least this share of the way from the ray's own soft tissue (the
#: brain just inside) to the bone threshold, above the soft tissue's own noise (median over the patch's rays).
#: Measured: a real frontal defect 0.04; balls of bone cut out of the real skull (replaced by 20 HU, keeping the
#: sub-threshold partial-volume skin of the cut surfaces) 0.18 and -0.02; the intact real skull's thin frontal
#: bone (peak ~100 HU over brain at ~10 HU, under the 226 HU threshold) 0.38.  The level lies between the cut
#: ball and the thin bone (about their geometric mean); fainter bumps are taken as holes.
THIN_BONE_MIN_SHARE = 0.25
#: The soft tissue a ray is compared with: its samples this far inside the neighbouring inner table (mm).
SOFT_WINDOW_MM = (3.0, 15.0)


@dataclass(frozen=True)
class ThinBone:
    """What the rays of a candidate defect show where its tables should be."""

    share: float          # median over its rays of (table-depth peak - soft tissue's peak) / (threshold - soft)
    peak_hu: float        # median table-depth peak (the partial-volume bump, or the hole's soft tissue)
    soft_hu: float        # median soft tissue just inside

    @property
    def is_thin_bone(self) -> bool:
        return self.share >= THIN_BONE_MIN_SHARE


def thin_bone(sampler: ScanSampler, rays: SkullRays, defect: Defect) -> ThinBone:
    """Tell a hole from bone too thin for the scan's resolution, on the defect's own coarse rays.

    Each ray is sampled (without the bone gate) from inside the neighbouring inner table (the brain) through the
    depth the tables have around it (the nearest hit rays' ``r_in``..``r_out``, 1 mm wider).  A hole shows the
    same soft tissue or air there as in the brain; thin bone a partial-volume bump above it.  The bump is taken
    above the brain window's own maximum (its noise), as a share of the contrast between that soft tissue and
    the bone threshold, so the test does not depend on the scan's noise or calibration.
    """
    hit = rays.trace.hit.reshape(rays.shape)
    _, nearest = ndimage.distance_transform_edt(~hit, return_indices=True)
    r_in_filled = rays.trace.r_in.reshape(rays.shape)[nearest[0], nearest[1]].ravel()
    member = np.flatnonzero((rays.directions @ defect.directions.T).max(axis=1) > 1.0 - 1e-9)
    if len(member) == 0:
        return ThinBone(share=0.0, peak_hu=float("nan"), soft_hu=float("nan"))
    directions = rays.directions[member]
    r_in = r_in_filled[member]
    r_out = rays.r_out_filled.ravel()[member]
    step = max(0.5 * min(sampler.geometry.spacing), 0.3)
    offsets = np.arange(-SOFT_WINDOW_MM[1], float(np.max(r_out - r_in)) + 1.0 + step, step)
    radii = r_in[:, None] + offsets[None, :]
    points = rays.centre + radii[..., None] * directions[:, None, :]
    zyx = sampler.index_zyx(points.reshape(-1, 3))
    values = ndimage.map_coordinates(sampler.hu, zyx, order=1, mode="constant", cval=-1024.0, prefilter=False,
                                     output=np.float32).reshape(radii.shape).astype(float)
    table = (offsets[None, :] >= -1.0) & (radii <= r_out[:, None] + 1.0)
    soft = (offsets >= -SOFT_WINDOW_MM[1]) & (offsets <= -SOFT_WINDOW_MM[0])
    peak = np.where(table, values, -np.inf).max(axis=1)
    soft_values = values[:, soft]
    soft_median = np.median(soft_values, axis=1)
    soft_peak = soft_values.max(axis=1)
    contrast = np.maximum(sampler.low_hu - soft_median, 1.0)
    share = (peak - soft_peak) / contrast
    return ThinBone(share=float(np.median(share)), peak_hu=float(np.median(peak)),
                    soft_hu=float(np.median(soft_median)))
