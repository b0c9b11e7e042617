"""The scan pictures: radiological orientation whatever the grid's direction, true aspect, outlines, windows.

The phantom is a head-sized ellipsoid of soft tissue with three bone markers, one on the patient's Left
(+x in LPS), one Anterior (-y) and one Superior (+z), each outlined in a pure colour that nothing else in the
picture uses.  Every grid below samples the same patient-space phantom, so a flip anywhere in the display
moves a marker to the wrong half of the picture.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh
from numpy.typing import NDArray
from PIL import Image

from medprint.geometry import Geometry
from medprint.mesh.model import Mesh
from medprint.review.scan_views import scan_pictures, window_for
from medprint.review.types import Outline, Window
from medprint.volume import Mask, Volume

CENTRE = np.array([10.0, -20.0, 30.0])
HALF_BOX_MM = np.array([60.0, 70.0, 50.0])
MARKER_RADIUS_MM = 7.0
MARKERS = {
    "left": (CENTRE + [32.0, 0.0, 0.0], (255, 0, 0)),
    "anterior": (CENTRE + [0.0, -40.0, 0.0], (0, 255, 0)),
    "superior": (CENTRE + [0.0, 0.0, 28.0], (0, 0, 255)),
}
SOFT_HU, BONE_HU, AIR_HU = 40.0, 1000.0, -1000.0
SPACING = (1.1, 0.9, 2.5)  # thick slices: the coronal and sagittal pictures must stretch them

IDENTITY = np.eye(3)
DIRECTIONS = {
    "axial": IDENTITY,
    "x flipped": np.diag([-1.0, 1.0, 1.0]),
    "all flipped": np.diag([-1.0, -1.0, -1.0]),
    "coronal grid": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),  # columns: i=L, j=I, k=P
    "sagittal grid": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),  # i=P, j=I, k=R
}


def _rotation_z(angle_deg: float) -> NDArray[np.float64]:
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def head(direction: NDArray[np.float64]) -> tuple[Volume, dict[str, Mask]]:
    """The phantom sampled on a grid centred on CENTRE whose index axes follow ``direction``."""
    spacing = np.asarray(SPACING)
    extent_along_index = np.abs(direction.T) @ HALF_BOX_MM  # the patient half-box seen along each index axis
    counts = (np.ceil(2 * extent_along_index / spacing) + 1).astype(int)
    origin = CENTRE - direction @ (spacing * (counts - 1) / 2.0)
    geometry = Geometry(spacing=tuple(spacing), origin=tuple(origin), direction=tuple(direction.ravel()))
    kk, jj, ii = np.indices(tuple(counts[::-1]), dtype=float)
    lps = geometry.index_to_lps(np.stack([ii, jj, kk], axis=-1))
    inside_head = np.sum(((lps - CENTRE) / [45.0, 55.0, 40.0]) ** 2, axis=-1) <= 1.0
    values = np.where(inside_head, SOFT_HU, AIR_HU)
    masks = {"head": Mask(inside_head, geometry, label="head")}
    for name, (centre, _) in MARKERS.items():
        inside = np.linalg.norm(lps - centre, axis=-1) <= MARKER_RADIUS_MM
        values = np.where(inside, BONE_HU, values)
        masks[name] = Mask(inside, geometry, label=name)
    return Volume(values.astype(np.int16), geometry, modality="CT"), masks


def pixels(png: bytes) -> NDArray[np.uint8]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def where_coloured(png: bytes, colour: tuple[int, int, int]) -> tuple[NDArray[np.intp], NDArray[np.intp], int, int]:
    """Rows and columns of the pixels exactly in ``colour``, and the picture's height and width."""
    rgb = pixels(png)
    rows, columns = np.nonzero(np.all(rgb == colour, axis=-1))
    assert len(rows) > 10, f"no outline drawn in {colour}"
    return rows, columns, rgb.shape[0], rgb.shape[1]


HEAD_COLOUR = (255, 0, 255)


