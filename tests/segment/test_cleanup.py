import numpy as np
import pytest

from medprint.errors import ParameterError, SegmentationError
from medprint.geometry import Geometry
from medprint.segment import (
    close_mm,
    count_components,
    fill_cavities,
    keep_components_above,
    keep_largest_component,
    open_mm,
)
from medprint.volume import Mask

ANISOTROPIC = Geometry(spacing=(0.5, 0.5, 2.5))


def _mask(array: np.ndarray, geometry: Geometry = ANISOTROPIC) -> Mask:
    return Mask(array=array.astype(bool), geometry=geometry)


def _ball(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def test_keep_components_above_uses_millimetres():
    array = np.zeros((10, 10, 10), bool)
    array[1:3, 1:3, 1:3] = True  # 8 voxels * 0.625 mm3 = 5 mm3
    array[5:9, 5:9, 5:9] = True  # 64 voxels = 40 mm3
    kept = keep_components_above(_mask(array), 10.0)
    assert kept.voxel_count == 64
    with pytest.raises(SegmentationError, match="largest is 40 mm3"):
        keep_components_above(_mask(array), 100.0)


def test_diagonal_touch_is_two_bodies():
    array = np.zeros((4, 4, 4), bool)
    array[1, 1, 1] = array[2, 2, 2] = True
    assert count_components(_mask(array)) == 2
    assert keep_largest_component(_mask(array)).voxel_count == 1


def test_fill_cavities_fills_enclosed_but_not_open_cavities():
    shell = _ball((30, 30, 30), (15, 15, 15), 12) & ~_ball((30, 30, 30), (15, 15, 15), 8)
    filled = fill_cavities(_mask(shell))
    assert filled.voxel_count == int(_ball((30, 30, 30), (15, 15, 15), 12).sum())
    cup = shell.copy()
    cup[15:, 13:18, 13:18] = False  # a chimney to the outside
    assert fill_cavities(_mask(cup)).voxel_count == cup.sum()


def test_closing_respects_anisotropic_spacing():
    # Two slabs separated by one empty slice: a 2.5 mm gap along z, 0.5 mm voxels in-plane.
    array = np.zeros((9, 20, 20), bool)
    array[2:4, 5:15, 5:15] = True
    array[5:7, 5:15, 5:15] = True
    # Slice centres are 2.5 mm apart: a 2 mm ball cannot reach across, a 3 mm one can
    # (in voxel units, radius 2 would have bridged a one-voxel gap).
    assert count_components(close_mm(_mask(array), 2.0)) == 2
    bridged = close_mm(_mask(array), 3.0)
    assert count_components(bridged) == 1
    assert bridged.array[4, 10, 10]
    footprint = np.zeros_like(array)
    footprint[2:7, 5:15, 5:15] = True
    assert not (bridged.array & ~footprint).any()  # closing never grows the outline


def test_closing_in_plane_uses_the_small_pixel_size():
    array = np.zeros((3, 20, 30), bool)
    array[1, 5:15, 5:12] = True
    array[1, 5:15, 15:25] = True  # 3-pixel (1.5 mm) gap in x
    assert count_components(close_mm(_mask(array), 1.0)) == 1


def test_opening_cuts_thin_bridge_and_keeps_bodies():
    geometry = Geometry(spacing=(1.0, 1.0, 1.0))
    array = _ball((30, 30, 60), (15, 15, 12), 9) | _ball((30, 30, 60), (15, 15, 47), 9)
    array[14:16, 14:16, 12:48] = True  # 2 mm bridge
    opened = open_mm(_mask(array, geometry), 2.0)
    assert count_components(opened) == 2
    assert opened.array[15, 15, 12] and opened.array[15, 15, 47]


@pytest.mark.parametrize("radius", [0.0, -1.0])
def test_morphology_rejects_non_positive_radius(radius):
    with pytest.raises(ParameterError, match="--close"):
        close_mm(_mask(np.ones((3, 3, 3))), radius)


def test_a_void_that_meets_the_outside_only_at_corners_is_filled_before_meshing():
    """Marching cubes seals a void whose way out runs only through voxel corners: it would print as an inner
    shell, so the seeded segmentations fill it."""
    from medprint.mesh import extract_surface
    from medprint.mesh.quality import assess_mesh
    from medprint.segment.voxels import fill_enclosed

    region = np.zeros((24, 24, 24), dtype=bool)
    region[2:20, 2:20, 2:20] = True
    region[8:12, 8:12, 8:12] = False  # the void
    for step in range(12, 20):
        region[step, step, step] = False  # its way out, corner to corner
    filled = fill_enclosed(region)
    assert filled[8:12, 8:12, 8:12].all()
    assert np.count_nonzero(filled & ~region) == 4**3 + 7  # the void and the corner chain; the last one is outside
    quality = assess_mesh(extract_surface(Mask(filled, Geometry(spacing=(1.0, 1.0, 1.0)), "cube")))
    assert quality.watertight and quality.cavities == 0, quality


def test_fill_cavities_also_fills_a_cavity_open_only_at_corners():
    """Marching cubes would seal such a cavity, and --fill-cavities is asked so that none stays in the print."""
    corner_only = _ball((30, 30, 30), (15, 15, 15), 12) & ~_ball((30, 30, 30), (15, 15, 15), 8)
    for step in range(20, 30):
        corner_only[step, step, step] = False  # a way out from the cavity through voxel corners only
    filled = fill_cavities(_mask(corner_only))
    assert filled.array[15, 15, 15]  # the cavity is filled
