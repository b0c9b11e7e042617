"""The leak guard: cut the bridges a grown region leaks through, or stop with what to change.

Tissue of the same intensity often touches the target (a tumour on the chest
wall, the aorta on the heart).  The region is recomputed after openings of
increasing radius (each cuts bridges thinner than twice the radius); the
largest radius whose predecessor *explodes* (is more than ``leak_ratio`` times
its region) marks the last leak cut, and the opened region gets its own
boundary back by a bounded reconstruction inside the threshold mask.  A
region still past the volume limit, or reaching the scan border, gives way to
the smallest larger opening that stops it (a leak too small to "explode" the
region can still run out of the scan); if none does, it is an error.

What a leak runs into spreads out (vessels, a chest wall, parenchyma of the
same brightness), is far larger than the part, or hangs on a bridge much
thinner than either side.  An opening that cuts off a compact lump no more
than a few times the part's size, through a waist at least half as thick as
the thinner piece, has split the part itself (a lobulated tumour): that cut is
not taken, and a warning says which ``--open`` would take it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import edt
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ..errors import SegmentationError
from ..geometry import Geometry
from .voxels import (
    EDT_THREADS,
    bounding_box,
    seeded_components,
    touches_border,
    zyx_spacing,
)
from .window import WindowEdges

if TYPE_CHECKING:
    from .region import RegionGrowingSettings

log = logging.getLogger("medprint")


#: Opening radii (mm) tried by the automatic leak guard, up to ``max_radius_mm``.
OPENING_RADII_MM = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0)

#: A cut-off piece is the part's own lobe when it fills at least this much of
#: its convex hull (a ball 1, a cube 1; a leak into vessels or a wall 0.1-0.3)...
LOBE_MIN_SOLIDITY = 0.5
#: ...is no more than this many times the part left around the seeds...
LOBE_MAX_RATIO = 4.0
#: ...and the opening that cut it off is at least this fraction of the thinner
#: piece's inscribed radius (two balls on a bridge: 0.1-0.2; a lobulated tumour's waist: 0.6).
LOBE_MIN_WAIST = 0.5


class RegionLeakError(SegmentationError):
    """The grown region passed the volume limit or reached the scan border."""


def grow_region(
    values: NDArray[np.floating],
    geometry: Geometry,
    seeds_zyx: NDArray[np.intp],
    low: float,
    high: float,
    *,
    settings: RegionGrowingSettings,
    max_volume_mm3: float,
    edges: WindowEdges | None = None,
) -> tuple[NDArray[np.bool_], float]:
    """Region of ``[low, high]`` connected to the seeds, with the leak guard.

    ``edges`` says which faces of ``values`` are the scan's border when
    ``values`` is a window of the scan (default: all of them); a region that
    the window may cut raises ``WindowTooSmall`` before any leak check.

    Returns
    -------
    region : ndarray of bool, shape (z, y, x)
    opening_mm : float
        The opening radius used (0 when none was needed).
    """
    edges = edges or WindowEdges()
    in_range = (values >= low) & (values <= high)
    region = seeded_components(in_range, seeds_zyx)
    if not region.any():
        raise SegmentationError(
            f"no seed lies in the range {low:.0f}..{high:.0f}; move --seed inside the part or widen --range"
        )
    if settings.open_mm is not None:
        radius = float(settings.open_mm)
        if radius > 0:
            region = _opened_region(in_range, region, seeds_zyx, geometry, radius)
            if not region.any():
                raise SegmentationError(
                    f"--open {radius:g} mm removes the seeded part entirely (it is thinner than {2 * radius:g} mm "
                    "at the seeds); use a smaller --open or --max-radius"
                )
        edges.require_inside(region)
        _check_leak(region, geometry, max_volume_mm3, settings, low, high, radius, edges.scan_borders)
        return region, radius

    # Automatic: walk the opening radii up while the region keeps shrinking a
    # lot (a leak being cut), then take the smallest radius after the last cut.
    volumes = [int(np.count_nonzero(region))]
    regions = [region]
    radii = [0.0]
    min_step = min(geometry.spacing)
    box = bounding_box(region, margin=0)
    sub_range = in_range[box]
    sub_seeds = seeds_zyx - np.array([s.start for s in box])
    sub_seed_region = region[box]
    spacing_zyx = zyx_spacing(geometry)
    padded = np.pad(sub_seed_region, 1)
    inside_depth = edt.edt(padded, anisotropy=spacing_zyx, black_border=True, parallel=EDT_THREADS)[1:-1, 1:-1, 1:-1]
    for radius in OPENING_RADII_MM:
        if radius > settings.max_radius_mm:
            break
        if radius < min_step:
            continue
        opened = _opened_sub(sub_range, sub_seed_region, inside_depth, sub_seeds, spacing_zyx, radius)
        count = int(np.count_nonzero(opened))
        if count == 0:
            break
        full = np.zeros_like(region)
        full[box] = opened
        volumes.append(count)
        regions.append(full)
        radii.append(radius)
    chosen = 0
    lobes: list[tuple[float, NDArray[np.bool_]]] = []
    # The largest radius whose predecessor "explodes" marks the last leak cut.
    for index in range(1, len(volumes)):
        if volumes[index - 1] <= settings.leak_ratio * volumes[index]:
            continue
        removed = regions[index - 1] & ~regions[index]
        if _is_own_lobe(removed, regions[index], radii[index], spacing_zyx):
            lobes.append((radii[index], removed))
            continue
        chosen = index
    region, radius = regions[chosen], radii[chosen]
    log.debug(
        "leak guard: region voxels by opening radius %s",
        ", ".join(f"{r:g} mm: {v}" for r, v in zip(radii, volumes)),
    )
    # The choice holds in a window when the regions it compares from the chosen
    # radius on are whole: a smaller radius's region, cut by the window, is
    # only larger outside it, so it still "explodes".
    for kept in regions[chosen:]:
        edges.require_inside(kept)
    try:
        _check_leak(region, geometry, max_volume_mm3, settings, low, high, radius, edges.scan_borders)
    except RegionLeakError:
        # A leak too small to "explode" the region can still reach the scan
        # border: then the smallest larger opening that stops it is the cut.
        for index in range(chosen + 1, len(regions)):
            try:
                _check_leak(regions[index], geometry, max_volume_mm3, settings, low, high, radii[index],
                            edges.scan_borders)
            except RegionLeakError:
                continue
            _warn_on_kept_lobes(regions[index], lobes, spacing_zyx)
            return regions[index], radii[index]
        raise
    _warn_on_kept_lobes(region, lobes, spacing_zyx)
    return region, radius


def _warn_on_kept_lobes(
    region: NDArray[np.bool_], lobes: list[tuple[float, NDArray[np.bool_]]], spacing_zyx: tuple[float, float, float]
) -> None:
    """Say which opening would split off a lobe the chosen region still holds (a later cut may have taken it)."""
    voxel_cm3 = float(np.prod(spacing_zyx)) / 1000.0
    for radius, lobe in lobes:
        lobe_voxels = int(np.count_nonzero(lobe))
        if np.count_nonzero(region & lobe) < 0.5 * lobe_voxels:
            continue
        log.warning(
            "seeded growing: an opening of %g mm would split off a compact lump of %.1f cm3 from the %.1f cm3 "
            "region; it is kept as part of it (a lobulated part); give --open %g to split it",
            radius, lobe_voxels * voxel_cm3, np.count_nonzero(region) * voxel_cm3, radius,
        )


def _is_own_lobe(
    removed: NDArray[np.bool_], kept: NDArray[np.bool_], radius_mm: float, spacing_zyx: tuple[float, float, float]
) -> bool:
    """Whether an opening of ``radius_mm`` split the part at a waist rather than cut a leak off it.

    A waist: what was cut off is compact, no more than a few times what is
    left, and the opening had to be at least half as thick as the thinner of
    the two pieces (a bridge is much thinner than what it joins).
    """
    if np.count_nonzero(removed) > LOBE_MAX_RATIO * np.count_nonzero(kept):
        return False
    thinner = min(_depth_mm(removed, spacing_zyx), _depth_mm(kept, spacing_zyx))
    if radius_mm < LOBE_MIN_WAIST * thinner:
        return False
    return solidity(removed, spacing_zyx) >= LOBE_MIN_SOLIDITY


def _depth_mm(part: NDArray[np.bool_], spacing_zyx: tuple[float, float, float]) -> float:
    """The radius of the largest ball inside ``part``."""
    box = bounding_box(part, margin=1)
    return float(edt.edt(part[box], anisotropy=spacing_zyx, black_border=True, parallel=EDT_THREADS).max())


def solidity(part: NDArray[np.bool_], spacing_zyx: tuple[float, float, float]) -> float:
    """Volume of ``part`` over the volume of the convex hull of its voxels (their corners, not centres).

    Not scikit-image's ``regionprops(...).solidity``: that hull is a voxel
    image (5-8 times slower here, measured on 60^3-100^3 sponges) and
    ignores anisotropic spacing.
    """
    if not part.any():
        return 0.0
    part = part[bounding_box(part, margin=1)]
    centres = np.argwhere(part & ~ndimage.binary_erosion(part))
    # The hull of the corners is the hull of the corners of the voxels on the
    # hull of the centres; the centres can lie in one plane, the corners never.
    try:
        centres = centres[ConvexHull(centres).vertices]
    except QhullError:
        pass
    signs = np.array(np.meshgrid([-0.5, 0.5], [-0.5, 0.5], [-0.5, 0.5], indexing="ij")).reshape(3, -1).T
    corners = (centres[:, None, :] + signs[None, :, :]).reshape(-1, 3) * np.asarray(spacing_zyx)
    return float(np.count_nonzero(part) * np.prod(spacing_zyx) / ConvexHull(corners).volume)


def _opened_region(
    in_range: NDArray[np.bool_],
    region: NDArray[np.bool_],
    seeds_zyx: NDArray[np.intp],
    geometry: Geometry,
    radius_mm: float,
) -> NDArray[np.bool_]:
    box = bounding_box(region, margin=0)
    spacing_zyx = zyx_spacing(geometry)
    sub_region = region[box]
    padded = np.pad(sub_region, 1)
    depth = edt.edt(padded, anisotropy=spacing_zyx, black_border=True, parallel=EDT_THREADS)[1:-1, 1:-1, 1:-1]
    opened = _opened_sub(in_range[box], sub_region, depth, seeds_zyx - np.array([s.start for s in box]), spacing_zyx, radius_mm)
    full = np.zeros_like(region)
    full[box] = opened
    return full


def _opened_sub(
    in_range: NDArray[np.bool_],
    region: NDArray[np.bool_],
    depth_mm: NDArray[np.floating],
    seeds_zyx: NDArray[np.intp],
    spacing_zyx: tuple[float, float, float],
    radius_mm: float,
) -> NDArray[np.bool_]:
    """Seeded part of the opened region, grown back to its own boundary.

    Erosion by ``radius_mm`` cuts every bridge thinner than twice the radius;
    the seeded cores are then dilated by twice the radius (the opening's own
    dilation plus the reconstruction) and clipped to the threshold region, so
    the part keeps its real boundary while a cut bridge stays cut beyond one
    radius from the part.
    """
    core = depth_mm > radius_mm
    # A seed on a thin spot (a vessel wall, the rim of a lesion) is carried by
    # the core nearest to it rather than lost.
    anchors = [_nearest_core_voxel(core, seed, spacing_zyx, 2.0 * radius_mm) for seed in seeds_zyx]
    found = [a for a in anchors if a is not None]
    cores = seeded_components(core, np.array(found, dtype=np.intp).reshape(-1, 3))
    if not cores.any():
        return cores
    # Only within twice the radius of the cores: the distance map of that box, not of the whole region.
    reach = [int(np.ceil(2.0 * radius_mm / s)) + 1 for s in spacing_zyx]
    near = tuple(slice(max(0, b.start - r), min(n, b.stop + r)) for b, r, n in zip(bounding_box(cores, 0), reach, cores.shape))
    distance = edt.edt(~cores[near], anisotropy=spacing_zyx, black_border=False, parallel=EDT_THREADS)
    grown_near = (distance <= 2.0 * radius_mm) & region[near] & in_range[near]
    offset = np.array([b.start for b in near])
    inside = np.all((seeds_zyx >= offset) & (seeds_zyx < offset + grown_near.shape), axis=1)
    kept = np.zeros_like(cores)
    kept[near] = seeded_components(grown_near, seeds_zyx[inside] - offset)
    return kept


def _nearest_core_voxel(
    core: NDArray[np.bool_], seed: NDArray[np.intp], spacing_zyx: tuple[float, float, float], reach_mm: float
) -> tuple[int, int, int] | None:
    """The core voxel nearest to ``seed`` within ``reach_mm`` (the seed itself if it is core)."""
    if core[tuple(seed)]:
        return tuple(int(v) for v in seed)  # type: ignore[return-value]
    reach = [int(np.ceil(reach_mm / s)) for s in spacing_zyx]
    window = tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, r, n in zip(seed, reach, core.shape))
    hits = np.argwhere(core[window])
    if len(hits) == 0:
        return None
    offsets = (hits + [w.start for w in window] - seed) * np.asarray(spacing_zyx)
    distances = np.linalg.norm(offsets, axis=1)
    best = int(np.argmin(distances))
    if distances[best] > reach_mm:
        return None
    return tuple(int(v) for v in hits[best] + [w.start for w in window])  # type: ignore[return-value]


def _check_leak(
    region: NDArray[np.bool_],
    geometry: Geometry,
    max_volume_mm3: float,
    settings: RegionGrowingSettings,
    low: float,
    high: float,
    radius: float,
    scan_borders: Sequence[tuple[bool, bool]],
) -> None:
    volume_mm3 = float(np.count_nonzero(region)) * geometry.voxel_volume_mm3
    remedy = "give a narrower --range, a larger --max-radius (or --open MM) to cut the bridge, or more seeds"
    if volume_mm3 > max_volume_mm3:
        raise RegionLeakError(
            f"region growing from the seeds leaked: {volume_mm3 / 1000:.0f} cm3 in range {low:.0f}..{high:.0f} "
            f"(opening {radius:g} mm) exceeds the limit of {max_volume_mm3 / 1000:.0f} cm3 (--max-volume); {remedy}"
        )
    if not settings.allow_border and touches_border(region, scan_borders):
        raise RegionLeakError(
            f"region growing from the seeds reached the border of the scan ({volume_mm3 / 1000:.1f} cm3 in range "
            f"{low:.0f}..{high:.0f}, opening {radius:g} mm): probably a leak; {remedy}; "
            "or --allow-border if the part really leaves the scan"
        )


#: Above this a CT voxel is no longer aerated lung.
AERATED_HU = -400.0


def lung_field_around(
    values: NDArray[np.floating], geometry: Geometry, seeds_zyx: NDArray[np.intp]
) -> tuple[NDArray[np.bool_], float] | None:
    """The lung field a lesion lies in, with the bite it makes into the lung filled, or None.

    Applies when the radial profile around the seeds steps down into aerated
    lung.  The aerated lung is closed (dilated, then eroded) with a ball a
    little larger than the lesion (1.5 times the profile's edge distance plus
    3 mm, 8..30 mm), which fills a lesion on the pleura as well as one inside
    the lung, but not the chest wall, whose surface is far flatter.

    Returns
    -------
    field : ndarray of bool
    close_mm : float
        The closing radius used.
    """
    from .intensity import radial_profile_edge

    edge = radial_profile_edge(values, geometry, seeds_zyx)
    if not (edge.around < AERATED_HU < edge.level):
        return None
    close_mm = float(np.clip(1.5 * edge.distance_mm + 3.0, 8.0, 30.0))
    spacing = zyx_spacing(geometry)
    lung = values < AERATED_HU
    near_lung = edt.edt(~lung, anisotropy=spacing, black_border=False, parallel=EDT_THREADS) <= close_mm
    field = edt.edt(near_lung, anisotropy=spacing, black_border=False, parallel=EDT_THREADS) > close_mm
    if not field[tuple(seeds_zyx.T)].all():
        return None
    return field, close_mm
