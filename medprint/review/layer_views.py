"""A picture of the G-code: the layers' toolpaths (printer axes) and where the layer count and time go.

The G-code is read as bytes in numpy (:mod:`._gcode_words`: commands and their X, Y, Z, E words in any
order) and followed by a vectorised state machine: positions carried forward, extrusion from absolute (M82,
reset by G92) or relative (M83) E.  Only extruding moves are drawn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ._gcode_words import (
    ABSOLUTE_E,
    ABSOLUTE_XYZ,
    MOVE,
    RELATIVE_E,
    RELATIVE_XYZ,
    SET,
    read_lines,
)
from .types import Picture

#: Layers drawn from above: the first, the middle and the top one.
TOP_VIEW_LAYERS = 3
#: Segments drawn per top view; a denser layer is thinned evenly (the picture cannot show more at 480 px).
MAX_SEGMENTS_PER_LAYER = 150_000


@dataclass(frozen=True)
class Extrusions:
    """The extruding moves of a G-code: segment ends (mm, printer axes) and the layer heights."""

    start_xy: NDArray[np.float64]  # (N, 2)
    end_xy: NDArray[np.float64]  # (N, 2)
    z: NDArray[np.float64]  # (N,)
    filament_mm: float

    @cached_property
    def layers_z(self) -> NDArray[np.float64]:
        """The distinct heights (mm) that extrude, lowest first."""
        return np.unique(np.round(self.z, 3))


def read_extrusions(gcode_text: str) -> Extrusions:
    """The extruding moves of ``gcode_text`` (absolute X/Y/Z positions; E absolute or relative)."""
    lines = read_lines(gcode_text)
    kind, x, y, z, e = lines.kind, lines.x, lines.y, lines.z, lines.e
    if not np.any(kind == MOVE):
        raise InputError("the G-code has no G0/G1 moves; is this G-code text for a printer?")
    moving = kind == MOVE
    relative_xyz = _mode(kind, ABSOLUTE_XYZ, RELATIVE_XYZ)
    x_now, y_now, z_now = (_positions(values, kind, relative_xyz) for values in (x, y, z))
    extruded = _extruded(kind, e)
    has_xy = moving & (~np.isnan(x) | ~np.isnan(y))
    previous_xy = np.stack([np.roll(x_now, 1), np.roll(y_now, 1)], axis=1)
    moved = np.any(np.stack([x_now, y_now], axis=1) != previous_xy, axis=1)
    drawn = has_xy & moved & (extruded > 1e-9)
    previous = np.flatnonzero(drawn) - 1
    start_xy = np.stack([x_now[previous], y_now[previous]], axis=1)
    end_xy = np.stack([x_now[drawn], y_now[drawn]], axis=1)
    keep = np.all(np.isfinite(start_xy), axis=1) & np.all(np.isfinite(end_xy), axis=1) & np.isfinite(z_now[drawn])
    if not keep.any():
        raise InputError("the G-code has no extruding moves (G1 with X/Y and a positive E); nothing to draw")
    return Extrusions(start_xy[keep], end_xy[keep], z_now[drawn][keep], float(extruded.sum()))


def _carry(values: NDArray[np.float64], given: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Each line's value: the last one given up to and including it (NaN before the first)."""
    last = np.maximum.accumulate(np.where(given, np.arange(len(values)), -1))
    carried = np.where(last >= 0, values[np.maximum(last, 0)], np.nan)
    return carried


def _mode(kind: NDArray[np.int8], absolute: int, relative: int) -> NDArray[np.bool_]:
    """True on the lines where the last of the two mode commands was ``relative`` (absolute by default)."""
    mode_lines = (kind == absolute) | (kind == relative)
    return np.asarray(_carry(np.where(kind == relative, 1.0, 0.0), mode_lines) == 1.0)


