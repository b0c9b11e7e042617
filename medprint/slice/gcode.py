"""Toolpaths to G-code text for Marlin 2, Klipper and RepRapFirmware, with estimates.

Coordinates are written with numpy-formatted columns per layer; the header is
comments only (every line starts with ';') and carries no patient data: any
free text (an order name) is reduced to printable characters on one line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from .. import __version__
from .profiles import MaterialProfile, PrinterProfile, render_template
from .toolpaths import (
    FEATURE_NAMES,
    PERIMETER_INNER,
    PERIMETER_OUTER,
    SKIRT,
    THIN_WALL,
    LayerPaths,
)

#: Travels shorter than this never retract (mm).
MIN_RETRACT_TRAVEL_MM = 1.0


def sanitize_comment(text: str, *, limit: int = 120) -> str:
    """One line of plain text safe inside a G-code comment.

    Control characters (newlines included) become spaces, so the text cannot
    end the comment and start a command on a new line.

    >>> sanitize_comment("case 12\\nG28\\rM104 S300")
    'case 12 G28 M104 S300'
    """
    cleaned = "".join(" " if unicodedata.category(ch).startswith(("C", "Z")) and ch != " " else ch for ch in text)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return cleaned[:limit]


@dataclass(frozen=True)
class MotionStats:
    """Totals of a G-code program."""

    time_s: float
    filament_mm: float
    travel_mm: float
    extrude_mm: float
    retractions: int


def move_times(length: NDArray[np.float64], speed: NDArray[np.float64], *, acceleration: float,
               v_in: NDArray[np.float64] | float, v_out: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Trapezoid approximation of move durations (s): enter at ``v_in``, cruise at ``speed``, leave at ``v_out``.

    A move too short to reach ``speed`` peaks where the ramps meet.

    >>> round(float(move_times(np.array([100.0]), np.array([50.0]), acceleration=1e9, v_in=0.0, v_out=0.0)[0]), 3)
    2.0
    >>> round(float(move_times(np.array([100.0]), np.array([50.0]), acceleration=500, v_in=0.0, v_out=0.0)[0]), 3)
    2.1
    """
    v_in = np.minimum(v_in, speed)
    v_out = np.minimum(v_out, speed)
    d_acc = (speed**2 - v_in**2) / (2 * acceleration)
    d_dec = (speed**2 - v_out**2) / (2 * acceleration)
    cruise = length >= d_acc + d_dec
    t_cruise = ((speed - v_in) + (speed - v_out)) / acceleration + (length - d_acc - d_dec) / np.maximum(speed, 1e-9)
    peak = np.sqrt(np.maximum((2 * acceleration * length + v_in**2 + v_out**2) / 2, 0.0))
    peak = np.maximum(peak, np.maximum(v_in, v_out))
    t_short = ((peak - v_in) + (peak - v_out)) / acceleration
    return np.where(cruise, t_cruise, t_short)


def junction_speeds(xy: NDArray[np.float64], first: NDArray[np.bool_], speed: NDArray[np.float64],
                    corner_speed: float) -> NDArray[np.float64]:
    """Speed through each point: limited by the turn (a jerk-style ``corner_speed / (2 sin(turn / 2))``),
    ``corner_speed`` where a path starts or ends."""
    n = xy.shape[0]
    out = np.minimum(corner_speed, speed).astype(np.float64)
    if n < 3:
        return out
    d = xy[1:] - xy[:-1]
    norm = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-12)
    inner = np.zeros(n, dtype=bool)
    inner[1:-1] = ~first[1:-1] & ~first[2:]
    k = np.flatnonzero(inner)
    cos_turn = np.einsum("ij,ij->i", d[k - 1], d[k]) / (norm[k - 1] * norm[k])
    half_sin = np.sqrt(np.clip((1 - cos_turn) / 2, 0, 1))
    limit = corner_speed / np.maximum(2 * half_sin, 1e-6)
    out[k] = np.minimum(np.minimum(speed[k], speed[k + 1]), np.maximum(limit, corner_speed))
    return out


