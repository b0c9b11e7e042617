"""Rays from the skull's centre: where the skull is, where it is missing, and its two tables.

A cranial vault is star-shaped about a point inside it: every ray from that point crosses the inner table, then
the outer one.  Seen along such rays the skull is two radius maps over the directions, ``r_in`` and ``r_out``, and
a defect is a patch of directions whose rays meet no bone.  Everything here works on those rays, vectorised over
all of them at once (the samples of a batch of rays are one ``map_coordinates`` call).

Directions are charted locally by the gnomonic projection about the defect's centre direction ``d0``:
``(u, v) = (d . e1, d . e2) / (d . d0)``.  The chart has no singularity for patches narrower than a hemisphere, so a
defect that crosses the midline or the vertex is no harder than any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..geometry import Geometry

#: Rays traced per batch: bounds the (rays x samples x 3) coordinate array to ~100 MB.
_RAY_BATCH_SAMPLES = 4_000_000


@dataclass(frozen=True)
class ScanSampler:
    """Samples a CT's Hounsfield units (trilinear) and its bone body (nearest voxel) at LPS points.

    Parameters
    ----------
    hu : ndarray, shape (z, y, x)
        Voxel values.
    body : ndarray of bool, shape (z, y, x)
        The skull's voxels (the largest bone body), which gates every hit so the head holder is never "bone".
    geometry : Geometry
    low_hu, high_hu : float
        The bone range.
    """

    hu: NDArray[Any]
    body: NDArray[np.bool_]
    geometry: Geometry
    low_hu: float
    high_hu: float

    def index_zyx(self, lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """(3, N) array coordinates (z, y, x) of (N, 3) LPS points."""
        inverse = np.linalg.inv(self.geometry.affine)
        lps = np.asarray(lps, float)
        # Column by column: numpy's (N, 3) @ (3, 3) is slower than three fused multiply-adds.
        return np.stack([inverse[axis, 0] * lps[:, 0] + inverse[axis, 1] * lps[:, 1] + inverse[axis, 2] * lps[:, 2]
                         + inverse[axis, 3] for axis in (2, 1, 0)])

    def bone_and_hu(self, lps: NDArray[np.float64]) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
        """Whether each point is skull bone, and the interpolated value there."""
        zyx = self.index_zyx(lps)
        values = ndimage.map_coordinates(self.hu, zyx, order=1, mode="constant", cval=-1024.0, prefilter=False,
                                         output=np.float32)
        body = ndimage.map_coordinates(self.body, zyx, order=0, mode="constant", cval=False, prefilter=False)
        bone = body.astype(bool) & (values >= self.low_hu) & (values <= self.high_hu)
        return bone, values.astype(np.float32)


@dataclass(frozen=True)
class TableTrace:
    """What each ray met between ``r_lo`` and ``r_hi`` (all arrays one value per ray).

    ``hit``: the ray crosses bone; ``r_in`` / ``r_out``: the first / last crossing of the bone threshold (mm from
    the centre, interpolated between samples; NaN without a hit); ``gap_in`` / ``gap_out``: the longest run
    without bone between them (a frontal sinus, diploe under the threshold), NaN when there is none of at least
    ``min_gap_mm``; ``exit_r``: where the ray leaves the scan.
    """

    hit: NDArray[np.bool_]
    r_in: NDArray[np.float64]
    r_out: NDArray[np.float64]
    gap_in: NDArray[np.float64]
    gap_out: NDArray[np.float64]
    exit_r: NDArray[np.float64]


def trace_tables(sampler: ScanSampler, centre: NDArray[np.float64], directions: NDArray[np.float64],
                 r_lo: float, r_hi: float, step_mm: float,
                 reflect: tuple[NDArray[np.float64], float] | None = None, min_gap_mm: float = 1.0) -> TableTrace:
    """Trace rays ``centre + r * direction`` for ``r`` in ``[r_lo, r_hi]`` and find both tables on each.

    ``reflect = (n, d)``: sample the skull mirrored across the plane ``n . x = d`` instead (the mirror method reads
    the healthy side through the defect's own rays).  The rays are straight in index space too, so each is placed
    there once (an affine map of its start and direction) and sampled without transforming every point.
    """
    centre = np.asarray(centre, float)
    directions = np.asarray(directions, float)
    if reflect is not None:
        normal, offset = reflect
        centre = centre - 2.0 * (centre @ normal - offset) * normal
        directions = directions - 2.0 * (directions @ normal)[:, None] * normal
    inverse = np.linalg.inv(sampler.geometry.affine)
    start_zyx = (inverse[:3, :3] @ centre + inverse[:3, 3])[::-1]
    step_zyx = (directions @ inverse[:3, :3].T)[:, ::-1]
    radii = np.arange(r_lo, r_hi + step_mm / 2, step_mm)
    n_rays, n_samples = len(directions), len(radii)
    shape = np.asarray(sampler.hu.shape, dtype=np.float32)
    out = {key: np.full(n_rays, np.nan) for key in ("r_in", "r_out", "gap_in", "gap_out")}
    hit = np.zeros(n_rays, bool)
    exit_r = np.full(n_rays, np.inf)
    batch = max(1, _RAY_BATCH_SAMPLES // n_samples)
    samples = np.arange(n_samples)
    for first_ray in range(0, n_rays, batch):
        last_ray = min(n_rays, first_ray + batch)
        count = last_ray - first_ray
        coords = (start_zyx[:, None, None] + step_zyx[first_ray:last_ray].T[:, :, None] * radii[None, None, :])
        coords = coords.astype(np.float32).reshape(3, -1)
        values = ndimage.map_coordinates(sampler.hu, coords, order=1, mode="constant", cval=-1024.0,
                                         prefilter=False, output=np.float32).reshape(count, n_samples)
        body = ndimage.map_coordinates(sampler.body, coords, order=0, mode="constant", cval=False,
                                       prefilter=False).reshape(count, n_samples).astype(bool)
        inside = np.all((coords >= -0.5) & (coords <= shape[:, None] - 0.5), axis=0).reshape(count, n_samples)
        del coords
        bone = body & (values >= sampler.low_hu) & (values <= sampler.high_hu)
        any_bone = bone.any(axis=1)
        first = np.argmax(bone, axis=1)
        last = n_samples - 1 - np.argmax(bone[:, ::-1], axis=1)
        rows = np.arange(count)
        low = sampler.low_hu
        span = slice(first_ray, last_ray)
        out["r_in"][span] = np.where(any_bone, _crossing(values, rows, first, first - 1, radii, low), np.nan)
        out["r_out"][span] = np.where(any_bone, _crossing(values, rows, last, last + 1, radii, low), np.nan)
        # The longest run without bone strictly between the first and last bone sample.
        last_bone = np.maximum.accumulate(np.where(bone, samples, -1), axis=1)
        run = np.where(~bone & (samples > first[:, None]) & (samples < last[:, None]), samples - last_bone, 0)
        run_end = np.argmax(run, axis=1)
        run_length = run[rows, run_end]
        has_gap = any_bone & (run_length * step_mm >= min_gap_mm)
        run_start = run_end - run_length + 1
        out["gap_in"][span] = np.where(has_gap, _crossing(values, rows, run_start - 1, run_start, radii, low), np.nan)
        out["gap_out"][span] = np.where(has_gap, _crossing(values, rows, run_end + 1, run_end, radii, low), np.nan)
        hit[span] = any_bone
        outside = ~inside
        exit_r[span] = np.where(outside.any(axis=1), radii[np.argmax(outside, axis=1)], np.inf)
    return TableTrace(hit=hit, exit_r=exit_r, **out)


def _crossing(values: NDArray[np.float32], rows: NDArray[np.int64], at: NDArray[np.int64],
              neighbour: NDArray[np.int64], radii: NDArray[np.float64], level: float) -> NDArray[np.float64]:
    """Radius where the value crosses ``level`` between sample ``at`` (bone) and ``neighbour`` (not bone)."""
    n = len(radii)
    other = np.clip(neighbour, 0, n - 1)
    v_at = values[rows, at].astype(float)
    v_other = values[rows, other].astype(float)
    denom = v_at - v_other
    fraction = np.where(np.abs(denom) > 1e-6, (v_at - level) / np.where(np.abs(denom) > 1e-6, denom, 1.0), 0.5)
    fraction = np.clip(fraction, 0.0, 1.0)
    return radii[at] + fraction * (radii[other] - radii[at])


def sphere_directions(step_deg: float) -> tuple[NDArray[np.float64], tuple[int, int], NDArray[np.float64]]:
    """Unit directions on an (elevation, azimuth) grid, its shape and the elevations (radians).

    Elevation is measured from the LPS axial plane (+z superior), azimuth about the z axis.
    """
    elevations = np.deg2rad(np.arange(-90 + step_deg / 2, 90, step_deg))
    azimuths = np.deg2rad(np.arange(0, 360, step_deg))
    el, az = np.meshgrid(elevations, azimuths, indexing="ij")
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    return dirs.reshape(-1, 3), el.shape, elevations


def label_wrapped(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], int]:
    """Connected components of an (elevation, azimuth) map whose azimuth wraps round (8-connected)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), int))
    if count == 0:
        return labels, 0
    # Join the labels that meet across the 0/360 degree seam (a few hundred rows at most).
    parent = np.arange(count + 1)

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    left, right = labels[:, 0], labels[:, -1]
    for shift in (-1, 0, 1):
        shifted = np.roll(right, shift)
        both = (left > 0) & (shifted > 0)
        for a, b in zip(left[both], shifted[both]):
            ra, rb = root(int(a)), root(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(count + 1)])
    merged = roots[labels]
    unique = np.unique(merged[merged > 0])
    remap = np.zeros(count + 1, np.int64)
    remap[unique] = np.arange(1, len(unique) + 1)
    return remap[merged], len(unique)


