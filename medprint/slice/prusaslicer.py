"""The external engine: the same profiles translated to a PrusaSlicer config, ``prusa-slicer`` run headless.

The mesh is placed by medprint first (orientation, scale, bed centre) and
written as ``model.stl`` in a private temporary folder, so no input file
name (which may carry patient identifiers) reaches the G-code.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, MedprintError
from ..mesh.model import Mesh
from .gcode import MotionStats
from .placement import Placement
from .profiles import MaterialProfile, PrinterProfile, render_template
from .toolpaths import SUPPORT_GAP_MM

if TYPE_CHECKING:
    from .engine import SliceResult, SliceSettings

logger = logging.getLogger("medprint")

EXECUTABLE = "prusa-slicer"
_FLAVOURS = {"marlin2": "marlin2", "klipper": "klipper", "reprapfirmware": "reprapfirmware"}


class EngineError(MedprintError, RuntimeError):
    """The external slicer is missing or failed."""


def find_prusaslicer() -> str:
    """Path of the ``prusa-slicer`` program; EngineError with the install hint when absent."""
    found = shutil.which(EXECUTABLE)
    if found is None:
        raise EngineError(
            "--engine prusaslicer: the prusa-slicer program is not installed or not on PATH; install it "
            "(Debian/Ubuntu: apt-get install prusa-slicer) or use --engine builtin"
        )
    return found


def _ini_text(value: str) -> str:
    return value.strip().replace("\\", "\\\\").replace("\n", "\\n")


def prusaslicer_config(printer: PrinterProfile, material: MaterialProfile, settings: object,
                       *, max_z_mm: float) -> dict[str, str]:
    """PrusaSlicer 2.5 config keys for the same printer, material and settings."""
    s = settings
    w = printer.line_width_mm
    if printer.bed_shape == "circular":
        r = printer.build_x_mm / 2
        angles = np.radians(np.arange(0, 360, 10))
        bed = ",".join(f"{r * np.cos(a) + r:.2f}x{r * np.sin(a) + r:.2f}" for a in angles)
    else:
        bed = f"0x0,{printer.build_x_mm:g}x0,{printer.build_x_mm:g}x{printer.build_y_mm:g},0x{printer.build_y_mm:g}"
    vol_cap = material.max_volumetric_speed_mm3_s
    config = {
        "bed_shape": bed,
        "max_print_height": f"{printer.build_z_mm:g}",
        "nozzle_diameter": f"{printer.nozzle_diameter_mm:g}",
        "filament_diameter": f"{printer.filament_diameter_mm:g}",
        "gcode_flavor": _FLAVOURS[printer.firmware],
        "use_relative_e_distances": "0" if printer.firmware == "marlin2" else "1",
        "layer_height": f"{s.layer_height_mm:g}",  # type: ignore[attr-defined]
        "first_layer_height": f"{s.first_layer_height_mm:g}",  # type: ignore[attr-defined]
        "perimeters": str(s.perimeters),  # type: ignore[attr-defined]
        "top_solid_layers": str(s.top_layers),  # type: ignore[attr-defined]
        "bottom_solid_layers": str(s.bottom_layers),  # type: ignore[attr-defined]
        "fill_density": f"{s.infill_density * 100:g}%",  # type: ignore[attr-defined]
        "fill_pattern": s.infill_pattern,  # type: ignore[attr-defined]
        "top_fill_pattern": "rectilinear",
        "bottom_fill_pattern": "rectilinear",
        "support_material": "1" if s.supports else "0",  # type: ignore[attr-defined]
        "support_material_auto": "1",
        "support_material_threshold": f"{s.support_angle_deg:g}",  # type: ignore[attr-defined]
        "support_material_contact_distance": f"{s.support_z_gap_layers * s.layer_height_mm:g}",  # type: ignore
        "support_material_xy_spacing": f"{s.support_xy_gap_mm:g}",  # type: ignore[attr-defined]
        "support_material_spacing": f"{SUPPORT_GAP_MM:g}",
        "support_material_interface_layers": "0",
        "support_material_pattern": "rectilinear",
        "brim_width": f"{s.brim_width_mm:g}",  # type: ignore[attr-defined]
        "skirts": str(s.skirt_loops),  # type: ignore[attr-defined]
        "skirt_distance": f"{s.skirt_distance_mm:g}",  # type: ignore[attr-defined]
        "skirt_height": "1",
        "extrusion_width": f"{w:g}",
        "first_layer_extrusion_width": f"{w:g}",
        "perimeter_extrusion_width": f"{w:g}",
        "external_perimeter_extrusion_width": f"{w:g}",
        "infill_extrusion_width": f"{w:g}",
        "solid_infill_extrusion_width": f"{w:g}",
        "top_infill_extrusion_width": f"{w:g}",
        "support_material_extrusion_width": f"{w:g}",
        "temperature": f"{material.nozzle_temp_c:g}",
        "first_layer_temperature": f"{material.nozzle_temp_first_layer_c:g}",
        "bed_temperature": f"{material.bed_temp_c:g}",
        "first_layer_bed_temperature": f"{material.bed_temp_first_layer_c:g}",
        "cooling": "1",
        "fan_always_on": "1",
        "min_fan_speed": f"{material.fan_percent:g}",
        "max_fan_speed": f"{material.fan_percent:g}",
        "disable_fan_first_layers": "1" if material.fan_first_layer_percent == 0 else "0",
        "retract_length": f"{material.retraction_length_mm:g}",
        "retract_speed": f"{material.retraction_speed_mm_s:g}",
        "retract_before_travel": "1",
        "extrusion_multiplier": f"{material.flow_multiplier:g}",
        "filament_max_volumetric_speed": f"{vol_cap:g}",
        "filament_density": f"{material.density_g_cm3:g}",
        "filament_cost": f"{material.price_per_kg:g}",
        "perimeter_speed": f"{printer.perimeter_speed_mm_s:g}",
        "external_perimeter_speed": f"{printer.perimeter_speed_mm_s:g}",
        "small_perimeter_speed": f"{printer.perimeter_speed_mm_s:g}",
        "infill_speed": f"{printer.infill_speed_mm_s:g}",
        "solid_infill_speed": f"{printer.infill_speed_mm_s:g}",
        "top_solid_infill_speed": f"{printer.infill_speed_mm_s:g}",
        "support_material_speed": f"{printer.infill_speed_mm_s:g}",
        "gap_fill_speed": f"{printer.infill_speed_mm_s:g}",
        "bridge_speed": f"{printer.perimeter_speed_mm_s:g}",
        "first_layer_speed": f"{printer.first_layer_speed_mm_s:g}",
        "travel_speed": f"{printer.travel_speed_mm_s:g}",
        "machine_max_acceleration_extruding": f"{printer.max_acceleration_mm_s2:g}",
        "machine_max_acceleration_travel": f"{printer.max_acceleration_mm_s2:g}",
        "machine_max_acceleration_x": f"{printer.max_acceleration_mm_s2:g}",
        "machine_max_acceleration_y": f"{printer.max_acceleration_mm_s2:g}",
        "machine_max_feedrate_x": f"{printer.max_speed_mm_s:g}",
        "machine_max_feedrate_y": f"{printer.max_speed_mm_s:g}",
        "machine_limits_usage": "time_estimate_only",
        "gcode_comments": "0",
        "start_gcode": _ini_text(render_template(printer.start_gcode, printer, material, max_z_mm=max_z_mm)),
        "end_gcode": _ini_text(render_template(printer.end_gcode, printer, material, max_z_mm=max_z_mm)),
        # PrusaSlicer adds its own heat-up commands unless told the start G-code does it.
        "autoemit_temperature_commands": "0",
    }
    return config


_TIME = re.compile(r"(?:(\d+)d\s*)?(?:(\d+)h\s*)?(?:(\d+)m\s*)?(?:(\d+)s)?")


def parse_prusaslicer_stats(text: str) -> tuple[MotionStats, float | None, int]:
    """Filament (mm), time (s), grams and layer count from PrusaSlicer's G-code comments."""
    def find(pattern: str) -> str | None:
        match = re.search(pattern, text)
        return match.group(1) if match else None

    filament = float(find(r"; filament used \[mm\] = ([\d.]+)") or 0.0)
    grams = find(r"; filament used \[g\] = ([\d.]+)")
    time_text = find(r"; estimated printing time \(normal mode\) = ([^\n]+)") or ""
    match = _TIME.search(time_text.strip())
    seconds = 0.0
    if match:
        d, h, m, s = (int(g) if g else 0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    layers = text.count(";LAYER_CHANGE")
    stats = MotionStats(time_s=seconds, filament_mm=filament, travel_mm=0.0, extrude_mm=0.0, retractions=0)
    return stats, float(grams) if grams else None, layers


def slice_with_prusaslicer(mesh: Mesh, printer: PrinterProfile, material: MaterialProfile, settings: SliceSettings,
                           *, placement: Placement, actions: tuple[str, ...],
                           timings: dict[str, float]) -> SliceResult:
    """Run ``prusa-slicer`` on the placed mesh; returns a :class:`~medprint.slice.engine.SliceResult`."""
    from ..io.mesh_files import write_mesh
    from ..io.outputs import outside_run
    from .engine import _result

    program = find_prusaslicer()
    max_z = float(mesh.vertices[:, 2].max())
    config = prusaslicer_config(printer, material, settings, max_z_mm=min(printer.build_z_mm, max_z + 10))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medprint-prusaslicer-") as folder:
        work = Path(folder)
        (work / "datadir").mkdir()
        ini = work / "config.ini"
        ini.write_text("".join(f"{k} = {v}\n" for k, v in config.items()))
        model = work / "model.stl"
        # Inside the CLI's run, write_mesh would stage the file until the run's commit: prusa-slicer needs it now.
        with outside_run():
            write_mesh(mesh.with_name("model"), model, overwrite=True)
        out = work / "out.gcode"
        command = [program, "--datadir", str(work / "datadir"), "--load", str(ini), "--export-gcode",
                   "--center", f"{printer.build_x_mm / 2:g},{printer.build_y_mm / 2:g}", "-o", str(out), str(model)]
        logger.info("running %s", " ".join(command))
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EngineError(f"--engine prusaslicer: prusa-slicer could not run ({error})") from None
        if done.returncode != 0 or not out.is_file():
            output = (done.stderr + "\n" + done.stdout).splitlines()
            logger.info("prusa-slicer output:\n%s", "\n".join(output))
            # Its log lines ("[trace]", "[info]") bury the reason; the last other line is it.
            meaningful = [ln.strip() for ln in output if ln.strip() and not re.match(r"^\[[\d :.-]+\] \[0x", ln)]
            reason = meaningful[-1] if meaningful else f"exit code {done.returncode}"
            raise EngineError(f"--engine prusaslicer: prusa-slicer failed: {reason[:300]}; try --engine builtin")
        text = out.read_text(encoding="utf-8", errors="replace")
    timings["prusaslicer"] = time.perf_counter() - started
    stats, _, _ = parse_prusaslicer_stats(text)
    top_z = np.array(sorted({float(z) for z in re.findall(r"^;Z:([\d.]+)", text, flags=re.MULTILINE)}))
    if top_z.size == 0:
        raise InputError("--engine prusaslicer: prusa-slicer produced G-code without layers; check the mesh")
    return _result([text], stats, "prusaslicer", printer, material, settings,
                   top_z, placement, actions, timings)
