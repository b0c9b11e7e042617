"""Slice-stack geometry: ordering, spacing checks, tilt, and resampling to a regular grid.

Pure functions on arrays; no DICOM parsing here.  A stack is a set of parallel
image planes that share one orientation (``row_cos``, ``col_cos``) and pixel
size; each plane ``k`` has its own ImagePositionPatient ``p_k``.  A scanner with
a tilted gantry (or uneven table steps) gives planes whose origins do not lie on
one line along the normal, or do not sit at equal distances: stacking them as
they come distorts the anatomy, so :func:`resample_stack` puts them onto an
orthogonal grid with axes ``row_cos``, ``col_cos`` and the normal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

#: Two planes closer than this along the normal are at the same position (mm).
DUPLICATE_TOLERANCE_MM = 0.01
#: Steps may differ by this fraction of the median (or 0.01 mm) and still count as even.
UNEVEN_FRACTION = 0.01
#: A step of this many median steps (less the UNEVEN_FRACTION tolerance) is a gap:
#: one missing slice doubles the step exactly.
GAP_FACTOR = 2.0
#: Interpolating across a step this many median steps wide is worth a warning, not a note.
WIDE_STEP_FACTOR = 1.5
#: In-plane drift of the plane origins below this (mm) is rounding, not tilt.
TILT_TOLERANCE_MM = 0.01


@dataclass(frozen=True)
class StackLayout:
    """Where the planes of a stack lie, after sorting along the normal.

    Attributes
    ----------
    order : ndarray of int, shape (n,)
        Input indices in stacking order (first to last along ``normal``).
    normal : ndarray, shape (3,)
        Unit slice normal ``row_cos x col_cos``, flipped if needed so that it
        points from the first to the last plane.
    distances : ndarray, shape (n,)
        Distance of each sorted plane from the first along ``normal`` (mm).
    in_plane : ndarray, shape (n, 2)
        Offset of each sorted plane's origin from the first plane's, along
        ``row_cos`` and ``col_cos`` (mm); non-zero with gantry tilt.
    """

    order: NDArray[np.intp]
    normal: NDArray[np.float64]
    distances: NDArray[np.float64]
    in_plane: NDArray[np.float64]

    @property
    def steps(self) -> NDArray[np.float64]:
        """Distances between successive planes along the normal (mm)."""
        return np.diff(self.distances)

    @property
    def median_step(self) -> float:
        """Median of the non-duplicate steps (mm); 0 for a single plane."""
        steps = self.steps[self.steps > DUPLICATE_TOLERANCE_MM]
        return float(np.median(steps)) if steps.size else 0.0

    def duplicate_pairs(self) -> list[tuple[int, int]]:
        """Pairs of sorted indices ``(k, k + 1)`` that share a position."""
        return [(int(k), int(k) + 1) for k in np.flatnonzero(self.steps <= DUPLICATE_TOLERANCE_MM)]

    def gaps(self) -> list[int]:
        """Sorted indices ``k`` after which a step reaches ``GAP_FACTOR`` median steps.

        >>> layout = analyse_positions(np.array([[0, 0, z] for z in (0, 2, 4, 8, 10.0)]),
        ...                            np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
        >>> layout.gaps()
        [2]
        """
        median = self.median_step
        if median <= 0:
            return []
        return [int(k) for k in np.flatnonzero(self.steps >= GAP_FACTOR * median * (1 - UNEVEN_FRACTION))]

    def widest_step_ratio(self) -> float:
        """The largest step in median steps (1 for an even stack, 0 for a single plane)."""
        median = self.median_step
        return float(self.steps.max()) / median if median > 0 else 0.0

    def is_uneven(self) -> bool:
        """True when the (non-duplicate) steps differ by more than the tolerance."""
        steps = self.steps[self.steps > DUPLICATE_TOLERANCE_MM]
        if steps.size < 2:
            return False
        tolerance = max(UNEVEN_FRACTION * float(np.median(steps)), 0.01)
        return float(steps.max() - steps.min()) > tolerance

    def tilt_deg(self) -> float:
        """Angle between the line through the plane origins and the normal (degrees).

        Fitted by least squares through all origins, so one odd position does not
        dominate; 0 when the origins drift less than ``TILT_TOLERANCE_MM``.
        """
        if not self.is_shifted() or self.distances[-1] <= 0:
            return 0.0
        d = self.distances - self.distances.mean()
        slope = (d @ (self.in_plane - self.in_plane.mean(axis=0))) / (d @ d)
        return float(np.degrees(np.arctan(np.hypot(*slope))))

    def is_shifted(self) -> bool:
        """True when plane origins drift in-plane (tilt or odd table moves)."""
        return bool(np.abs(self.in_plane).max() > TILT_TOLERANCE_MM)


def analyse_positions(
    positions: NDArray[np.float64], row_cos: NDArray[np.float64], col_cos: NDArray[np.float64]
) -> StackLayout:
    """Sort planes along the slice normal and measure their layout.

    Parameters
    ----------
    positions : ndarray, shape (n, 3)
        ImagePositionPatient of each plane (LPS mm), in any order.
    row_cos, col_cos : ndarray, shape (3,)
        ImageOrientationPatient halves: direction along a row (i) and down a column (j).

    Returns
    -------
    StackLayout
        Ties in position keep their input order (a stable sort), never file names.

    >>> layout = analyse_positions(np.array([[0, 0, 5.0], [0, 0, 1.0], [0, 0, 3.0]]),
    ...                            np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    >>> layout.order.tolist(), layout.distances.tolist()
    ([1, 2, 0], [0.0, 2.0, 4.0])
    """
    positions = np.asarray(positions, dtype=float)
    normal = np.cross(row_cos, col_cos)
    normal /= np.linalg.norm(normal)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    # Some series are stored feet-first or with the normal pointing down; keep the
    # normal's sign such that k runs from the first to the last plane (may be left-handed).
    if along[order[-1]] < along[order[0]]:
        normal = -normal
    offsets = positions[order] - positions[order[0]]
    distances = offsets @ normal
    in_plane = np.stack([offsets @ row_cos, offsets @ col_cos], axis=1)
    return StackLayout(order=order, normal=normal, distances=distances, in_plane=in_plane)


def describe_problems(layout: StackLayout, names: list[str] | None = None) -> list[str]:
    """Human-readable findings about a stack (tilt, uneven spacing, gaps, duplicates).

    ``names`` (one per sorted plane) lets a message point at a file.
    """
    problems = []
    tilt = layout.tilt_deg()
    if tilt >= 0.05:
        problems.append(f"gantry tilt {tilt:.1f} deg")
    elif layout.is_shifted():
        problems.append("slice origins shift sideways between slices")
    for first, second in layout.duplicate_pairs():
        where = f"{layout.distances[first]:.2f} mm"
        files = f" ({names[first]}, {names[second]})" if names else ""
        problems.append(f"duplicate position at {where} along the normal{files}")
    for k in layout.gaps():
        problems.append(f"gap of {layout.steps[k]:.3g} mm after slice {k + 1}")
    if layout.is_uneven():
        steps = layout.steps[layout.steps > DUPLICATE_TOLERANCE_MM]
        problems.append(f"uneven slice spacing {steps.min():.3g}..{steps.max():.3g} mm")
    return problems


def regular_spacing(layout: StackLayout) -> float:
    """Slice spacing (mm) of the regular grid a stack is resampled to.

    Even stacks keep their mean step.  Uneven ones get the smallest step present,
    so no acquired detail is thinned out, but not below half the median step, so
    one stray near-duplicate slice does not multiply the slice count.
    """
    span = float(layout.distances[-1])
    n = layout.distances.size
    if not layout.is_uneven() and not layout.gaps():
        return span / (n - 1)
    steps = layout.steps[layout.steps > DUPLICATE_TOLERANCE_MM]
    target = max(float(steps.min()), 0.5 * float(np.median(steps)))
    count = int(round(span / target)) + 1
    # Adjusted so the first and last acquired planes land exactly on the grid.
    return span / (count - 1)


@dataclass(frozen=True)
class ResampledStack:
    """Result of :func:`resample_stack`.

    ``corner_mm`` is the in-plane offset (along row and column, mm) of the new
    grid's first voxel from the first plane's origin.
    """

    array: NDArray[np.generic]
    corner_mm: tuple[float, float]
    slice_spacing: float


def resample_stack(
    stack: NDArray[np.generic],
    layout: StackLayout,
    pixel_spacing_ij: tuple[float, float],
    *,
    fill_value: float,
    progress: Callable[[int, int], None] | None = None,
) -> ResampledStack:
    """Resample sorted planes onto an orthogonal, evenly spaced grid.

    Each output slice lies at a fixed distance along the normal, between two
    acquired planes; its value is the linear blend of those planes, each sampled
    (bilinearly) at the output pixel's orthogonal projection onto it.  This is
    exact for parallel planes whatever their in-plane shifts (gantry tilt, even
    a tilt that varies) and their spacing.

    Parameters
    ----------
    stack : ndarray, shape (n, y, x)
        Planes in ``layout`` order (already sorted).
    layout : StackLayout
    pixel_spacing_ij : (float, float)
        Pixel size along a row (i) and down a column (j), mm.
    fill_value : float
        Value for output voxels no acquired plane covers.

    Returns
    -------
    ResampledStack
        Integer input stays integer (rounded); in-plane size grows to cover the
        sheared footprint of all planes.
    """
    dx, dy = pixel_spacing_ij
    n, ny, nx = stack.shape
    dz = regular_spacing(layout)
    count = int(round(layout.distances[-1] / dz)) + 1
    lo = layout.in_plane.min(axis=0)
    hi = layout.in_plane.max(axis=0)
    nx_out = nx + int(np.ceil((hi[0] - lo[0]) / dx - 1e-6))
    ny_out = ny + int(np.ceil((hi[1] - lo[1]) / dy - 1e-6))
    # Per-plane offset (in that plane's pixels) of the output grid's first pixel.
    shift_i = (lo[0] - layout.in_plane[:, 0]) / dx
    shift_j = (lo[1] - layout.in_plane[:, 1]) / dy
    shifted = layout.is_shifted()
    out_dtype = stack.dtype if np.issubdtype(stack.dtype, np.integer) else np.float32
    out = np.empty((count, ny_out, nx_out), dtype=out_dtype)
    targets = np.arange(count) * dz
    upper = np.clip(np.searchsorted(layout.distances, targets, side="right"), 1, n - 1)
    weights = np.clip((targets - layout.distances[upper - 1]) / (layout.distances[upper] - layout.distances[upper - 1]), 0, 1)

    def plane(k: int) -> NDArray[np.float32]:
        if not shifted:
            return stack[k].astype(np.float32)
        return ndimage.affine_transform(
            stack[k].astype(np.float32),
            matrix=np.ones(2),
            offset=(shift_j[k], shift_i[k]),
            output_shape=(ny_out, nx_out),
            order=1,
            mode="constant",
            cval=fill_value,
        )

    for m in range(count):
        k = int(upper[m]) - 1
        w = float(weights[m])
        blended = plane(k) if w < 1e-6 else plane(k + 1) if w > 1 - 1e-6 else (1 - w) * plane(k) + w * plane(k + 1)
        out[m] = np.rint(blended) if out_dtype != np.float32 else blended
        if progress is not None:
            progress(m + 1, count)
    return ResampledStack(array=out, corner_mm=(float(lo[0]), float(lo[1])), slice_spacing=dz)
