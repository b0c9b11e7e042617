"""The built-in slicer on analytic shapes, read back with an independent G-code reader.

Shapes: a 20 mm calibration cube, a tube (a hole per layer), two separate posts (islands), and a
T-shaped bracket whose arms overhang the bed (supports).  Each G-code file is checked for moves
inside the build volume, layer heights, extrusion per mm, extruded volume, perimeter placement
and where supports go.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
import trimesh

from medprint.cli import main
from medprint.errors import MeshError, ParameterError
from medprint.mesh.model import Mesh
from medprint.slice.engine import SliceSettings, slice_to_gcode, write_gcode
from medprint.slice.gcode import sanitize_comment
from medprint.slice.profiles import load_profiles
from medprint.slice.toolpaths import SUPPORT_GAP_MM

sys.path.insert(0, str(Path(__file__).parent))
from gcode_reader import Moves, read_moves

LIBRARY = load_profiles()


def as_mesh(shape: trimesh.Trimesh) -> Mesh:
    return Mesh(np.asarray(shape.vertices, dtype=np.float64), np.asarray(shape.faces, dtype=np.int64), "shape")


def prism(outline: shapely.Polygon, height: float) -> trimesh.Trimesh:
    """``outline`` (holes allowed) extruded from z = 0 to ``height``; caps by constrained Delaunay."""
    outline = shapely.orient_polygons(outline)
    caps = shapely.get_parts(shapely.constrained_delaunay_triangles(outline))
    tri = np.array([np.asarray(t.exterior.coords)[:3] for t in caps])
    vertices, faces = [], []
    for z, flip in ((0.0, True), (height, False)):
        base = len(vertices) * 3
        for t in tri:
            vertices.append(np.c_[t, np.full(3, z)])
        idx = base + np.arange(tri.shape[0] * 3).reshape(-1, 3)
        faces.append(idx[:, ::-1] if flip else idx)
    points = np.concatenate(vertices) if vertices else np.empty((0, 3))
    walls = []
    for ring in [outline.exterior, *outline.interiors]:
        xy = np.asarray(ring.coords)
        a, b = xy[:-1], xy[1:]
        quad = np.stack([np.c_[a, np.zeros(len(a))], np.c_[b, np.zeros(len(a))],
                         np.c_[b, np.full(len(a), height)], np.c_[a, np.full(len(a), height)]], axis=1)
        walls.append(quad)
    quads = np.concatenate(walls)
    start = points.shape[0]
    points = np.concatenate([points, quads.reshape(-1, 3)])
    q = start + np.arange(quads.shape[0] * 4).reshape(-1, 4)
    faces.append(np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]]))
    shape = trimesh.Trimesh(points, np.concatenate(faces), process=True)
    trimesh.repair.fix_normals(shape)
    assert shape.is_watertight and shape.volume > 0
    return shape


def cube() -> Mesh:
    return as_mesh(trimesh.creation.box((20.0, 20.0, 20.0)))


def tube() -> Mesh:
    ring = shapely.Point(0, 0).buffer(12.0, quad_segs=32).difference(shapely.Point(0, 0).buffer(7.0, quad_segs=32))
    return as_mesh(prism(ring, 10.0))


def two_posts() -> Mesh:
    left = trimesh.creation.box((8.0, 8.0, 6.0))
    left.apply_translation((-10, 0, 0))
    right = trimesh.creation.box((8.0, 8.0, 6.0))
    right.apply_translation((10, 0, 0))
    return as_mesh(trimesh.util.concatenate([left, right]))


#: A T (stem 6 mm wide, 12 mm tall; bar 30 x 4 mm) extruded 10 mm along y: the bar's arms overhang.
T_STEM_HALF, T_STEM_TOP, T_BAR_HALF, T_BAR_TOP = 3.0, 12.0, 15.0, 16.0


def t_bracket() -> Mesh:
    outline = shapely.Polygon([(-T_STEM_HALF, 0), (T_STEM_HALF, 0), (T_STEM_HALF, T_STEM_TOP),
                               (T_BAR_HALF, T_STEM_TOP), (T_BAR_HALF, T_BAR_TOP), (-T_BAR_HALF, T_BAR_TOP),
                               (-T_BAR_HALF, T_STEM_TOP), (-T_STEM_HALF, T_STEM_TOP)])
    shape = prism(outline, 10.0)
    # Polygon in the xz plane, extruded along y: rotate +90 degrees about x (z_new = y_old).
    shape.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
    return as_mesh(shape)


def slice_file(tmp_path: Path, mesh: Mesh, *, printer: str = "prusa-mk4", material: str = "pla",
               **options: object) -> tuple[Moves, object]:
    settings = SliceSettings(**options)  # type: ignore[arg-type]
    result = slice_to_gcode(mesh, LIBRARY.printer(printer), LIBRARY.material(material), settings)
    path = write_gcode(result, tmp_path / "out.gcode", overwrite=True)
    return read_moves(path), result


def e_per_mm(printer: str = "prusa-mk4", material: str = "pla", layer_height: float = 0.2) -> float:
    p, m = LIBRARY.printer(printer), LIBRARY.material(material)
    return p.line_width_mm * layer_height * m.flow_multiplier / (np.pi * (p.filament_diameter_mm / 2) ** 2)


def check_common(moves: Moves, *, printer: str, height_mm: float, layer_height: float = 0.2,
                 first_layer: float = 0.2, material: str = "pla") -> None:
    p = LIBRARY.printer(printer)
    ends = moves.end
    assert ends[:, 0].min() >= 0 and ends[:, 1].min() >= 0 and ends[:, 2].min() >= 0
    assert ends[:, 0].max() <= p.build_x_mm and ends[:, 1].max() <= p.build_y_mm and ends[:, 2].max() <= p.build_z_mm
    body = moves.layer >= 0
    ext = moves.extruding & body
    # Layers at the right heights: first layer, then every layer_height, up to the top of the part.
    expected_layers = 1 + int(np.ceil((height_mm - first_layer) / layer_height - 1e-9))
    tops = first_layer + layer_height * np.arange(expected_layers)
    z = moves.end[ext, 2]
    assert np.allclose(np.unique(np.round(z, 4)), tops[np.isin(np.round(tops, 4), np.unique(np.round(z, 4)))])
    assert np.abs(z[:, None] - tops[None, :]).min(axis=1).max() < 1e-3
    assert moves.layer.max() + 1 == expected_layers
    assert np.all(moves.end[ext, 2] == moves.start[ext, 2])  # no z change while extruding
    # Extrusion per mm: line width x layer height x flow / filament area, everywhere but on thin walls and gap
    # fill, whose lines are as wide as the wall or gap: between a third of the nozzle and the line width.
    rate = np.where(moves.layer[ext] == 0, e_per_mm(printer, material, first_layer),
                    e_per_mm(printer, material, layer_height))
    length = moves.xy_length[ext]
    # (coordinates are written to 1 um and E to 1e-5 mm: allow that rounding, nothing more)
    slack = 2e-5 + rate * 1.5e-3 + 1e-3 * length * rate
    thin = np.isin(moves.kind[ext], ("thin wall", "gap fill"))
    assert np.all(np.abs(moves.e[ext] - length * rate)[~thin] <= slack[~thin])
    ratio = p.nozzle_diameter_mm / 3 / p.line_width_mm
    assert np.all(moves.e[ext][thin] <= (length * rate + slack)[thin])
    assert np.all(moves.e[ext][thin] >= (ratio * length * rate - slack)[thin])
    # Retractions are undone: net filament equals the extruded amount.
    retracts = moves.e[body & (moves.e < 0)]
    assert np.isclose(moves.e[body].sum(), moves.e[ext].sum(), atol=1e-3 + 1e-5 * abs(retracts).sum())


def extruded_volume_mm3(moves: Moves, *, printer: str = "prusa-mk4", material: str = "pla",
                        exclude: tuple[str, ...] = ("skirt",)) -> float:
    p, m = LIBRARY.printer(printer), LIBRARY.material(material)
    keep = moves.extruding & (moves.layer >= 0) & ~np.isin(moves.kind, exclude)
    return float(moves.e[keep].sum() * np.pi * (p.filament_diameter_mm / 2) ** 2 / m.flow_multiplier)


def test_calibration_cube(tmp_path: Path) -> None:
    moves, result = slice_file(tmp_path, cube(), infill_density=0.15, infill_pattern="grid")
    check_common(moves, printer="prusa-mk4", height_mm=20.0)
    assert result.layer_count == 100
    w, h = LIBRARY.printer("prusa-mk4").line_width_mm, 0.2
    interior = (20 - 2 * 2 * w) ** 2
    walls = 400 - interior
    solid_layers = 3 + 4
    # Sparse lines are joined where they meet the edge of the sparse area (as PrusaSlicer anchors them): up to
    # one line along that edge per layer, on top of the infill fraction of the interior.
    anchors = 4 * (20 - 2 * 2 * w) * w
    expected = h * (100 * walls + solid_layers * interior + (100 - solid_layers) * (interior * 0.15 + anchors))
    assert abs(extruded_volume_mm3(moves) / expected - 1) < 0.10
    # External perimeter within half a line width of the outline (its centre w/2 inside the 20 mm square).
    outer = moves.kind == "external perimeter"
    centre = np.array([125.0, 105.0])
    pts = moves.end[outer & moves.extruding, :2] - centre
    inset = 10 - np.abs(pts).max(axis=1)
    assert np.all(np.abs(inset - w / 2) <= w / 2)
    assert not np.any(moves.kind == "support")
    # The header is comments only, and carries the estimates.
    header = "\n".join(moves.header)
    for key in ("medprint", "prusa-mk4", "pla", "layer count: 100", "estimated printing time", "filament used [mm]",
                "filament used [g]", "filament cost"):
        assert key in header
    assert result.filament_mm == pytest.approx(moves.e[moves.extruding & (moves.layer >= 0)].sum(), rel=1e-4)


def test_tube_hole_and_klipper_relative_e(tmp_path: Path) -> None:
    moves, _ = slice_file(tmp_path, tube(), printer="voron-2.4-350", material="petg", infill_density=0.2,
                          infill_pattern="rectilinear")
    assert "M83" in moves.commands and "PRINT_START" in moves.commands
    check_common(moves, printer="voron-2.4-350", material="petg", height_mm=10.0)
    w = LIBRARY.printer("voron-2.4-350").line_width_mm
    centre = np.array([175.0, 175.0])
    outer = moves.extruding & (moves.kind == "external perimeter")
    radius = np.hypot(*(moves.end[outer, :2] - centre).T)
    # Two outlines: the hole (radius 7, perimeter outside it) and the outside (radius 12, inside it).
    near_hole = radius < 9.5
    assert np.all(np.abs((radius[near_hole] - 7.0) - w / 2) <= w / 2)
    assert np.all(np.abs((12.0 - radius[~near_hole]) - w / 2) <= w / 2)
    # Nothing is printed in the hole.
    printed = moves.extruding & (moves.layer >= 0) & (moves.kind != "skirt")
    assert np.hypot(*(moves.end[printed, :2] - centre).T).min() > 7.0
    area = np.pi * (12**2 - 7**2)
    wall = area - np.pi * ((12 - 2 * w) ** 2 - (7 + 2 * w) ** 2)
    interior = area - wall
    expected = 0.2 * (50 * wall + 7 * interior + 43 * interior * 0.2)
    assert abs(extruded_volume_mm3(moves, printer="voron-2.4-350", material="petg") / expected - 1) < 0.10


def test_islands_retract_between_them(tmp_path: Path) -> None:
    moves, _ = slice_file(tmp_path, two_posts(), infill_pattern="gyroid", infill_density=0.2)
    check_common(moves, printer="prusa-mk4", height_mm=6.0)
    layer = moves.layer == 10
    x = moves.end[layer & moves.extruding, 0]
    assert (x < 125).any() and (x > 125).any()
    # Each layer goes from one post to the other at least once, always retracting first.
    retractions = (moves.e < 0) & layer
    assert retractions.sum() >= 1
    long_travel = layer & (moves.e == 0) & (moves.xy_length > 8)
    idx = np.flatnonzero(long_travel)
    assert idx.size >= 1 and np.all(moves.e[idx - 1] < 0)
    expected = 0.2 * 30 * 2 * 64 * 0.5  # at least half of the solid volume in walls + solid + gyroid infill
    assert extruded_volume_mm3(moves) > expected


def test_supports_only_under_overhangs(tmp_path: Path) -> None:
    moves, _ = slice_file(tmp_path, t_bracket(), supports=True)
    check_common(moves, printer="prusa-mk4", height_mm=T_BAR_TOP)
    support = moves.extruding & (moves.kind == "support")
    assert support.sum() > 10
    w = LIBRARY.printer("prusa-mk4").line_width_mm
    pitch = SUPPORT_GAP_MM + w
    centre = np.array([125.0, 105.0])
    # In bed coordinates: the stem (x within +-3, y 100..110 after the 10 mm extrusion is centred), and the arms'
    # footprint beside it, which is what needs support.
    stem = shapely.box(-T_STEM_HALF, -5, T_STEM_HALF, 5)
    arms = shapely.box(-T_BAR_HALF, -5, T_BAR_HALF, 5).difference(stem)
    a, b = moves.start[support, :2] - centre, moves.end[support, :2] - centre
    lines = shapely.linestrings(np.stack([a, b], axis=1))
    z = moves.end[support, 2]
    # Kept the xy gap from the part (its lines are w wide), under the arms' bottom with the z gap...
    assert shapely.distance(lines, stem).min() >= 0.6 - 1e-3
    assert z.max() <= T_STEM_TOP - 0.2 + 1e-6
    # ...and nowhere further from what needs support than one support grid cell (the area is snapped to that
    # grid, as PrusaSlicer's grid-style supports are).
    assert shapely.hausdorff_distance(shapely.union_all(lines), arms) <= pitch + w
    # Both arms are supported, from the bed up, with no gap wider than the line pitch under them.
    assert (a[:, 0] < 0).any() and (a[:, 0] > 0).any() and z.min() == pytest.approx(0.2)
    for layer_z in (0.2, 6.0, T_STEM_TOP - 0.2):
        here = lines[np.abs(z - layer_z) < 1e-3]
        gx, gy = np.meshgrid(np.r_[-14.5:-3.6:0.5, 3.6:14.5:0.5], np.arange(-4.5, 4.6, 0.5))
        probe = shapely.points(gx.ravel(), gy.ravel())
        nearest = shapely.distance(probe, shapely.union_all(here))
        assert nearest.max() <= pitch / 2 + w, (layer_z, nearest.max())
    # The first support layer is dense, for bed adhesion.
    first = moves.extruding & (moves.kind == "support") & (moves.layer == 0)
    higher = moves.extruding & (moves.kind == "support") & (moves.layer == 5)
    assert moves.xy_length[first].sum() > 3 * moves.xy_length[higher].sum()
    cube_moves, _ = slice_file(tmp_path, cube(), supports=True, brim_width_mm=3.0)
    assert not np.any(cube_moves.kind == "support")


def test_header_has_no_injected_commands(tmp_path: Path) -> None:
    evil = "Order 42 Jane Doe\nG28 X0\r\nM104 S300\x00\x1b[2J"
    moves, _ = slice_file(tmp_path, cube(), job_name=evil)
    text = (tmp_path / "out.gcode").read_text()
    head = text.split("G90", 1)[0]
    assert all(line.startswith(";") for line in head.splitlines())
    assert "; job: Order 42 Jane Doe G28 X0 M104 S300" in head
    # The job name's commands stay in the comment: no nozzle set to 300, one G28 (the profile's), no X0 homing.
    assert 300.0 not in [value for _, value in moves.code_values("M104")]
    assert [args for _, word, args in moves.codes if word == "G28"] == [{}]
    assert not any(line.split(";", 1)[0].strip().upper().startswith(("M104 S300", "G28 X0")) for line in text.splitlines())
    assert sanitize_comment("a\u2028G1 X0") == "a G1 X0"


def test_bad_inputs(tmp_path: Path) -> None:
    printer, material = LIBRARY.printer("prusa-mk4"), LIBRARY.material("pla")
    with pytest.raises(MeshError, match="empty"):
        slice_to_gcode(Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)), printer, material)
    box = trimesh.creation.box((20, 20, 20))
    holed = Mesh(np.asarray(box.vertices, dtype=np.float64), np.asarray(box.faces[1:], dtype=np.int64))
    with pytest.raises(MeshError, match="not printable.*open edges"):
        slice_to_gcode(holed, printer, material, SliceSettings(repair=False))
    repaired = slice_to_gcode(holed, printer, material)
    assert repaired.actions and repaired.layer_count == 100
    tall = as_mesh(trimesh.creation.box((20, 20, 230)))
    with pytest.raises(ParameterError, match=r"too big.*over in z by 10\.0 mm; use --scale 0\.956.*--orient height"):
        slice_to_gcode(tall, printer, material)
    placed = slice_to_gcode(tall, printer, material, SliceSettings(orient="height"))
    assert placed.placement is not None and placed.placement.size_mm[2] == pytest.approx(20)
    with pytest.raises(ParameterError, match="--layer-height"):
        slice_to_gcode(cube(), printer, material, SliceSettings(layer_height_mm=0.5))


def test_orient_for_support_and_scale(tmp_path: Path) -> None:
    printer, material = LIBRARY.printer("prusa-mk4"), LIBRARY.material("pla")
    upside = slice_to_gcode(t_bracket(), printer, material, SliceSettings(orient="support", supports=True))
    assert upside.placement is not None and upside.placement.support_area_mm2 < 1.0
    half = slice_to_gcode(cube(), printer, material, SliceSettings(scale=0.5))
    assert half.layer_count == 50


def test_cli_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stl = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 20)).export(stl)
    out = tmp_path / "cube.gcode"
    main(["slice", str(stl), "--printer", "ender-3", "--material", "PLA", "-o", str(out), "--infill-density", "20%",
          "--layer-height", "0.28", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["layer_count"] == 72 and summary["printer"] == "ender-3"
    check_common(read_moves(out), printer="ender-3", height_mm=20.0, layer_height=0.28, first_layer=0.2)
    with pytest.raises(SystemExit) as done:
        main(["slice", str(stl), "--printer", "ender3", "--material", "pla", "-o", str(out)])
    err = capsys.readouterr().err
    assert done.value.code == 1 and "did you mean ender-3" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as done:
        main(["slice", str(stl), "--printer", "ender-3", "--material", "pla", "-o", str(out)])
    assert done.value.code == 1 and "--overwrite" in capsys.readouterr().err


def test_prusaslicer_engine_on_cube(tmp_path: Path) -> None:
    import shutil

    if shutil.which("prusa-slicer") is None:
        pytest.skip("prusa-slicer is not installed (apt-get install prusa-slicer)")
    printer, material = LIBRARY.printer("prusa-mk4"), LIBRARY.material("pla")
    ours = slice_to_gcode(cube(), printer, material, SliceSettings())
    theirs = slice_to_gcode(cube(), printer, material, SliceSettings(job_name="case\nG28"), engine="prusaslicer")
    path = write_gcode(theirs, tmp_path / "ps.gcode")
    moves = read_moves(path)
    assert theirs.layer_count == 100 and moves.end[moves.extruding, 2].max() == pytest.approx(20.0)
    # The same lines: extruded path length (part only) within 5 %.
    ours_path = tmp_path / "ours.gcode"
    our_moves = read_moves(write_gcode(ours, ours_path))
    part = ("external perimeter", "perimeter", "solid infill", "infill", "top solid infill", "internal infill",
            "bridge infill", "overhang perimeter", "gap fill", "thin wall")
    our_length = our_moves.xy_length[our_moves.extruding & np.isin(our_moves.kind, part)].sum()
    their_length = moves.xy_length[moves.extruding & np.isin(moves.kind, part)].sum()
    assert abs(our_length / their_length - 1) < 0.05, (our_length, their_length)
    # Filament: PrusaSlicer's line has rounded sides, (w - h) h + pi h^2 / 4 = 0.0814 mm2 for 0.45 x 0.2 mm, where
    # ours is the rectangle w h = 0.09 mm2 (the "line width x layer height x flow"): 10.5 % more per mm.
    w, h = printer.line_width_mm, 0.2
    rounded = ((w - h) * h + np.pi * h**2 / 4) / (w * h)
    assert abs(ours.filament_mm * rounded / theirs.filament_mm - 1) < 0.05
    assert abs(ours.estimated_time_s / theirs.estimated_time_s - 1) < 0.20
    text = path.read_text()
    assert text.startswith("; generated by medprint") and "\nG28\n" not in text.split("G90", 1)[0]
    assert moves.end[:, :2].min() >= 0 and moves.end[:, 0].max() <= 250 and moves.end[:, 1].max() <= 210


def test_prusaslicer_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from medprint.slice.prusaslicer import EngineError

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EngineError, match="prusa-slicer program is not installed.*apt-get install prusa-slicer"):
        slice_to_gcode(cube(), LIBRARY.printer("prusa-mk4"), LIBRARY.material("pla"), engine="prusaslicer")


def thin_wall_rate(moves: Moves, sel: np.ndarray) -> np.ndarray:
    """Width (mm) of each selected extrusion, from its filament per mm."""
    return moves.e[sel] / moves.xy_length[sel] / e_per_mm() * LIBRARY.printer("prusa-mk4").line_width_mm


def test_thin_wall_printed_along_its_middle_as_wide_as_the_wall(tmp_path: Path, caplog) -> None:
    # A tube with a 0.3 mm wall for the 0.4 mm nozzle (0.45 mm lines): no perimeter fits in it.
    ring = shapely.Point(0, 0).buffer(10.0, quad_segs=64).difference(shapely.Point(0, 0).buffer(9.7, quad_segs=64))
    with caplog.at_level("WARNING", logger="medprint"):
        moves, _ = slice_file(tmp_path, as_mesh(prism(ring, 2.0)))
    assert not any("thinner than" in record.message for record in caplog.records)
    check_common(moves, printer="prusa-mk4", height_mm=2.0)
    printed = moves.extruding & (moves.layer >= 0) & (moves.kind != "skirt")
    assert set(moves.kind[printed]) == {"thin wall"}
    centre = np.array([125.0, 105.0])
    for end in (moves.start, moves.end):
        r = np.hypot(*(end[printed, :2] - centre).T)
        # Inside the wall, along its middle (the outline's chords sit up to 1 um inside the circles).
        assert np.all((r > 9.7) & (r < 10.0)) and np.all(np.abs(r - 9.85) <= 0.03)
    # Around the whole tube on every layer, as wide as the wall.
    for layer in range(10):
        here = printed & (moves.layer == layer)
        assert moves.xy_length[here].sum() == pytest.approx(2 * np.pi * 9.85, rel=0.02)
    assert np.all(np.abs(thin_wall_rate(moves, printed) - 0.3) <= 0.02)
    assert extruded_volume_mm3(moves) == pytest.approx(ring.area * 2.0, rel=0.03)


def test_thin_wall_width_follows_a_tapering_wall(tmp_path: Path) -> None:
    # A 20 mm wall, 0.2 mm thick at one end and 0.4 mm at the other.
    wedge = shapely.Polygon([(-10, -0.1), (10, -0.2), (10, 0.2), (-10, 0.1)])
    moves, _ = slice_file(tmp_path, as_mesh(prism(wedge, 1.0)))
    check_common(moves, printer="prusa-mk4", height_mm=1.0)
    sel = moves.extruding & (moves.kind == "thin wall")
    x = (moves.start[sel, 0] + moves.end[sel, 0]) / 2 - 125.0
    y = np.r_[moves.start[sel, 1], moves.end[sel, 1]] - 105.0
    assert np.all(np.abs(y) <= 0.02)  # on the wall's middle line
    inner = np.abs(x) < 9.5
    assert np.all(np.abs(thin_wall_rate(moves, sel)[inner] - (0.3 + 0.01 * x[inner])) <= 0.02)
    # Along the wall's whole length on every layer (the line stops about half a wall short of each end).
    for layer in range(moves.layer.max() + 1):
        assert moves.xy_length[sel & (moves.layer == layer)].sum() >= 19.5


def test_gap_between_perimeters_is_filled(tmp_path: Path) -> None:
    # A 1.2 mm wall: the two outer perimeters (0.45 mm lines, one from each side) leave a 0.3 mm strip between
    # them, too narrow for the inner perimeters.
    ring = shapely.Point(0, 0).buffer(10.0, quad_segs=64).difference(shapely.Point(0, 0).buffer(8.8, quad_segs=64))
    moves, _ = slice_file(tmp_path, as_mesh(prism(ring, 2.0)))
    check_common(moves, printer="prusa-mk4", height_mm=2.0)
    gap = moves.extruding & (moves.kind == "gap fill")
    centre = np.array([125.0, 105.0])
    for end in (moves.start, moves.end):
        assert np.all(np.abs(np.hypot(*(end[gap, :2] - centre).T) - 9.4) <= 0.03)
    for layer in range(10):
        assert moves.xy_length[gap & (moves.layer == layer)].sum() == pytest.approx(2 * np.pi * 9.4, rel=0.02)
    assert np.all(np.abs(thin_wall_rate(moves, gap) - 0.3) <= 0.02)
    # Walls and gap together put down the wall's volume.
    assert extruded_volume_mm3(moves) == pytest.approx(ring.area * 2.0, rel=0.03)


def test_walls_too_thin_even_for_a_thin_wall_line_are_reported(tmp_path: Path, caplog) -> None:
    thin_tube = shapely.Point(0, 0).buffer(10.0, quad_segs=32).difference(shapely.Point(0, 0).buffer(9.9, quad_segs=32))
    with caplog.at_level("WARNING", logger="medprint"):
        moves, _ = slice_file(tmp_path, as_mesh(prism(thin_tube, 2.0)))
    assert any("thinner than 0.13 mm" in record.message and "not printed" in record.message
               for record in caplog.records)
    assert not (moves.extruding & (moves.layer >= 0) & (moves.kind != "skirt")).any()
    caplog.clear()
    with caplog.at_level("WARNING", logger="medprint"):
        slice_file(tmp_path, cube())
    assert not any("thinner than" in record.message for record in caplog.records)


def _outside_distance(moves: Moves, keep: np.ndarray, footprint: shapely.Geometry) -> np.ndarray:
    points = shapely.points(moves.end[keep, :2])
    return shapely.distance(footprint, points)


def test_brim_surrounds_the_first_layer_outline_at_the_brim_width(tmp_path: Path) -> None:
    brim = 3.0
    moves, _ = slice_file(tmp_path, cube(), brim_width_mm=brim)
    w = LIBRARY.printer("prusa-mk4").line_width_mm
    footprint = shapely.box(115.0, 95.0, 135.0, 115.0)  # the 20 mm cube, centred on the prusa-mk4 bed
    lines = moves.extruding & (moves.kind == "skirt")
    assert set(moves.layer[lines]) == {0}  # brim and skirt only on the first layer
    distance = _outside_distance(moves, lines, footprint)
    on_brim = distance < brim + w
    # Loops every line width from the outline outwards, the outermost's outer edge at the brim width.
    offsets = np.unique(np.round(distance[on_brim] / w - 0.5))
    assert list(offsets) == list(range(round(brim / w)))
    assert abs(distance[on_brim].max() + w / 2 - brim) <= w / 2
    assert distance[on_brim].min() == pytest.approx(w / 2, abs=0.01)  # touching the part, so it holds it down
    # All the way round: brim points beside each of the four sides.
    x, y = moves.end[lines][on_brim, 0], moves.end[lines][on_brim, 1]
    assert (x < 115).any() and (x > 135).any() and (y < 95).any() and (y > 115).any()
    # Without a brim only the skirt is there, clear of the part by the skirt distance.
    plain, _ = slice_file(tmp_path, cube())
    skirt = plain.extruding & (plain.kind == "skirt")
    assert _outside_distance(plain, skirt, footprint).min() >= 3.0 - 1e-3


@pytest.mark.parametrize(("printer", "material"), [("prusa-mk4", "pla"), ("voron-2.4-350", "petg"),
                                                   ("ender-3", "tpu-95a")])
def test_fan_and_temperatures_follow_the_material(tmp_path: Path, printer: str, material: str) -> None:
    moves, _ = slice_file(tmp_path, cube(), printer=printer, material=material)
    m = LIBRARY.material(material)
    ext = moves.extruding & (moves.layer >= 0)
    first, later = ext & (moves.layer == 0), ext & (moves.layer >= 1)
    # Fan: the material's first-layer duty on layer 0, its normal duty from layer 1 on (0-255 PWM).
    assert np.all(np.abs(moves.fan_pwm[first] - m.fan_first_layer_percent * 2.55) <= 0.5)
    assert np.all(np.abs(moves.fan_pwm[later] - m.fan_percent * 2.55) <= 0.5)
    # Temperatures: first-layer values while layer 0 prints, the normal ones after.
    assert np.all(moves.nozzle_c[first] == m.nozzle_temp_first_layer_c)
    assert np.all(moves.bed_c[first] == m.bed_temp_first_layer_c)
    assert np.all(moves.nozzle_c[later] == m.nozzle_temp_c)
    assert np.all(moves.bed_c[later] == m.bed_temp_c)
    # The printer waits for both before printing, at the first-layer values.
    before = [(word, args.get("S")) for layer, word, args in moves.codes if layer < 0]
    assert ("M109", m.nozzle_temp_first_layer_c) in before and ("M190", m.bed_temp_first_layer_c) in before
    # And turns the heaters off at the end (on Klipper, its PRINT_END macro does).
    if LIBRARY.printer(printer).firmware == "klipper":
        assert moves.commands[-1] == "PRINT_END"
    else:
        assert moves.code_values("M104")[-1][1] == 0 and moves.code_values("M140")[-1][1] == 0


@pytest.mark.parametrize(("printer", "material"), [("prusa-mk4", "petg"), ("ender-3", "tpu-95a"),
                                                   ("prusa-mk4", "pla")])
def test_volumetric_speed_stays_within_the_materials_limit(tmp_path: Path, printer: str, material: str) -> None:
    moves, _ = slice_file(tmp_path, cube(), printer=printer, material=material, infill_density=0.3)
    p, m = LIBRARY.printer(printer), LIBRARY.material(material)
    ext = moves.extruding & (moves.layer >= 0)
    filament_area = np.pi * (p.filament_diameter_mm / 2) ** 2
    # Melt rate: filament volume fed per second of the move (E mm x area over length / feed rate).
    mm3_per_s = moves.e[ext] * filament_area * moves.feed_mm_s[ext] / moves.xy_length[ext]
    # Rounding: F is written in whole mm/min, E to 1e-5 mm.
    slack = m.max_volumetric_speed_mm3_s * 2e-3 + 1e-5 * filament_area * moves.feed_mm_s[ext] / moves.xy_length[ext]
    assert np.all(mm3_per_s <= m.max_volumetric_speed_mm3_s + slack), mm3_per_s.max()
    # Where the printer's speeds would melt faster than the material allows, the limit is what holds them.
    w = p.line_width_mm
    if p.infill_speed_mm_s * w * 0.2 * m.flow_multiplier > m.max_volumetric_speed_mm3_s:
        assert mm3_per_s.max() >= 0.97 * m.max_volumetric_speed_mm3_s


def test_reprapfirmware_gets_relative_extrusion_and_plain_codes(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    source = Path(LIBRARY.printer("prusa-mk4").source).read_text()
    (folder / "duet.toml").write_text(source.replace('firmware = "marlin2"', 'firmware = "reprapfirmware"'))
    library = load_profiles(folder)
    printer = next(p for p in library.printers.values() if p.firmware == "reprapfirmware")
    result = slice_to_gcode(cube(), printer, library.material("pla"), SliceSettings())
    path = write_gcode(result, tmp_path / "duet.gcode", overwrite=True)
    moves = read_moves(path)

    assert f"({printer.firmware})" in "\n".join(moves.header)
    # RepRapFirmware: relative E set once before printing, never absolute.
    assert "M83" in moves.commands and "M82" not in moves.commands
    check_common(moves, printer="prusa-mk4", height_mm=20.0)
    # With relative E, no layer resets the extruder position (that is for absolute E).
    assert [word for layer, word, args in moves.codes if layer >= 0 and word == "G92" and "E" in args] == []
    # Only plain G/M codes RepRapFirmware knows (no Klipper macros).
    assert all(re.fullmatch(r"[GM]\d+", word) for word in moves.commands), set(moves.commands)
