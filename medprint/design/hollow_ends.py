"""Opening a hollow vessel model: where its ends are, and cutting them off square to the centreline.

Each opening is a plane through a point, with the normal pointing at the part to remove.  The solid (lumen
and wall) is split along the plane's section of the vessel -- the one piece of the plane's slab that holds
the point -- and the pieces beyond it are removed, up to the plane itself (a max with the plane's signed
distance there), so the cut face is exactly planar.  The largest piece is the model.  A cut that leaves the
largest piece on both sides (a ring of vessel) does not cut an end off and is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cc3d
import edt
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import DesignError
from ..mesh.model import Mesh
from ..segment.voxels import EDT_THREADS
from ..volume import Mask
from .fields import DistanceField, Grid
from .hollow_centreline import (
    CAP_AREA_FRACTION,
    Centreline,
    EndFace,
    SurfacePatches,
    find_end_face,
    surface_axis,
)

#: A cut face spans the lumen's section: at least this share of the widest section within two radii behind it
#: (a vessel cut across keeps its section up to the cut; a dome's flat top is a small part of the section behind).
SPAN_FRACTION = 0.6
#: A --cut point may lie this far outside the lumen (a click on the wall), in voxels of the mask.
CUT_TOLERANCE_VOXELS = 1.0


@dataclass
class Opening:
    """One place the vessel is opened."""

    kind: str                          # "scan border", "cut face", "cut"
    point: NDArray[np.float64]
    outward: NDArray[np.float64]       # from the part kept towards the part removed (fixed once split)
    given: NDArray[np.float64] | None = None
    facts: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# where to open
# --------------------------------------------------------------------------------------------------------------


def auto_openings(lumen: Mask, touches: NDArray[np.bool_], centreline: Centreline,
                  surface: Mesh, choices: list[str],
                  closed: list[tuple[NDArray[np.float64], float, str]]) -> list[Opening]:
    """Openings where the segmentation stops; ``closed`` collects the rounded ends left closed (dome, reach, note)."""
    patches = SurfacePatches.of(surface)
    margin = max(lumen.geometry.spacing)
    on_border = _border_triangles(surface, lumen, touches)
    openings: list[Opening] = []
    voxels_lps = lumen.geometry.index_to_lps(np.argwhere(lumen.array)[:, ::-1].astype(float))
    voxel_mm3 = float(np.prod(lumen.geometry.spacing))
    axes = np.asarray(lumen.geometry.direction, dtype=float).reshape(3, 3) * np.asarray(lumen.geometry.spacing)
    for end in centreline.end_points:
        face = find_end_face(centreline, int(end), patches, margin_mm=margin, border=on_border, voxel_axes=axes)
        at_border = _face_at_border(face, patches.centres[on_border])
        where = fmt(face.point_lps)
        widest, beyond = _sections_about(voxels_lps, voxel_mm3, face, margin) if face.flat and not at_border \
            else (0.0, 0.0)
        if face.flat and not at_border and (face.area_mm2 < SPAN_FRACTION * widest
                                            or beyond > 0.5 * widest * face.radius_mm):
            # a flat patch on a rounded end (the last slice of a dome, a thick slice's step) or on its side: it
            # does not span the lumen's section behind it, or the lumen goes on past it, as it does not at a cut
            closed.append((face.point_lps + face.radius_mm * face.outward, 2 * face.radius_mm,
                           f"the lumen's end near {where} is rounded, not cut (its flat patch, {face.area_mm2:.0f} "
                           f"mm2, spans under {SPAN_FRACTION:.0%} of the lumen's widest section behind it, "
                           f"{widest:.0f} mm2, or the lumen goes on past it: the slices' staircase on a dome): "
                           "left closed; give --cut X,Y,Z to open it"))
            continue
        if face.flat or at_border:
            kind = "scan border" if at_border else "cut face"
            twin = next((o for o in openings if _same_face(o, face)), None)
            if twin is not None:  # a second skeleton end (a bulge's spur) that found the same face
                if face.area_mm2 <= twin.facts["face_area_mm2"]:
                    continue
                openings.remove(twin)
            openings.append(Opening(kind, face.point_lps, face.outward, facts={
                "face_area_mm2": round(face.area_mm2, 1), "face_coherence": round(face.coherence, 3),
                "radius_mm": round(face.radius_mm, 2)}))
        else:
            # said later unless a --cut near it (within two radii of the dome) takes the end away
            closed.append((face.point_lps + face.radius_mm * face.outward, 2 * face.radius_mm,
                           f"the lumen's end near {where} is rounded, not cut (its flattest part, "
                           f"{face.area_mm2:.0f} mm2, is under {CAP_AREA_FRACTION:.0%} of the vessel's section "
                           f"there, {np.pi * face.radius_mm ** 2:.0f} mm2): left closed; give --cut X,Y,Z to "
                           "open it"))
    if touches.any() and not any(o.kind == "scan border" for o in openings):
        choices.append("the lumen touches the scan's border without ending there: its wall is closed (flat) at "
                       "the border")
    return openings


def _sections_about(voxels_lps: NDArray[np.float64], voxel_mm3: float, face: EndFace,
                    slab_mm: float) -> tuple[float, float]:
    """The lumen's largest section (mm2, from its voxels) square to ``face.outward`` up to two radii behind the
    face, and the lumen's volume (mm3) beyond it (a slab past the face's plane), both within two radii of its axis.

    Sections are counted in slabs ``slab_mm`` thick (the coarsest voxel size, so no slab falls between slices).
    """
    r = max(face.radius_mm, slab_mm)
    rel = voxels_lps - face.point_lps
    t = rel @ face.outward
    radial = np.linalg.norm(rel - np.outer(t, face.outward), axis=1)
    near = radial < 2 * r
    beyond = float(np.count_nonzero(near & (t > 1.5 * slab_mm))) * voxel_mm3
    t = t[near & (t < -0.5 * slab_mm) & (t > -(2 * r + 2 * slab_mm))]
    if t.size == 0:
        return 0.0, beyond
    counts = np.bincount(np.floor(-t / slab_mm).astype(np.int64))
    return float(counts.max()) * voxel_mm3 / slab_mm, beyond


def _same_face(opening: Opening, face: EndFace) -> bool:
    """Whether ``face`` opens the vessel where ``opening`` already does (near it, facing the same way)."""
    reach = max(float(opening.facts.get("radius_mm", 0.0)), face.radius_mm)
    apart = face.point_lps - opening.point
    along = abs(float(apart @ opening.outward))
    across = float(np.linalg.norm(apart - (apart @ opening.outward) * opening.outward))
    return bool(float(opening.outward @ face.outward) >= np.cos(np.radians(30.0))
                and along <= 0.5 * reach and across <= 2.0 * reach)


def _border_triangles(surface: Mesh, lumen: Mask, touches: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Which surface triangles lie on the caps the border of the scan put on the lumen."""
    if not touches.any():
        return np.zeros(surface.face_count, dtype=bool)
    ijk = lumen.geometry.lps_to_index(surface.vertices)
    zyx = ijk[:, ::-1]
    shape = np.asarray(lumen.array.shape)
    on = np.zeros(len(zyx), dtype=bool)
    for face, touching in enumerate(touches):
        if not touching:
            continue
        axis, last = divmod(face, 2)
        edge = shape[axis] - 1 + 0.5 if last else -0.5
        on |= np.abs(zyx[:, axis] - edge) < 0.3
    return np.all(on[surface.faces], axis=1)