def _positions(values: NDArray[np.float64], kind: NDArray[np.int8], relative: NDArray[np.bool_],
               ) -> NDArray[np.float64]:
    """An axis' position after each line: the last absolute value (G90 move or G92) plus the G91 steps since."""
    given = ~np.isnan(values) & (kind <= SET)
    absolute = given & (~relative | (kind == SET))  # G92 always sets the position itself
    steps = np.cumsum(np.where(given & ~absolute, values, 0.0))
    last = np.maximum.accumulate(np.where(absolute, np.arange(len(values)), -1))
    base = np.where(last >= 0, values[np.maximum(last, 0)] - steps[np.maximum(last, 0)], 0.0)
    positions = base + steps
    # Before any position is known the axis is unknown (NaN), unless relative steps began from 0 at power-on.
    known = (last >= 0) | (np.cumsum(given) > 0)
    return np.where(known, positions, np.nan)


def _extruded(kind: NDArray[np.int8], e: NDArray[np.float64]) -> NDArray[np.float64]:
    """Filament pushed by each line (mm): the E word itself in M83 mode, its rise over the last E in M82."""
    relative = _mode(kind, ABSOLUTE_E, RELATIVE_E)  # firmware default (no M82/M83 yet) is absolute
    has_e = ~np.isnan(e) & (kind <= SET)
    # The E position before each line: the last E set by a move or a G92 on an earlier line (0 at the start).
    before = np.concatenate([[0.0], np.nan_to_num(_carry(e, has_e), nan=0.0)[:-1]])
    moving_e = has_e & (kind == MOVE)
    return np.where(moving_e, np.where(relative, e, e - before), 0.0)