@dataclass(frozen=True)
class Chart:
    """A gnomonic chart of directions about ``d0``: a square grid of ``n x n`` points in ``(u, v)``.

    ``u`` and ``v`` are tangents of angles, so ``step * radius`` is about the grid's spacing in mm on a sphere of
    that radius near the chart's centre.
    """

    d0: NDArray[np.float64]
    e1: NDArray[np.float64]
    e2: NDArray[np.float64]
    half_width: float
    n: int

    @classmethod
    def about(cls, d0: NDArray[np.float64], half_width: float, step: float) -> Chart:
        d0 = np.asarray(d0, float) / np.linalg.norm(d0)
        helper = np.array([0.0, 0.0, 1.0]) if abs(d0[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        e1 = np.cross(helper, d0)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(d0, e1)
        n = int(np.ceil(2 * half_width / step)) + 1
        return cls(d0=d0, e1=e1, e2=e2, half_width=float(half_width), n=n)

    @property
    def step(self) -> float:
        return 2 * self.half_width / (self.n - 1)

    @property
    def axis(self) -> NDArray[np.float64]:
        return np.linspace(-self.half_width, self.half_width, self.n)

    def uv(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The grid's ``(u, v)`` as two (n, n) arrays, index ``[iv, iu]``."""
        u, v = np.meshgrid(self.axis, self.axis, indexing="xy")
        return u, v

    def directions(self) -> NDArray[np.float64]:
        """(n*n, 3) unit directions of the grid points, C order of :meth:`uv`."""
        u, v = self.uv()
        d = self.d0 + u.reshape(-1, 1) * self.e1 + v.reshape(-1, 1) * self.e2
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def to_uv(self, vectors: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Chart coordinates of (N, 3) vectors from the centre (NaN behind the chart's hemisphere)."""
        along = vectors @ self.d0
        safe = np.where(along > 1e-9, along, np.nan)
        return (vectors @ self.e1) / safe, (vectors @ self.e2) / safe

    def solid_angle(self) -> NDArray[np.float64]:
        """(n, n) solid angle of each grid cell (sr): ``du dv / (1 + u^2 + v^2)^(3/2)``."""
        u, v = self.uv()
        return self.step ** 2 / (1 + u ** 2 + v ** 2) ** 1.5

    def sample(self, grid_values: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64],
               order: int = 1, cval: float = np.nan) -> NDArray[np.float64]:
        """Interpolate an (n, n) map at chart coordinates."""
        iu = (u + self.half_width) / self.step
        iv = (v + self.half_width) / self.step
        coords = np.vstack([np.nan_to_num(iv, nan=-10.0), np.nan_to_num(iu, nan=-10.0)])
        out = ndimage.map_coordinates(grid_values, coords, order=order, mode="constant", cval=cval, prefilter=False)
        return np.where(np.isfinite(u) & np.isfinite(v), out, cval)
