"""Mesh + printer + material + settings -> G-code: the slicing stage's public entry points."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MeshError, ParameterError
from ..io.atomic import atomic_path
from ..mesh.model import Mesh
from ..mesh.quality import make_printable
from ..progress import ProgressCallback, no_progress
from .gcode import GcodeSettings, MotionStats, header, write_layers
from .placement import ORIENT_CHOICES, Placement, place_on_bed
from .planar import layer_planes, section
from .profiles import MaterialProfile, PrinterProfile, check_compatible
from .toolpaths import INFILL_PATTERNS, PathChoices, ToolpathSettings, build_toolpaths

logger = logging.getLogger("medprint")

ENGINES = ("builtin", "prusaslicer")


#: ``--scale`` range: a hundredth to twenty times life-size; outside it a model is a speck or larger than any bed.
MIN_SCALE, MAX_SCALE = 0.01, 20.0
#: Widest brim (mm).
MAX_BRIM_MM = 50.0
#: Farthest a repair before slicing may move the surface (mm) unless ``--max-repair-move`` says otherwise:
#: about a printed line; a rebuild that moves it more is guessing at missing geometry.
DEFAULT_MAX_REPAIR_MOVE_MM = 0.5


def _finite(option: str, value: object) -> float:
    """``value`` as a float, refused (naming ``option``) unless a finite number; NaN passes every ``<`` test."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ParameterError(f"{option}: {value!r} is not a finite number")
    return float(value)


