"""The G-code pictures: read the extrusions exactly (medprint's and PrusaSlicer's G-code), draw them."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from medprint.errors import InputError
from medprint.mesh.model import Mesh
from medprint.review.layer_views import gcode_pictures, read_extrusions
from medprint.slice import load_profiles, slice_to_gcode

if str(Path(__file__).resolve().parents[1] / "slice") not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[1] / "slice"))
from gcode_reader import read_moves


def box_gcode(engine: str) -> str:
    box = trimesh.creation.box((30.0, 20.0, 6.0))
    library = load_profiles()
    result = slice_to_gcode(Mesh(np.asarray(box.vertices), np.asarray(box.faces)), library.printer("prusa-mk4"),
                            library.material("pla"), engine=engine)
    return "".join(result.chunks)


@pytest.fixture(scope="module")
def builtin_gcode() -> str:
    return box_gcode("builtin")


@pytest.fixture(scope="module")
def box_pictures(builtin_gcode: str):
    return gcode_pictures(builtin_gcode)


def _agrees_with_the_line_reader(text: str, tmp_path: Path) -> None:
    path = tmp_path / "print.gcode"
    path.write_text(text)
    moves = read_moves(path)
    extruding = moves.extruding
    found = read_extrusions(text)
    assert len(found.z) == int(extruding.sum()) > 100
    assert np.allclose(found.start_xy, moves.start[extruding, :2])
    assert np.allclose(found.end_xy, moves.end[extruding, :2])
    assert np.allclose(found.z, moves.end[extruding, 2])
    assert found.filament_mm == pytest.approx(float(moves.e.sum()), abs=1e-6)


def test_builtin_gcode_is_read_as_the_line_reader_reads_it(builtin_gcode: str, tmp_path: Path) -> None:
    _agrees_with_the_line_reader(builtin_gcode, tmp_path)


@pytest.mark.skipif(shutil.which("prusa-slicer") is None, reason="PrusaSlicer (prusa-slicer) is not installed")
def test_prusaslicer_gcode_is_read_as_the_line_reader_reads_it(tmp_path: Path) -> None:
    _agrees_with_the_line_reader(box_gcode("prusaslicer"), tmp_path)


def test_pictures_of_a_sliced_box_are_pngs_with_its_layers(builtin_gcode: str, box_pictures) -> None:
    pictures = box_pictures
    layers = read_extrusions(builtin_gcode).layers_z
    assert len(pictures) == 4
    assert pictures[0].title.startswith("Toolpaths from the side")
    assert [p.title.split(" of ")[0] for p in pictures[1:]] == ["Layer 1", f"Layer {len(layers) // 2 + 1}",
                                                                 f"Layer {len(layers)}"]
    for picture in pictures:
        image = Image.open(io.BytesIO(picture.png))
        assert image.format == "PNG" and image.width >= 400
        rgb = np.asarray(image.convert("RGB")).astype(int)
        drawn = np.any(np.abs(rgb - 255) > 60, axis=-1)  # not the white page
        assert 0.02 < drawn.mean() < 0.9, picture.title
        assert picture.letters == ()  # printer axes, no patient directions
    assert f"{len(layers)} layers" in pictures[0].caption and "not patient directions" in pictures[0].caption


def test_the_side_view_is_coloured_by_height(box_pictures) -> None:
    rgb = np.asarray(Image.open(io.BytesIO(box_pictures[0].png)).convert("RGB")).astype(int)
    # viridis: dark purple low, yellow high; the box's layers must show both ends of the scale.
    purple = (rgb[..., 0] < 90) & (rgb[..., 1] < 60) & (rgb[..., 2] > 60)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)
    assert purple.sum() > 200 and yellow.sum() > 200
    assert np.nonzero(yellow)[0].mean() < np.nonzero(purple)[0].mean()  # high layers drawn above low ones


RELATIVE_GCODE = """; relative extrusion, words in any order, comments, a line number, an indented line and a G91 lift
M83
G90
G1 Z0.2 F600
G0 X10 Y10 ; travel
M117 X50 Y50 E9 ; a message on the printer's screen, no move
  G1 X20 Y10 E0.5 F1200 ; indented, and X99 E5 in a comment
G1 E-0.8 ; retract
G91
G1 Z0.5 ; lift
G90
G1 E0.8
N12 G1 Y20 E.25 X20
G1 X20 Y20 E0.1 ; no movement: nothing to draw
G92 E0
G1 Z0.4
G1 X10 E1.0e-1 Y20
"""


def test_relative_extrusion_and_relative_moves() -> None:
    found = read_extrusions(RELATIVE_GCODE)
    assert np.allclose(found.start_xy, [[10, 10], [20, 10], [20, 20]])
    assert np.allclose(found.end_xy, [[20, 10], [20, 20], [10, 20]])
    assert np.allclose(found.z, [0.2, 0.7, 0.4])  # the G91 lift raises the second move to 0.7
    assert found.filament_mm == pytest.approx(0.5 - 0.8 + 0.8 + 0.25 + 0.1 + 0.1)


ABSOLUTE_GCODE = """M82
G92 E0
G1 Z0.3
G1 X0 Y0
G1 X5 Y0 E2
G1 E1.2 ; retract in absolute E
G0 X9 Y9
G1 E2
G1 X9 Y1 E3
G92 E0
G1 X1 Y1 E0.5
"""


def test_absolute_extrusion_follows_g92_resets() -> None:
    found = read_extrusions(ABSOLUTE_GCODE)
    assert np.allclose(found.start_xy, [[0, 0], [9, 9], [9, 1]])
    assert np.allclose(found.end_xy, [[5, 0], [9, 1], [1, 1]])
    assert found.filament_mm == pytest.approx(2 + 1 + 0.5)


def test_gcode_without_extrusion_is_refused() -> None:
    with pytest.raises(InputError, match="no G0/G1"):
        read_extrusions("; just a comment\nM104 S200\n")
    with pytest.raises(InputError, match="no extruding moves"):
        gcode_pictures("G28\nG0 X10 Y10\nG1 X20 Y20 F100\n")
