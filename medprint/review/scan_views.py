"""Pictures of the segmentation over the scan: a montage of axial slices, one coronal and one sagittal.

Radiological convention, whatever the grid's direction cosines: axial with the patient's Right on the image
left and Anterior at the top; coronal with Right on the left and Superior at the top; sagittal with Anterior
on the left and Superior at the top.  The grid is shown on the patient axes by flips and transposes
(:mod:`._frame`), never resampled; pixels keep their true aspect (thick slices are stretched).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from ..errors import ParameterError
from ..geometry import Geometry
from ..mesh.model import Mesh
from ..volume import Mask, Volume
from ._canvas import draw_letters, label, letters_of, png_bytes
from ._frame import PatientFrame, patient_frame
from .types import Outline, Picture, Window

#: Presets whose structures are dense: shown in a bone window (segment/presets.py names).
BONE_PRESETS = frozenset({"bone", "compact-bone", "spongy-bone", "enamel"})
#: Presets of soft structures: shown in a soft-tissue window.
SOFT_PRESETS = frozenset({"soft-tissue", "fat", "muscle", "skin", "blood-pool"})
BONE_WINDOW = Window(level=450.0, width=1800.0, name="bone (level 450, width 1800 HU)")
SOFT_WINDOW = Window(level=50.0, width=400.0, name="soft tissue (level 50, width 400 HU)")
#: Voxels sampled for an MR window: percentiles of 1e6 voxels are stable to a fraction of a grey level.
SAMPLE_VOXELS = 1_000_000

AXIAL_LETTERS = letters_of("R", "L", "A", "P")
CORONAL_LETTERS = letters_of("R", "L", "S", "I")
SAGITTAL_LETTERS = letters_of("A", "P", "S", "I")

TILE_PX = 256  # longest side of a montage tile
SECTION_PX = 512  # longest side of the coronal and sagittal pictures
MONTAGE_COLUMNS = 4
TILE_GAP_PX = 2
LABEL_STRIP_PX = 18  # under each tile: its number and patient z
CROP_MARGIN_MM = 30.0  # context kept around the outlined region


def window_for(volume: Volume, preset: str | None) -> Window:
    """The display window for a scan and the preset that segmented it.

    CT: a bone preset gives a bone window, a soft-tissue, fat, muscle, skin or vessel preset a soft-tissue
    window; CT segmented without a preset (a threshold or a seed) gets the bone window, because medprint's
    prints are mostly bone and a soft-tissue window would burn every bone to white.  Other modalities (MR,
    OT): the 1st to 99th percentile of a subsample of the voxels.
    """
    key = (preset or "").strip().lower().replace("_", "-").replace(" ", "-")
    if volume.is_hounsfield:
        if key in SOFT_PRESETS:
            return SOFT_WINDOW
        if key in BONE_PRESETS:
            return BONE_WINDOW
        return Window(BONE_WINDOW.level, BONE_WINDOW.width,
                      f"{BONE_WINDOW.name}: no bone or soft-tissue preset named, bone window chosen")
    return _percentile_window(volume)


def _percentile_window(volume: Volume) -> Window:
    flat = volume.array.reshape(-1)
    step = max(1, flat.size // SAMPLE_VOXELS)
    low, high = np.percentile(flat[::step], [1.0, 99.0])
    width = max(float(high - low), 1e-6)
    return Window(level=float(low + high) / 2.0, width=width,
                  name=f"{volume.modality or 'scan'} window from the 1st-99th percentile ({low:.4g} to {high:.4g})")


@dataclass(frozen=True)
class _Layer:
    """One outline on the patient axes: a mask viewed like the scan, or a mesh in shown indices."""

    colour: tuple[int, int, int]
    mask_lps: NDArray[np.bool_] | None
    mesh_vertices: NDArray[np.float64] | None
    mesh_faces: NDArray[np.int64] | None


def scan_pictures(volume: Volume, outlines: Sequence[Outline], window: Window, *, montage_slices: int = 12,
                  ) -> tuple[Picture, ...]:
    """The axial montage (slices spread over the outlined extent), one coronal and one sagittal through the
    outlines' centre, each outline drawn in its colour, each picture labelled with patient directions.

    Parameters
    ----------
    volume : Volume
    outlines : sequence of Outline
        Masks on the volume's grid (drawn by their boundary) and meshes in LPS mm (drawn by their section).
    window : Window
        From :func:`window_for`.
    montage_slices : int
        Axial slices in the montage (>= 1), evenly spread over the outlines' extent (the scan's if none).

    Returns
    -------
    tuple of Picture
        The axial montage, the coronal and the sagittal picture.
    """
    if montage_slices < 1:
        raise ParameterError(f"montage_slices must be at least 1, got {montage_slices}")
    if not window.width > 0:
        raise ParameterError(f"the display window's width must be positive, got {window.width}")
    frame = patient_frame(volume.geometry, volume.shape)
    scan = frame.view(volume.array)
    layers = tuple(_layer(outline, volume, frame, index) for index, outline in enumerate(outlines))
    low, high = _extent(layers, frame)
    first, last = _crop_box(low, high, frame) if layers else (np.zeros(3, int), np.asarray(frame.shape_lps) - 1)
    cropped = tuple(int(last[a] - first[a] + 1) for a in range(3)) != frame.shape_lps
    region = tuple(slice(int(first[2 - c]), int(last[2 - c]) + 1) for c in range(3))  # (z, y, x) of the view
    scan = scan[region]
    layers = tuple(_cropped(layer, region, first) for layer in layers)
    centre = np.round((low + high) / 2.0).astype(int)
    caption = _caption(volume, window, frame, outlines, cropped)
    axial_levels = _spread(float(low[2] - first[2]), float(high[2] - first[2]), montage_slices)
    y_mm, x_mm = _position_mm(frame, 1, int(centre[1])), _position_mm(frame, 0, int(centre[0]))
    return (
        Picture("Axial slices", png_bytes(_montage(scan, layers, frame, window, axial_levels, first)),
                caption, AXIAL_LETTERS),
        Picture("Coronal", png_bytes(_section(scan, layers, frame, window, 1, int(centre[1] - first[1]))),
                f"through y = {y_mm:.1f} mm; {caption}", CORONAL_LETTERS),
        Picture("Sagittal", png_bytes(_section(scan, layers, frame, window, 0, int(centre[0] - first[0]))),
                f"through x = {x_mm:.1f} mm; {caption}", SAGITTAL_LETTERS),
    )


def _crop_box(low: NDArray[np.float64], high: NDArray[np.float64], frame: PatientFrame,
              ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The shown voxels (first, last per patient axis) around the outlines, with a margin of context:
    half the outlined size or CROP_MARGIN_MM, whichever is more.  A small tumour then fills its tiles."""
    spacing = np.asarray(frame.spacing_lps)
    margin = np.maximum(0.5 * (high - low), CROP_MARGIN_MM / spacing)
    size = np.asarray(frame.shape_lps) - 1
    first = np.clip(np.floor(low - margin), 0, size).astype(np.int64)
    last = np.clip(np.ceil(high + margin), 0, size).astype(np.int64)
    return first, last


