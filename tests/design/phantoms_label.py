"""Parts to label and independent ways to look at a label: a box, an ellipsoid, a marching-cubes skull cap,
and the relief as an image in the label's own plane.

The relief image is made from the finished meshes alone: rays along the label's normal, cast on a pixel grid in
the plane spanned by the reported up direction and *right = up x normal* computed here (not taken from the code
under test), so a label written mirrored, shifted or rotated does not match its glyphs.
"""

from __future__ import annotations

import math

import manifold3d
import numpy as np
import shapely
from numpy.typing import NDArray
from phantoms import direction_for, rotation_matrix

from medprint.geometry import Geometry
from medprint.mesh import extract_surface
from medprint.mesh.model import Mesh
from medprint.volume import Mask


def _to_mesh(solid: manifold3d.Manifold, name: str = "part") -> Mesh:
    out = solid.to_mesh64()
    return Mesh(np.asarray(out.vert_properties, dtype=np.float64)[:, :3],
                np.asarray(out.tri_verts, dtype=np.int64).reshape(-1, 3), name=name)


def box_mesh(size_mm=(60.0, 40.0, 20.0), centre_lps=(12.3, -45.6, 78.9), rotation: NDArray | None = None) -> Mesh:
    """A box (12 triangles) of ``size_mm`` centred at ``centre_lps``, turned by ``rotation`` (3x3) if given."""
    mesh = _to_mesh(manifold3d.Manifold.cube(tuple(size_mm), center=True))
    vertices = mesh.vertices @ (np.eye(3) if rotation is None else np.asarray(rotation)).T
    return Mesh(vertices + np.asarray(centre_lps), mesh.faces, name="box")


def oblique() -> NDArray[np.float64]:
    """A rotation no face of a box stays axis-aligned under (20 degrees about (1, 2, 3))."""
    return rotation_matrix([1.0, 2.0, 3.0], 20.0)


def ellipsoid_mesh(semi_axes_mm=(60.0, 45.0, 30.0), centre_lps=(12.3, -45.6, 78.9), segments: int = 256) -> Mesh:
    """A smooth ellipsoid: a fine sphere scaled along L, P, S."""
    solid = manifold3d.Manifold.sphere(1.0, segments).scale(tuple(semi_axes_mm)).translate(tuple(centre_lps))
    return _to_mesh(solid, "ellipsoid")


def skull_cap_mesh(spacing=(1.0, 1.0, 1.5), outer_mm=(72.0, 88.0, 66.0), wall_mm: float = 6.0,
                   centre_lps=(5.0, -20.0, 40.0)) -> Mesh:
    """Marching cubes of a skull-like cap: an ellipsoidal shell ``wall_mm`` thick, cut flat below its equator,
    sampled on an oblique, anisotropic grid (a staircase surface like a real CT's)."""
    direction = direction_for("oblique")
    spacing_arr = np.asarray(spacing, dtype=float)
    half = np.asarray(outer_mm, dtype=float) + 3.0
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    corner_ijk = corners @ direction / spacing_arr
    low = np.floor(corner_ijk.min(axis=0))
    shape = (np.ceil(corner_ijk.max(axis=0)) - low + 1).astype(int)
    origin = np.asarray(centre_lps) + direction @ (spacing_arr * low)
    geometry = Geometry(spacing=tuple(spacing), origin=tuple(origin), direction=tuple(direction.ravel()))
    kk, jj, ii = np.indices(tuple(shape[::-1]), dtype=np.float32)
    lps = geometry.index_to_lps(np.stack([ii, jj, kk], axis=-1)) - np.asarray(centre_lps)
    outer = np.asarray(outer_mm)
    inner = outer - wall_mm
    inside_outer = np.sum((lps / outer) ** 2, axis=-1) < 1.0
    inside_inner = np.sum((lps / inner) ** 2, axis=-1) < 1.0
    cap = inside_outer & ~inside_inner & (lps[..., 2] > -15.0)
    return extract_surface(Mask(array=cap, geometry=geometry, label="skull")).with_name("skull")


