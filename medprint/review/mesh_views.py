"""The model rendered off-screen from several patient directions, each picture labelled A/P, L/R, S/I.

Rendering is matplotlib's Agg rasteriser (no display, no GPU, no OpenGL context that could abort the process on
a machine without EGL or OSMesa): a decimated copy of each mesh is projected orthographically, its triangles
facing the camera are shaded by a head light (Lambert) and painted far to near.  Anatomy (role ``"anatomy"``)
is drawn paler, and wherever it hides a part the part shows through it, half transparent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from ..errors import ParameterError
from ..mesh.model import Mesh
from ._canvas import Letters, draw_letters, label, letters_of, png_bytes
from .types import Picture, Shown

#: The views every report shows: from the front, from the patient's left, from above (and the others).
VIEWS = ("anterior", "left", "superior", "posterior", "right", "inferior")

#: Each view's image axes in LPS: the direction pointing to the image's right and the one pointing up.
#: Their cross product points at the camera: anterior looks from -y, left from +x, superior from +z.
VIEW_AXES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),  # patient R on the image left, S up
    "posterior": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),  # L on the left
    "left": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),  # camera at the patient's left: A on the image left
    "right": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),  # P on the left
    "superior": ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),  # from above, A at the top: R on the image right
    "inferior": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),  # from below, A at the top: R on the image left
}

#: Triangles drawn in all the meshes together; more adds time, not detail, at a few hundred pixels.
DISPLAY_FACES = 60_000
#: Meshes this small are never decimated (a small part keeps its shape).
KEEP_FACES = 4_000
ANATOMY_WHITEN = 0.55  # anatomy drawn this much closer to white than its colour
GHOST = 0.45  # a part hidden behind anatomy shows through at this opacity
AMBIENT = 0.25
LIGHT_UP, LIGHT_RIGHT = 0.5, 0.3
MARGIN_PX = 34
BACKGROUND = (0.13, 0.14, 0.16)

_LETTER_OF = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


@dataclass(frozen=True)
class _Soup:
    """What is painted: all meshes' triangles together with their colours (RGBA, 0..1)."""

    triangles: NDArray[np.float64]  # (F, 3, 3) LPS mm
    normals: NDArray[np.float64]  # (F, 3) unit: which triangles face the camera
    corner_normals: NDArray[np.float64]  # (F, 3, 3) unit vertex normals at each corner: smooth shading
    colours: NDArray[np.float64]  # (F, 4)


def view_letters(view: str) -> Letters:
    """The patient direction each image edge of ``view`` faces (left, right, top, bottom)."""
    right, up = (np.asarray(v) for v in VIEW_AXES[view])
    return letters_of(_letter(-right), _letter(right), _letter(up), _letter(-up))


def _letter(vector: NDArray[np.float64]) -> str:
    axis = int(np.argmax(np.abs(vector)))
    return _LETTER_OF[(axis, 1 if vector[axis] > 0 else -1)]


def mesh_pictures(shown: Sequence[Shown], *, views: Sequence[str] = ("anterior", "left", "superior", "right"),
                  size_px: int = 520, display_faces: int = DISPLAY_FACES) -> tuple[Picture, ...]:
    """One picture per view of every shown mesh in the patient frame (orthographic, same scale in all).

    Parameters
    ----------
    shown : sequence of Shown
        Meshes in LPS mm; parts in their colours, anatomy pale and half transparent.
    views : sequence of str
        Names from :data:`VIEWS`.
    size_px : int
        Width and height of each picture.
    display_faces : int
        Triangles drawn in all (meshes are decimated for display only; the caption says so).

    Returns
    -------
    tuple of Picture
        One per view, titled with the view's name.
    """
    _check(shown, views, size_px, display_faces)
    reduced, caption = _for_display(shown, display_faces)
    soup = _soup(reduced)
    low, high = soup.triangles.reshape(-1, 3).min(axis=0), soup.triangles.reshape(-1, 3).max(axis=0)
    centre = (low + high) / 2.0
    # One scale for every view: the box's longest side fits whichever way it is seen.
    mm_per_px = max(float(np.max(high - low)), 1e-6) / (size_px - 2 * MARGIN_PX)
    bar_mm = _scale_bar_mm(mm_per_px * size_px)
    caption = f"{caption}; same scale in every view (bar: {bar_mm:g} mm)"
    parts = _soup([(item, mesh) for item, mesh in reduced if item.role == "part"])
    ghost_parts = len(parts.triangles) and len(parts.triangles) < len(soup.triangles)
    pictures = []
    for view in views:
        pixels = _render(soup, view, centre, mm_per_px, size_px, (*BACKGROUND, 1.0))
        if ghost_parts:
            _show_hidden_parts(pixels, _render(parts, view, centre, mm_per_px, size_px, (0.0, 0.0, 0.0, 0.0)))
        image = Image.fromarray(pixels[..., :3])
        _annotate(image, view, bar_mm / mm_per_px, bar_mm)
        pictures.append(Picture(f"{view.capitalize()} view", png_bytes(image), caption, view_letters(view)))
    return tuple(pictures)