def with_head(volume: Volume, outline: Outline) -> list[Outline]:
    """The outline with the whole head's outline too, as a report shows a part with its anatomy: the pictures
    then cover the head (a lone marker would be cropped to and centred)."""
    head_mask = Mask(volume.array > -500, volume.geometry, label="head")
    return [Outline("head", HEAD_COLOUR, head_mask), outline]


def pictures_of(volume: Volume, outline: Outline) -> dict[str, bytes]:
    axial, coronal, sagittal = scan_pictures(volume, with_head(volume, outline), window_for(volume, "bone"),
                                             montage_slices=1)
    return {"axial": axial.png, "coronal": coronal.png, "sagittal": sagittal.png}


@pytest.fixture(scope="module", params=list(DIRECTIONS) + ["oblique 8 degrees"])
def marker_pictures(request: pytest.FixtureRequest) -> dict[str, dict[str, bytes]]:
    """For one grid direction: each marker's axial, coronal and sagittal pictures."""
    direction = _rotation_z(8.0) if request.param.startswith("oblique") else DIRECTIONS[request.param]
    volume, masks = head(direction)
    return {marker: pictures_of(volume, Outline(marker, colour, masks[marker]))
            for marker, (_, colour) in MARKERS.items()}


# (marker, picture, image axis that must show it: "column" or "row", the half it must be in)
SIDES = [
    ("left", "axial", "column", "high"),  # patient Left on the image right
    ("left", "coronal", "column", "high"),
    ("anterior", "axial", "row", "low"),  # Anterior at the top
    ("anterior", "sagittal", "column", "low"),  # Anterior on the image left
    ("superior", "coronal", "row", "low"),  # Superior at the top
    ("superior", "sagittal", "row", "low"),
]


@pytest.mark.parametrize(("marker", "picture", "axis", "half"), SIDES)
def test_each_marker_is_on_its_radiological_side(marker_pictures, marker, picture, axis, half) -> None:
    rows, columns, height, width = where_coloured(marker_pictures[marker][picture], MARKERS[marker][1])
    position, size = (columns, width) if axis == "column" else (rows, height)
    offset = float(np.mean(position)) / size - 0.5
    assert (offset > 0.15) if half == "high" else (offset < -0.15), (marker, picture, offset)


def test_a_flipped_grid_gives_the_very_same_pictures() -> None:
    # Flips keep each patient axis' spacing, so the pictures must match pixel for pixel (permuted grids
    # sample the patient axes at other spacings: their sides are checked above).
    reference_volume, reference_masks = head(IDENTITY)
    outline = Outline("left", MARKERS["left"][1], reference_masks["left"])
    reference = pictures_of(reference_volume, outline)
    for name in ("x flipped", "all flipped"):
        volume, masks = head(DIRECTIONS[name])
        shown = pictures_of(volume, Outline("left", MARKERS["left"][1], masks["left"]))
        for picture in ("axial", "coronal", "sagittal"):
            assert np.array_equal(pixels(shown[picture]), pixels(reference[picture])), (name, picture)


def test_pictures_name_the_patient_direction_of_each_edge() -> None:
    volume, masks = head(DIRECTIONS["sagittal grid"])
    axial, coronal, sagittal = scan_pictures(volume, [Outline("left", (255, 0, 0), masks["left"])],
                                             window_for(volume, "bone"))
    assert dict(axial.letters) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert dict(coronal.letters) == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert dict(sagittal.letters) == {"left": "A", "right": "P", "top": "S", "bottom": "I"}


def test_an_oblique_grid_is_said_in_the_caption() -> None:
    volume, masks = head(_rotation_z(8.0))
    pictures = scan_pictures(volume, [Outline("left", (255, 0, 0), masks["left"])], window_for(volume, "bone"))
    assert all("oblique (up to 8.0 degrees" in picture.caption for picture in pictures)
    straight = scan_pictures(*head(IDENTITY)[:1], [], window_for(head(IDENTITY)[0], "bone"))
    assert not any("oblique" in picture.caption for picture in straight)