def _cropped(layer: _Layer, region: tuple[slice, ...], first: NDArray[np.int64]) -> _Layer:
    if layer.mask_lps is not None:
        return _Layer(layer.colour, layer.mask_lps[region], None, None)
    assert layer.mesh_vertices is not None
    return _Layer(layer.colour, None, layer.mesh_vertices - first, layer.mesh_faces)


def _spread(low: float, high: float, count: int) -> NDArray[np.int64]:
    """``count`` slice indices evenly over [low, high], each in the middle of its share (no bare end caps)."""
    positions = low + (np.arange(count) + 0.5) * (high - low) / count
    return np.unique(np.round(positions).astype(np.int64))


#: Vivid colours for outlines whose own colour is greyish (bone, anatomy): over a grey scan they would vanish.
VIVID_OUTLINES: tuple[tuple[int, int, int], ...] = (
    (255, 215, 0), (0, 220, 255), (255, 60, 200), (90, 255, 90), (255, 90, 40), (150, 120, 255),
)
#: Below this spread between an outline's strongest and weakest channel it counts as grey.
_GREYISH_SPREAD = 80


def visible_on_grey(colour: tuple[int, int, int], index: int) -> tuple[int, int, int]:
    """``colour`` if it stands out on a grey scan, else the ``index``-th vivid outline colour.

    >>> visible_on_grey((227, 218, 201), 0), visible_on_grey((200, 60, 50), 1)
    ((255, 215, 0), (200, 60, 50))
    """
    if max(colour) - min(colour) >= _GREYISH_SPREAD:
        return colour
    return VIVID_OUTLINES[index % len(VIVID_OUTLINES)]