def _whole(option: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= int(value) <= high:
        raise ParameterError(f"{option}: {value!r} must be a whole number {low}..{high}")


@dataclass(frozen=True, kw_only=True)
class SliceSettings(PathChoices):
    """Choices for one slicing job (lengths in mm); ``None`` takes the printer profile's value.

    ``support_angle_deg``: down-facing surfaces flatter than this, measured from horizontal, get support.
    ``job_name``: free text for the G-code header (sanitised; never put patient identifiers here).
    """

    layer_height_mm: float | None = None
    first_layer_height_mm: float | None = None
    orient: str = "none"
    scale: float = 1.0
    repair: bool = True
    max_repair_move_mm: float = DEFAULT_MAX_REPAIR_MOVE_MM
    job_name: str | None = None

    def validated(self, printer: PrinterProfile) -> SliceSettings:
        """Fill defaults from ``printer`` and check every value; raises ParameterError naming the option."""
        layer = self.layer_height_mm if self.layer_height_mm is not None else printer.layer_height_mm
        first = self.first_layer_height_mm if self.first_layer_height_mm is not None else printer.first_layer_height_mm
        nozzle = printer.nozzle_diameter_mm
        for option, value in (("--layer-height", layer), ("--first-layer-height", first)):
            if not (0.04 <= _finite(option, value) <= 0.8 * nozzle):
                raise ParameterError(
                    f"{option}: {value:g} mm is outside 0.04..{0.8 * nozzle:g} mm for the {nozzle:g} mm nozzle "
                    f"of {printer.name!r}; choose a layer height in that range"
                )
        if not (0.0 <= _finite("--infill-density", self.infill_density) <= 1.0):
            raise ParameterError(f"--infill-density: {self.infill_density:g} must be a fraction 0..1 (or 0%..100%)")
        if self.infill_pattern not in INFILL_PATTERNS:
            raise ParameterError(f"--infill-pattern: {self.infill_pattern!r} is not one of {', '.join(INFILL_PATTERNS)}")
        _whole("--perimeters", self.perimeters, 1, 20)
        _whole("--top-layers", self.top_layers, 0, 50)
        _whole("--bottom-layers", self.bottom_layers, 0, 50)
        _whole("support z gap", self.support_z_gap_layers, 0, 10)
        _whole("skirt loops", self.skirt_loops, 0, 20)
        for option, value, high in (("support xy gap", self.support_xy_gap_mm, 10.0),
                                    ("skirt distance", self.skirt_distance_mm, 100.0)):
            if not 0 <= _finite(option, value) <= high:
                raise ParameterError(f"{option}: {value:g} mm must be 0..{high:g} mm")
        if not (0 < _finite("--support-angle", self.support_angle_deg) < 90):
            raise ParameterError(f"--support-angle: {self.support_angle_deg:g} must be between 0 and 90 degrees")
        if not (0 <= _finite("--brim", self.brim_width_mm) <= MAX_BRIM_MM):
            raise ParameterError(f"--brim: {self.brim_width_mm:g} mm must be 0..{MAX_BRIM_MM:g} mm")
        if not (MIN_SCALE <= _finite("--scale", self.scale) <= MAX_SCALE):
            raise ParameterError(f"--scale: {self.scale:g} must be {MIN_SCALE:g}..{MAX_SCALE:g} (1 = life-size)")
        if not 0 <= _finite("--max-repair-move", self.max_repair_move_mm):
            raise ParameterError(f"--max-repair-move: {self.max_repair_move_mm:g} mm must be 0 or more")
        if self.orient not in ORIENT_CHOICES:
            raise ParameterError(f"--orient: {self.orient!r} is not one of {', '.join(ORIENT_CHOICES)}")
        return replace(self, layer_height_mm=layer, first_layer_height_mm=first)


@dataclass
class SliceResult:
    """G-code text (in chunks, as written) and what a report needs."""

    chunks: list[str] = field(repr=False)
    engine: str
    printer: str
    material: str
    layer_count: int
    layer_top_mm: np.ndarray = field(repr=False)
    estimated_time_s: float
    filament_mm: float
    filament_g: float
    filament_cost: float
    currency: str
    placement: Placement | None
    settings: SliceSettings
    actions: tuple[str, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no G-code text, no patient data)."""
        out: dict[str, Any] = {
            "engine": self.engine, "printer": self.printer, "material": self.material,
            "layer_count": self.layer_count, "estimated_time_s": round(self.estimated_time_s, 1),
            "filament_mm": round(self.filament_mm, 1), "filament_g": round(self.filament_g, 2),
            "filament_cost": round(self.filament_cost, 2), "currency": self.currency,
            "settings": {k: v for k, v in asdict(self.settings).items() if k != "job_name"},
            "actions": list(self.actions), "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()},
        }
        if self.placement is not None:
            out["placement"] = {
                "orientation": self.placement.orientation, "scale": self.placement.scale,
                "size_mm": [round(s, 2) for s in self.placement.size_mm],
            }
        return out


def prepare_mesh(mesh: Mesh, *, repair: bool = True,
                 max_move_mm: float = DEFAULT_MAX_REPAIR_MOVE_MM) -> tuple[Mesh, tuple[str, ...]]:
    """Refuse an empty mesh; repair (or refuse, when ``repair`` is false) one that is not printable.

    A repair that moves the surface more than ``max_move_mm`` is refused; a smaller move is logged as a warning.
    """
    if mesh.is_empty:
        raise MeshError(f"the {mesh.name} mesh is empty: nothing to slice; check the input file")
    if not repair:
        from ..mesh.quality import assess_mesh

        quality = assess_mesh(mesh)
        if not quality.is_printable:
            raise MeshError(f"the {mesh.name} mesh is not printable ({quality.describe()}); "
                            "let medprint repair it (drop --no-repair) or fix it in a mesh editor")
        return mesh, ()
    result = make_printable(mesh)
    for action in result.actions:
        logger.info("repair before slicing: %s", action)
    if result.deviation_mm > max_move_mm:
        raise MeshError(
            f"the {mesh.name} mesh had holes; repairing it moved the surface up to {result.deviation_mm:.3g} mm, "
            f"more than --max-repair-move {max_move_mm:g} mm; fix the mesh (export it again whole) "
            "or raise --max-repair-move"
        )
    if result.deviation_mm > 0:
        # A model that is not what was scanned must not pass in silence: a warning, not only a JSON action.
        logger.warning("the %s mesh was repaired before slicing, moving its surface up to %.3g mm",
                       mesh.name, result.deviation_mm)
    return result.mesh, tuple(result.actions)


def slice_to_gcode(mesh: Mesh, printer: PrinterProfile, material: MaterialProfile,
                   settings: SliceSettings = SliceSettings(), *, engine: str = "builtin",
                   progress: ProgressCallback = no_progress) -> SliceResult:
    """Place ``mesh`` on ``printer``'s bed and slice it to G-code for ``material``.

    Parameters
    ----------
    mesh : Mesh
        Closed, outward-facing surface in mm (repaired first when needed and ``settings.repair``).
    printer, material : PrinterProfile, MaterialProfile
        From :func:`medprint.slice.load_profiles`; checked with :func:`check_compatible`.
    settings : SliceSettings
    engine : {'builtin', 'prusaslicer'}

    Returns
    -------
    SliceResult
        Write it with :func:`write_gcode`.

    Raises
    ------
    ParameterError, ProfileError, MeshError, InputError
        Bad settings, a material the printer cannot print, an empty or unrepairable mesh, a model that does
        not fit, or a missing external engine.
    """
    if engine not in ENGINES:
        raise ParameterError(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")
    check_compatible(printer, material)
    settings = settings.validated(printer)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    mesh, actions = prepare_mesh(mesh, repair=settings.repair, max_move_mm=settings.max_repair_move_mm)
    w = printer.line_width_mm
    margin = settings.skirt_distance_mm + settings.brim_width_mm + (settings.skirt_loops + 1) * w
    vertices, placement = place_on_bed(mesh, printer, scale=settings.scale, orient=settings.orient,
                                       support_angle_deg=settings.support_angle_deg, margin_mm=margin)
    timings["prepare"] = time.perf_counter() - started
    if engine == "prusaslicer":
        from .prusaslicer import slice_with_prusaslicer

        return slice_with_prusaslicer(Mesh(vertices, mesh.faces, mesh.name), printer, material, settings,
                                      placement=placement, actions=actions, timings=timings)
    assert settings.layer_height_mm is not None and settings.first_layer_height_mm is not None
    height = float(vertices[:, 2].max())
    cut_z, top_z = layer_planes(height, first_layer_height_mm=settings.first_layer_height_mm,
                                layer_height_mm=settings.layer_height_mm)
    thickness = np.diff(np.r_[0.0, top_z])
    t = time.perf_counter()
    layers = section(vertices, mesh.faces, cut_z, progress=progress)
    timings["section"] = time.perf_counter() - t
    t = time.perf_counter()
    paths = build_toolpaths(layers, ToolpathSettings(
        line_width_mm=w, layer_heights_mm=thickness, thin_wall_min_mm=printer.nozzle_diameter_mm / 3,
        **settings.path_choices(),  # type: ignore[arg-type]
    ), progress=progress)
    del layers
    # Paths are made and written layer by layer (a generator): only one layer's paths are in memory.
    chunks, stats = write_layers(paths, printer, material, GcodeSettings(
        line_width_mm=w, layer_top_mm=top_z, layer_height_mm=thickness, job_name=settings.job_name))
    timings["toolpaths_and_gcode"] = time.perf_counter() - t
    return _result(chunks, stats, "builtin", printer, material, settings, top_z, placement, actions, timings)


def _settings_lines(settings: SliceSettings, printer: PrinterProfile) -> list[str]:
    return [
        f"layer height: {settings.layer_height_mm:g} mm (first {settings.first_layer_height_mm:g} mm)",
        (f"line width: {printer.line_width_mm:g} mm, perimeters: {settings.perimeters}, "
         f"top/bottom layers: {settings.top_layers}/{settings.bottom_layers}"),
        f"infill: {settings.infill_density * 100:g}% {settings.infill_pattern}",
        f"supports: {'on, below ' + format(settings.support_angle_deg, 'g') + ' deg' if settings.supports else 'off'}",
        f"brim: {settings.brim_width_mm:g} mm, skirt loops: {settings.skirt_loops}",
        f"scale: {settings.scale:g}, orient: {settings.orient}",
    ]


def _result(chunks: list[str], stats: MotionStats, engine: str, printer: PrinterProfile,
            material: MaterialProfile, settings: SliceSettings, top_z: np.ndarray, placement: Placement | None,
            actions: tuple[str, ...], timings: dict[str, float]) -> SliceResult:
    head = header(printer=printer, material=material, engine=engine, layer_count=len(top_z), stats=stats,
                  settings_text=_settings_lines(settings, printer), job_name=settings.job_name)
    grams = stats.filament_mm * np.pi * (printer.filament_diameter_mm / 2) ** 2 / 1000.0 * material.density_g_cm3
    return SliceResult(
        chunks=[head, *chunks], engine=engine, printer=printer.name, material=material.name,
        layer_count=len(top_z), layer_top_mm=top_z, estimated_time_s=stats.time_s, filament_mm=stats.filament_mm,
        filament_g=grams, filament_cost=grams / 1000 * material.price_per_kg, currency=material.currency,
        placement=placement, settings=settings, actions=actions, timings_s=timings,
    )


def write_gcode(result: SliceResult, path: Path | str, *, overwrite: bool = False) -> Path:
    """Write the G-code atomically (never half a file; an existing file only with ``overwrite``)."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as temp, \
            temp.open("w", encoding="ascii", errors="replace", newline="\n") as handle:
        handle.writelines(result.chunks)
    return path
