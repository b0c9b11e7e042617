"""The real skull (`medprint convert` of the InVesalius cranium CT), sliced by both engines.

To keep the suite fast the skull is sliced at 40 % scale (--scale 0.4: 313 layers at 0.2 mm instead of 783,
a sixth of the area per layer; the topology, dozens of islands and holes per layer, is the same).
Both engines slice it once with the benchmark's settings, supports on (a module fixture); the life-size
comparison is ``benchmarks/bench_slice.py``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import shapely

from medprint.cli import main
from medprint.io.mesh_files import read_mesh_file
from medprint.slice.engine import (
    SliceResult,
    SliceSettings,
    slice_to_gcode,
    write_gcode,
)
from medprint.slice.placement import place_on_bed
from medprint.slice.planar import section
from medprint.slice.profiles import load_profiles

sys.path.insert(0, str(Path(__file__).parent))
from gcode_reader import Moves, read_moves
from test_slicing import check_common

pytestmark = pytest.mark.realdata
SCALE = 0.4


@pytest.fixture(scope="module")
def skull_stl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import data_root

    scan = data_root() / "invesalius_cranium_ct" / "cranium_ct.nii.gz"
    if not scan.exists():
        pytest.skip(f"real case invesalius_cranium_ct not found in {data_root()} (set MEDPRINT_DATA)")
    out = tmp_path_factory.mktemp("skull") / "skull.stl"
    main(["-q", "convert", str(scan), "-o", str(out), "--no-report"])
    return out


@pytest.fixture(scope="module")
def skull_sliced(skull_stl: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[SliceResult, Moves]]:
    """The skull at 40 % with the benchmark's settings (0.2 mm layers, 2 perimeters, 15 % grid, supports on),
    sliced by the built-in engine and, where installed, by PrusaSlicer; with the G-code read back."""
    library = load_profiles()
    printer, material = library.printer("prusa-mk4"), library.material("pla")
    mesh = read_mesh_file(skull_stl)
    settings = SliceSettings(scale=SCALE, supports=True, infill_density=0.15, infill_pattern="grid")
    folder = tmp_path_factory.mktemp("sliced")
    out = {}
    for engine in ("builtin", "prusaslicer"):
        if engine == "prusaslicer" and shutil.which("prusa-slicer") is None:
            continue
        result = slice_to_gcode(mesh, printer, material, settings, engine=engine)
        out[engine] = (result, read_moves(write_gcode(result, folder / f"{engine}.gcode")))
    return out


def test_skull_builtin_gcode_passes_checks(skull_stl: Path, skull_sliced: dict[str, tuple[SliceResult, Moves]],
                                           real_data: Callable[[str], Path]) -> None:
    library = load_profiles()
    printer = library.printer("prusa-mk4")
    mesh = read_mesh_file(skull_stl)
    settings = SliceSettings(scale=SCALE, supports=True)
    result, moves = skull_sliced["builtin"]
    assert result.placement is not None
    height = result.placement.size_mm[2]
    check_common(moves, printer="prusa-mk4", height_mm=height)
    assert (moves.kind == "support").any()
    # Perimeters follow the sliced outline: external perimeter points lie w/2 (+- w/2) inside it.
    w = printer.line_width_mm
    margin = settings.skirt_distance_mm + (settings.skirt_loops + 1) * w
    vertices, _ = place_on_bed(mesh, printer, scale=SCALE, margin_mm=margin)
    layer_ids = np.array([60, 150, 250])
    tops = np.asarray(result.layer_top_mm)
    outlines = section(vertices, mesh.faces, tops[layer_ids] - 0.1)
    for layer, outline in zip(layer_ids, outlines):
        sel = moves.extruding & (moves.layer == layer) & (moves.kind == "external perimeter")
        points = shapely.points(moves.end[sel, :2])
        depth = shapely.distance(points, outline.boundary)
        assert np.all(shapely.contains_xy(shapely.buffer(outline, 1e-3), moves.end[sel, 0], moves.end[sel, 1]))
        off = np.abs(depth - w / 2)
        # Slack: outline simplification (0.02 mm), G-code rounding, and mitred vertices at sharp concave
        # corners (mitre limit 2), which sit a little further in while the line itself stays within w/2.
        assert np.all(off <= w / 2 + 0.05), (layer, off.max())
        assert np.quantile(off, 0.99) <= w / 2
        # Supports keep the xy gap from the part (lines are w wide: centres at least gap + w/2 - rounding away).
        sup = moves.extruding & (moves.layer == layer) & (moves.kind == "support")
        assert shapely.distance(shapely.points(moves.end[sup, :2]), outline).min() >= settings.support_xy_gap_mm
    # Extruded volume: at least the walls, at most the solid model plus supports and infill overlap.
    part = moves.extruding & (moves.layer >= 0) & ~np.isin(moves.kind, ("support", "skirt"))
    volume = moves.e[part].sum() * np.pi * (printer.filament_diameter_mm / 2) ** 2
    model = mesh.volume_mm3() * SCALE**3
    assert 0.3 * model < volume < 1.1 * model


def _filament_m(moves: Moves, kinds: tuple[str, ...]) -> float:
    sel = moves.extruding & np.isin(moves.kind, kinds)  # (PrusaSlicer writes no ;LAYER: lines)
    return float(moves.e[sel].sum() / 1000)


def test_skull_filament_close_to_prusaslicer(skull_sliced: dict[str, tuple[SliceResult, Moves]],
                                             real_data: Callable[[str], Path]) -> None:
    if "prusaslicer" not in skull_sliced:
        pytest.skip("prusa-slicer is not installed (apt-get install prusa-slicer)")
    (ours, our_moves), (theirs, their_moves) = skull_sliced["builtin"], skull_sliced["prusaslicer"]
    assert theirs.layer_count == pytest.approx(ours.layer_count, abs=2)
    # The whole job, supports on (the settings): within 20 %.
    ratio = ours.filament_mm / theirs.filament_mm
    assert abs(ratio - 1) < 0.20, (ours.filament_mm, theirs.filament_mm)
    # And each half on its own, read from the G-code by feature (;TYPE:): the supports, and the part.
    our_support = _filament_m(our_moves, ("support",))
    their_support = _filament_m(their_moves, ("support material", "support material interface"))
    assert abs(our_support / their_support - 1) < 0.20, (our_support, their_support)
    our_part = _filament_m(our_moves, ("external perimeter", "perimeter", "solid infill", "infill"))
    their_kinds = tuple(k for k in np.unique(their_moves.kind) if k and "support" not in k and "skirt" not in k
                        and k != "custom")
    their_part = _filament_m(their_moves, their_kinds)
    assert abs(our_part / their_part - 1) < 0.20, (our_part, their_part)


def test_skull_print_time_close_to_prusaslicer(skull_sliced: dict[str, tuple[SliceResult, Moves]],
                                               real_data: Callable[[str], Path]) -> None:
    """Both estimates model acceleration (a planner's forward/backward passes) and corner speeds; ours
    joins infill and support lines into zig-zags as PrusaSlicer does, so the plans take about as long."""
    if "prusaslicer" not in skull_sliced:
        pytest.skip("prusa-slicer is not installed (apt-get install prusa-slicer)")
    (ours, our_moves), (theirs, their_moves) = skull_sliced["builtin"], skull_sliced["prusaslicer"]
    ratio = ours.estimated_time_s / theirs.estimated_time_s
    assert abs(ratio - 1) < 0.20, (ours.estimated_time_s, theirs.estimated_time_s)
    # The plans themselves: no more than 1.5x PrusaSlicer's travels (each one a slow-down, most a retraction).
    def travels(moves: Moves) -> int:
        return int((~moves.extruding & (moves.xy_length > 0) & (moves.end[:, 2] > 0)).sum())

    assert travels(our_moves) < 1.5 * travels(their_moves), (travels(our_moves), travels(their_moves))
