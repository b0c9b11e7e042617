"""The skin an orthosis is fitted to: from a CT (the skin preset) or from a 3-D scanner's surface mesh.

From a CT, the body is the tissue denser than the skin preset's range (above -177 HU), with thin bridges to a
head holder, a cushion or a table cut by a small opening, the largest body kept and its cavities filled.  The
skin surface is then the iso-surface of the scan's own values at -500 HU (see below),
in a band of two voxels around that body: the partial-volume values place it to a fraction of a voxel, where a
voxel mask's surface would be off by up to half a voxel (0.4 mm on a 0.8 mm grid) and could never give an
inner gap to +-0.1 mm.  The level is half way from air (-1000 HU) to water (0 HU), where the partial-volume
ramp of an air/skin edge crosses half its height; it lies within the preset's range.  A cushion the head rests on (foam, about -600 HU, inside the skin range) stays outside:
its values are below the iso-level.

From a mesh, the surface must be closed.  Where a scanner left it open (holes), the holes are filled with
:func:`medprint.mesh.make_printable` only when every hole lies outside the part's region -- the filled surface
is then never used -- and the design is refused, saying where the hole is, when one lies inside it: filling
it would guess the skin the orthosis rests on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cc3d
import edt
import igl
import numpy as np
from numpy.typing import NDArray

from ..errors import InputError, MeshError
from ..mesh import _vtk, make_printable, split_bodies
from ..mesh.model import Mesh
from ..mesh.quality import assess_mesh
from ..segment.checks import MAX_RADIUS_MM
from ..segment.presets import get_preset
from ..segment.threshold import check_preset_applies
from ..segment.voxels import EDT_THREADS
from ..volume import Volume

log = logging.getLogger("medprint")

#: Radius (mm) of the opening that cuts thin bridges between the body and a holder, cushion fabric or table.
BRIDGE_OPENING_MM = 2.5
#: Radius (mm) of the ball that closes openings from outside: narrower openings (nostrils) are closed.
CLOSING_MM = 5.0
#: Farther than this (mm) from the scanner's surface, a point of the repaired surface is made up.
_SAME_SURFACE_MM = 0.01
#: Width of the band (voxels) around the body where the scan's own values place the skin.
_BAND_VOXELS = 2.0
_TISSUE_HU = 0.0
#: The skin's level: half way between air (-1000 HU) and water (0 HU), the half-maximum edge of an air/soft-tissue
#: boundary (skin is 0..+50 HU); it lies inside the skin preset's range.
SKIN_LEVEL_HU = -500.0
_AIR_HU = -1000.0

assert BRIDGE_OPENING_MM < MAX_RADIUS_MM


@dataclass(frozen=True)
class Skin:
    """A closed, outward-facing skin surface and what was done to get it.

    Attributes
    ----------
    mesh : Mesh
        LPS mm.
    steps : tuple of str
        What was done, for the report's choices.
    artificial : ndarray of float64, shape (N, 3)
        Points of the surface that are not skin: where the scan's edge cut the body, or where a hole of an open
        mesh was filled.  The orthosis region must stay clear of them.
    artificial_kind : str
        What those points are, for the error message ("the scan's edge", "a hole in the mesh").
    """

    mesh: Mesh
    steps: tuple[str, ...]
    artificial: NDArray[np.float64]
    artificial_kind: str


def skin_from_volume(volume: Volume) -> Skin:
    """The skin surface of the largest body of a CT, cavities filled (see the module notes)."""
    preset = get_preset("skin")
    if not volume.is_hounsfield:
        raise InputError(f"INPUT: the skin is found on a CT by its Hounsfield units, but this scan is {volume.modality}; "
                         "give a surface mesh of the limb (STL/OBJ/PLY) instead")
    check_preset_applies(volume, preset)
    values = volume.array
    spacing_zyx = tuple(float(s) for s in volume.geometry.spacing[::-1])
    tissue = values > preset.high
    if not tissue.any():
        low, high = volume.value_range()
        raise InputError(f"INPUT: no tissue above {preset.high:g} HU in the scan (values {low:g}..{high:g}): "
                         "is it a CT of the limb? give the scan or a surface mesh")
    body, steps = _largest_body(tissue, spacing_zyx)
    iso = SKIN_LEVEL_HU
    mesh, border = _iso_surface(values, body, spacing_zyx, volume, iso)
    steps.append(f"skin surface: the {iso:g} HU iso-surface (half way from air to water, within the skin preset's "
                 f"{preset.low:g}..{preset.high:g} HU) of the scan's values in a {_BAND_VOXELS:g}-voxel band around "
                 "the body")
    return Skin(mesh=mesh, steps=tuple(steps), artificial=border, artificial_kind="the scan's edge (the body is cut "
                "there, a flat face that is not skin)")


def skin_from_mesh(mesh: Mesh) -> Skin:
    """A scanner's surface, checked closed; holes filled only where they cannot matter (see the module notes)."""
    quality = assess_mesh(mesh)
    steps: list[str] = []
    artificial = np.empty((0, 3))
    if quality.is_printable:
        repaired = mesh
    else:
        boundary = _boundary_points(mesh)
        try:
            result = make_printable(mesh)
        except (MeshError, RuntimeError, ValueError) as error:
            raise InputError(f"INPUT: the surface mesh is not closed and cannot be closed ({error}); "
                             "export a closed (watertight) scan of the limb") from None
        repaired = result.mesh
        # What the repair made up: every point of the closed surface that is not on the scanner's surface (the
        # fill, and wherever the rebuild moved the surface), and the rims of the holes.
        squared, _, _ = igl.point_mesh_squared_distance(repaired.vertices, mesh.vertices, mesh.faces)
        artificial = np.vstack([boundary, repaired.vertices[np.sqrt(squared) > _SAME_SURFACE_MM]])
        steps.extend(f"input mesh: {action}" for action in result.actions)
    bodies = split_bodies(repaired)
    if len(bodies) > 1:
        largest = max(bodies, key=lambda body: abs(body.volume_mm3()))
        steps.append(f"input mesh: kept the largest of {len(bodies)} bodies")
        repaired = largest
    if repaired.volume_mm3() <= 0:
        raise InputError("INPUT: the surface mesh encloses no volume; export a closed scan of the limb")
    return Skin(mesh=repaired.with_name("skin"), steps=tuple(steps), artificial=artificial,
                artificial_kind="a hole in the input mesh (filled there, a guessed surface)")


