"""Cranial implants on generated skull phantoms: accuracy (Dice, HD95), the method chosen, gap, thickness, refusals.

The phantom is a symmetric ellipsoidal vault on an anisotropic grid (tests/design/phantoms_skull.py); the truth is
exactly the bone removed, so the implant is compared with it at gap 0.
"""

from __future__ import annotations


import numpy as np
import pytest

from phantoms_skull import dice, hd95_mm, skull_phantom, voxelise

from medprint.design.implant import ImplantSettings, design_implant
from medprint.design.part import finish_part
from medprint.design.walls import wall_thickness
from medprint.errors import DesignError, ParameterError

SPACING = (1.0, 0.9, 2.0)  # anisotropic, slices twice the in-plane size


@pytest.fixture(scope="module")
def lateral():
    return skull_phantom(spacing=SPACING, defect_direction=(1.0, 0.15, 0.35), defect_radius_mm=20.0)


@pytest.fixture(scope="module")
def lateral_exact(lateral):
    return finish_part(design_implant(lateral.volume, ImplantSettings(rim_gap_mm=0.0)))


def _scores(case, part):
    built = voxelise(part.mesh, case.volume.geometry, case.volume.shape)
    truth = case.removed.array
    return dice(built, truth), hd95_mm(built, truth, case.volume.geometry.spacing[::-1])


def test_lateral_defect_is_mirrored_and_matches_the_removed_bone(lateral, lateral_exact):
    part, quality = lateral_exact
    assert quality.is_printable and quality.shells == 1
    score, hd95 = _scores(lateral, part)
    assert score >= 0.95, score
    assert hd95 <= 1.5, hd95
    m = part.measurements
    assert m["method"] == "mirror"
    assert "one side of the mid-sagittal plane" in m["method_reason"]
    # The phantom is symmetric about x = 5 mm (its centre): the estimated plane finds it.
    normal = np.asarray(m["plane"]["normal_lps"])
    assert abs(abs(normal[0]) - 1.0) < 0.01
    point = np.asarray(m["plane"]["point_lps_mm"])
    assert abs((np.asarray([5.0, -12.0, 30.0]) - point) @ normal) < 1.0
    # Thickness follows the surrounding bone.
    assert abs(m["thickness_mm"]["mean"] - m["surrounding_bone_thickness_mm"]["mean"]) < 0.6
    # A 20 mm ball cut into a skull of radius ~70 mm: a hole about 38 mm across on the outer table.
    assert 30 < m["defect_diameter_mm"] < 45
    assert part.kind == "implant" and set(part.extras) == {"anatomy", "rim"}


def _thinnest_wall_mm(part):
    """The thinnest wall as ``medprint check`` measures it (largest inscribed sphere), on a 0.25 mm grid."""
    return wall_thickness(part.mesh, resolution_mm=0.25).min_wall_mm


def test_no_wall_under_the_minimum_at_rim_or_anywhere(lateral, lateral_exact):
    """The implant keeps --min-wall (1 mm by default) everywhere, rim included, at gap 0 and with a gap; the
    tolerance is one working-grid step (0.5 mm), the precision its surface is made to."""
    exact, _ = lateral_exact
    step = exact.measurements["working_resolution_mm"]
    assert exact.measurements["min_wall_mm"]["asked"] == 1.0
    assert exact.measurements["min_wall_mm"]["measured"] >= 1.0 - step
    assert _thinnest_wall_mm(exact) >= 1.0 - step
    thick, quality = finish_part(design_implant(lateral.volume, ImplantSettings(min_wall_mm=2.0, rim_gap_mm=0.5)))
    assert quality.shells == 1
    assert _thinnest_wall_mm(thick) >= 2.0 - step
    assert thick.measurements["min_wall_mm"]["asked"] == 2.0
    # Opening by a larger ball rounds more off the rim: a little less material, nothing added.
    assert thick.measurements["implant_volume_mm3"] < exact.measurements["implant_volume_mm3"]


