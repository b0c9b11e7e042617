"""Seeded segmentation on the real cases in ../shared/data (skipped when absent).

The seed is where a user would click: the voxel deepest inside the reference
mask (largest distance to its boundary), given to the library in LPS mm.  The
segmentation itself never sees the reference.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from itertools import pairwise
from pathlib import Path

import edt
import numpy as np
import pytest

from medprint.errors import MeshError
from medprint.io import load_volume
from medprint.measure import cross_section_diameters, plane_from_mask
from medprint.mesh import extract_surface
from medprint.segment import FalseLumen, VesselSettings, segment_from_seeds, segment_vessel
from medprint.volume import Mask

pytestmark = pytest.mark.realdata


def deepest_point_lps(reference, volume) -> tuple[float, float, float]:
    """LPS mm of the voxel deepest inside ``reference`` (a user's click in the middle)."""
    sx, sy, sz = volume.geometry.spacing
    depth = edt.edt(reference, anisotropy=(sz, sy, sx))
    z, y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return tuple(float(v) for v in volume.geometry.index_to_lps([x, y, z]))


def dice(a, b) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_lung_tumour_from_one_seed(real_data):
    case = real_data("pyradiomics_lung2_crop")
    volume = load_volume(case / "lung2_crop_image.nrrd", modality="CT")
    reference = load_volume(case / "lung2_crop_label.nrrd").array > 0
    mask, steps = segment_from_seeds(volume, [deepest_point_lps(reference, volume)])
    reference_mm3 = np.count_nonzero(reference) * volume.geometry.voxel_volume_mm3
    mesh_mm3 = extract_surface(mask).volume_mm3()
    # Measured: Dice 0.898, mesh 48.1 cm3 vs 48.4 cm3 manual (-0.7 %; -6.1 % when the partial-volume rim
    # was one voxel, judged on the smoothed scan).
    assert dice(mask.array, reference) >= 0.80, steps
    assert abs(mesh_mm3 - reference_mm3) <= 0.10 * reference_mm3, (mesh_mm3, reference_mm3, steps)


def test_lung_tumour_from_a_click_at_its_centroid(real_data):
    """Where a user may also click: the centre of the tumour's extent, shallower than its deepest point."""
    case = real_data("pyradiomics_lung2_crop")
    volume = load_volume(case / "lung2_crop_image.nrrd", modality="CT")
    reference = load_volume(case / "lung2_crop_label.nrrd").array > 0
    z, y, x = np.argwhere(reference).mean(axis=0)
    mask, steps = segment_from_seeds(volume, [tuple(volume.geometry.index_to_lps([x, y, z]))])
    # Measured: Dice 0.90. Before, a small leak (a fifth of the tumour) reached the scan border without
    # "exploding" the region, and the click ended in the border-leak error.
    assert dice(mask.array, reference) >= 0.80, steps


def test_brain_tumour_on_mr_from_one_seed(real_data):
    case = real_data("pyradiomics_brain1")
    volume = load_volume(case / "brain1_image.nrrd", modality="MR")
    reference = load_volume(case / "brain1_label.nrrd").array > 0
    mask, steps = segment_from_seeds(volume, [deepest_point_lps(reference, volume)])
    # Measured: Dice 0.716 (9.8 cm3 vs 16.4 cm3 manual: the dimmer margin of the tumour is left out).
    assert dice(mask.array, reference) >= 0.70, steps


def core_seeds_lps(reference, volume, count: int) -> list[tuple[float, float, float]]:
    """The deepest voxel and ``count`` others (fixed random pick) at least half as deep: clicks anywhere in the core."""
    sx, sy, sz = volume.geometry.spacing
    depth = edt.edt(reference, anisotropy=(sz, sy, sx))
    core = np.argwhere(depth >= 0.5 * depth.max())
    picks = core[np.random.default_rng(1).choice(len(core), count, replace=False)]
    voxels = [np.unravel_index(int(np.argmax(depth)), depth.shape), *picks]
    return [tuple(float(v) for v in volume.geometry.index_to_lps([x, y, z])) for z, y, x in voxels]


def test_brain_tumour_from_seeds_anywhere_in_its_core(real_data):
    case = real_data("pyradiomics_brain1")
    volume = load_volume(case / "brain1_image.nrrd", modality="MR")
    reference = load_volume(case / "brain1_label.nrrd").array > 0
    scores = [dice(segment_from_seeds(volume, [seed])[0].array, reference) for seed in core_seeds_lps(reference, volume, 8)]
    # Measured: 0.716 0.709 0.709 0.714 0.704 0.748 0.709 0.710 0.705. Two of these clicks gave 0.33 while the
    # leak guard took a 4 mm opening that split the tumour at a waist (on its 6.5 mm slices); a compact lump cut
    # off through a waist at least half as thick as the lobes is now kept as the tumour's own lobe.
    assert min(scores) >= 0.70, scores


def test_small_breast_lesion_on_mr_from_one_seed(real_data):
    """A 6 mm lesion (143 voxels): the first range from 5 mm around the seed spans the surroundings and
    leaks; it is clipped at the lesion's edge in the radial profile."""
    case = real_data("pyradiomics_breast1")
    volume = load_volume(case / "breast1_image.nrrd", modality="MR")
    reference = load_volume(case / "breast1_label.nrrd").array > 0
    mask, steps = segment_from_seeds(volume, [deepest_point_lps(reference, volume)])
    assert any(step.startswith("that range leaked: clipped") for step in steps), steps
    # Measured: all 143 manual voxels inside, 364 voxels in all (the partial-volume halo of a lesion three
    # voxels across doubles it), Dice 0.56.
    assert np.count_nonzero(mask.array & reference) >= 0.95 * np.count_nonzero(reference), steps
    assert mask.voxel_count <= 3 * np.count_nonzero(reference), steps
    assert dice(mask.array, reference) >= 0.50, steps


AORTA_CASE = "totalseg_aorta_cta"
#: TotalSegmentator's aorta report gives landmark coordinates in RAS; medprint works in LPS.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def load_aorta_case(real_data):
    case = real_data(AORTA_CASE)
    volume = load_volume(case / "ct_cropped.nii.gz", modality="CT")
    masks = {
        name: Mask(load_volume(case / "reference" / "masks" / f"{name}.nii.gz").array > 0, volume.geometry, name)
        for name in ("aorta", "annulus_proper", "sinotubular_junction")
    }
    report = json.loads((case / "reference" / "aorta_report.json").read_text())["landmarks"]
    landmarks = {"annulus": report["1"], "sinotubular junction": report["3"]}
    return volume, masks, landmarks


def landmark_planes(masks):
    """Planes of the annulus and the STJ from their landmark masks, normals pointing up the aorta."""
    annulus = plane_from_mask(masks["annulus_proper"])
    stj = plane_from_mask(masks["sinotubular_junction"])
    up = stj[0] - annulus[0]
    return {
        "annulus": (annulus[0], annulus[1] * np.sign(annulus[1] @ up)),
        "sinotubular junction": (stj[0], stj[1] * np.sign(stj[1] @ up)),
    }


def aorta_clicks(reference, volume, planes) -> list[tuple[float, float, float]]:
    """Where a user would click along the aorta, in order: the valve, the ascending aorta, the top of the
    arch, then down the descending aorta every third of its length, each time in the middle of the bright lumen."""
    geometry = volume.geometry
    sx, sy, sz = geometry.spacing
    bright = reference & (volume.array >= 200)  # the contrast-filled lumen a user sees and clicks into
    depth = edt.edt(bright, anisotropy=(sz, sy, sx))
    k, j, i = np.indices(reference.shape)
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1))
    valve, _ = planes["annulus"]
    stj, _ = planes["sinotubular junction"]

    def deepest(where):
        z, y, x = np.unravel_index(int(np.argmax(np.where(where, depth, 0))), depth.shape)
        return tuple(float(v) for v in geometry.index_to_lps([x, y, z]))

    ascending = deepest(np.linalg.norm(lps - stj, axis=-1) <= 30.0)
    descending = bright & (lps[..., 1] >= stj[1] + 30.0)  # posterior to the root
    top = lps[..., 2][reference].max()
    arch = deepest(bright & (lps[..., 2] >= top - 30.0))
    low = lps[..., 2][descending].min()
    thirds = np.linspace(arch[2] - 15.0, low, 4)
    down = [deepest(descending & (lps[..., 2] <= a) & (lps[..., 2] >= b)) for a, b in pairwise(thirds)]
    return [tuple(float(v) for v in valve), ascending, arch, *down]