def reachable_speeds(limit: NDArray[np.float64], seg_len: NDArray[np.float64], *,
                     acceleration: float) -> NDArray[np.float64]:
    """Junction speeds lowered to what acceleration allows (a firmware planner's forward and backward passes).

    ``limit[k]`` is the most the nozzle may go through point k, ``seg_len[k]`` the length of the move ending
    there.  Going forward, ``v[k]^2 <= v[k-1]^2 + 2 a seg_len[k]``; going backward, the same towards the next
    point.  Each pass is a running minimum (no loop over points): with ``S`` the running sum of ``2 a seg_len``,
    the forward pass is ``v^2 = S + cummin(limit^2 - S)``.

    >>> [round(float(v), 2) for v in reachable_speeds(np.array([0.0, 100, 100, 100, 0]), np.array([0, 1.0, 1, 50, 1]),
    ...                                               acceleration=1000)]
    [0.0, 44.72, 63.25, 44.72, 0.0]
    """
    grow = np.cumsum(2 * acceleration * seg_len)
    u = np.minimum(limit**2, grow + np.minimum.accumulate(limit**2 - grow))
    u = np.minimum(u, np.minimum.accumulate((u + grow)[::-1])[::-1] - grow)
    return np.sqrt(np.maximum(u, 0.0))


@dataclass(frozen=True)
class GcodeSettings:
    """What the writer needs besides the paths."""

    line_width_mm: float
    layer_top_mm: NDArray[np.float64]
    layer_height_mm: NDArray[np.float64]
    job_name: str | None = None