def test_the_rim_band_and_the_skull_are_closed_surfaces(lateral_exact):
    part, _ = lateral_exact
    from medprint.mesh import assess_mesh
    rim = part.extras["rim"]
    assert assess_mesh(rim).watertight
    # The band runs along the defect's edge: every rim point is within a few mm of the implant.
    from scipy.spatial import cKDTree
    distance, _ = cKDTree(part.mesh.vertices).query(rim.vertices)
    assert np.percentile(distance, 95) < 3.0


def test_midline_defect_uses_the_rim_method(tmp_path):
    case = skull_phantom(spacing=SPACING, defect_direction=(0.0, -0.5, 0.85), defect_radius_mm=18.0)
    part, quality = finish_part(design_implant(case.volume, ImplantSettings(rim_gap_mm=0.0)))
    assert quality.shells == 1
    assert part.measurements["method"] == "rim"
    assert "crosses the mid-sagittal plane" in part.measurements["method_reason"]
    score, hd95 = _scores(case, part)
    assert score >= 0.90, score
    assert hd95 <= 2.5, hd95  # slices are 2 mm: within about one slice
    # No wall under the default 1 mm minimum (tolerance: one 0.5 mm working step).
    assert _thinnest_wall_mm(part) >= 1.0 - 0.5


def test_small_defect_elsewhere_on_an_oblique_grid():
    case = skull_phantom(spacing=(0.9, 1.0, 1.7), rotation_deg=20.0, defect_direction=(-0.6, 0.7, 0.2),
                         defect_radius_mm=11.0)
    part, quality = finish_part(design_implant(case.volume, ImplantSettings(rim_gap_mm=0.0)))
    assert quality.shells == 1
    assert part.measurements["method"] == "mirror"
    score, hd95 = _scores(case, part)
    assert score >= 0.90, score
    assert hd95 <= 1.5, hd95
    # The defect is found where it was cut (its centre within a few mm).
    assert np.linalg.norm(np.asarray(part.measurements["defect_centre_lps_mm"]) - case.defect_point) < 5.0


def test_gap_and_overlap_at_the_rim(lateral, lateral_exact):
    exact, _ = lateral_exact
    gapped, _ = finish_part(design_implant(lateral.volume, ImplantSettings(rim_gap_mm=0.5)))
    gap = gapped.measurements["rim_gap_mm"]
    assert abs(gap["median"] - 0.5) <= 0.1, gap
    assert gap["min"] >= 0.35, gap
    assert gapped.measurements["implant_volume_mm3"] < exact.measurements["implant_volume_mm3"]
    overlapping, quality = finish_part(design_implant(lateral.volume, ImplantSettings(rim_gap_mm=-0.5)))
    assert quality.shells == 1
    assert overlapping.measurements["implant_volume_mm3"] > exact.measurements["implant_volume_mm3"]


def test_given_thickness(lateral, lateral_exact):
    exact, _ = lateral_exact
    thin, quality = finish_part(design_implant(lateral.volume, ImplantSettings(rim_gap_mm=0.0, thickness_mm=3.0,
                                                                              resolution_mm=0.75)))
    assert quality.shells == 1
    ratio = thin.measurements["implant_volume_mm3"] / exact.measurements["implant_volume_mm3"]
    expected = 3.0 / exact.measurements["thickness_mm"]["mean"]
    assert abs(ratio - expected) < 0.1 * expected, (ratio, expected)
    assert "3 mm inside the outer one" in thin.method


def test_given_plane_and_near_point_are_used_and_bad_ones_refused(lateral):
    part = design_implant(lateral.volume, ImplantSettings(plane=((5.0, 0.0, 0.0), (1.0, 0.0, 0.0)),
                                                          near=lateral.defect_point, resolution_mm=0.75))
    assert part.measurements["plane"]["estimated"] is False
    assert part.measurements["plane"]["normal_lps"] == [1.0, 0.0, 0.0]
    assert part.measurements["method"] == "mirror"
    assert "the one at --near" in " ".join(part.choices)
    with pytest.raises(DesignError, match="--plane .* misses the skull"):
        design_implant(lateral.volume, ImplantSettings(plane=((300.0, 0.0, 0.0), (1.0, 0.0, 0.0))))
    mirrored = (10.0 - lateral.defect_point[0], lateral.defect_point[1], lateral.defect_point[2])
    with pytest.raises(DesignError, match="--near .* no defect within 15 mm of the point; the defects found are 3"):
        design_implant(lateral.volume, ImplantSettings(near=mirrored))
    with pytest.raises(DesignError, match="--near .* outside the skull"):
        design_implant(lateral.volume, ImplantSettings(near=(400.0, 0.0, 0.0)))