def _boundary_points(mesh: Mesh) -> NDArray[np.float64]:
    """Vertices on edges used by one face only (the rims of the mesh's holes)."""
    faces = mesh.faces
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    rim = np.unique(unique[counts == 1])
    return mesh.vertices[rim]


def _largest_body(tissue: NDArray[np.bool_], spacing_zyx: tuple[float, ...]) -> tuple[NDArray[np.bool_], list[str]]:
    """Tissue minus thin bridges, largest body, back to its full extent, cavities filled."""
    inside_depth = edt.edt(tissue, anisotropy=spacing_zyx, black_border=False, parallel=EDT_THREADS)
    opened_core = inside_depth > BRIDGE_OPENING_MM
    if not opened_core.any():
        raise InputError(f"INPUT: the body in the scan is nowhere thicker than {2 * BRIDGE_OPENING_MM:g} mm; "
                         "is it the right scan?")
    labels, count = cc3d.connected_components(opened_core, connectivity=6, return_N=True)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    core = labels == int(np.argmax(sizes))
    # Back to the tissue within reach of the core (the opening's radius and a voxel): the body's own surface
    # returns, a bridge to a holder is cut where it is thinner than the opening.
    reach = edt.edt(~core, anisotropy=spacing_zyx, black_border=False, parallel=EDT_THREADS)
    body = tissue & (reach <= BRIDGE_OPENING_MM + max(spacing_zyx))
    labels, count_after = cc3d.connected_components(body, connectivity=6, return_N=True)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    filled = _close_from_outside(body, spacing_zyx)
    steps = [f"body: tissue above the skin range, bridges thinner than {2 * BRIDGE_OPENING_MM:g} mm cut, "
             f"the largest of {count} bodies kept (holder, cushion and table dropped), cavities and openings "
             f"narrower than {2 * CLOSING_MM:g} mm (nostrils, sinuses, ear folds) closed"]
    log.info(steps[0])
    return filled, steps