def gcode_pictures(gcode_text: str) -> tuple[Picture, ...]:
    """Pictures of the toolpaths read from G-code text (medprint's or PrusaSlicer's): a side view of all
    layers coloured by height and the first, middle and top layers from above, in printer axes (mm)."""
    moves = read_extrusions(gcode_text)
    layers = moves.layers_z
    caption = (f"{len(layers)} layers from z {layers[0]:.2f} to {layers[-1]:.2f} mm, {len(moves.z):,} extruding "
               f"moves, {moves.filament_mm / 1000:.2f} m of filament; printer axes, not patient directions")
    pictures = [Picture("Toolpaths from the side (X-Z)", _side_view(moves), caption)]
    picks = sorted({0, len(layers) // 2, len(layers) - 1})[:TOP_VIEW_LAYERS]
    for number in picks:
        title = f"Layer {number + 1} of {len(layers)} from above (z {layers[number]:.2f} mm)"
        pictures.append(Picture(title, _top_view(moves, layers[number], title), caption))
    return tuple(pictures)


def _figure(width_px: int, height_px: int):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_px / 100.0, height_px / 100.0), dpi=100)
    # Fixed margins that fit the axis labels: tight_layout would measure every text again (a third of the time).
    figure.subplots_adjust(left=62 / width_px, right=1 - 20 / width_px, bottom=46 / height_px, top=1 - 30 / height_px)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _side_view(moves: Extrusions) -> bytes:
    """Every layer's extruded X span, as thick as the layer, rasterised in numpy (a million moves in ~0.1 s),
    one raster cell per screen pixel, X and Z at one scale unless the print is too flat or too tall for it."""
    ends_x = np.concatenate([moves.start_xy[:, 0], moves.end_xy[:, 0]])
    x_low, x_high = float(ends_x.min()), float(ends_x.max())
    z_low, z_high = 0.0, float(moves.z.max())
    width_px, height_px, true_scale = _plot_size(max(x_high - x_low, 1e-6), max(z_high - z_low, 1e-6))
    x_scale = (width_px - 1) / max(x_high - x_low, 1e-6)
    z_scale = height_px / max(z_high - z_low, 1e-6)
    heights = moves.layers_z
    below = np.concatenate([[z_low], heights[:-1]])  # each layer fills down to the one under it
    layer = np.searchsorted(heights, np.round(moves.z, 3))
    first = np.minimum(moves.start_xy[:, 0], moves.end_xy[:, 0])
    last = np.maximum(moves.start_xy[:, 0], moves.end_xy[:, 0])
    c0 = np.round((first - x_low) * x_scale).astype(np.int64)
    c1 = np.round((last - x_low) * x_scale).astype(np.int64) + 1
    r0 = np.clip(np.floor((below[layer] - z_low) * z_scale), 0, height_px - 1).astype(np.int64)
    r1 = np.clip(np.ceil((moves.z - z_low) * z_scale), r0 + 1, height_px).astype(np.int64)
    # A 2-D difference array: +1/-1 at each rectangle's corners, summed up both axes, covers every rectangle.
    cells = (height_px + 1) * (width_px + 1)

    def corners(rows: NDArray[np.int64], columns: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.bincount(rows * (width_px + 1) + columns, minlength=cells)

    spans = (corners(r0, c0) - corners(r0, c1) - corners(r1, c0) + corners(r1, c1)).reshape(height_px + 1, -1)
    covered = np.cumsum(np.cumsum(spans, axis=0), axis=1)[:-1, :-1] > 0
    height = np.where(covered, (np.arange(height_px)[:, None] + 0.5) / z_scale + z_low, np.nan)

    left, bottom, top, right = 62, 46, 30, 100  # margins (px) for the labels and the colour bar
    figure = _figure(width_px + left + right, height_px + bottom + top)
    total_w, total_h = width_px + left + right, height_px + bottom + top
    axes = figure.add_axes((left / total_w, bottom / total_h, width_px / total_w, height_px / total_h))
    image = axes.imshow(height, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest",
                        extent=(x_low, x_high, z_low, z_high))
    axes.set_xlabel("X (mm)")
    axes.set_ylabel("Z (mm)")
    scale_note = "" if true_scale else ", Z not to scale"
    axes.set_title(f"All {len(heights)} layers seen from the front{scale_note}", fontsize=10)
    bar = figure.add_axes(((left + width_px + 14) / total_w, bottom / total_h, 14 / total_w, height_px / total_h))
    figure.colorbar(image, cax=bar, label="height (mm)")
    return _png(figure)


def _plot_size(x_mm: float, z_mm: float) -> tuple[int, int, bool]:
    """(width, height) of the side view's plot in pixels, and whether X and Z share one scale in it."""
    widest, lowest, tallest, narrowest = 760, 120, 520, 240
    ratio = z_mm / x_mm
    width, height = widest, round(widest * ratio)
    if height > tallest:
        width, height = max(narrowest, round(tallest / ratio)), tallest
    height = max(lowest, height)
    true_scale = abs((height / width) / ratio - 1.0) < 0.05
    return width, height, true_scale


def _top_view(moves: Extrusions, layer_z: float, title: str) -> bytes:
    from matplotlib.collections import LineCollection

    chosen = np.flatnonzero(np.round(moves.z, 3) == layer_z)
    if len(chosen) > MAX_SEGMENTS_PER_LAYER:
        chosen = chosen[:: int(np.ceil(len(chosen) / MAX_SEGMENTS_PER_LAYER))]
    segments = np.stack([moves.start_xy[chosen], moves.end_xy[chosen]], axis=1)
    figure = _figure(480, 480)
    axes = figure.add_subplot()
    lines = LineCollection(segments, linewidths=0.6, colors="#1f77b4")  # type: ignore[arg-type]
    axes.add_collection(lines, autolim=False)
    low, high = segments.reshape(-1, 2).min(axis=0), segments.reshape(-1, 2).max(axis=0)
    pad = 0.05 * float(np.max(high - low)) + 1.0
    axes.set_xlim(low[0] - pad, high[0] + pad)
    axes.set_ylim(low[1] - pad, high[1] + pad)
    axes.set_aspect("equal")
    axes.set_xlabel("X (mm)")
    axes.set_ylabel("Y (mm)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    return _png(figure)