def test_skull_without_defect_is_refused():
    case = skull_phantom(spacing=SPACING, defect_direction=None)
    with pytest.raises(DesignError, match="no defect found"):
        design_implant(case.volume, ImplantSettings())


@pytest.mark.parametrize("kwargs, option", [
    ({"thickness_mm": 0.0}, "--thickness"), ({"thickness_mm": -2.0}, "--thickness"),
    ({"thickness_mm": 40.0}, "--thickness"), ({"thickness_mm": float("nan")}, "--thickness"),
    ({"rim_gap_mm": 10.0}, "--gap"), ({"rim_gap_mm": -5.0}, "--gap"), ({"resolution_mm": 0.0}, "--resolution"),
    ({"plane": ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))}, "--plane"), ({"method": "guess"}, "--method"),
    ({"min_wall_mm": 0.0}, "--min-wall"), ({"min_wall_mm": -1.0}, "--min-wall"),
    ({"min_wall_mm": 25.0}, "--min-wall"), ({"min_wall_mm": float("inf")}, "--min-wall"),
    ({"thickness_mm": 1.5, "min_wall_mm": 2.0}, "--thickness: 1.5 mm is thinner than --min-wall 2 mm"),
])
def test_settings_refuse_bad_values(kwargs, option):
    with pytest.raises(ParameterError, match=option):
        ImplantSettings(**kwargs)



THIN = (-1.0, 0.3, 0.4)  # a thinned patch on the other side from the lateral defect


@pytest.mark.parametrize("peak_hu", [130.0, 200.0])
def test_bone_thinner_than_the_voxels_is_not_a_defect(peak_hu):
    """A patch of bone present but under the threshold (a partial-volume bump) is refused as a defect, and the
    message gives the spot and the --near that designs over it."""
    case = skull_phantom(spacing=SPACING, defect_direction=None, thin_direction=THIN, thin_peak_hu=peak_hu)
    with pytest.raises(DesignError, match=r"no defect found .*\(thin bone at -?\d+, -?\d+, -?\d+ mm LPS is not "
                                          r"taken as a defect.*give --near -?\d+,-?\d+,-?\d+ to design over it\)"):
        design_implant(case.volume, ImplantSettings())


def test_real_defect_is_chosen_over_thin_bone_and_thin_bone_designed_with_near():
    case = skull_phantom(spacing=SPACING, defect_direction=(1.0, 0.15, 0.35), defect_radius_mm=20.0,
                         thin_direction=THIN, thin_radius_mm=24.0)
    part = design_implant(case.volume, ImplantSettings(rim_gap_mm=0.0, resolution_mm=1.0))
    centre = np.asarray(part.measurements["defect_centre_lps_mm"])
    assert np.linalg.norm(centre - np.asarray(case.defect_point)) < 5.0
    said = " ".join(part.choices)
    assert "thin bone, not taken as a defect" in said and "thin bone, not a hole" not in said
    # The hole itself is not taken as thin bone.
    built = voxelise(part.mesh, case.volume.geometry, case.volume.shape)
    assert dice(built, case.removed.array) >= 0.85
    # --near on the thin spot: designed as asked, and said.
    from phantoms_skull import outer_point

    spot = tuple(float(x) for x in np.asarray((5.0, -12.0, 30.0)) + outer_point(THIN))
    over = design_implant(case.volume, ImplantSettings(near=spot, resolution_mm=1.0))
    assert any("thin bone, not a hole" in c for c in over.choices), over.choices
    assert np.linalg.norm(np.asarray(over.measurements["defect_centre_lps_mm"]) - spot) < 5.0