def _coronal_mm(rows: NDArray[np.intp], columns: NDArray[np.intp], height: int, width: int,
                volume: Volume) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Patient x and z (mm) of coronal pixels on the axial-direction phantom (pixel centres)."""
    nz, _, nx = volume.shape
    sx, _, sz = volume.geometry.spacing
    ox, _, oz = volume.geometry.origin
    x_mm = ox - sx / 2 + (columns + 0.5) * nx * sx / width
    z_mm = oz + (nz - 1) * sz + sz / 2 - (rows + 0.5) * nz * sz / height
    return x_mm, z_mm


@pytest.mark.parametrize("shape", ["mask", "mesh"])
def test_outline_lies_on_the_marker_boundary_with_true_aspect(shape: str) -> None:
    volume, masks = head(IDENTITY)
    centre, colour = MARKERS["left"]
    if shape == "mask":
        outlined: Mask | Mesh = masks["left"]
        # The drawn edge runs half way between inside and outside voxel centres: within half a 2.5 mm slice.
        inner, outer = MARKER_RADIUS_MM - 1.5, MARKER_RADIUS_MM + 1.5
    else:
        ball = trimesh.creation.icosphere(subdivisions=4, radius=MARKER_RADIUS_MM)
        outlined = Mesh(np.asarray(ball.vertices) + centre, np.asarray(ball.faces))
        inner, outer = MARKER_RADIUS_MM - 0.8, MARKER_RADIUS_MM + 0.8
    coronal = scan_pictures(volume, with_head(volume, Outline("left", colour, outlined)), window_for(volume, "bone"))[1]
    x_mm, z_mm = _coronal_mm(*where_coloured(coronal.png, colour), volume)
    radius = np.hypot(x_mm - centre[0], z_mm - centre[2])
    assert inner <= radius.min() and radius.max() <= outer, (radius.min(), radius.max())
    # All the way round: the outline spans the marker's width and height, not an arc of it.
    assert np.ptp(x_mm) > 1.6 * MARKER_RADIUS_MM and np.ptp(z_mm) > 1.4 * MARKER_RADIUS_MM


def test_mesh_outline_follows_a_flipped_grid() -> None:
    centre, colour = MARKERS["left"]
    ball = trimesh.creation.icosphere(subdivisions=3, radius=MARKER_RADIUS_MM)
    mesh = Mesh(np.asarray(ball.vertices) + centre, np.asarray(ball.faces))
    volume, _ = head(DIRECTIONS["all flipped"])
    shown = pictures_of(volume, Outline("left", colour, mesh))
    for picture in ("axial", "coronal"):
        _, columns, _, width = where_coloured(shown[picture], colour)
        assert np.mean(columns) / width > 0.65, picture


@pytest.mark.parametrize("window", [Window(50.0, 400.0, "soft"), Window(450.0, 1800.0, "bone")])
def test_the_window_sets_the_grey_of_tissue(window: Window) -> None:
    volume, masks = head(IDENTITY)
    coronal = scan_pictures(volume, with_head(volume, Outline("left", (255, 0, 0), masks["left"])), window)[1]
    rgb = pixels(coronal.png)
    # The picture's middle is the head's centre: uniform soft tissue.
    middle = rgb[rgb.shape[0] // 2 - 3: rgb.shape[0] // 2 + 3, rgb.shape[1] // 2 - 3: rgb.shape[1] // 2 + 3]
    expected = np.clip((SOFT_HU - (window.level - window.width / 2)) / window.width * 255, 0, 255)
    assert np.all(np.abs(middle.astype(float) - expected) <= 1.0), (middle.mean(), expected)


def test_montage_tiles_are_numbered_and_spread_over_the_outline() -> None:
    volume, masks = head(IDENTITY)
    montage = scan_pictures(volume, [Outline("superior", (0, 0, 255), masks["superior"])],
                            window_for(volume, "bone"), montage_slices=6)[0]
    rgb = pixels(montage.png)
    blue = np.all(rgb == (0, 0, 255), axis=-1)
    # Six tiles in a 4 x 2 grid, each cutting the marker: blue in every one of the six tiles.
    tile_h, tile_w = (rgb.shape[0] - 2) // 2, (rgb.shape[1] - 6) // 4
    tiles_with_marker = sum(blue[r * (tile_h + 2):(r + 1) * tile_h + r * 2, c * (tile_w + 2):(c + 1) * tile_w + c * 2].any()
                            for r in range(2) for c in range(4))
    assert tiles_with_marker == 6


def test_window_for_bone_soft_tissue_and_ct_without_a_preset() -> None:
    volume, _ = head(IDENTITY)
    bone = window_for(volume, "bone")
    assert 400 <= bone.level <= 500 and 1700 <= bone.width <= 2000
    assert window_for(volume, "compact_bone") == bone
    for preset in ("soft-tissue", "muscle", "blood-pool", "Skin"):
        soft = window_for(volume, preset)
        assert 40 <= soft.level <= 60 and soft.width == 400, preset
    chosen = window_for(volume, None)
    assert chosen.level == bone.level and "chosen" in chosen.name


def test_window_for_mr_uses_the_voxels_percentiles() -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(100.0, 900.0, size=(30, 40, 50))
    values[0, 0, :20] = 1e6  # a few hot voxels must not set the window
    volume = Volume(values, Geometry(spacing=(1.0, 1.0, 1.0)), modality="MR")
    window = window_for(volume, "bone")
    low, high = np.percentile(values, [1, 99])
    assert window.level == pytest.approx((low + high) / 2, rel=0.01)
    assert window.width == pytest.approx(high - low, rel=0.02)
    assert "percentile" in window.name


def test_a_small_outline_is_shown_cropped_with_its_surroundings() -> None:
    volume, masks = head(IDENTITY)
    centre, colour = MARKERS["left"]
    alone = scan_pictures(volume, [Outline("left", colour, masks["left"])], window_for(volume, "bone"))
    whole = scan_pictures(volume, with_head(volume, Outline("left", colour, masks["left"])), window_for(volume, "bone"))
    assert "cropped to the outlined region" in alone[1].caption and "cropped" not in whole[1].caption
    _, columns, _, width = where_coloured(alone[1].png, colour)
    _, whole_columns, _, whole_width = where_coloured(whole[1].png, colour)
    # Cropped, the 14 mm marker spans a larger share of the picture.
    assert np.ptp(columns) / width > 1.5 * np.ptp(whole_columns) / whole_width
    # The cropped sections still name their true patient position: through the marker's centre (with the head
    # outlined too, through the centre of both, the head's in x).
    for pictures, x_expected in ((alone, centre[0]), (whole, CENTRE[0])):
        y_mm = float(pictures[1].caption.split("through y = ")[1].split(" mm")[0])
        x_mm = float(pictures[2].caption.split("through x = ")[1].split(" mm")[0])
        assert abs(y_mm - centre[1]) <= SPACING[1] and abs(x_mm - x_expected) <= SPACING[0]


def test_a_mask_on_another_grid_is_drawn_where_it_lies_in_the_patient() -> None:
    # Same array shape, mirrored grid: drawing its voxels as if on the scan's grid would swap left and right.
    volume, _ = head(IDENTITY)
    _, flipped_masks = head(DIRECTIONS["x flipped"])
    flipped_left = flipped_masks["left"]
    assert flipped_left.array.shape == volume.shape
    shown = pictures_of(volume, Outline("left", MARKERS["left"][1], flipped_left))
    on_scan_grid = pictures_of(volume, Outline("left", MARKERS["left"][1], head(IDENTITY)[1]["left"]))
    for picture in ("axial", "coronal"):
        assert np.array_equal(pixels(shown[picture]), pixels(on_scan_grid[picture])), picture
