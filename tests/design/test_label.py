"""design label: text embossed on / engraved into closed parts (issue 10, point 7).

Every figure is measured on the written mesh, independently of the code that made it: volumes by medprint's
own mesh assessment, the relief by rays cast on the finished and the original meshes in the label's plane
(right = up x normal computed here), the glyph area from the font's polygons.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

# importlib mode: this folder's phantoms are imported by plain name (tests/conftest.py adds tests/ and hostile/).
from phantoms_label import (
    box_mesh,
    ellipsoid_mesh,
    height_image,
    iou,
    label_frame,
    oblique,
    relief_and_glyph_masks,
    render_png,
    skull_cap_mesh,
)

from medprint.design.label import SINK_MM, LabelSettings, label_part
from medprint.design.label_text import check_text, min_stroke_mm, text_outline
from medprint.errors import DesignError, InputError, ParameterError
from medprint.mesh import assess_mesh
from medprint.mesh.model import Mesh


@pytest.fixture(scope="module")
def skull() -> Mesh:
    return skull_cap_mesh(spacing=(1.5, 1.5, 2.0))


def _glyphs(settings: LabelSettings) -> shapely.MultiPolygon:
    return text_outline(settings.text, settings.size_mm, font=settings.font).polygons


def _assert_one_closed_body(mesh: Mesh) -> None:
    quality = assess_mesh(mesh)
    # Printable as it is: no degenerate face for the final repair to drop (and rebuild, moving the surface).
    assert quality.is_printable and quality.degenerate_faces == 0 and quality.duplicate_faces == 0
    assert quality.shells == 1 and quality.cavities == 0


def _volume_change_matches(before: Mesh, after: Mesh, settings: LabelSettings, rel: float = 0.10) -> float:
    change = assess_mesh(after).volume_mm3 - assess_mesh(before).volume_mm3
    expected = _glyphs(settings).area * settings.relief_mm * (1 if settings.mode == "emboss" else -1)
    assert change == pytest.approx(expected, rel=rel)
    return change / expected


# --- the glyphs ------------------------------------------------------------------------------------------------

def test_outline_has_the_asked_capital_height_and_every_counter():
    h = text_outline("H", 5.0)
    x0, y0, x1, y1 = h.polygons.bounds
    assert y1 - y0 == pytest.approx(5.0, abs=0.01)
    order = text_outline("ORD-1042 R", 5.0).polygons
    # O R D - 1 0 4 2 R: nine pieces; counters in O, R, D, 0, 4, R.
    assert len(order.geoms) == 9
    assert sum(len(p.interiors) for p in order.geoms) == 6
    # Dollar signs are set as glyphs, not read as mathtext delimiters.
    assert text_outline("$5$", 5.0).size_mm[0] > 2 * text_outline("5", 5.0).size_mm[0]


def test_gap_width_of_known_shapes():
    from medprint.design.label_text import narrowest_gap_mm

    two = shapely.MultiPolygon([shapely.box(0, 0, 2, 5), shapely.box(2.4, 0, 5, 5)])
    assert narrowest_gap_mm(two) == pytest.approx(0.4, abs=0.01)
    ring = shapely.Point(0, 0).buffer(5.0, quad_segs=64).difference(shapely.Point(0, 0).buffer(0.35, quad_segs=64))
    assert narrowest_gap_mm(shapely.MultiPolygon([ring])) == pytest.approx(0.7, abs=0.01)  # the counter's width


def test_a_gap_narrower_than_the_line_is_refused():
    box = box_mesh((80.0, 40.0, 20.0), (0.0, 0.0, 0.0))
    # Bold lowercase at 3 mm: the strokes pass a 0.3 mm line, the gap in "e" does not.
    settings = LabelSettings(text="ee", size_mm=3.0, at_lps=(0.0, 0.0, 10.0), min_stroke_mm=0.3)
    outline = _glyphs(settings)
    from medprint.design.label_text import narrowest_gap_mm

    assert narrowest_gap_mm(outline) < 0.3 <= min_stroke_mm(outline)
    with pytest.raises(DesignError, match="--size.*gap"):
        label_part(box, settings)


def test_stroke_width_of_known_shapes():
    bars = shapely.MultiPolygon([shapely.box(0, 0, 20, 0.7), shapely.box(0, 5, 20, 6.3)])
    assert min_stroke_mm(bars) == pytest.approx(0.7, abs=0.01)
    ring = shapely.Point(0, 0).buffer(5.0, quad_segs=64).difference(shapely.Point(0, 0).buffer(4.6, quad_segs=64))
    assert min_stroke_mm(shapely.MultiPolygon([ring])) == pytest.approx(0.4, abs=0.01)
    # A neck: two thick blocks joined by a 0.3 mm bridge count as 0.3 mm strokes.
    neck = shapely.box(0, 0, 3, 3).union(shapely.box(3, 1.35, 4, 1.65)).union(shapely.box(4, 0, 7, 3))
    assert min_stroke_mm(shapely.MultiPolygon([neck])) == pytest.approx(0.3, abs=0.01)
    # Strokes scale with the size.
    small, large = (min_stroke_mm(text_outline("ORD", s).polygons) for s in (3.0, 6.0))
    assert large == pytest.approx(2 * small, rel=0.02)


@pytest.mark.parametrize("text", ["", "   ", "A\nB", "ORD\x1b[31m", "A\tB", "zero\u200bwidth", "é", "X" * 65])
def test_text_that_cannot_be_a_label_is_refused(text):
    with pytest.raises(ParameterError, match="--text"):
        check_text(text)
    with pytest.raises(ParameterError, match="--text"):
        LabelSettings(text=text)


# --- on a box: exact figures -----------------------------------------------------------------------------------

def test_emboss_on_an_oblique_box_adds_area_times_height_where_asked():
    rotation = oblique()
    centre = np.array([12.3, -45.6, 78.9])
    box = box_mesh((60.0, 40.0, 20.0), centre, rotation)
    top_normal = rotation[:, 2]
    on_top = centre + 10.0 * top_normal
    settings = LabelSettings(text="ORD-1042 R", relief_mm=1.2, size_mm=4.0,
                             at_lps=tuple(on_top + 0.8 * top_normal))  # near the surface, not on it
    part = label_part(box, settings)
    _assert_one_closed_body(part.mesh)
    ratio = _volume_change_matches(box, part.mesh, settings, rel=0.10)
    assert ratio == pytest.approx(1.0, abs=0.005)  # a flat face: exact up to the float rounding
    where = part.measurements["placement"]
    assert np.allclose(where["centre_lps"], on_top, atol=1e-3)
    assert abs(np.dot(where["normal_lps"], top_normal)) > 0.9999
    assert part.measurements["relief_measured_mm"] == pytest.approx(1.2, abs=0.01)
    # Every new vertex lies over the glyphs, between the sunk base and the asked height.
    centre_, right, up, normal = label_frame(part.measurements)
    offsets = part.mesh.vertices - on_top
    local = np.stack([offsets @ right, offsets @ up, offsets @ normal], axis=1)
    on_box = np.zeros(len(local), dtype=bool)
    for axis, half in enumerate((30.0, 20.0, 10.0)):
        coordinate = (part.mesh.vertices - centre) @ rotation[:, axis]
        on_box |= np.isclose(np.abs(coordinate), half, atol=1e-6)
    new = ~on_box | (local[:, 2] > 1e-3)
    assert new.any()
    glyphs = _glyphs(settings).buffer(0.01)
    assert shapely.contains_xy(glyphs, local[new, 0], local[new, 1]).all()
    assert local[new, 2].max() == pytest.approx(1.2, abs=1e-3)
    assert local[new, 2].min() >= -SINK_MM - 1e-3


def test_the_found_spot_on_a_box_is_inside_one_flat_face():
    rotation = oblique()
    centre = np.array([12.3, -45.6, 78.9])
    box = box_mesh((60.0, 40.0, 20.0), centre, rotation)
    settings = LabelSettings(text="ORD-42", size_mm=5.0)
    part = label_part(box, settings)
    _assert_one_closed_body(part.mesh)
    spot, right, up, normal = label_frame(part.measurements)
    assert part.measurements["placement"]["found_automatically"]
    # On a large (60 x 40) face: the normal is the box's third axis.
    assert abs(normal @ rotation[:, 2]) > 0.9999
    assert abs((spot - centre) @ rotation[:, 2]) == pytest.approx(10.0, abs=1e-3)
    # The whole footprint lies inside the face, clear of its edges.
    x0, y0, x1, y1 = _glyphs(settings).bounds
    for x in (x0, x1):
        for y in (y0, y1):
            corner = spot + x * right + y * up - centre
            assert abs(corner @ rotation[:, 0]) < 30.0 - 0.5
            assert abs(corner @ rotation[:, 1]) < 20.0 - 0.5
    assert part.measurements["placement"]["surface_deviation_from_plane_mm"] == pytest.approx(0.0, abs=1e-6)
    assert any("flattest spot" in choice for choice in part.choices)


def test_engraving_deeper_than_the_wall_is_refused():
    plate = box_mesh((60.0, 40.0, 2.0))
    top = (12.3, -45.6, 78.9 + 1.0)
    with pytest.raises(DesignError, match="--depth"):
        label_part(plate, LabelSettings(text="R", mode="engrave", relief_mm=1.8, at_lps=top))
    part = label_part(plate, LabelSettings(text="R", mode="engrave", relief_mm=1.0, at_lps=top))
    _assert_one_closed_body(part.mesh)
    assert part.measurements["placement"]["material_under_engraving_mm"] == pytest.approx(2.0, abs=1e-3)
    # Without --at, no spot of the plate is thick enough either.
    with pytest.raises(DesignError, match="--depth: no flat spot is thick enough"):
        label_part(plate, LabelSettings(text="R", mode="engrave", relief_mm=1.8))
    # A step: a thin flange beside a thick block; the found spot is on the block, where the wall holds the depth.
    import manifold3d

    stepped = (manifold3d.Manifold.cube((40.0, 40.0, 2.0)).translate((0.0, 0.0, 0.0))
               + manifold3d.Manifold.cube((40.0, 40.0, 20.0)).translate((40.0, 0.0, -18.0)))
    out = stepped.to_mesh64()
    flange = Mesh(np.asarray(out.vert_properties, dtype=np.float64)[:, :3],
                  np.asarray(out.tri_verts, dtype=np.int64).reshape(-1, 3), "stepped")
    part = label_part(flange, LabelSettings(text="R", mode="engrave", relief_mm=3.0, size_mm=5.0))
    _assert_one_closed_body(part.mesh)
    assert part.measurements["placement"]["material_under_engraving_mm"] >= 3.5


# --- on curved surfaces ----------------------------------------------------------------------------------------

def test_engrave_on_an_ellipsoid_follows_the_curve_and_reads_from_outside(tmp_path):
    ellipsoid = ellipsoid_mesh((60.0, 45.0, 30.0), (12.3, -45.6, 78.9))
    settings = LabelSettings(text="L 2026", mode="engrave", relief_mm=0.6, size_mm=5.0,
                             at_lps=(12.3, -45.6 - 45.0, 78.9))  # the anterior pole
    part = label_part(ellipsoid, settings)
    _assert_one_closed_body(part.mesh)
    _volume_change_matches(ellipsoid, part.mesh, settings, rel=0.10)
    centre, right, up, normal = label_frame(part.measurements)
    assert normal @ np.array([0.0, -1.0, 0.0]) > 0.999   # facing anterior, outward
    assert up @ np.array([0.0, 0.0, 1.0]) > 0.999        # default up: superior
    glyphs = _glyphs(settings)
    relief, inside, heights, _ = relief_and_glyph_masks(ellipsoid, part.mesh, part.measurements, glyphs, 0.6,
                                                     pixel_mm=0.15)
    assert iou(relief, inside) >= 0.8
    assert iou(relief[:, ::-1], inside) < 0.6  # mirrored text would not match
    # The depth is the same over the curved surface: measured along the normal on every glyph pixel.
    _, _, h_after = height_image(part.mesh, centre, right, up, normal, glyphs.bounds, 0.3)
    _, _, h_before = height_image(ellipsoid, centre, right, up, normal, glyphs.bounds, 0.3)
    xs = np.arange(glyphs.bounds[0], glyphs.bounds[2] + 0.15, 0.3)
    ys = np.arange(glyphs.bounds[1], glyphs.bounds[3] + 0.15, 0.3)
    gx, gy = np.meshgrid(xs, ys)
    deep = shapely.contains_xy(glyphs.buffer(-0.2), gx, gy)
    depth = (h_before - h_after)[deep]
    assert np.all(np.abs(depth - 0.6) < 0.02)
    render_png(heights, str(tmp_path / "engraved.png"), "engraved")


def test_the_found_spot_on_an_ellipsoid_is_at_its_flattest_pole():
    ellipsoid = ellipsoid_mesh((60.0, 45.0, 30.0), (0.0, 0.0, 0.0))
    part = label_part(ellipsoid, LabelSettings(text="ORD-1042", size_mm=4.0))
    _assert_one_closed_body(part.mesh)
    where = part.measurements["placement"]
    # The smallest curvature is at the ends of the shortest (S) axis.
    assert abs(where["normal_lps"][2]) > 0.98
    assert abs(where["centre_lps"][2]) > 28.5
    assert any("anterior" in choice for choice in part.choices)  # the surface faces up or down: up = anterior


def test_on_a_cylinder_the_cap_is_found_and_the_side_takes_text_along_the_axis():
    import manifold3d

    out = manifold3d.Manifold.cylinder(120.0, 30.0, 30.0, 256, center=True).to_mesh64()
    cylinder = Mesh(np.asarray(out.vert_properties, dtype=np.float64)[:, :3],
                    np.asarray(out.tri_verts, dtype=np.int64).reshape(-1, 3), "cylinder")
    settings = LabelSettings(text="ORD-1042 R")
    found = label_part(cylinder, settings)
    centre, right, up, normal = label_frame(found.measurements)
    # On a flat cap, centred away from its rim: every footprint corner well inside the 30 mm radius.
    assert abs(normal[2]) > 0.9999 and abs(centre[2]) == pytest.approx(60.0, abs=1e-3)
    x0, y0, x1, y1 = _glyphs(settings).bounds
    corners = [centre + x * right + y * up for x in (x0, x1) for y in (y0, y1)]
    assert max(np.hypot(c[0], c[1]) for c in corners) < 27.0
    # Around the side the 46 mm line bends too much; along the axis (up = P, reading inferior) it fits.
    with pytest.raises(DesignError, match="--at"):
        label_part(cylinder, LabelSettings(text="ORD-1042 R", at_lps=(30.0, 0.0, 0.0)))
    along_axis = LabelSettings(text="ORD-1042 R", at_lps=(30.0, 0.0, 0.0), up_lps=(0.0, 1.0, 0.0))
    along = label_part(cylinder, along_axis)
    _assert_one_closed_body(along.mesh)
    assert np.allclose(along.measurements["placement"]["right_lps"], (0.0, 0.0, -1.0), atol=1e-3)
    _volume_change_matches(cylinder, along.mesh, along_axis)


def test_emboss_on_a_marching_cubes_skull_is_legible(skull, tmp_path):
    settings = LabelSettings(text="ORD-1042 R", size_mm=5.0, relief_mm=1.0)
    part = label_part(skull, settings)
    _assert_one_closed_body(part.mesh)
    _volume_change_matches(skull, part.mesh, settings, rel=0.10)
    centre, right, up, normal = label_frame(part.measurements)
    # The found spot is on the outer table (facing away from the cap's centre), and is flat: the original
    # surface under the footprint, sampled here, stays within the reported tolerance of the label's plane.
    assert (centre - np.array([5.0, -20.0, 40.0])) @ normal > 0
    glyphs = _glyphs(settings)
    relief, inside, heights, under = relief_and_glyph_masks(skull, part.mesh, part.measurements, glyphs, 1.0,
                                                            pixel_mm=0.2)
    assert np.isfinite(under).all()
    assert np.abs(under).max() <= part.measurements["placement"]["flatness_tolerance_mm"] + 1e-6
    assert iou(relief, inside) >= 0.8
    assert iou(relief[:, ::-1], inside) < 0.6
    assert part.measurements["relief_measured_mm"] == pytest.approx(1.0, abs=0.05)
    render_png(heights, str(tmp_path / "label_check.png"), "skull")
    assert (tmp_path / "label_check.png").stat().st_size > 1000


def test_an_up_direction_along_the_normal_is_refused(skull):
    box = box_mesh()
    with pytest.raises(DesignError, match="--up"):
        label_part(box, LabelSettings(text="R", at_lps=(12.3, -45.6, 88.9), up_lps=(0.0, 0.0, 1.0)))
    part = label_part(box, LabelSettings(text="R", at_lps=(12.3, -45.6, 88.9), up_lps=(1.0, 0.0, 0.0)))
    assert np.allclose(part.measurements["placement"]["up_lps"], (1.0, 0.0, 0.0), atol=1e-6)


# --- refusals --------------------------------------------------------------------------------------------------

def test_text_that_does_not_fit_where_asked_is_refused():
    box = box_mesh((60.0, 40.0, 20.0), (0.0, 0.0, 0.0))
    # Near an edge of the top face, the 46 mm label hangs over the side.
    with pytest.raises(DesignError, match="--at.*--size"):
        label_part(box, LabelSettings(text="ORD-1042 R", at_lps=(20.0, 0.0, 10.0)))
    # On a small ball no spot is flat enough.
    ball = ellipsoid_mesh((8.0, 8.0, 8.0), (0.0, 0.0, 0.0), segments=96)
    with pytest.raises(DesignError, match="--size"):
        label_part(ball, LabelSettings(text="ORD-1042 R"))
    # Far from the surface.
    with pytest.raises(DesignError, match="--at.*from the part's surface"):
        label_part(box, LabelSettings(text="R", at_lps=(0.0, 0.0, 40.0)))


def test_strokes_thinner_than_the_printer_line_are_refused_or_thickened():
    box = box_mesh((80.0, 40.0, 20.0), (0.0, 0.0, 0.0))
    top = (0.0, 0.0, 10.0)
    line = 0.45  # prusa-mk4: 1.125 x 0.4 mm nozzle
    thin = LabelSettings(text="ORD", size_mm=3.0, font="regular", at_lps=top, min_stroke_mm=line,
                         stroke_source="prusa-mk4 line width")
    assert min_stroke_mm(_glyphs(thin)) < line
    with pytest.raises(DesignError, match="--size") as refused:
        label_part(box, thin)
    suggested = float(str(refused.value).split("--size ")[-1].split(" ")[0])
    fine = LabelSettings(text="ORD", size_mm=suggested, font="regular", at_lps=top, min_stroke_mm=line)
    assert label_part(box, fine).measurements["thinnest_stroke_mm"] >= line
    # At 4 mm the regular strokes (0.41 mm) are still too thin, and the gaps wide enough to widen them.
    at_four = LabelSettings(text="ORD", size_mm=4.0, font="regular", at_lps=top, min_stroke_mm=line, thicken=True)
    assert min_stroke_mm(_glyphs(at_four)) < line
    thickened = label_part(box, at_four)
    assert thickened.measurements["thinnest_stroke_mm"] >= line
    assert thickened.measurements["narrowest_gap_mm"] >= line
    assert min_stroke_mm(_glyphs(at_four).buffer(thickened.measurements["thickened_by_mm"], join_style="mitre",
                                                 mitre_limit=2.0)) >= line
    assert thickened.measurements["glyph_area_mm2"] > _glyphs(at_four).area
    assert any("thickened" in choice for choice in thickened.choices)
    _assert_one_closed_body(thickened.mesh)
    # At 3 mm widening them would narrow the gaps below the line: refused, with the size that works.
    with pytest.raises(DesignError, match="--thicken.*--size"):
        label_part(box, LabelSettings(text="ORD", size_mm=3.0, font="regular", at_lps=top, min_stroke_mm=line,
                                      thicken=True))


def test_a_mesh_with_a_small_hole_is_repaired_and_said_a_big_one_refused():
    box = box_mesh((60.0, 40.0, 20.0), (0.0, 0.0, 0.0))
    # The box split into fine triangles, one of them missing.
    import manifold3d

    fine = manifold3d.Manifold.cube((60.0, 40.0, 20.0), center=True).refine_to_length(4.0).to_mesh64()
    vertices = np.asarray(fine.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(fine.tri_verts, dtype=np.int64).reshape(-1, 3)
    bottom = np.where(vertices[faces][:, :, 2].max(axis=1) < -9.99)[0]
    holed = Mesh(vertices, np.delete(faces, bottom[len(bottom) // 2], axis=0), "box")
    part = label_part(holed, LabelSettings(text="R", at_lps=(0.0, 0.0, 10.0)))
    _assert_one_closed_body(part.mesh)
    assert any("repaired" in choice for choice in part.choices)
    assert part.measurements["volume_change_ratio"] == pytest.approx(1.0, abs=0.01)
    assert box.face_count == 12
    # A hemisphere's open rim closes only by moving the surface far: refused.
    ball = ellipsoid_mesh((20.0, 20.0, 20.0), (0.0, 0.0, 0.0), segments=96)
    keep = ball.vertices[ball.faces][:, :, 2].min(axis=1) > 0.0
    with pytest.raises(InputError, match="--max-repair-move"):
        label_part(Mesh(ball.vertices, ball.faces[keep], "dome"), LabelSettings(text="R", max_repair_move_mm=0.5))


def test_a_label_that_would_join_two_bodies_is_refused():
    # Two plates side by side, touching but separate bodies: letters across the seam would weld them.
    left = box_mesh((30.0, 20.0, 4.0), (-15.0, 0.0, 0.0))
    right = box_mesh((30.0, 20.0, 4.0), (15.0, 0.0, 0.0))
    plates = Mesh(np.vstack([left.vertices, right.vertices]),
                  np.vstack([left.faces, right.faces + left.vertex_count]), "plates")
    assert assess_mesh(plates).shells == 2
    with pytest.raises(DesignError, match="joins separate bodies"):
        label_part(plates, LabelSettings(text="ORD", size_mm=5.0, at_lps=(0.0, 0.0, 2.0)))
    # On one plate alone the label is fine, and both bodies stay.
    part = label_part(plates, LabelSettings(text="ORD", size_mm=5.0, at_lps=(-15.0, 0.0, 2.0)))
    assert assess_mesh(part.mesh).shells == 2 and part.bodies == 2


@pytest.mark.parametrize("kwargs, option", [
    ({"size_mm": 0.0}, "--size"), ({"size_mm": -2.0}, "--size"), ({"size_mm": math.nan}, "--size"),
    ({"relief_mm": 0.0}, "--height"), ({"relief_mm": -1.0, "mode": "engrave"}, "--depth"),
    ({"relief_mm": 11.0}, "--height"), ({"mode": "stamp"}, "mode"), ({"at_lps": (0.0, math.inf, 0.0)}, "--at"),
    ({"up_lps": (0.0, 0.0, 0.0)}, "--up"), ({"font": "comic"}, "--font"), ({"flatness_mm": 0.0}, "--flatness"),
])
def test_bad_settings_are_refused_by_the_api(kwargs, option):
    with pytest.raises(ParameterError, match=option):
        LabelSettings(text="R", **kwargs)


# --- the reported relief is the relief -------------------------------------------------------------------------

RELIEF_CASES = {
    # The hostile tester's cases: a median over vertices (letter walls included) said 0.80 and 8.02 mm here.
    "emboss on a 30 mm cube": (lambda: box_mesh((30.0, 30.0, 30.0)),
                               dict(text="ORD-1042 R", relief_mm=1.0, size_mm=3.0), True),
    "deep engraving in a 30 mm cube": (lambda: box_mesh((30.0, 30.0, 30.0)),
                                       dict(text="AB", mode="engrave", relief_mm=10.0, size_mm=8.0), True),
    "emboss on an ellipsoid": (lambda: ellipsoid_mesh((60.0, 45.0, 30.0), (12.3, -45.6, 78.9)),
                               dict(text="L 2026", relief_mm=1.5, size_mm=5.0, at_lps=(12.3, -90.6, 78.9)), False),
    "engraving in an ellipsoid": (lambda: ellipsoid_mesh((60.0, 45.0, 30.0), (12.3, -45.6, 78.9)),
                                  dict(text="L 2026", mode="engrave", relief_mm=0.6, size_mm=5.0,
                                       at_lps=(12.3, -90.6, 78.9)), False),
}


@pytest.mark.parametrize("case", RELIEF_CASES)
def test_the_reported_relief_is_the_height_of_the_letter_tops_or_floors(case):
    make, kwargs, flat = RELIEF_CASES[case]
    before = make()
    settings = LabelSettings(**kwargs)
    part = label_part(before, settings)
    measured = part.measurements
    asked = settings.relief_mm
    assert measured["relief_samples"] > 50
    for key in ("relief_measured_mm", "relief_min_mm", "relief_max_mm"):
        assert measured[key] == pytest.approx(asked, abs=0.02), key
    if flat:  # volume change / glyph area is the mean relief only where the surface is flat
        assert measured["relief_from_volume_mm"] == pytest.approx(asked, abs=0.02)
    # Independently, on the written mesh: height of the result over the original, inside the letters.
    centre, right, up, normal = label_frame(measured)
    glyphs = _glyphs(settings)
    reach = asked + 3.0
    xs, ys, h_after = height_image(part.mesh, centre, right, up, normal, glyphs.bounds, 0.3, reach_mm=reach)
    _, _, h_before = height_image(before, centre, right, up, normal, glyphs.bounds, 0.3, reach_mm=reach)
    gx, gy = np.meshgrid(xs, ys)
    deep = shapely.contains_xy(glyphs.buffer(-0.1), gx, gy)
    sign = 1.0 if settings.mode == "emboss" else -1.0
    relief = sign * (h_after - h_before)[deep]
    assert relief.size > 20
    assert np.median(relief) == pytest.approx(measured["relief_measured_mm"], abs=0.02)