def write_layers(paths: Iterable[LayerPaths], printer: PrinterProfile, material: MaterialProfile,
                 settings: GcodeSettings) -> tuple[list[str], MotionStats]:
    """G-code body (start G-code to end G-code) as text chunks, and its totals."""
    w = settings.line_width_mm
    relative_e = printer.firmware != "marlin2"
    filament_area = np.pi * (printer.filament_diameter_mm / 2) ** 2
    retract = material.retraction_length_mm
    retract_f = material.retraction_speed_mm_s * 60
    travel_speed = min(printer.travel_speed_mm_s, printer.max_speed_mm_s)
    chunks: list[str] = []
    max_z = float(settings.layer_top_mm[-1]) if len(settings.layer_top_mm) else 0.0
    end_z = min(printer.build_z_mm, max_z + 10.0)
    chunks.append(render_template(printer.start_gcode, printer, material, max_z_mm=end_z).strip() + "\n")
    chunks.append("M83 ; relative extrusion\n" if relative_e else "M82 ; absolute extrusion\n")
    chunks.append("G92 E0\nM107\n")
    total_time = 0.0
    total_e = 0.0
    travel_len = 0.0
    extrude_len = 0.0
    retractions = 0
    pos = np.array([np.nan, np.nan])
    for i, layer in enumerate(paths):
        h = float(settings.layer_height_mm[i])
        z = float(settings.layer_top_mm[i])
        lines = [f";LAYER:{i}", f";Z:{z:.3f}", f";HEIGHT:{h:.3f}"]
        if i == 1:
            if material.nozzle_temp_c != material.nozzle_temp_first_layer_c:
                lines.append(f"M104 S{material.nozzle_temp_c:g}")
            if material.bed_temp_c != material.bed_temp_first_layer_c:
                lines.append(f"M140 S{material.bed_temp_c:g}")
        fan = material.fan_first_layer_percent if i == 0 else material.fan_percent
        if i <= 1:
            lines.append(f"M106 S{round(fan * 2.55)}" if fan > 0 else "M107")
        if not relative_e:
            lines.append("G92 E0")
        lines.append(f"G1 Z{z:.3f} F{min(printer.travel_speed_mm_s, 20) * 60:.0f}")
        total_time += 0.2 / max(min(printer.travel_speed_mm_s, 20), 1)
        chunks.append("\n".join(lines) + "\n")
        if layer.xy.shape[0] == 0:
            continue
        # Speeds: per feature, capped by the printer and the material's volumetric limit.
        vol_cap = material.max_volumetric_speed_mm3_s / (w * h)
        feature_speed = np.where(
            np.isin(layer.feature, (PERIMETER_INNER, PERIMETER_OUTER, THIN_WALL)), printer.perimeter_speed_mm_s,
            printer.infill_speed_mm_s,
        ).astype(np.float64)
        if i == 0:
            feature_speed[:] = printer.first_layer_speed_mm_s
        feature_speed[layer.feature == SKIRT] = min(printer.first_layer_speed_mm_s, printer.perimeter_speed_mm_s)
        feature_speed = np.minimum(np.minimum(feature_speed, printer.max_speed_mm_s), vol_cap)
        e_per_mm = w * h * material.flow_multiplier / filament_area

        xy = layer.xy
        path = layer.path
        first = np.r_[True, path[1:] != path[:-1]]
        starts = np.flatnonzero(first)
        seg_len = np.zeros(xy.shape[0])
        seg_len[1:] = np.hypot(*(xy[1:] - xy[:-1]).T)
        seg_len[first] = 0.0
        # Travel into each path start from the previous path's end (or the last position).
        prev_end = np.vstack([pos[None, :], xy[starts[1:] - 1]])
        travel = np.hypot(*(xy[starts] - prev_end).T)
        travel[~np.isfinite(travel)] = 0.0
        needs = travel > MIN_RETRACT_TRAVEL_MM
        if retract > 0 and needs.any():
            needs &= ~_travel_inside(prev_end, xy[starts], layer, step=max(2 * w, 0.5))
            if not np.isfinite(prev_end[0, 0]):
                needs[0] = True
        else:
            needs[:] = False
        speed = feature_speed[path]
        e = seg_len * e_per_mm
        if layer.width is not None:
            # Thin walls: as much material as the wall is wide (NaN: a full-width line).
            e *= np.where(np.isnan(layer.width), 1.0, layer.width / w)
        total_e += float(e.sum())
        extrude_len += float(seg_len.sum())
        travel_len += float(travel.sum())
        retractions += int(needs.sum())
        through = reachable_speeds(junction_speeds(xy, first, speed, printer.corner_speed_mm_s), seg_len,
                                   acceleration=printer.max_acceleration_mm_s2)
        moving = np.flatnonzero(~first)
        total_time += float(move_times(seg_len[moving], speed[moving], acceleration=printer.max_acceleration_mm_s2,
                                       v_in=through[moving - 1], v_out=through[moving]).sum())
        total_time += float(move_times(travel, np.full(travel.shape, travel_speed),
                                       acceleration=printer.max_acceleration_mm_s2,
                                       v_in=printer.corner_speed_mm_s, v_out=printer.corner_speed_mm_s).sum())
        total_time += int(needs.sum()) * 2 * retract / material.retraction_speed_mm_s
        # Text: one line per point; path starts are travels (with retraction when leaving the part).
        # Formatting runs in one comprehension per layer (C-level float formatting); only path starts and
        # speed changes are patched afterwards.
        e_out = e if relative_e else np.cumsum(e)
        body = [f"G1 X{x:.3f} Y{y:.3f} E{v:.5f}" for x, y, v in zip(xy[:, 0].tolist(), xy[:, 1].tolist(),
                                                                     e_out.tolist())]
        feedrate = np.round(speed * 60).astype(np.int64)
        new_f = np.r_[True, feedrate[1:] != feedrate[:-1]] | np.r_[False, first[:-1]]
        for k, f in zip(np.flatnonzero(new_f & ~first).tolist(), feedrate[new_f & ~first].tolist()):
            body[k] += f" F{f}"
        e_before = (np.cumsum(e) - e).tolist() if not relative_e else None
        feature_change = np.r_[True, layer.feature[1:] != layer.feature[:-1]].tolist()
        travel_f = f" F{travel_speed * 60:.0f}"
        retract_tail = f" F{retract_f:.0f}"
        for n, (k, kind, change, retracting) in enumerate(zip(starts.tolist(), layer.feature.tolist(),
                                                              feature_change, needs.tolist())):
            text = f"G0 X{xy[k, 0]:.3f} Y{xy[k, 1]:.3f}{travel_f}"
            if retracting:
                if relative_e:
                    text = f"G1 E{-retract:.5f}{retract_tail}\n{text}\nG1 E{retract:.5f}{retract_tail}"
                else:
                    base = e_before[k]  # type: ignore[index]
                    text = f"G1 E{base - retract:.5f}{retract_tail}\n{text}\nG1 E{base:.5f}{retract_tail}"
            if change:
                text = f";TYPE:{FEATURE_NAMES[kind]}\n{text}"
            body[k] = text
        chunks.append("\n".join(body) + "\n")
        pos = xy[-1].copy()
    chunks.append(";END\n" + render_template(printer.end_gcode, printer, material, max_z_mm=end_z).strip() + "\n")
    stats = MotionStats(time_s=total_time, filament_mm=total_e, travel_mm=travel_len, extrude_mm=extrude_len,
                        retractions=retractions)
    return chunks, stats


