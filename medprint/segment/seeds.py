"""Seed points: where the user clicked, in patient millimetres or voxel indices.

Viewers (3D Slicer in LPS mode, OsiriX/Horos, most PACS) show a cursor's
position in the DICOM patient frame, so ``--seed X,Y,Z`` takes LPS mm and
``--seed-voxel I,J,K`` takes the column, row and slice index of the loaded
volume.  Both end up as array indices ``(z, y, x)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError
from ..geometry import Geometry

Point = tuple[float, float, float]

#: Largest coordinate (mm) or index a seed may have: 100 m, far outside any scanner, far inside float range.
MAX_COORDINATE = 1e5

_SEPARATOR = re.compile(r"\s*[,:]\s*|\s+")


def parse_point(text: str, *, option: str = "--seed") -> Point:
    """Parse ``'X,Y,Z'`` (commas, spaces or colons between numbers).

    >>> parse_point("-12.5, 30, 101")
    (-12.5, 30.0, 101.0)
    """
    parts = _SEPARATOR.split(text.strip())
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(abs(v) <= MAX_COORDINATE for v in values):
        raise ParameterError(
            f"{option}: {text!r} is not three finite numbers within +-{MAX_COORDINATE:g}; write it as X,Y,Z, "
            f"e.g. {option} -12.5,30,101"
        )
    return values  # type: ignore[return-value]


def volume_extent_lps(geometry: Geometry, shape_zyx: Sequence[int]) -> tuple[Point, Point]:
    """Smallest and largest LPS coordinate (mm) of the voxel centres of a grid."""
    nz, ny, nx = shape_zyx
    corners = np.array([[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)], dtype=float)
    lps = geometry.index_to_lps(corners)
    low, high = lps.min(axis=0), lps.max(axis=0)
    return (float(low[0]), float(low[1]), float(low[2])), (float(high[0]), float(high[1]), float(high[2]))


def seeds_to_indices(
    geometry: Geometry,
    shape_zyx: Sequence[int],
    *,
    lps_mm: Iterable[Sequence[float]] = (),
    voxels_ijk: Iterable[Sequence[float]] = (),
    option: str = "--seed",
) -> NDArray[np.intp]:
    """Turn seeds in LPS mm and/or voxel indices into array indices ``(z, y, x)``.

    Parameters
    ----------
    geometry : Geometry
        The grid of the volume the seeds are meant for.
    shape_zyx : sequence of int
        Array shape ``(z, y, x)`` of that volume.
    lps_mm : iterable of (x, y, z)
        Points in the DICOM patient frame, mm; rounded to the nearest voxel.
    voxels_ijk : iterable of (i, j, k)
        Column, row and slice indices (0-based).
    option : str
        The option the LPS points came from, for messages.

    Returns
    -------
    ndarray of intp, shape (N, 3)
        One ``(z, y, x)`` row per seed, in the order given (LPS first).

    Raises
    ------
    ParameterError
        No seed given, or a seed outside the volume: the message names the
        option, the seed and the volume's extent.
    """
    shape = np.asarray(shape_zyx, dtype=int)
    rows: list[NDArray[np.intp]] = []
    for point in lps_mm:
        point_arr = np.asarray(point, dtype=float)
        if point_arr.shape != (3,) or not np.all(np.isfinite(point_arr)):
            raise ParameterError(f"{option}: {tuple(point)} is not three finite numbers (X,Y,Z in mm)")
        ijk = np.rint(geometry.lps_to_index(point_arr)).astype(int)
        zyx = ijk[::-1]
        if np.any(zyx < 0) or np.any(zyx >= shape):
            (x0, y0, z0), (x1, y1, z1) = volume_extent_lps(geometry, shape_zyx)
            voxel_hint = " or use --seed-voxel I,J,K" if option == "--seed" else ""
            raise ParameterError(
                f"{option} {_fmt(point_arr)} mm is outside the volume, which spans x {x0:.1f}..{x1:.1f}, "
                f"y {y0:.1f}..{y1:.1f}, z {z0:.1f}..{z1:.1f} mm (LPS); copy the point from a viewer in LPS "
                f"(Slicer shows RAS: negate x and y){voxel_hint}"
            )
        rows.append(zyx.astype(np.intp))
    for voxel in voxels_ijk:
        voxel_arr = np.asarray(voxel, dtype=float)
        if voxel_arr.shape != (3,) or not np.all(np.isfinite(voxel_arr)):
            raise ParameterError(f"--seed-voxel: {tuple(voxel)} is not three indices I,J,K")
        zyx = np.rint(voxel_arr).astype(int)[::-1]
        if np.any(zyx < 0) or np.any(zyx >= shape):
            nz, ny, nx = (int(s) for s in shape)
            raise ParameterError(
                f"--seed-voxel {_fmt(voxel_arr)} is outside the volume, whose indices run I 0..{nx - 1}, "
                f"J 0..{ny - 1}, K 0..{nz - 1}; give column,row,slice of the loaded scan"
            )
        rows.append(zyx.astype(np.intp))
    if not rows:
        raise ParameterError("no seed given: add --seed X,Y,Z (LPS mm) or --seed-voxel I,J,K inside the part to print")
    return np.stack(rows)


def _fmt(values: NDArray[np.float64]) -> str:
    return ",".join(f"{v:g}" for v in values)
