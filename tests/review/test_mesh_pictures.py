"""The model pictures: each view shows the patient from the side it names, at one scale for all views.

Markers are small spheres drawn as parts in pure blue, placed on the patient's Left (+x in LPS), Anterior
(-y) or Superior (+z) of a pale anatomy sphere; a mirrored view puts a marker in the wrong half.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh
from numpy.typing import NDArray
from PIL import Image

from medprint.errors import ParameterError
from medprint.mesh.model import Mesh
from medprint.review.mesh_views import MARGIN_PX, VIEWS, mesh_pictures
from medprint.review.types import Shown

CENTRE = np.array([-15.0, 40.0, 120.0])
BLUE = (0, 0, 255)
MARKER_OFFSETS = {"left": (48.0, 0.0, 0.0), "anterior": (0.0, -48.0, 0.0), "superior": (0.0, 0.0, 48.0)}


def ball(centre: NDArray[np.float64], radius_mm: float, subdivisions: int = 3) -> Mesh:
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius_mm)
    return Mesh(np.asarray(sphere.vertices) + centre, np.asarray(sphere.faces))


def rgb_of(png: bytes) -> NDArray[np.int16]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB")).astype(np.int16)


def part_pixels(png: bytes, contrast: int = 40) -> NDArray[np.bool_]:
    """Pixels clearly bluer than grey: the blue part, shaded or seen through the anatomy."""
    rgb = rgb_of(png)
    return (rgb[..., 2] > rgb[..., 0] + contrast) & (rgb[..., 2] > rgb[..., 1] + contrast)


@pytest.fixture(scope="module")
def views_of_markers() -> dict[str, dict[str, bytes]]:
    """Every view of the anatomy with one marker, for each marker."""
    anatomy = Shown("head", ball(CENTRE, 40.0), (210, 200, 190), role="anatomy")
    shown = {}
    for marker, offset in MARKER_OFFSETS.items():
        part = Shown(marker, ball(CENTRE + offset, 8.0), BLUE)
        pictures = mesh_pictures([anatomy, part], views=VIEWS)
        shown[marker] = {view: picture.png for view, picture in zip(VIEWS, pictures)}
    return shown


# (marker, view, image axis, half): where the marker must appear.
SIDES = [
    ("left", "anterior", "column", "high"),  # from the front: patient Left on the image right
    ("left", "posterior", "column", "low"),
    ("left", "superior", "column", "low"),  # from above, Anterior at the top: Left on the image left
    ("left", "inferior", "column", "high"),
    ("anterior", "left", "column", "low"),  # from the patient's left: Anterior on the image left
    ("anterior", "right", "column", "high"),
    ("anterior", "superior", "row", "low"),
    ("anterior", "inferior", "row", "low"),
    ("superior", "anterior", "row", "low"),
    ("superior", "posterior", "row", "low"),
    ("superior", "left", "row", "low"),
    ("superior", "right", "row", "low"),
]


@pytest.mark.parametrize(("marker", "view", "axis", "half"), SIDES)
def test_each_view_shows_the_marker_on_its_side(views_of_markers, marker, view, axis, half) -> None:
    blue = part_pixels(views_of_markers[marker][view])
    rows, columns = np.nonzero(blue)
    assert len(rows) > 100, f"the {marker} marker is not drawn in the {view} view"
    position, size = (columns, blue.shape[1]) if axis == "column" else (rows, blue.shape[0])
    offset = float(np.mean(position)) / size - 0.5
    assert (offset > 0.2) if half == "high" else (offset < -0.2), (marker, view, offset)


def test_each_view_names_its_edges() -> None:
    pictures = mesh_pictures([Shown("ball", ball(CENTRE, 10.0), BLUE)], views=VIEWS)
    letters = {view: dict(picture.letters) for view, picture in zip(VIEWS, pictures)}
    assert letters["anterior"] == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert letters["posterior"] == {"left": "L", "right": "R", "top": "S", "bottom": "I"}
    assert letters["left"] == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    assert letters["right"] == {"left": "P", "right": "A", "top": "S", "bottom": "I"}
    assert letters["superior"] == {"left": "L", "right": "R", "top": "A", "bottom": "P"}
    assert letters["inferior"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert [picture.title for picture in pictures] == [f"{view.capitalize()} view" for view in VIEWS]


def test_every_view_has_the_same_scale() -> None:
    # A 20 x 40 x 60 mm box: each view shows two of its sides, all at one millimetres-per-pixel.
    box = trimesh.creation.box((20.0, 40.0, 60.0))
    mesh = Mesh(np.asarray(box.vertices) + CENTRE, np.asarray(box.faces))
    size_px = 400
    pictures = mesh_pictures([Shown("box", mesh, BLUE)], views=("anterior", "left", "superior"), size_px=size_px)
    px_per_mm = (size_px - 2 * MARGIN_PX) / 60.0
    expected = {"anterior": (20.0, 60.0), "left": (40.0, 60.0), "superior": (20.0, 40.0)}  # (width, height)
    for picture, view in zip(pictures, ("anterior", "left", "superior")):
        rows, columns = np.nonzero(part_pixels(picture.png, contrast=20))
        width_mm, height_mm = (np.ptp(columns) + 1) / px_per_mm, (np.ptp(rows) + 1) / px_per_mm
        assert width_mm == pytest.approx(expected[view][0], abs=1.0), view
        assert height_mm == pytest.approx(expected[view][1], abs=1.0), view
    assert "same scale" in pictures[0].caption


def test_a_part_inside_the_anatomy_shows_through_it() -> None:
    anatomy = Shown("skull", ball(CENTRE, 40.0), (220, 210, 200), role="anatomy")
    hidden = Shown("implant", ball(CENTRE, 12.0), BLUE)
    anterior = mesh_pictures([anatomy, hidden], views=("anterior",))[0]
    blue = part_pixels(anterior.png, contrast=25)
    rows, columns = np.nonzero(blue)
    assert len(rows) > 200
    assert abs(np.mean(columns) / blue.shape[1] - 0.5) < 0.05 and abs(np.mean(rows) / blue.shape[0] - 0.5) < 0.05
    alone = mesh_pictures([Shown("skull", ball(CENTRE, 40.0), (220, 210, 200), role="anatomy")],
                          views=("anterior",))[0]
    assert not part_pixels(alone.png, contrast=25).any()


def test_a_big_mesh_is_decimated_for_display_and_the_caption_says_so() -> None:
    big = ball(CENTRE, 30.0, subdivisions=6)  # 81,920 triangles
    picture = mesh_pictures([Shown("skull", big, BLUE)], views=("anterior",), display_faces=20_000)[0]
    words = picture.caption.split()
    drawn, total = int(words[2].replace(",", "")), int(words[4].replace(",", ""))
    assert picture.caption.startswith("decimated to") and total == big.face_count
    assert 12_000 <= drawn <= 28_000
    rows, columns = np.nonzero(part_pixels(picture.png))
    # Still the whole sphere, round: as wide as high.
    assert abs(np.ptp(columns) - np.ptp(rows)) <= 3
    small = mesh_pictures([Shown("ball", ball(CENTRE, 30.0), BLUE)], views=("anterior",))[0]
    assert "decimated" not in small.caption


def test_bad_views_and_empty_meshes_are_refused() -> None:
    shown = [Shown("ball", ball(CENTRE, 10.0), BLUE)]
    with pytest.raises(ParameterError, match="'front'.*anterior"):
        mesh_pictures(shown, views=("front",))
    empty = Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ParameterError, match="nothing to show"):
        mesh_pictures([Shown("empty", empty, BLUE)])