def _travel_inside(start: NDArray[np.float64], end: NDArray[np.float64], layer: LayerPaths, *,
                   step: float) -> NDArray[np.bool_]:
    """Whether each travel stays over material (part or support), sampled every ``step`` mm."""
    ok = np.isfinite(start[:, 0])
    length = np.where(ok, np.hypot(*(end - np.where(ok[:, None], start, end)).T), 0.0)
    samples = np.maximum(np.ceil(length / step).astype(np.int64), 1) + 1
    owner = np.repeat(np.arange(length.size), samples)
    t = (np.arange(owner.size) - np.repeat(np.cumsum(samples) - samples, samples)) / np.repeat(samples - 1, samples)
    a = np.where(ok[:, None], start, end)[owner]
    points = a + t[:, None] * (end[owner] - a)
    inside = np.zeros(owner.size, dtype=bool)
    for area in (layer.region, layer.support):
        if area is not None and not area.is_empty:
            shapely.prepare(area)
            todo = ~inside
            # Points on a perimeter sit on the part's outline offset inwards; allow a hair of slack.
            inside[todo] = shapely.contains_xy(area, points[todo, 0], points[todo, 1])
    return np.bincount(owner, weights=~inside, minlength=length.size) == 0


def header(*, printer: PrinterProfile, material: MaterialProfile, engine: str, layer_count: int,
           stats: MotionStats, settings_text: list[str], job_name: str | None) -> str:
    """Comment header: medprint version, profiles, layers, estimates; no patient data."""
    grams = stats.filament_mm * np.pi * (printer.filament_diameter_mm / 2) ** 2 / 1000.0 * material.density_g_cm3
    cost = grams / 1000.0 * material.price_per_kg
    hours, rest = divmod(round(stats.time_s), 3600)
    minutes, seconds = divmod(rest, 60)
    lines = [
        f"generated by medprint {__version__} (engine: {engine})",
        f"printer: {printer.name} ({printer.firmware})",
        f"material: {material.name}",
    ]
    if job_name:
        lines.append(f"job: {sanitize_comment(job_name)}")
    lines += [
        f"layer count: {layer_count}",
        f"estimated printing time: {hours}h {minutes:02d}m {seconds:02d}s ({stats.time_s:.0f} s)",
        f"filament used [mm]: {stats.filament_mm:.1f}",
        f"filament used [g]: {grams:.2f}",
        f"filament cost: {cost:.2f} {material.currency}",
        *settings_text,
    ]
    return "".join(f"; {sanitize_comment(line, limit=200)}\n" for line in lines)
