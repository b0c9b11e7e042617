"""A small G-code reader for tests: every G0/G1 move with its extrusion, absolute or relative E.

Independent of the writer: it only knows G-code (G0/G1/G28/G90/G91/G92/M82/M83, the fan's
M106/M107) and the ``;LAYER:``/``;TYPE:`` comments the writer and PrusaSlicer both emit.  Every
other command is kept with its arguments and layer (``Moves.codes``) for the tests to judge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_WORD = re.compile(r"([A-Z])\s*(-?\d*\.?\d+(?:[eE][-+]?\d+)?)")


@dataclass
class Moves:
    """One row per G0/G1 move: start and end position, extrusion (mm of filament), context."""

    start: NDArray[np.float64]  # (M, 3)
    end: NDArray[np.float64]  # (M, 3)
    e: NDArray[np.float64]  # (M,) filament fed (negative: retraction)
    feed_mm_s: NDArray[np.float64]
    layer: NDArray[np.int64]  # -1 before the first ;LAYER:
    kind: NDArray[np.object_]  # feature from ;TYPE: ('' when none)
    rapid: NDArray[np.bool_]  # G0
    header: list[str]
    commands: list[str]  # first word of every non-comment line
    fan_pwm: NDArray[np.float64]  # (M,) part-cooling fan duty 0..255 while the move runs (M106 S / M107)
    nozzle_c: NDArray[np.float64]  # (M,) hotend target while the move runs (M104/M109 S; NaN before any)
    bed_c: NDArray[np.float64]  # (M,) bed target while the move runs (M140/M190 S; NaN before any)
    codes: list[tuple[int, str, dict[str, float]]]  # (layer, word, arguments) of every command but G0/G1

    def code_values(self, word: str, letter: str = "S") -> list[tuple[int, float]]:
        """``(layer, value)`` of ``letter`` for each ``word`` command, in file order (e.g. M104's S)."""
        return [(layer, args[letter]) for layer, name, args in self.codes if name == word and letter in args]

    @property
    def xy_length(self) -> NDArray[np.float64]:
        return np.hypot(*(self.end[:, :2] - self.start[:, :2]).T)

    @property
    def extruding(self) -> NDArray[np.bool_]:
        return (self.e > 1e-9) & (self.xy_length > 1e-9)


def read_moves(path: Path | str) -> Moves:
    pos = np.array([0.0, 0.0, 0.0])
    e_pos = 0.0
    relative_e = False
    relative_xyz = False
    feed = 0.0
    layer = -1
    kind = ""
    fan = 0.0
    rows_start, rows_end, rows_e, rows_f, rows_layer, rows_kind, rows_rapid = [], [], [], [], [], [], []
    rows_fan: list[float] = []
    nozzle = bed = float("nan")
    rows_nozzle: list[float] = []
    rows_bed: list[float] = []
    codes: list[tuple[int, str, dict[str, float]]] = []
    header: list[str] = []
    commands: list[str] = []
    in_header = True
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if in_header and line.startswith(";"):
            header.append(line)
        elif line:
            in_header = False
        if line.startswith(";LAYER:"):
            layer = int(line.split(":")[1])
            continue
        if line.upper().startswith(";TYPE:"):
            kind = line.split(":", 1)[1].strip().lower()
            continue
        code = line.split(";", 1)[0].strip().upper()
        if not code:
            continue
        word = code.split()[0]
        commands.append(word)
        args = {k: float(v) for k, v in _WORD.findall(code[len(word):])}
        if word not in ("G0", "G1"):
            codes.append((layer, word, args))
        if word == "M106":
            fan = args.get("S", 255.0)
        elif word == "M107":
            fan = 0.0
        elif word in ("M104", "M109") and "S" in args:
            nozzle = args["S"]
        elif word in ("M140", "M190") and "S" in args:
            bed = args["S"]
        elif word == "M82":
            relative_e = False
        elif word == "M83":
            relative_e = True
        elif word == "G90":
            relative_xyz = False
        elif word == "G91":
            relative_xyz = True
        elif word == "G92":
            if "E" in args:
                e_pos = args["E"]
            for i, axis in enumerate("XYZ"):
                if axis in args:
                    pos[i] = args[axis]
        elif word == "G28":
            pos[:] = 0.0
        elif word in ("G0", "G1"):
            new = pos.copy()
            for i, axis in enumerate("XYZ"):
                if axis in args:
                    new[i] = pos[i] + args[axis] if relative_xyz else args[axis]
            de = 0.0
            if "E" in args:
                if relative_e:
                    de = args["E"]
                else:
                    de = args["E"] - e_pos
                    e_pos = args["E"]
            if "F" in args:
                feed = args["F"] / 60.0
            rows_start.append(pos)
            rows_end.append(new)
            rows_e.append(de)
            rows_f.append(feed)
            rows_layer.append(layer)
            rows_kind.append(kind)
            rows_rapid.append(word == "G0")
            rows_fan.append(fan)
            rows_nozzle.append(nozzle)
            rows_bed.append(bed)
            pos = new
    return Moves(
        start=np.array(rows_start).reshape(-1, 3), end=np.array(rows_end).reshape(-1, 3), e=np.array(rows_e),
        feed_mm_s=np.array(rows_f), layer=np.array(rows_layer, dtype=np.int64),
        kind=np.array(rows_kind, dtype=object), rapid=np.array(rows_rapid), header=header, commands=commands,
        fan_pwm=np.array(rows_fan), nozzle_c=np.array(rows_nozzle), bed_c=np.array(rows_bed), codes=codes,
    )
