"""Left stays left: a marker on the patient's left ends up at +x (LPS) in the written mesh.

Each case writes a DICOM series with a known orientation (as a scanner would),
converts it with the CLI and reads the STL back: the geometry in the file must
match where the analytic phantom was placed in patient coordinates.
"""

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner
from dicom_phantoms import slice_grid_lps, write_ct_series

from medprint.cli import cli

HEAD_CENTRE = np.array([5.0, -20.0, 40.0])  # LPS mm
LEFT_MARKER = HEAD_CENTRE + [45.0, 0.0, 0.0]  # patient's left is +x in LPS
SUPERIOR_MARKER = HEAD_CENTRE + [0.0, 0.0, 42.0]  # head is +z in LPS
SPACING = (1.0, 1.2, 2.0)
EXTENT_MM = 124.0



def _oblique_axes():
    """Row and column cosines of an axial plane tilted 20 deg about x after 25 deg about z."""
    a, b = np.radians(25), np.radians(20)
    about_z = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    about_x = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rotation = about_x @ about_z
    return rotation[:, 0], rotation[:, 1]


ORIENTATIONS = {
    # name: (row cosine, column cosine) as in ImageOrientationPatient
    "axial": ((1, 0, 0), (0, 1, 0)),
    "axial-mirrored-rows": ((-1, 0, 0), (0, 1, 0)),
    "coronal": ((1, 0, 0), (0, 0, -1)),
    "sagittal": ((0, 1, 0), (0, 0, -1)),
    "oblique": tuple(map(tuple, _oblique_axes())),
}


def _phantom_series(folder, row, col):
    row = np.asarray(row, float) / np.linalg.norm(row)
    col = np.asarray(col, float) / np.linalg.norm(col)
    normal = np.cross(row, col)
    shape = tuple(int(EXTENT_MM / s) for s in reversed(SPACING))  # (z, y, x)
    half = [(n - 1) / 2 * s for n, s in zip(reversed(shape), SPACING)]
    origin = HEAD_CENTRE - half[0] * row - half[1] * col - half[2] * normal
    points = slice_grid_lps(shape, SPACING, origin, row, col)
    inside = (
        (np.linalg.norm(points - HEAD_CENTRE, axis=-1) <= 30.0)
        | (np.linalg.norm(points - LEFT_MARKER, axis=-1) <= 6.0)
        | (np.linalg.norm(points - SUPERIOR_MARKER, axis=-1) <= 4.0)
    )
    write_ct_series(folder, np.where(inside, 1000.0, -1000.0), SPACING, origin, row, col)


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_markers_land_where_the_patient_frame_says(tmp_path, name):
    _phantom_series(tmp_path / "dicom", *ORIENTATIONS[name])
    result = CliRunner().invoke(
        cli, ["convert", str(tmp_path / "dicom"), "-o", str(tmp_path / "m.stl"), "--preset", "bone", "--keep", "all"]
    )
    assert result.exit_code == 0, result.output
    bodies = sorted(trimesh.load(tmp_path / "m.stl").split(only_watertight=False), key=lambda b: b.volume)
    assert len(bodies) == 3
    superior, left, head = bodies
    assert all(body.volume > 0 for body in bodies)  # outward-facing in every orientation
    voxel_diagonal = float(np.linalg.norm(SPACING))
    assert np.linalg.norm(head.center_mass - HEAD_CENTRE) < 0.25 * voxel_diagonal
    assert np.linalg.norm(left.center_mass - LEFT_MARKER) < 0.5 * voxel_diagonal
    assert np.linalg.norm(superior.center_mass - SUPERIOR_MARKER) < 0.5 * voxel_diagonal
    assert left.center_mass[0] > head.center_mass[0] + 40  # left is +x, never mirrored
