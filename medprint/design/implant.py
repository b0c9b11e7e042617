"""Cranial implants: the missing bone of a skull defect, reconstructed from a CT.

The skull is read along rays from its centre (:mod:`.implant_defect`): a defect is a patch of directions whose
rays meet no bone, and the implant fills that patch between an outer and an inner table.  The tables come from
one of two sources, and the report says which and why:

- ``mirror``: the healthy side, mirrored across the mid-sagittal plane (estimated by registering the skull to its
  own mirror image, :mod:`.implant_symmetry`, or given), bent by a thin-plate spline so that it meets the rim;
- ``rim``: thin-plate splines of the outer table's radius and of the wall's thickness over a ring of healthy bone
  around the defect, the method that works where the defect crosses the mid-sagittal plane (its mirror image is
  then partly missing too).  A cavity the ring has between the tables (a frontal sinus) is carried across too.

The implant is then a signed distance field on a working grid cropped to the defect: the shell between the two
tables, limited to the defect, minus the skull grown by the rim gap (exact point-to-triangle distances to the
skull's iso-surface), so its surface is watertight by construction and its gap is a true distance.

No wall of it is thinner than ``min_wall_mm`` (1 mm by default): the fitted tables never graze the rim's bone
into a feather edge nor leave a thin skin over a carried sinus, because (1) the tables are kept a minimum wall
and a grid step apart and a cavity is kept only where a skin that thick holds it on every side (filled where
not); (2) the implant is opened (eroded, then grown back with exact distances) by a ball of the minimum wall's
diameter, so what remains is a union of such balls; (3) its thinnest wall is then measured as ``medprint check``
does (largest inscribed sphere) and reported, and a wall still thinner than asked by more than a working step
is said with where it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import DesignError, ParameterError
from ..mesh import extract_surface
from ..mesh.model import Mesh
from ..segment import SegmentationSettings, get_preset, segment_by_threshold
from ..segment.checks import require_number
from ..volume import Mask, Volume
from .fields import DistanceField, field_surface
from .implant_defect import (
    MAX_VAULT_THICKNESS_MM,
    MIN_DEFECT_AREA_MM2,
    MIN_MIRROR_COVERAGE,
    ChartTrace,
    Defect,
    Tables,
    defect_area_mm2,
    find_defects,
    mirror_coverage,
    skull_centre,
    survey_skull,
    tables_from_mirror,
    tables_from_rim,
    thin_bone,
    trace_chart,
)
from .implant_fields import LATERAL_MARGIN_MM, build_fields, implant_field, skin_mm
from .implant_rays import ScanSampler
from .implant_symmetry import SymmetryPlane, estimate_symmetry_plane, mirror_residual
from .part import Part
from .walls import thin_regions, wall_thickness

log = logging.getLogger("medprint")

Point = tuple[float, float, float]

METHODS = ("auto", "mirror", "rim")
#: Default clearance between implant and skull at the rim (mm).  Half a millimetre lets a printed implant (PEEK,
#: PMMA, titanium) drop into the defect without being forced and is within what fixation plates bridge; 0 gives
#: the exact missing bone (the shape to compare with a reference), negative values an overlap (press fit).
DEFAULT_GAP_MM = 0.5
#: Largest |gap| (mm): beyond it the implant no longer fits the defect or rides over the bone.
MAX_GAP_MM = 3.0
#: Thickest implant asked for (mm): the thickest skull vaults are ~10-12 mm.
MAX_THICKNESS_MM = 15.0
#: Default thinnest wall (mm): a printable bone-implant wall (PEEK, PMMA and titanium implants are milled or
#: printed 1 mm and thicker at their edges; a PLA or resin trial piece also holds at 1 mm).
DEFAULT_MIN_WALL_MM = 1.0
#: Largest --min-wall (mm): beyond it no skull's vault has room for the implant.
MAX_MIN_WALL_MM = 10.0
#: Finest grid the implant's own wall check uses (mm).
WALL_CHECK_FINEST_MM = 0.2
#: Working grid spacing limits (mm).
MIN_RESOLUTION_MM, MAX_RESOLUTION_MM = 0.1, 2.0
#: --near may lie at most this far outside / inside the skull's outer surface (mm): a click in the defect, not
#: across the room or in the middle of the brain.
MAX_NEAR_DISTANCE_MM = 30.0
MAX_NEAR_DEPTH_MM = 40.0
#: A mirror registration worse than this (RMS mm) means the skull is not symmetric enough to mirror.
MAX_MIRROR_RESIDUAL_MM = 3.0
#: The defect "crosses" the plane when its rim lies more than this far on both sides of it (mm).
PLANE_CROSSING_MM = 1.0
#: Most of the implant's material that may lie apart from its main body and be dropped as slivers.
MAX_LOST_SHARE = 0.05
#: Spacing (mm) of the skull surface points read (the mask is strided down to about this).
SURFACE_POINT_MM = 1.0
#: Surface points used for the symmetry registration.
SYMMETRY_POINTS = 8_000


@dataclass(frozen=True)
class ImplantSettings:
    """How to design a cranial implant.

    Parameters
    ----------
    near : (x, y, z), optional
        A point (LPS mm) in or near the defect; default: the largest defect of the vault is found.
    plane : ((x, y, z), (nx, ny, nz)), optional
        The mid-sagittal plane as a point and a normal (LPS); default: estimated by registering the skull to
        its mirror image.
    thickness_mm : float, optional
        Implant thickness; default ``None`` follows the surrounding bone (both tables reconstructed).
    rim_gap_mm : float
        Clearance to the skull at the rim (> 0 a gap, < 0 an overlap, 0 the exact missing bone).
        Default :data:`DEFAULT_GAP_MM`.
    resolution_mm : float
        Working grid spacing (default 0.5 mm).
    preset : str
        Bone threshold preset (default ``'bone'``), unless ``threshold`` is given.
    threshold : (low, high), optional
        Bone range in the scan's units.
    method : {'auto', 'mirror', 'rim'}
        ``auto`` mirrors when the defect lies on one side of the mid-sagittal plane and its mirror image is
        bone, and interpolates from the rim otherwise.
    solid : bool
        Fill between the tables.  By default a cavity the surrounding bone has between them (a frontal sinus)
        is carried across the defect, as the bone was.
    min_wall_mm : float
        Thinnest wall the implant may have anywhere, rim and cavity skins included (default
        :data:`DEFAULT_MIN_WALL_MM`): the implant is opened by a ball of half this diameter, its tables kept at
        least this far apart, a carried cavity filled where its skin would be thinner.
    """

    near: Point | None = None
    plane: tuple[Point, Point] | None = None
    thickness_mm: float | None = None
    rim_gap_mm: float = DEFAULT_GAP_MM
    resolution_mm: float = 0.5
    preset: str = "bone"
    threshold: tuple[float, float] | None = None
    method: str = "auto"
    solid: bool = False
    min_wall_mm: float = DEFAULT_MIN_WALL_MM

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError(f"--method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.thickness_mm is not None:
            require_number(self.thickness_mm, "--thickness", low=0, high=MAX_THICKNESS_MM, low_open=True, unit="mm",
                           why="the thickest skull vaults are about 12 mm; leave it out to follow the bone")
        require_number(self.rim_gap_mm, "--gap", low=-MAX_GAP_MM, high=MAX_GAP_MM, unit="mm",
                       why="> 0 a clearance, < 0 an overlap; beyond 3 mm the implant no longer fits")
        require_number(self.resolution_mm, "--resolution", low=MIN_RESOLUTION_MM, high=MAX_RESOLUTION_MM,
                       unit="mm")
        require_number(self.min_wall_mm, "--min-wall", low=0, high=MAX_MIN_WALL_MM, low_open=True, unit="mm",
                       why="the thinnest wall the implant may have (1 mm is a printable bone-implant wall)")
        if self.thickness_mm is not None and self.thickness_mm < self.min_wall_mm:
            raise ParameterError(f"--thickness: {self.thickness_mm:g} mm is thinner than --min-wall "
                                 f"{self.min_wall_mm:g} mm; give a thicker implant or a smaller --min-wall")
        get_preset(self.preset)
        if self.threshold is not None:
            low, high = self.threshold
            require_number(low, "--threshold", why="the low bound")
            require_number(high, "--threshold", low=low, low_open=True, why="the high bound, above the low one")
        if self.near is not None:
            for value in self.near:
                require_number(value, "--near", unit="mm")
        if self.plane is not None:
            point, normal = self.plane
            for value in (*point, *normal):
                require_number(value, "--plane")
            if float(np.linalg.norm(normal)) < 1e-9:
                raise ParameterError(f"--plane: the normal {tuple(normal)} is zero; give the plane's normal, e.g. "
                                     "1,0,0 for the left-right axis")


class _LazyMeshes(Mapping[str, Mesh]):
    """Extra meshes made only when a writer asks for them (the whole skull costs a marching cubes)."""

    def __init__(self, makers: dict[str, Callable[[], Mesh]]) -> None:
        self._makers = makers
        self._made: dict[str, Mesh] = {}

    def __getitem__(self, name: str) -> Mesh:
        if name not in self._made:
            self._made[name] = self._makers[name]()
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


def design_implant(volume: Volume, settings: ImplantSettings = ImplantSettings()) -> Part:
    """Design the implant that fills a skull defect.

    Parameters
    ----------
    volume : Volume
        A head CT (any orientation and voxel size).
    settings : ImplantSettings

    Returns
    -------
    Part
        ``kind='implant'``; ``extras``: ``'anatomy'`` (the skull, for a fit check) and ``'rim'`` (a thin band
        along the defect's edge on the outer table).  ``measurements``: method, defect size, implant volume,
        thickness, rim gap achieved, the plane and the registration residual.

    Raises
    ------
    DesignError
        No defect found, --near far from the skull, --plane missing the skull, a method that cannot work here.
    """
    choices: list[str] = []
    skull, sampler = _skull(volume, settings, choices)
    surface = _surface_points(skull)
    centre, vault_radius = skull_centre(surface)
    far = float(np.linalg.norm(surface - centre, axis=1).max()) + 5.0
    # Rays start well inside the vault (the skull base may come closer to the centre than the vault does).
    rays = survey_skull(sampler, centre, 0.4 * vault_radius, far)
    defect = _choose_defect(sampler, rays, settings, choices)
    chart = trace_chart(sampler, rays, defect, settings.resolution_mm)
    plane = _plane(surface, centre, settings)
    method, why, tables, coverage = _reconstruct(sampler, chart, plane, settings)
    choices.extend(tables.notes)
    if settings.method == "auto":
        choices.append(f"method {method}: {why}")
    grid, fields = build_fields(sampler, chart, tables, settings)
    implant_values, removed, lost = implant_field(fields, settings, grid.geometry)
    cavity_used = settings.thickness_mm is None and not settings.solid and bool(np.isfinite(tables.gap_in).any())
    if lost > MAX_LOST_SHARE and cavity_used:
        # The cavity carried across (a sinus) cut the implant in pieces: one printable body needs it filled.
        choices.append(f"the cavity between the tables cut the implant in pieces ({100 * lost:.0f} % of it apart "
                       "from the main body); filled between the tables instead (as --solid)")
        settings = replace(settings, solid=True)
        grid, fields = build_fields(sampler, chart, tables, settings)
        implant_values, removed, lost = implant_field(fields, settings, grid.geometry)
    if lost > MAX_LOST_SHARE:
        raise DesignError(
            f"the implant falls apart: {100 * lost:.0f} % of it lies apart from its main body (the reconstructed "
            "tables do not span the defect, or the opening by --min-wall cut a thin bridge); try --method rim, "
            "--solid, a smaller --min-wall or a finer --resolution"
        )
    mesh = field_surface(DistanceField(implant_values, grid.geometry), "implant")
    if removed:
        choices.append(f"dropped {removed} slivers thinner than the working grid where the fitted tables graze the "
                       "rim's bone")
    measurements = _measure(mesh, chart, tables, plane, method, why, coverage, defect, settings)
    measurements.update(_gap_achieved(mesh, DistanceField(fields["bone"], grid.geometry), settings))
    measurements["min_wall_mm"] = _min_wall(mesh, settings, choices)
    sentence = {
        "mirror": "the healthy side mirrored across the mid-sagittal plane, bent by a thin-plate spline to meet "
                  "the rim",
        "rim": "outer table and wall thickness interpolated across the defect by thin-plate splines over the "
               "ring of bone around it",
    }[method]
    if settings.thickness_mm is not None:
        sentence += f"; inner surface {settings.thickness_mm:g} mm inside the outer one"
    extras = _LazyMeshes({
        "anatomy": lambda: extract_surface(skull).with_name("anatomy"),
        "rim": lambda: field_surface(DistanceField(fields["rim"], grid.geometry), "rim"),
    })
    return Part(mesh=mesh, kind="implant", method=sentence, measurements=measurements, choices=tuple(choices),
                extras=extras)


def _skull(volume: Volume, settings: ImplantSettings, choices: list[str]) -> tuple[Mask, ScanSampler]:
    if settings.threshold is not None:
        segmentation = SegmentationSettings(threshold=settings.threshold, keep="largest")
        low, high = settings.threshold
    else:
        if not volume.is_hounsfield:
            # The segmenter's own message lists options (Otsu, percentiles, seeds) design implant does not have.
            low_value, high_value = volume.value_range()
            raise ParameterError(
                f"--preset {settings.preset}: design implant reads a head CT in Hounsfield units, but this scan is "
                f"{volume.modality} (values {low_value:g}..{high_value:g}; a mask or an MRI?); give the CT the "
                "defect is in, or --threshold LO:HI for its bone in the scan's own units"
            )
        segmentation = SegmentationSettings(preset=settings.preset, keep="largest")
        preset = get_preset(settings.preset)
        low, high = preset.low, preset.high
    skull, steps = segment_by_threshold(volume, segmentation)
    choices.extend(f"skull: {step}" for step in steps)
    # Sampled in its own type (interpolated to float32 per sample): no full-size float copy of the scan.
    hu = np.asarray(volume.array)
    # The gate is the skull body grown by one voxel, so the interpolated threshold, not the voxel mask, places
    # the surface; other bodies (head holder, table) stay out.
    gate = ndimage.binary_dilation(skull.array, iterations=1)
    return skull, ScanSampler(hu=hu, body=gate, geometry=volume.geometry, low_hu=float(low), high_hu=float(high))


def _surface_points(skull: Mask) -> NDArray[np.float64]:
    """LPS centres of the skull's border voxels, on the mask taken every few voxels (a point per ~1 mm or finer
    is all the centre fit, the --near check and the symmetry registration need)."""
    stride = [max(1, int(SURFACE_POINT_MM // s)) for s in reversed(skull.geometry.spacing)]
    coarse = skull.array[::stride[0], ::stride[1], ::stride[2]]
    border = coarse & ~ndimage.binary_erosion(coarse)
    index = (np.argwhere(border) * np.asarray(stride))[:, ::-1].astype(float)
    if len(index) < 100:
        raise DesignError(f"the skull is only {len(index)} surface voxels: this is not a head CT, or the bone "
                          "threshold selects almost nothing; check --threshold")
    return skull.geometry.index_to_lps(index)


def _thin_text(defect: Defect) -> str:
    return ", ".join(f"{x:.0f}" for x in defect.point_lps)


def _choose_defect(sampler: ScanSampler, rays: Any, settings: ImplantSettings,
                   choices: list[str]) -> Defect:
    if settings.near is None:
        found = find_defects(rays, vault_only=True)
        # Bone too thin for the scan's voxels (partial volume under the threshold) is not a hole.
        thin = [d for d in found if thin_bone(sampler, rays, d).is_thin_bone]
        defects = [d for d in found if not any(d is t for t in thin)]
        if not defects:
            if thin:
                spots = "; ".join(_thin_text(d) for d in thin[:3])
                raise DesignError(
                    f"no defect found in the skull vault (thin bone at {spots} mm LPS is not taken as a defect: "
                    f"the scan shows bone there, thinner than its voxels; give --near "
                    f"{_thin_text(thin[0]).replace(', ', ',')} to design over it)"
                )
            raise DesignError(
                f"no defect found in the skull vault: every ray from the skull's centre meets bone (holes under "
                f"{MIN_DEFECT_AREA_MM2:g} mm2 are foramina); give --near X,Y,Z if the defect is lower, in the "
                "skull base, or check the bone threshold"
            )
        skipped = ("; thin bone, not taken as a defect, at " + "; ".join(_thin_text(d) + " mm LPS" for d in thin[:3])
                   if thin else "")
        if len(defects) > 1:
            others = "; ".join(d.describe() for d in defects[1:4])
            choices.append(f"defect: {len(defects)} found, designed for the largest ({defects[0].describe()}); "
                           f"others: {others}; use --near to choose{skipped}")
        else:
            choices.append(f"defect: found {defects[0].describe()}{skipped}")
        return defects[0]
    near = np.asarray(settings.near, float)
    # How far the click is from the skull's outer surface along its own ray (the surface interpolated across a
    # defect, so a click in the middle of a large defect is on it, not tens of mm from the remaining bone).
    offset = near - rays.centre
    radius = float(np.linalg.norm(offset))
    cell = int(np.argmax(rays.directions @ (offset / max(radius, 1e-9))))
    outside = radius - float(rays.r_out_filled.ravel()[cell])
    if outside > MAX_NEAR_DISTANCE_MM or outside < -MAX_NEAR_DEPTH_MM:
        where = f"{outside:.0f} mm outside" if outside > 0 else f"{-outside:.0f} mm deep inside"
        raise DesignError(
            f"--near {_point_text(near)}: the point lies {where} the skull's outer surface (most "
            f"{MAX_NEAR_DISTANCE_MM:g} mm outside, {MAX_NEAR_DEPTH_MM:g} mm inside); give a point in or at the edge "
            "of the defect, in LPS mm"
        )
    defects = find_defects(rays, vault_only=False)
    if not defects:
        raise DesignError(f"--near {_point_text(near)}: no defect found in the skull (every ray from its centre "
                          "meets bone); check the bone threshold")
    direction = near - rays.centre
    direction /= np.linalg.norm(direction)
    # Distance on the outer table from the clicked direction to each defect's nearest ray.
    gaps = [float(np.arccos(np.clip(d.directions @ direction, -1, 1)).min()) * d.radius_mm for d in defects]
    best = int(np.argmin(gaps))
    if gaps[best] > 15.0:
        raise DesignError(
            f"--near {_point_text(near)}: no defect within 15 mm of the point; the defects found are "
            + "; ".join(d.describe() for d in defects[:4])
        )
    choices.append(f"defect: the one at --near, {defects[best].describe()}")
    measured = thin_bone(sampler, rays, defects[best])
    if measured.is_thin_bone:
        choices.append(
            f"defect: the spot at --near has thin bone, not a hole: the scan shows a partial-volume bump of "
            f"~{measured.peak_hu:.0f} (soft tissue ~{measured.soft_hu:.0f}) across it, bone thinner than the scan's "
            "voxels and under the bone threshold; the implant is designed over it as asked"
        )
    return defects[best]


def _plane(surface: NDArray[np.float64], centre: NDArray[np.float64], settings: ImplantSettings) -> SymmetryPlane:
    step = max(1, len(surface) // SYMMETRY_POINTS)
    points = surface[::step]
    if settings.plane is not None:
        point, normal = (np.asarray(p, float) for p in settings.plane)
        normal = normal / np.linalg.norm(normal)
        offset = float(point @ normal)
        side = points @ normal - offset
        share = min(float((side > 0).mean()), float((side < 0).mean()))
        if share < 0.05:
            raise DesignError(
                f"--plane {_point_text(point)}:{_point_text(normal)}: the plane misses the skull (it cuts off "
                f"{100 * share:.0f} % of its surface); give a point on the mid-sagittal plane and its normal"
            )
        return SymmetryPlane(normal=normal, offset=offset, residual_mm=mirror_residual(points, normal, offset),
                             iterations=0, estimated=False)
    # Start from the patient's left-right axis through the vault's centre.
    return estimate_symmetry_plane(points, np.array([1.0, 0.0, 0.0]), centre)


def _reconstruct(sampler: ScanSampler, chart: ChartTrace, plane: SymmetryPlane,
                 settings: ImplantSettings) -> tuple[str, str, Tables, float | None]:
    rim_tables = None
    edge = ndimage.binary_dilation(chart.hole, iterations=max(1, round(LATERAL_MARGIN_MM / chart.pixel_mm)))
    rim_points = chart.centre + chart.chart.directions()[edge.ravel()] * np.nanmedian(chart.trace.r_out)
    sides = plane.signed_distance(rim_points)
    crosses = bool(sides.min() < -PLANE_CROSSING_MM and sides.max() > PLANE_CROSSING_MM)
    if settings.method == "rim":
        return "rim", "asked for (--method rim)", tables_from_rim(chart, skin_mm(settings)), None
    reason = ""
    if crosses:
        reason = "the defect crosses the mid-sagittal plane, so its mirror image is partly missing too"
    elif plane.residual_mm > MAX_MIRROR_RESIDUAL_MM:
        reason = (f"the skull matches its mirror image only to {plane.residual_mm:.1f} mm RMS (most "
                  f"{MAX_MIRROR_RESIDUAL_MM:g}): it is not symmetric enough to mirror")
    coverage = None
    mirrored = None
    if not reason:
        coverage, mirrored = mirror_coverage(sampler, chart, plane)
        if coverage < MIN_MIRROR_COVERAGE:
            reason = (f"only {100 * coverage:.0f} % of the defect's mirror image is bone: the opposite side is not "
                      "healthy there")
    if reason:
        if settings.method == "mirror":
            raise DesignError(f"--method mirror cannot work here: {reason}; use --method rim (or auto)")
        rim_tables = tables_from_rim(chart, skin_mm(settings))
        return "rim", reason, rim_tables, coverage
    assert mirrored is not None and coverage is not None
    why = (f"the defect lies on one side of the mid-sagittal plane and {100 * coverage:.0f} % of its mirror "
           "image is bone")
    return "mirror", why, tables_from_mirror(chart, mirrored, skin_mm(settings)), coverage


def _measure(mesh: Mesh, chart: ChartTrace, tables: Tables, plane: SymmetryPlane, method: str, why: str,
             coverage: float | None, defect: Defect, settings: ImplantSettings) -> dict[str, Any]:
    area = defect_area_mm2(chart, tables)
    hole = chart.hole
    thickness = (tables.r_out - tables.r_in)[hole]
    wall = chart.grid(chart.trace.r_out - chart.trace.r_in)
    ring_thickness = wall[chart.ring & (np.nan_to_num(wall, nan=np.inf) <= MAX_VAULT_THICKNESS_MM)]
    cavity = np.isfinite(tables.gap_in) & np.isfinite(tables.gap_out)
    measured: dict[str, Any] = {
        "method": method,
        "method_reason": why,
        "defect_area_mm2": round(area, 1),
        "defect_diameter_mm": round(float(2 * np.sqrt(area / np.pi)), 2),
        "defect_centre_lps_mm": [round(float(x), 2) for x in defect.point_lps],
        "implant_volume_mm3": round(mesh.volume_mm3(), 1),
        "rim_gap_asked_mm": settings.rim_gap_mm,
        "plane": plane.describe(chart.centre),
        "registration_residual_mm": round(plane.residual_mm, 3),
        "table_fit_residual_mm": round(tables.fit_residual_mm, 3),
        "surrounding_bone_thickness_mm": {"mean": round(float(np.nanmean(ring_thickness)), 2),
                                          "min": round(float(np.nanmin(ring_thickness)), 2)},
        "working_resolution_mm": settings.resolution_mm,
        # Share of the defect where a cavity between the tables (a frontal sinus) was carried across.
        "cavity_share_of_defect": (round(float(cavity[hole].mean()), 3)
                                   if settings.thickness_mm is None and not settings.solid else 0.0),
    }
    if coverage is not None:
        measured["mirror_bone_coverage"] = round(coverage, 4)
    if settings.thickness_mm is not None:
        measured["thickness_mm"] = {"asked": settings.thickness_mm}
    else:
        measured["thickness_mm"] = {"mean": round(float(thickness.mean()), 2),
                                    "min": round(float(thickness.min()), 2),
                                    "max": round(float(thickness.max()), 2)}
    return measured


def _min_wall(mesh: Mesh, settings: ImplantSettings, choices: list[str]) -> dict[str, Any]:
    """The implant's thinnest wall as ``medprint check`` measures it (largest inscribed sphere), against the asked.

    Measured on a grid of the working step (or half the minimum wall, if finer): the implant's surface is only
    known to about a working step, and a check finer than that costs seconds on a real case.  A wall thinner than
    asked by more than a working step is said (with where), never passed over.
    """
    resolution = max(WALL_CHECK_FINEST_MM, min(settings.resolution_mm, settings.min_wall_mm / 2))
    walls = wall_thickness(mesh, resolution_mm=resolution)
    asked = settings.min_wall_mm
    measured = walls.min_wall_mm
    result: dict[str, Any] = {"asked": asked, "measured": None if measured is None else round(measured, 3),
                              "check_resolution_mm": resolution,
                              "tolerance_mm": settings.resolution_mm}
    if measured is not None and measured < asked - settings.resolution_mm:
        regions = thin_regions(walls, asked - settings.resolution_mm)
        where = ", ".join(_point_text(np.asarray(region.centroid_lps)) for region in regions[:3])
        note = (f"walls thinner than --min-wall {asked:g} mm by more than the working grid's {settings.resolution_mm:g}"
                f" mm step remain in {len(regions)} places (thinnest {measured:.2f} mm, at LPS {where}); use a finer "
                "--resolution")
        log.warning(note)
        choices.append(note)
        result["thin_regions"] = [region.as_dict() for region in regions[:10]]
    return result


def _gap_achieved(mesh: Mesh, bone: DistanceField, settings: ImplantSettings) -> dict[str, Any]:
    """Distance from the implant's surface to the skull where they face each other (the rim).

    The rim is the implant's vertices within one grid step of the asked gap (the faces cut by the skull grown by
    the gap); their distances to the skull's iso-surface are the gap achieved.
    """
    distance = bone.sample(mesh.vertices)
    h = settings.resolution_mm
    gap = settings.rim_gap_mm
    near = distance <= max(gap, 0.0) + h
    if not near.any():
        return {"rim_gap_mm": None}
    facing = distance[near]
    return {"rim_gap_mm": {"median": round(float(np.median(facing)), 3), "min": round(float(facing.min()), 3),
                           "vertices": int(near.sum())}}


def _point_text(point: NDArray[np.float64]) -> str:
    return ",".join(f"{float(x):g}" for x in point)