def test_aorta_diameters_on_the_reference_masks_match_the_report(real_data):
    """Validates the measuring method before it judges our segmentation.

    The report's ``diameter`` is the distance between its ``start`` and ``end`` points (the largest
    diameter in the plane), ``diameter_pd`` the one across it; its four points give its plane.
    """
    _, masks, landmarks = load_aorta_case(real_data)
    planes = landmark_planes(masks)
    for name, (centre, normal) in planes.items():
        entry = landmarks[name]
        start, end, start_pd, end_pd = (np.asarray(entry[key]) @ RAS_TO_LPS for key in ("start", "end", "start_pd", "end_pd"))
        assert np.linalg.norm(end - start) == pytest.approx(10 * entry["diameter"], abs=0.5)
        report_normal = np.cross(end - start, end_pd - start_pd)
        report_normal /= np.linalg.norm(report_normal)
        # Measured: 0.5 deg / 0.0 mm (annulus), 9.3 deg / 0.9 mm (STJ) from the report's planes (the report
        # cuts across its centreline; the STJ label is a slightly tilted ring).
        assert np.degrees(np.arccos(abs(float(report_normal @ normal)))) <= 12.0, name
        assert abs(float((centre - (start + end) / 2) @ normal)) <= 3.0, name

    aorta_mesh = extract_surface(masks["aorta"])
    stj = cross_section_diameters(aorta_mesh, *planes["sinotubular junction"])
    # Measured: 32.4 mm max (report 34), 30.9 across (report 32), area 7.3 cm2 (report 8.1, true lumen 7.3).
    assert abs(stj["max_mm"] - 10 * landmarks["sinotubular junction"]["diameter"]) <= 2.0, stj
    assert abs(stj["perpendicular_mm"] - 10 * landmarks["sinotubular junction"]["diameter_pd"]) <= 2.0, stj

    # The aorta label starts about 1.5 mm above the annulus plane (it leaves the valve ring to the
    # annulus label): its mesh does not enclose the annulus centre, so the annulus is measured on its own mask.
    with pytest.raises(MeshError, match="encloses the point"):
        cross_section_diameters(aorta_mesh, *planes["annulus"])
    annulus = cross_section_diameters(extract_surface(masks["annulus_proper"]), *planes["annulus"])
    # Measured: 26.4 mm max (report 27), 21.8 across (report 23), area 4.3 cm2 (report 4.9).
    assert abs(annulus["max_mm"] - 10 * landmarks["annulus"]["diameter"]) <= 2.0, annulus
    assert abs(annulus["perpendicular_mm"] - 10 * landmarks["annulus"]["diameter_pd"]) <= 2.0, annulus