def label_frame(measurements: dict) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """(centre, right, up, normal) from a label's report; right computed here as up x normal."""
    where = measurements["placement"]
    centre = np.asarray(where["centre_lps"], dtype=float)
    normal = np.asarray(where["normal_lps"], dtype=float)
    normal /= np.linalg.norm(normal)
    up = np.asarray(where["up_lps"], dtype=float)
    up -= (up @ normal) * normal
    up /= np.linalg.norm(up)
    right = np.cross(up, normal)
    return centre, right, up, normal


def _solid(mesh: Mesh) -> manifold3d.Manifold:
    return manifold3d.Manifold(manifold3d.Mesh64(
        vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C"),
        tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C")))


def height_image(mesh: Mesh, centre, right, up, normal, extent_mm, pixel_mm: float = 0.1,
                 reach_mm: float = 8.0) -> tuple[NDArray, NDArray, NDArray]:
    """Height (mm, along ``normal``) of the outermost surface facing the label, on a pixel grid of the plane.

    Returns ``(xs, ys, heights[j, i])``; NaN where no surface was hit within ``reach_mm`` of the plane.
    """
    solid = _solid(mesh)
    x0, y0, x1, y1 = extent_mm
    xs = np.arange(x0, x1 + pixel_mm / 2, pixel_mm)
    ys = np.arange(y0, y1 + pixel_mm / 2, pixel_mm)
    gx, gy = np.meshgrid(xs, ys)
    starts = centre + gx.reshape(-1, 1) * right + gy.reshape(-1, 1) * up + reach_mm * normal
    heights = np.full(len(starts), np.nan)
    for index, start in enumerate(starts):
        hits = solid.ray_cast(start, start - 2 * reach_mm * normal)
        if hits:
            heights[index] = reach_mm * (1 - 2 * hits[0].distance)
    return xs, ys, heights.reshape(gy.shape)


def relief_and_glyph_masks(before: Mesh, after: Mesh, measurements: dict, glyphs: shapely.Geometry,
                           relief_mm: float, pixel_mm: float = 0.1) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Pixels where ``after`` stands out from ``before`` by more than half the relief (up for an emboss,
    down for an engraving), pixels inside ``glyphs``, the height image of ``after`` (for a picture) and, over
    the glyphs' bounding box only, that of ``before`` (the surface the label was put on)."""
    centre, right, up, normal = label_frame(measurements)
    x0, y0, x1, y1 = glyphs.bounds
    extent = (x0 - 2, y0 - 2, x1 + 2, y1 + 2)
    xs, ys, h_after = height_image(after, centre, right, up, normal, extent, pixel_mm)
    _, _, h_before = height_image(before, centre, right, up, normal, extent, pixel_mm)
    difference = np.nan_to_num(h_after - h_before)
    sign = 1.0 if measurements["mode"] == "emboss" else -1.0
    relief = sign * difference > relief_mm / 2
    gx, gy = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(glyphs, gx, gy)
    over_glyphs = (gx >= x0) & (gx <= x1) & (gy >= y0) & (gy <= y1)
    return relief, inside, h_after, np.where(over_glyphs, h_before, 0.0)


def iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else math.nan


def render_png(heights: NDArray, path: str, title: str) -> None:
    """A hill-shaded picture of the surface seen along the label's normal (matplotlib, Agg, offscreen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LightSource

    surface = np.where(np.isfinite(heights), heights, np.nanmin(heights))
    shaded = LightSource(azdeg=315, altdeg=35).shade(surface, cmap=plt.get_cmap("bone"), vert_exag=3,
                                                     blend_mode="soft")
    figure, axis = plt.subplots(figsize=(10, 2.2 + 10 * surface.shape[0] / surface.shape[1]))
    axis.imshow(shaded, origin="lower")
    axis.set_title(title)
    axis.set_axis_off()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