def _check(shown: Sequence[Shown], views: Sequence[str], size_px: int, display_faces: int) -> None:
    unknown = [view for view in views if view not in VIEW_AXES]
    if unknown:
        raise ParameterError(f"unknown view(s) {', '.join(map(repr, unknown))}; choose from {', '.join(VIEWS)}")
    if not views:
        raise ParameterError(f"no views asked for; choose from {', '.join(VIEWS)}")
    if size_px < 4 * MARGIN_PX:
        raise ParameterError(f"size_px must be at least {4 * MARGIN_PX}, got {size_px}")
    if display_faces < 100:
        raise ParameterError(f"display_faces must be at least 100, got {display_faces}")
    if not shown or all(item.mesh.is_empty for item in shown):
        raise ParameterError("nothing to show: every mesh given to mesh_pictures is empty")


def _for_display(shown: Sequence[Shown], display_faces: int) -> tuple[list[tuple[Shown, Mesh]], str]:
    """Each non-empty mesh, decimated so that all together have about ``display_faces`` triangles."""
    meshes = [item for item in shown if not item.mesh.is_empty]
    total = sum(item.mesh.face_count for item in meshes)
    fixed = sum(item.mesh.face_count for item in meshes if item.mesh.face_count <= KEEP_FACES)
    big = total - fixed
    fraction = 1.0 if total <= display_faces or big == 0 else max(display_faces - fixed, KEEP_FACES) / big
    reduced = [(item, _decimated(item.mesh, fraction) if item.mesh.face_count > KEEP_FACES else item.mesh)
               for item in meshes]
    drawn = sum(mesh.face_count for _, mesh in reduced)
    if drawn < total:
        return reduced, f"decimated to {drawn:,} of {total:,} triangles for display"
    return reduced, f"{total:,} triangles"


def _decimated(mesh: Mesh, fraction: float) -> Mesh:
    """A display copy with about ``fraction`` of the faces: vertices merged on a grid (vertex clustering).

    Clustering is one vectorised pass (about 0.1 s on half a million triangles, where quadric edge collapse
    takes a second); the display copy need not stay watertight, only look like the surface.
    """
    if fraction >= 1.0:
        return mesh
    target = max(int(mesh.face_count * fraction), 100)
    # A closed surface of area A meshed on cells of side h has about 2 A / h^2 triangles.
    cell_mm = float(np.sqrt(2.0 * mesh.area_mm2() / target))
    reduced = _clustered(mesh, cell_mm)
    for _ in range(3):  # the estimate is rough on folded surfaces: correct it a few times
        ratio = reduced.face_count / target
        if 0.8 <= ratio <= 1.25 or reduced.face_count == 0:
            break
        cell_mm *= float(np.sqrt(ratio))
        reduced = _clustered(mesh, cell_mm)
    return reduced if reduced.face_count else mesh


def _clustered(mesh: Mesh, cell_mm: float) -> Mesh:
    cells = np.floor((mesh.vertices - mesh.vertices.min(axis=0)) / cell_mm).astype(np.int64)
    counts = cells.max(axis=0) + 1
    key = (cells[:, 0] * counts[1] + cells[:, 1]) * counts[2] + cells[:, 2]  # one integer per cell: a 1-D unique
    _, cluster = np.unique(key, return_inverse=True)
    cluster = cluster.reshape(-1)
    count = np.bincount(cluster).astype(float)
    centres = np.stack([np.bincount(cluster, mesh.vertices[:, axis]) for axis in range(3)], axis=1) / count[:, None]
    faces = cluster[mesh.faces]
    distinct = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return Mesh(centres, faces[distinct], name=mesh.name)


