"""design label on a real part: the skull of ../shared/data/invesalius_cranium_ct (bone preset, largest body)."""

from __future__ import annotations


import numpy as np
import pytest

from phantoms_label import iou, label_frame, relief_and_glyph_masks, render_png

from medprint.design.label import LabelSettings, label_part
from medprint.design.label_text import text_outline
from medprint.mesh import assess_mesh
from medprint.mesh.model import Mesh

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def skull(request) -> Mesh:
    import cc3d

    from conftest import data_root
    from medprint.io import load_volume
    from medprint.mesh import extract_surface, make_printable
    from medprint.segment import SegmentationSettings, select_by_threshold
    from medprint.volume import Mask

    path = data_root() / "invesalius_cranium_ct" / "cranium_ct.nii.gz"
    if not path.exists():
        pytest.skip(f"real case {path} not found (set MEDPRINT_DATA)")
    volume = load_volume(path)
    bone, _ = select_by_threshold(volume, SegmentationSettings(preset="bone"))
    largest = cc3d.largest_k(bone.array, k=1) > 0
    return make_printable(extract_surface(Mask(largest, bone.geometry, "bone"))).mesh


def test_a_label_on_the_real_skull_is_closed_legible_and_where_it_was_put(skull, tmp_path):
    before = assess_mesh(skull)
    settings = LabelSettings(text="ORD-1042 R", size_mm=5.0, relief_mm=1.0)
    part = label_part(skull, settings)
    after = assess_mesh(part.mesh)
    # The skull's own pieces (62 closed bodies in this scan) are neither lost nor joined; all closed, outward.
    assert after.is_printable and after.degenerate_faces == 0
    assert after.shells == before.shells == part.bodies
    glyphs = text_outline(settings.text, settings.size_mm).polygons
    assert after.volume_mm3 - before.volume_mm3 == pytest.approx(glyphs.area * 1.0, rel=0.10)
    # The flat spot found is flat: the original surface under the footprint stays within the tolerance.
    centre, right, up, normal = label_frame(part.measurements)
    relief, inside, heights, under = relief_and_glyph_masks(skull, part.mesh, part.measurements, glyphs, 1.0,
                                                            pixel_mm=0.2)
    assert np.isfinite(under).all()
    assert np.abs(under).max() <= part.measurements["placement"]["flatness_tolerance_mm"] + 1e-6
    assert iou(relief, inside) >= 0.8
    render_png(heights, str(tmp_path / "real_label.png"), "real skull")

    # Engraved at that same spot, asked for explicitly: 0.6 mm deep, the bone under it thick enough.
    engraved = label_part(skull, LabelSettings(text="L", mode="engrave", relief_mm=0.6, size_mm=6.0,
                                               at_lps=tuple(centre)))
    quality = assess_mesh(engraved.mesh)
    assert quality.is_printable and quality.shells == before.shells
    assert engraved.measurements["placement"]["material_under_engraving_mm"] > 1.1
    assert engraved.measurements["relief_measured_mm"] == pytest.approx(0.6, abs=0.05)
    assert quality.volume_mm3 - before.volume_mm3 == pytest.approx(
        -text_outline("L", 6.0).polygons.area * 0.6, rel=0.10)