def _close_from_outside(body: NDArray[np.bool_], spacing_zyx: tuple[float, ...]) -> NDArray[np.bool_]:
    """Everything a ball of radius :data:`CLOSING_MM` rolling in from outside cannot reach.

    Fills enclosed cavities and air reached only through openings narrower than the ball (nostrils to the
    sinuses, the airway where the scan cuts the neck): a shell around the skin would otherwise line them too.
    """
    pad = int(np.ceil(CLOSING_MM / min(spacing_zyx))) + 2
    air = np.pad(~body, pad, constant_values=True)
    clearance = edt.edt(air, anisotropy=spacing_zyx, black_border=False, parallel=EDT_THREADS)
    centres = clearance > CLOSING_MM
    labels = cc3d.connected_components(centres, connectivity=6)
    outside_centres = labels == labels[0, 0, 0]
    swept = edt.edt(~outside_centres, anisotropy=spacing_zyx, black_border=False, parallel=EDT_THREADS) <= CLOSING_MM
    inner = tuple(slice(pad, -pad) for _ in range(3))
    return np.asarray(~swept[inner])


def _iso_surface(values: NDArray[np.generic], body: NDArray[np.bool_], spacing_zyx: tuple[float, ...],
                 volume: Volume, iso: float) -> tuple[Mesh, NDArray[np.float64]]:
    """The ``iso`` HU surface of the scan's values near ``body`` (one closed surface) and its points on the scan's
    edge (where the body is cut)."""
    band = _BAND_VOXELS * max(spacing_zyx)
    index = np.argwhere(body)
    pad = int(np.ceil(band / min(spacing_zyx))) + 1
    low = np.maximum(index.min(axis=0) - pad, 0)
    high = np.minimum(index.max(axis=0) + pad + 1, body.shape)
    window = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    body_w = body[window]
    field = values[window].astype(np.float32)
    depth = edt.edt(body_w, anisotropy=spacing_zyx, black_border=False, parallel=EDT_THREADS)
    away = edt.edt(~body_w, anisotropy=spacing_zyx, black_border=False, parallel=EDT_THREADS)
    # Filled cavities and the deep inside are tissue; everything beyond the band (a holder, a cushion) is air.
    field[body_w & ((depth > band) | (field <= iso))] = _TISSUE_HU
    field[~body_w & (away > band)] = _AIR_HU
    padded = np.ascontiguousarray(np.pad(field, 1, constant_values=_AIR_HU))
    index_vertices, faces = _vtk.flying_edges(padded, float(iso))
    ijk = index_vertices - 1.0 + low[::-1]
    shape_xyz = np.array(values.shape[::-1], dtype=float)
    on_edge = ((ijk < 0.0) | (ijk > shape_xyz - 1.0)).any(axis=1)
    vertices = volume.geometry.index_to_lps(ijk)
    if volume.geometry.is_left_handed:
        faces = faces[:, ::-1].copy()
    mesh = Mesh(vertices=vertices, faces=faces, name="skin")
    bodies = split_bodies(mesh)
    if len(bodies) > 1:
        mesh = max(bodies, key=lambda body_mesh: abs(body_mesh.volume_mm3())).with_name("skin")
    repaired = make_printable(mesh).mesh.with_name("skin")
    return repaired, vertices[on_edge]