def _soup(reduced: Sequence[tuple[Shown, Mesh]]) -> _Soup:
    triangles, normals, corner_normals = [np.zeros((0, 3, 3))], [np.zeros((0, 3))], [np.zeros((0, 3, 3))]
    colours = [np.zeros((0, 4))]
    for item, mesh in reduced:
        rgb = np.asarray(item.colour, dtype=float) / 255.0
        if item.role == "anatomy":
            rgb = rgb + (1.0 - rgb) * ANATOMY_WHITEN
        triangles.append(mesh.vertices[mesh.faces])
        normals.append(mesh.face_normals())
        corner_normals.append(mesh.vertex_normals()[mesh.faces])
        colours.append(np.tile([*rgb, 1.0], (mesh.face_count, 1)))
    return _Soup(np.concatenate(triangles), np.concatenate(normals), np.concatenate(corner_normals),
                 np.concatenate(colours))


def _render(soup: _Soup, view: str, centre: NDArray[np.float64], mm_per_px: float, size_px: int,
            background: tuple[float, float, float, float]) -> NDArray[np.uint8]:
    """The soup seen from ``view`` as (size, size, 4) RGBA: front faces painted far to near, lit from the camera.

    Agg's Gouraud-triangle call paints every triangle in one C loop (80 ms for 60,000), where a
    PolyCollection builds a Python path object per triangle; lighting each corner by its vertex normal
    shades the surface smoothly across the display copy's coarse triangles.
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.transforms import IdentityTransform

    right, up = (np.asarray(v) for v in VIEW_AXES[view])
    towards_camera = np.cross(right, up)
    facing = soup.normals @ towards_camera
    front = np.flatnonzero(facing > 0)
    corners = soup.triangles[front] - centre
    order = front[np.argsort((corners @ towards_camera).sum(axis=1))]  # far first: nearer ones paint over
    corners = soup.triangles[order] - centre
    # Image rows run down, patient "up" runs up: y flips.
    xy = np.stack([corners @ right / mm_per_px + size_px / 2.0, size_px / 2.0 + corners @ up / mm_per_px],
                  axis=-1)
    light = towards_camera + LIGHT_UP * up - LIGHT_RIGHT * right  # from above the camera, a little to its left
    lit = np.clip(soup.corner_normals[order] @ (light / np.linalg.norm(light)), 0.0, 1.0)  # (F, 3)
    colours = np.repeat(soup.colours[order][:, None, :], 3, axis=1)
    colours[..., :3] *= (AMBIENT + (1.0 - AMBIENT) * lit)[..., None]
    # matplotlib's Agg classes carry no annotations.
    renderer = RendererAgg(size_px, size_px, 100)  # type: ignore[no-untyped-call]
    renderer.clear()  # type: ignore[no-untyped-call]
    pixels = np.asarray(renderer.buffer_rgba())  # type: ignore[no-untyped-call]
    pixels[...] = np.round(np.asarray(background) * 255).astype(np.uint8)
    if len(order):
        context = renderer.new_gc()
        context.set_antialiased(False)  # antialiased edges let the background seep through every seam
        renderer.draw_gouraud_triangles(context, xy, colours, IdentityTransform())
    return np.asarray(renderer.buffer_rgba()).copy()  # type: ignore[no-untyped-call]


def _show_hidden_parts(pixels: NDArray[np.uint8], parts: NDArray[np.uint8]) -> None:
    """Blend the parts drawn alone over the whole scene: where anatomy hides a part, the part shows through."""
    covered = parts[..., 3] > 0
    blended = (1.0 - GHOST) * pixels[covered, :3] + GHOST * parts[covered, :3]
    pixels[covered, :3] = np.round(blended).astype(np.uint8)


def _annotate(image: Image.Image, view: str, bar_px: float, bar_mm: float) -> None:
    draw = ImageDraw.Draw(image)
    label(draw, (8, 6), f"{view.capitalize()}", size_px=16)
    draw_letters(draw, (0, 0, image.width, image.height), view_letters(view), size_px=20)
    left, bottom = 10, image.height - 12
    draw.line([(left, bottom), (left + bar_px, bottom)], fill=(255, 255, 255), width=3)
    label(draw, (left, bottom - 5), f"{bar_mm:g} mm", size_px=12, anchor="ld")


def _scale_bar_mm(picture_mm: float) -> float:
    """A round length (1, 2 or 5 times a power of ten) about a fifth of the picture."""
    target = picture_mm / 5.0
    power = 10.0 ** np.floor(np.log10(target))
    return float(max(step * power for step in (1.0, 2.0, 5.0) if step * power <= target))