def _face_at_border(face: EndFace, border_points: NDArray[np.float64]) -> bool:
    if len(border_points) == 0:
        return False
    rel = border_points - face.point_lps
    t = rel @ face.outward
    radial = np.linalg.norm(rel - np.outer(t, face.outward), axis=1)
    r = face.radius_mm
    return bool(np.any((t > -r) & (t < 4 * r) & (radial < 2 * r)))


def user_cuts(cuts_lps: Sequence[Sequence[float]], lumen: Mask, centreline: Centreline,
              surface: Mesh) -> list[Opening]:
    """An opening at each point given, square to the vessel there; a point off the vessel is refused."""
    if not cuts_lps:
        return []
    patches = SurfacePatches.of(surface)
    outside_mm = edt.edt(~lumen.array, anisotropy=tuple(reversed(lumen.geometry.spacing)), parallel=EDT_THREADS)
    tolerance = CUT_TOLERANCE_VOXELS * max(lumen.geometry.spacing)
    openings = []
    for point in cuts_lps:
        p = np.asarray(point, dtype=float)
        ijk = lumen.geometry.lps_to_index(p)
        zyx = np.round(ijk[::-1]).astype(int)
        inside_grid = bool(np.all((zyx >= 0) & (zyx < lumen.array.shape)))
        off = float(outside_mm[tuple(zyx)]) if inside_grid else math.inf
        if off > tolerance:
            nearest = centreline.points_lps[centreline.nearest(p)]
            far = "outside the vessel's box" if not inside_grid else f"{off:.1f} mm outside the lumen"
            raise DesignError(
                f"--cut {fmt(p)}: the point is off the vessel ({far}); give a point on the vessel, e.g. on its "
                f"centreline near {fmt(nearest)}"
            )
        s = centreline.nearest(p)
        radius = max(float(centreline.radius_mm[s]), 1e-3)
        guess = centreline.direction_at(s, max(2.0 * radius, 4.0 * max(lumen.geometry.spacing)))
        axis = surface_axis(patches, p, guess, 2 * radius)
        openings.append(Opening("cut", p, axis, given=p))
    return openings