def _layer(outline: Outline, volume: Volume, frame: PatientFrame, index: int) -> _Layer:
    shape, colour = outline.shape, visible_on_grey(outline.colour, index)
    if isinstance(shape, Mask):
        return _Layer(colour, frame.view(_on_scan_grid(shape, volume)), None, None)
    if isinstance(shape, Mesh):
        return _Layer(colour, None, frame.lps_points_to_shown(shape.vertices), shape.faces)
    raise ParameterError(f"outline {outline.name!r}: a Mask or a Mesh is needed, got {type(shape).__name__}")


def _on_scan_grid(mask: Mask, volume: Volume) -> NDArray[np.bool_]:
    """The mask on the scan's voxels: as it is when made on them, else sampled there by patient position
    (nearest voxel), so a label map on another grid (flipped, cropped, finer) is drawn where it lies."""
    if mask.array.shape == volume.shape and _same_geometry(mask.geometry, volume.geometry):
        return mask.array
    import SimpleITK as sitk

    from ..io.labels import resample_nearest

    image = sitk.GetImageFromArray(np.ascontiguousarray(mask.array, dtype=np.uint8))
    image.SetSpacing(mask.geometry.spacing)  # type: ignore[no-untyped-call]
    image.SetOrigin(mask.geometry.origin)  # type: ignore[no-untyped-call]
    image.SetDirection(mask.geometry.direction)  # type: ignore[no-untyped-call]
    return np.asarray(resample_nearest(image, volume.geometry, volume.shape)) > 0


def _same_geometry(a: Geometry, b: Geometry) -> bool:
    return bool(np.allclose(a.spacing, b.spacing, rtol=0, atol=1e-4)
                and np.allclose(a.origin, b.origin, rtol=0, atol=1e-3)
                and np.allclose(a.direction, b.direction, rtol=0, atol=1e-5))


