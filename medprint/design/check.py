"""Is a mesh printable?  Closedness, bodies, size and the thinnest wall, against a minimum.

:func:`check_mesh` runs :func:`medprint.mesh.assess_mesh` (watertight, manifold, winding, outward, bodies,
volume, area) and, on a closed mesh, :func:`medprint.design.walls.wall_thickness` (the diameter of the largest
inscribed sphere between facing surfaces), then compares the walls with the minimum given or with a
material profile's ``min_wall_mm``.  Nothing is written; the result is data (``as_dict`` for ``--json``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..mesh import MeshQuality, assess_mesh
from ..mesh.model import Mesh
from ..segment.checks import require_number
from .walls import (
    COARSEST_RESOLUTION_MM,
    FINEST_RESOLUTION_MM,
    MIN_SPOKE_ANGLE_DEG,
    ThinnerThanGridError,
    ThinRegion,
    WallThickness,
    thin_regions,
    wall_thickness,
)

logger = logging.getLogger("medprint")

#: Largest minimum wall accepted (mm): beyond, every real part would fail.
MAX_MIN_WALL_MM = 100.0
#: Thin regions listed in full in the result (all are counted).
MAX_REGIONS_LISTED = 20


@dataclass(frozen=True)
class CheckSettings:
    """What :func:`check_mesh` compares the walls with.

    Parameters
    ----------
    min_wall_mm : float, optional
        Thinnest wall allowed, mm (``--min-wall``).
    material : str, optional
        A material profile whose ``min_wall_mm`` is the limit (``--material``); not with ``min_wall_mm``.
    profiles_dir : Path, optional
        An extra folder of profiles (``--profiles``).
    resolution_mm : float, optional
        Working grid step for the wall measurement (default: 0.25 mm or a quarter of the minimum, finer of the two).
    measure_walls : bool
        Measure the walls at all (False: the closedness checks only).
    """

    min_wall_mm: float | None = None
    material: str | None = None
    profiles_dir: Path | None = None
    resolution_mm: float | None = None
    measure_walls: bool = True

    def __post_init__(self) -> None:
        if self.min_wall_mm is not None and self.material is not None:
            raise ParameterError("--min-wall and --material both set the minimum wall; give one of them")
        if self.min_wall_mm is not None:
            require_number(self.min_wall_mm, "--min-wall", low=0, low_open=True, high=MAX_MIN_WALL_MM, unit="mm")
        if self.material is not None and not str(self.material).strip():
            raise ParameterError("--material: the name is empty; give a material profile (see `medprint profiles list`)")
        if self.resolution_mm is not None:
            require_number(self.resolution_mm, "--resolution", low=FINEST_RESOLUTION_MM, high=COARSEST_RESOLUTION_MM,
                           unit="mm")
        if self.profiles_dir is not None and self.material is None:
            raise ParameterError("--profiles goes with --material NAME; add --material or drop it")


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check_mesh` found.

    Attributes
    ----------
    quality : MeshQuality
    bounds_lps : ((x, y, z), (x, y, z))
        Bounding box in LPS mm.
    walls : WallThickness or None
        None when the walls were not measured (an open mesh has no inside).
    min_wall_required_mm : float or None
    min_wall_source : str
        Where the limit came from (``'--min-wall'``, ``'material pla'``) or ``''``.
    regions : tuple of ThinRegion
        Parts of the surface thinner than the limit, thinnest first.
    problems : tuple of str
        Why the mesh is not printable (empty when it is).
    choices : tuple of str
        Choices made for the caller.
    """

    quality: MeshQuality
    bounds_lps: tuple[tuple[float, float, float], tuple[float, float, float]]
    walls: WallThickness | None
    min_wall_required_mm: float | None
    min_wall_source: str
    regions: tuple[ThinRegion, ...] = ()
    problems: tuple[str, ...] = ()
    choices: tuple[str, ...] = field(default=())

    @property
    def printable(self) -> bool:
        return not self.problems

    @property
    def min_wall_mm(self) -> float | None:
        return None if self.walls is None else self.walls.min_wall_mm

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts (``--json``)."""
        q = self.quality
        low, high = self.bounds_lps
        walls: dict[str, Any] | None = None
        if self.walls is not None:
            w = self.walls
            values = w.vertex_thickness_mm[np.isfinite(w.vertex_thickness_mm)]
            walls = {
                "method": w.method,
                "min_spoke_angle_deg": MIN_SPOKE_ANGLE_DEG,
                "resolution_mm": w.resolution_mm,
                "min_wall_mm": None if w.min_wall_mm is None else round(w.min_wall_mm, 3),
                "surface_measured_fraction": round(float(values.size / max(w.vertex_thickness_mm.size, 1)), 4),
                "thickness_percentiles_mm": (
                    {str(p): round(float(v), 3) for p, v in zip((1, 5, 50, 95), np.percentile(values, (1, 5, 50, 95)))}
                    if values.size else None
                ),
            }
        return {
            "printable": self.printable,
            "problems": list(self.problems),
            "watertight": q.watertight,
            "manifold": q.manifold,
            "winding_consistent": q.winding_consistent,
            "outward": q.outward,
            "bodies": q.bodies,
            "shells": q.shells,
            "cavities": q.cavities,
            "open_bodies": q.open_bodies,
            "boundary_edges": q.boundary_edges,
            "nonmanifold_edges": q.nonmanifold_edges,
            "degenerate_faces": q.degenerate_faces,
            "duplicate_faces": q.duplicate_faces,
            "volume_mm3": round(q.volume_mm3, 3),
            "area_mm2": round(q.area_mm2, 3),
            "bounding_box_lps_mm": {"min": [round(v, 3) for v in low], "max": [round(v, 3) for v in high],
                                    "size": [round(b - a, 3) for a, b in zip(low, high)]},
            "walls": walls,
            "min_wall_required_mm": self.min_wall_required_mm,
            "min_wall_source": self.min_wall_source or None,
            "thin_regions_count": len(self.regions),
            "thin_regions": [region.as_dict() for region in self.regions[:MAX_REGIONS_LISTED]],
            "choices": list(self.choices),
        }


def resolve_min_wall(settings: CheckSettings) -> tuple[float | None, str]:
    """The minimum wall and where it comes from; a material name is looked up in the profiles."""
    if settings.min_wall_mm is not None:
        return float(settings.min_wall_mm), "--min-wall"
    if settings.material is not None:
        from ..slice.profiles import load_profiles

        material = load_profiles(settings.profiles_dir).material(settings.material)
        return float(material.min_wall_mm), f"material {material.name}"
    return None, ""


def check_mesh(mesh: Mesh, settings: CheckSettings | None = None) -> CheckResult:
    """Check ``mesh`` for printing: closed, oriented, one or more bodies, walls no thinner than the minimum.

    Parameters
    ----------
    mesh : Mesh
        Triangles in mm.
    settings : CheckSettings, optional
        The minimum wall (or material) and the working grid; default: measure, compare with nothing.

    Returns
    -------
    CheckResult
        ``printable`` is false when the mesh is not closed and consistently outward, or when a wall is
        thinner than the minimum.
    """
    settings = settings or CheckSettings()
    required, source = resolve_min_wall(settings)
    quality = assess_mesh(mesh)
    bounds = mesh.bounds_mm()
    problems: list[str] = []
    choices: list[str] = []
    closed = quality.watertight and quality.manifold and quality.winding_consistent and quality.outward
    if not quality.is_printable:
        what = "not watertight" if not quality.watertight else "not printable as it is"
        problems.append(f"{what}: {quality.describe()}")
    walls: WallThickness | None = None
    regions: list[ThinRegion] = []
    if settings.measure_walls and closed:
        try:
            walls = wall_thickness(mesh, resolution_mm=settings.resolution_mm, thinnest_mm=required)
        except ThinnerThanGridError as error:
            problems.append(str(error).removeprefix("MESH: "))
        if walls is not None:
            choices.extend(walls.choices)
        if walls is not None and required is None:
            choices.append("no --min-wall or --material given: the walls are measured, not judged")
        if walls is not None and required is not None:
            regions = thin_regions(walls, required)
            if regions:
                thinnest = regions[0]
                x, y, z = thinnest.centroid_lps
                problems.append(
                    f"walls thinner than {required:g} mm ({source}) in {len(regions)} "
                    f"region{'s' if len(regions) != 1 else ''}; the thinnest, {thinnest.min_thickness_mm:.2f} mm, "
                    f"around LPS ({x:.1f}, {y:.1f}, {z:.1f}) mm over {thinnest.area_mm2:.1f} mm2"
                )
    elif settings.measure_walls:
        note = ("walls not measured: only a closed, consistently wound, outward-facing mesh has a known inside; "
                "repair it first")
        logger.info(note)
        choices.append(note)
    return CheckResult(
        quality=quality, bounds_lps=bounds, walls=walls, min_wall_required_mm=required, min_wall_source=source,
        regions=tuple(regions), problems=tuple(problems), choices=tuple(choices),
    )


__all__ = ["CheckResult", "CheckSettings", "check_mesh", "resolve_min_wall"]