# --------------------------------------------------------------------------------------------------------------
# opening: split the solid along each plane's section, keep the largest piece
# --------------------------------------------------------------------------------------------------------------


def plane_values(grid: Grid, point: NDArray[np.float64], normal: NDArray[np.float64]) -> NDArray[np.float32]:
    x, y, z = grid.axes_lps()
    values = ((z - point[2]) * normal[2])[:, None, None] + ((y - point[1]) * normal[1])[None, :, None] \
        + ((x - point[0]) * normal[0])[None, None, :]
    return values.astype(np.float32)


def _dilated(mask: NDArray[np.bool_], voxels: int) -> NDArray[np.bool_]:
    """``mask`` grown by ``voxels`` face steps (scipy's default cross), computed in its bounding box only."""
    out = np.zeros_like(mask)
    spans = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if len(present) == 0:
            return out
        spans.append(slice(max(int(present[0]) - voxels, 0), min(int(present[-1]) + voxels + 1, mask.shape[axis])))
    box = tuple(spans)
    out[box] = ndimage.binary_dilation(mask[box], iterations=voxels)
    return out


def open_ends(values: NDArray[np.float32], solid: NDArray[np.bool_], grid: Grid,
          openings: list[Opening]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Remove what lies beyond each opening's plane on the vessel's far side; the mask of the solid kept."""
    if not openings:
        return values, solid
    h = grid.spacing_mm
    sections = np.zeros(solid.shape, dtype=bool)
    section_of: list[NDArray[np.bool_]] = []
    signed: list[NDArray[np.float32]] = []
    for opening in openings:
        s = plane_values(grid, opening.point, opening.outward)
        slab = solid & (np.abs(s) <= h)
        labels = cc3d.connected_components(slab, connectivity=26)
        centre = tuple(np.clip(np.round(grid.geometry.lps_to_index(opening.point)[::-1]).astype(int), 0,
                               np.asarray(solid.shape) - 1))
        label = int(labels[centre])
        if label == 0:  # the centre point is in no solid (a bend's inner side): take the section nearest to it
            found = np.argwhere(labels > 0)
            if len(found) == 0:
                raise DesignError(f"the opening at {fmt(opening.point)} crosses no wall; give a point on the vessel")
            label = int(labels[tuple(found[np.argmin(np.linalg.norm(found - centre, axis=1))])])
        section = labels == label
        section_of.append(section)
        signed.append(s)
        sections |= section
    pieces, count = cc3d.connected_components(solid & ~sections, connectivity=6, return_N=True)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    sizes[0] = 0
    main = int(np.argmax(sizes))
    result = values.copy()
    removed = np.zeros(solid.shape, dtype=bool)
    for opening, section, s in zip(openings, section_of, signed):
        around = _dilated(section, 1)
        ahead = set(np.unique(pieces[around & (s > 0)])) - {0}
        behind = set(np.unique(pieces[around & (s < 0)])) - {0}
        if main in ahead and main in behind:
            if opening.kind == "cut":
                raise DesignError(
                    f"--cut {fmt(opening.point)} does not cut an end off: the vessel goes on on both sides of it "
                    "(it joins up again); cut nearer an end"
                )
            # an end found for the user that is no end after all (the lumen joins up beyond it): left alone
            opening.facts["skipped"] = "the vessel goes on on both sides of its plane"
            continue
        if main in ahead:  # the part kept is on the plane's positive side: remove the other
            opening.outward = -opening.outward
            s = -s
            ahead, behind = behind, ahead
        if main not in behind:
            opening.facts["note"] = "in a part already removed by another opening"
        gone = np.isin(pieces, sorted(ahead)) | section
        gone = _dilated(gone, 2)
        removed |= gone
        result[gone] = np.maximum(result[gone], s[gone])
        opening.facts["removed_mm3"] = round(float(np.count_nonzero(gone & solid & (s > 0))) * h**3, 1)
    remaining = [o for o in openings if "skipped" not in o.facts]
    if len(remaining) < len(openings):
        # a skipped opening's section must not split the solid: do it again without it
        return open_ends(values, solid, grid, remaining)
    # Pieces reached from no opening's kept side (beyond two openings) go whole.
    stray = (pieces > 0) & (pieces != main) & ~removed
    if stray.any():
        stray = _dilated(stray, 2) & ~_dilated(pieces == main, 2)
        result[stray] = np.maximum(result[stray], np.float32(h))
    kept = (pieces == main) | (sections & ~removed)
    return result, kept


def describe_opening(opening: Opening, distance: DistanceField, reach_mm: float) -> dict[str, Any]:
    """Where the opening is (the lumen's centre in its plane) and the inner diameter there (area-equivalent).

    The lumen's distance is sampled on a 0.1 mm grid in the plane, half a grid step inside the part kept;
    the section is the lumen's region there that holds the opening's point (or is nearest to it).
    """
    n = opening.outward / np.linalg.norm(opening.outward)
    u = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    cell = 0.1
    steps = np.arange(-reach_mm, reach_mm + cell / 2, cell)
    a, b = np.meshgrid(steps, steps, indexing="ij")
    origin = opening.point - 0.5 * distance.geometry.spacing[0] * n
    points = origin + a.reshape(-1, 1) * u + b.reshape(-1, 1) * v
    inside = (distance.sample(points) < 0).reshape(a.shape)
    labels, count = ndimage.label(inside)
    area = 0.0
    centre: NDArray[np.float64]
    if count:
        middle = len(steps) // 2
        label = int(labels[middle, middle])
        if label == 0:
            found = np.argwhere(labels > 0)
            label = int(labels[tuple(found[np.argmin(np.linalg.norm(found - middle, axis=1))])])
        region = labels == label
        area = float(np.count_nonzero(region)) * cell**2
        # the lumen's centre in the cut's plane stands for where the opening is
        centre = opening.point + float(a[region].mean()) * u + float(b[region].mean()) * v
    else:
        centre = opening.point
    facts = {
        "kind": opening.kind,
        "point_lps_mm": [round(float(c), 2) for c in centre],
        "outward": [round(float(v), 4) for v in opening.outward],
        "inner_diameter_mm": round(2 * math.sqrt(area / math.pi), 2),
        **opening.facts,
    }
    if opening.given is not None:
        facts["given_lps_mm"] = [round(float(v), 2) for v in opening.given]
    return facts


def fmt(point: NDArray[np.float64] | Sequence[float]) -> str:
    """A point as X,Y,Z with one decimal (mm), as the options take it."""
    return ",".join(f"{float(v):.1f}" for v in point)