@cache
def _aorta_tube_from_clicks(case: Path):
    """The six-click tube-mode aorta (factor 1.4), made once for the tests that judge it."""
    volume, masks, landmarks = load_aorta_case(lambda _: case)
    planes = landmark_planes(masks)
    reference = masks["aorta"].array
    mask, steps = segment_vessel(volume, aorta_clicks(reference, volume, planes), VesselSettings(tube_factor=1.4))
    return mask, steps, reference, planes, landmarks


def test_aorta_tube_from_clicks_on_cta(real_data):
    """What the true lumen alone, with the blood-pool preset, reaches on this dissection (the bar is met by
    tracing both lumina, below)."""
    mask, steps, reference, planes, landmarks = _aorta_tube_from_clicks(real_data(AORTA_CASE))
    # Measured: Dice 0.745 (172 cm3 vs 246 cm3 reference); STJ max 32.8 mm (report 34, reference mesh 32.4).
    assert dice(mask.array, reference) >= 0.72, steps
    stj = cross_section_diameters(extract_surface(mask), *planes["sinotubular junction"])
    assert abs(stj["max_mm"] - 10 * landmarks["sinotubular junction"]["diameter"]) <= 2.0, stj


def false_lumen_clicks(false_lumen, volume, planes) -> list[tuple[float, float, float]]:
    """Where a user tracing the dissection's false lumen would click: down the descending aorta, in five
    equal stretches of its height, each time in the middle of the false lumen (clot or contrast)."""
    geometry = volume.geometry
    sx, sy, sz = geometry.spacing
    depth = edt.edt(false_lumen, anisotropy=(sz, sy, sx))
    k, j, i = np.indices(false_lumen.shape)
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1))
    stj, _ = planes["sinotubular junction"]
    descending = false_lumen & (lps[..., 1] >= stj[1] + 30.0)  # posterior to the root
    heights = lps[..., 2][descending]
    edges = np.linspace(heights.max(), heights.min(), 6)
    clicks = []
    for top, bottom in pairwise(edges):
        band = descending & (lps[..., 2] <= top) & (lps[..., 2] >= bottom)
        z, y, x = np.unravel_index(int(np.argmax(np.where(band, depth, 0))), depth.shape)
        clicks.append(tuple(float(v) for v in geometry.index_to_lps([x, y, z])))
    return clicks