def _extent(layers: Sequence[_Layer], frame: PatientFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lowest and highest shown index (x, y, z) the outlines reach; the whole grid if they reach nothing."""
    size = np.asarray(frame.shape_lps, dtype=float) - 1
    lows, highs = [], []
    for layer in layers:
        if layer.mask_lps is not None and layer.mask_lps.any():
            # Projections onto each axis: three any() reductions instead of an argwhere of every voxel.
            spans = [np.flatnonzero(layer.mask_lps.any(axis=tuple(a for a in range(3) if a != 2 - axis)))
                     for axis in range(3)]
            lows.append([s[0] for s in spans])
            highs.append([s[-1] for s in spans])
        elif layer.mesh_vertices is not None and len(layer.mesh_vertices):
            lows.append(layer.mesh_vertices.min(axis=0))
            highs.append(layer.mesh_vertices.max(axis=0))
    if not lows:
        return np.zeros(3), size
    return np.clip(np.min(lows, axis=0), 0, size), np.clip(np.max(highs, axis=0), 0, size)


def _caption(volume: Volume, window: Window, frame: PatientFrame, outlines: Sequence[Outline],
             cropped: bool) -> str:
    parts = [f"window: {window.name}"]
    if outlines:
        parts.append("outlined: " + ", ".join(o.name for o in outlines))
    if cropped:
        parts.append(f"cropped to the outlined region with at least {CROP_MARGIN_MM:g} mm around it")
    if frame.oblique_deg > 0.5:
        parts.append(
            f"the scan's grid is oblique (up to {frame.oblique_deg:.1f} degrees from the patient axes): shown on "
            "its nearest patient axes without resampling, so the letters are approximate"
        )
    return "; ".join(parts)


def _position_mm(frame: PatientFrame, axis: int, index: int) -> float:
    """Patient coordinate (mm) along ``axis`` of the shown slice ``index`` at the grid's centre."""
    point = (np.asarray(frame.shape_lps, dtype=float) - 1) / 2.0
    point[axis] = index
    return float(frame.shown_to_lps(point)[axis])


def _grey(pixels: NDArray[np.generic], window: Window) -> NDArray[np.uint8]:
    low = window.level - window.width / 2.0
    scaled = (pixels.astype(np.float32) - np.float32(low)) * np.float32(255.0 / window.width)
    return np.asarray(np.clip(scaled, 0, 255), dtype=np.uint8)


def _display_size(rows: int, columns: int, row_mm: float, column_mm: float, longest_px: int) -> tuple[int, int]:
    """(width, height) in pixels with square millimetres, the longer side ``longest_px``."""
    height_mm, width_mm = rows * row_mm, columns * column_mm
    scale = longest_px / max(height_mm, width_mm)
    return max(1, round(width_mm * scale)), max(1, round(height_mm * scale))


def _plane(scan: NDArray[np.generic], layers: Sequence[_Layer], frame: PatientFrame, window: Window,
           axis: int, index: int, longest_px: int) -> Image.Image:
    """One slice perpendicular to patient ``axis`` (0 x, 1 y, 2 z), in display orientation, outlines drawn."""
    pixels = _slice_2d(scan, axis, index)
    spacing = frame.spacing_lps
    row_axis, column_axis = _plane_axes(axis)
    rows, columns = pixels.shape
    size = _display_size(rows, columns, spacing[row_axis], spacing[column_axis], longest_px)
    image = Image.fromarray(_grey(pixels, window)).resize(size, Image.Resampling.BILINEAR).convert("RGB")
    thickness = max(1, round(longest_px / 256))
    draw = ImageDraw.Draw(image)
    for layer in layers:
        if layer.mask_lps is not None:
            for line in _mask_contours(_slice_2d(layer.mask_lps, axis, index), size):
                draw.line(line, fill=layer.colour, width=thickness)
        if layer.mesh_vertices is not None and layer.mesh_faces is not None:
            for segment in _mesh_section(layer, axis, index, pixels.shape, size):
                draw.line([tuple(segment[0]), tuple(segment[1])], fill=layer.colour, width=thickness)
    return image


def _plane_axes(axis: int) -> tuple[int, int]:
    """The patient axes along the rows (down the image) and the columns of a slice across ``axis``."""
    return {2: (1, 0), 1: (2, 0), 0: (2, 1)}[axis]


def _slice_2d(volume_lps: NDArray[Any], axis: int, index: int) -> NDArray[Any]:
    """The slice in display orientation: rows run towards P (axial) or I (coronal, sagittal)."""
    if axis == 2:
        return np.asarray(volume_lps[index])
    if axis == 1:
        return volume_lps[::-1, index, :]
    return volume_lps[::-1, :, index]


def _mask_contours(mask_2d: NDArray[np.bool_], size: tuple[int, int]) -> list[list[tuple[float, float]]]:
    """The mask's boundary as polylines in display pixels: the 0.5 level between inside and outside voxel
    centres (sub-voxel, so thick slices show a smooth edge rather than stairs)."""
    from skimage.measure import find_contours

    if not mask_2d.any():
        return []
    # A frame of background closes contours that reach the slice's edge.
    padded = np.pad(mask_2d, 1).astype(np.float32)
    scale_x, scale_y = size[0] / mask_2d.shape[1], size[1] / mask_2d.shape[0]
    lines = []
    for contour in find_contours(padded, 0.5):  # type: ignore[no-untyped-call]
        rows, columns = contour[:, 0] - 1, contour[:, 1] - 1
        points = np.stack([(columns + 0.5) * scale_x, (rows + 0.5) * scale_y], axis=1)
        lines.append([tuple(point) for point in points.tolist()])
    return lines


def _mesh_section(layer: _Layer, axis: int, index: int, shape_2d: tuple[int, ...],
                  size: tuple[int, int]) -> NDArray[np.float64]:
    """The mesh's cut by the slice plane as (N, 2, 2) segments in display pixels (x right, y down)."""
    import trimesh.intersections

    assert layer.mesh_vertices is not None and layer.mesh_faces is not None
    normal = np.zeros(3)
    normal[axis] = 1.0
    origin = np.zeros(3)
    origin[axis] = index
    # Only the triangles that reach the plane: trimesh's cut then handles a few thousand, not half a million.
    along = layer.mesh_vertices[:, axis][layer.mesh_faces]
    a, b, c = along[:, 0], along[:, 1], along[:, 2]  # column-wise: numpy's min over a length-3 axis is slow
    reaches = (np.minimum(np.minimum(a, b), c) <= index) & (np.maximum(np.maximum(a, b), c) >= index)
    crossing = layer.mesh_faces[reaches]
    if len(crossing) == 0:
        return np.zeros((0, 2, 2))
    segments = trimesh.intersections.mesh_plane(  # type: ignore[no-untyped-call]
        _TriangleSoup(layer.mesh_vertices, crossing), normal, origin)
    if len(segments) == 0:
        return np.zeros((0, 2, 2))
    row_axis, column_axis = _plane_axes(axis)
    rows = segments[..., row_axis]
    if axis != 2:
        rows = (shape_2d[0] - 1) - rows  # Superior at the top
    columns = segments[..., column_axis]
    # Pixel centres: shown index n sits at (n + 0.5) display cells.
    x = (columns + 0.5) * size[0] / shape_2d[1]
    y = (rows + 0.5) * size[1] / shape_2d[0]
    return np.stack([x, y], axis=-1)


class _TriangleSoup:
    """The two attributes trimesh.intersections.mesh_plane reads, without building a Trimesh (no processing)."""

    def __init__(self, vertices: NDArray[np.float64], faces: NDArray[np.int64]) -> None:
        self.vertices = vertices
        self.faces = faces
        self.triangles = vertices[faces]


def _section(scan: NDArray[np.generic], layers: Sequence[_Layer], frame: PatientFrame, window: Window,
             axis: int, index: int) -> Image.Image:
    image = _plane(scan, layers, frame, window, axis, index, SECTION_PX)
    letters = SAGITTAL_LETTERS if axis == 0 else CORONAL_LETTERS
    draw_letters(ImageDraw.Draw(image), (0, 0, image.width, image.height), letters, size_px=20)
    return image


def _montage(scan: NDArray[np.generic], layers: Sequence[_Layer], frame: PatientFrame, window: Window,
             levels: NDArray[np.int64], first: NDArray[np.int64]) -> Image.Image:
    """The axial tiles in a grid, each with its letters and, in a strip under it, its number and patient z."""
    tiles = [_plane(scan, layers, frame, window, 2, int(level), TILE_PX) for level in levels]
    columns = min(MONTAGE_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    width, height = tiles[0].size
    cell_height = height + LABEL_STRIP_PX
    montage = Image.new("RGB", (columns * width + (columns - 1) * TILE_GAP_PX,
                                rows * cell_height + (rows - 1) * TILE_GAP_PX), (24, 24, 24))
    draw = ImageDraw.Draw(montage)
    for number, (tile, level) in enumerate(zip(tiles, levels)):
        left = (number % columns) * (width + TILE_GAP_PX)
        top = (number // columns) * (cell_height + TILE_GAP_PX)
        montage.paste(tile, (left, top))
        draw_letters(draw, (left, top, left + width, top + height), AXIAL_LETTERS, size_px=13)
        z_mm = _position_mm(frame, 2, int(level + first[2]))
        label(draw, (left + 4, top + height + LABEL_STRIP_PX / 2), f"{number + 1}   z {z_mm:.1f} mm", size_px=12,
              anchor="lm", fill=(220, 220, 220))
    return montage


