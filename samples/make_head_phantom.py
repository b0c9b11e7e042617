"""Write the embedded sample: a synthetic head CT as a DICOM series.

No licence-clear real head CT is small enough to ship, so the sample is a
phantom built to behave like one: skin and brain around a skull with cortical
tables and spongy diploe (Hounsfield units), partial-volume edges, scanner
noise, a carbon head holder under the head (a separate bright body that
``--preset bone`` must drop), and a 6 mm bead on the patient's left so that a
left/right flip is visible in any viewer.  Run from the repository root:

    python samples/make_head_phantom.py samples/head_phantom_ct

The voxel values are deterministic (fixed seed); UIDs of the files are new each run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.special import expit

SHAPE_ZYX = (56, 144, 128)
SPACING_XYZ = (1.5, 1.5, 2.5)
ORIGIN_LPS = (-96.0, -120.0, -60.0)
NOISE_HU = 18.0
SEED = 20261128


def _smooth_inside(distance_mm: np.ndarray, width_mm: float = 0.8) -> np.ndarray:
    """Fraction of a voxel inside a surface: a soft step, like a scanner's blur."""
    return expit(-distance_mm / width_mm)


def _ellipsoid_distance(points: np.ndarray, centre: tuple[float, ...], radii: tuple[float, ...]) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) to an axis-aligned ellipsoid."""
    scaled = np.sqrt(sum(((points[..., a] - centre[a]) / radii[a]) ** 2 for a in range(3)))
    return (scaled - 1.0) * min(radii)


def head_phantom_hu() -> np.ndarray:
    """The phantom volume, shape (z, y, x), int16 Hounsfield units."""
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in SHAPE_ZYX), indexing="ij")
    points = np.stack(
        [ORIGIN_LPS[0] + i * SPACING_XYZ[0], ORIGIN_LPS[1] + j * SPACING_XYZ[1], ORIGIN_LPS[2] + k * SPACING_XYZ[2]],
        axis=-1,
    )
    centre = (0.0, -15.0, 10.0)
    skin = _smooth_inside(_ellipsoid_distance(points, centre, (78.0, 92.0, 60.0)))
    outer_table = _smooth_inside(_ellipsoid_distance(points, centre, (72.0, 86.0, 54.0)))
    diploe = _smooth_inside(_ellipsoid_distance(points, centre, (69.5, 83.5, 51.5)))
    inner_table = _smooth_inside(_ellipsoid_distance(points, centre, (67.5, 81.5, 49.5)))
    hu = -1000.0 + skin * 1040.0  # air -> soft tissue (40 HU)
    hu += (outer_table - diploe) * 1260.0  # cortical bone ~1300 HU
    hu += (diploe - inner_table) * 420.0  # spongy diploe ~460 HU
    hu += inner_table * (-5.0)  # brain ~35 HU
    # Head holder: a curved carbon shell 12 mm below the skin, bone-bright on CT.
    holder_distance = np.abs(_ellipsoid_distance(points, centre, (86.0, 100.0, 68.0))) - 2.0
    below = points[..., 1] > centre[1] + 50.0
    hu += np.where(below, _smooth_inside(holder_distance, 0.6), 0.0) * 1400.0
    # Marker bead on the patient's left (+x in LPS), inside the scalp.
    bead = _smooth_inside(np.linalg.norm(points - np.array([74.0, -15.0, 10.0]), axis=-1) - 3.0, 0.5)
    hu += bead * 1800.0
    hu += np.random.default_rng(SEED).normal(0.0, NOISE_HU, SHAPE_ZYX)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)


def write_sample(target: Path) -> list[Path]:
    """Write the phantom as an RLE-compressed axial CT series with shuffled file names."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from dicom_phantoms import write_ct_series  # the same writer the tests use
    from pydicom.uid import RLELossless

    return write_ct_series(
        target,
        head_phantom_hu(),
        SPACING_XYZ,
        origin=ORIGIN_LPS,
        transfer_syntax=RLELossless,
        description="synthetic head phantom",
        patient_name="Phantom^Sample",
        series_uid="1.2.826.0.1.3680043.8.498.20261128.1",
        seed=SEED,
    )


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "samples/head_phantom_ct")
    written = write_sample(folder)
    print(f"wrote {len(written)} slices to {folder}")