def test_dissected_aorta_traced_as_two_lumina_meets_the_issue_bar(real_data):
    """The label is a type A dissection: the aorta holds a true lumen and a false lumen, contrast-filled above
    and thrombosed below (half of it under 230 HU; 50-150 HU in the lower descending aorta). A user prints it by
    tracing both: the six clicks of the true lumen, with a range from 150 HU (under the valve leaflets' 100-200
    HU partial volume at the annulus, over the tissue around the root), and five clicks down the false lumen with
    a range from 100 HU (over the wall and the periaortic tissue, under the clot)."""
    volume, masks, landmarks = load_aorta_case(real_data)
    planes = landmark_planes(masks)
    reference = masks["aorta"].array
    false_lumen = load_volume(real_data(AORTA_CASE) / "reference" / "masks" / "aorta_false_lumen.nii.gz").array > 0
    channel = FalseLumen(tuple(false_lumen_clicks(false_lumen, volume, planes)), intensity_range=(100, 3000))
    settings = VesselSettings(intensity_range=(150, 1000), tube_factor=1.3, false_lumen=channel)
    mask, steps = segment_vessel(volume, aorta_clicks(reference, volume, planes), settings)
    # Measured: Dice 0.811 (true lumen alone 0.777); annulus 27.9 mm (report 27), STJ 34.4 mm (report 34).
    # Neighbouring settings stay on the bar: true-lumen floor 130-170 HU and false-lumen floor 80-120 HU give
    # 0.800-0.823, factor 1.35 gives 0.806.
    assert dice(mask.array, reference) >= 0.80, steps
    mesh = extract_surface(mask)
    for name in ("annulus", "sinotubular junction"):
        measured = cross_section_diameters(mesh, *planes[name])
        assert abs(measured["max_mm"] - 10 * landmarks[name]["diameter"]) <= 2.0, (name, measured)


def test_aorta_from_one_seed_in_tree_mode_leaks(real_data):
    """One click and the whole-tree mode: the root opens into the ventricle through a neck no opening cuts."""
    volume, masks, _ = load_aorta_case(real_data)
    reference = masks["aorta"].array
    mask, steps = segment_vessel(volume, [deepest_point_lps(reference, volume)])
    # Measured: Dice 0.33 (756 cm3 vs 246 cm3) at --max-radius 2.
    assert dice(mask.array, reference) < 0.5, steps


def branch_clicks(branch, aorta, volume) -> list[tuple[float, float, float]]:
    """Where a user would click to keep a side branch: in the aorta's lumen where the branch leaves it, then in
    the middle of the branch a third and all the way along it."""
    geometry = volume.geometry
    sx, sy, sz = geometry.spacing
    from_aorta = edt.edt(~aorta, anisotropy=(sz, sy, sx))
    aorta_depth = edt.edt(aorta & (volume.array >= 200), anisotropy=(sz, sy, sx))
    branch_depth = edt.edt(branch, anisotropy=(sz, sy, sx))
    k, j, i = np.indices(branch.shape)
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1))
    origin = lps[np.unravel_index(int(np.argmin(np.where(branch, from_aorta, np.inf))), branch.shape)]
    near_origin = np.linalg.norm(lps - origin, axis=-1) <= 20.0
    reach = from_aorta[branch].max()
    picks = [np.where(near_origin, aorta_depth, 0)]
    for low, high in ((0.15, 0.5), (0.5, 1.0)):
        band = branch & (from_aorta >= low * reach) & (from_aorta <= high * reach)
        picks.append(np.where(band, branch_depth, 0))
    clicks = []
    for depth in picks:
        z, y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        clicks.append(tuple(float(v) for v in geometry.index_to_lps([x, y, z])))
    return clicks


def test_aortic_arch_with_its_supra_aortic_branches(real_data, caplog):
    """The tube keeps the aorta only; clicks along the brachiocephalic trunk and the left common carotid artery
    keep them too. The left subclavian artery falls under the range over a stretch (two pieces at >= 150 HU):
    its path goes round through other vessels, and a warning says so."""
    case = real_data(AORTA_CASE)
    volume, masks, _ = load_aorta_case(real_data)
    planes = landmark_planes(masks)
    aorta = masks["aorta"].array
    branch_masks = {
        name: load_volume(case / "reference" / "masks" / f"{name}.nii.gz").array > 0
        for name in ("brachiocephalic_trunk", "common_carotid_artery_left", "subclavian_artery_left")
    }
    clicks = aorta_clicks(aorta, volume, planes)
    paths = {name: tuple(branch_clicks(mask, aorta, volume)) for name, mask in branch_masks.items()}
    settings = VesselSettings(intensity_range=(150, 1000), tube_factor=1.3)
    alone, _ = segment_vessel(volume, clicks, settings)
    two = (paths["brachiocephalic_trunk"], paths["common_carotid_artery_left"])
    arch, steps = segment_vessel(volume, clicks, replace(settings, branches=two))

    def covered(mask, name):
        return np.count_nonzero(mask.array & branch_masks[name]) / np.count_nonzero(branch_masks[name])

    # Measured: brachiocephalic 0.70 (0.05 without the branch), left carotid 0.58 (0.04); both labels run past
    # the last click, where the model is cut flat. Against the aorta and the two labels, Dice 0.764 -> 0.776.
    assert covered(alone, "brachiocephalic_trunk") < 0.1 and covered(alone, "common_carotid_artery_left") < 0.1
    assert covered(arch, "brachiocephalic_trunk") >= 0.65, steps
    assert covered(arch, "common_carotid_artery_left") >= 0.5, steps
    labelled = aorta | branch_masks["brachiocephalic_trunk"] | branch_masks["common_carotid_artery_left"]
    assert dice(arch.array, labelled) >= dice(alone.array, labelled) + 0.005
    added_elsewhere = np.count_nonzero(arch.array & ~alone.array & ~labelled) * volume.geometry.voxel_volume_mm3
    assert added_elsewhere <= 4000.0, added_elsewhere  # measured: 1.5 cm3 (the walls, the brachiocephalic vein)

    with caplog.at_level("WARNING", logger="medprint"):
        segment_vessel(volume, clicks, replace(settings, branches=(paths["subclavian_artery_left"],)))
    assert "it may leave the vessel" in caplog.text
