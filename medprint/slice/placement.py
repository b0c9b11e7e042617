"""Put a mesh on the bed: optional orientation, scale, lowest point at z = 0, centred."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError
from ..mesh.model import Mesh
from .profiles import PrinterProfile

logger = logging.getLogger("medprint")

ORIENT_CHOICES = ("none", "support", "height")


def _rotation(axis: str, degrees: float) -> NDArray[np.float64]:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def candidate_rotations() -> list[tuple[str, NDArray[np.float64]]]:
    """The orientations ``--orient`` chooses among: six faces down plus four 45 degree tilts.

    >>> len(candidate_rotations())
    10
    """
    out = [("as scanned", np.eye(3))]
    out += [(f"x {a}", _rotation("x", a)) for a in (90, 180, 270)]
    out += [(f"y {a}", _rotation("y", a)) for a in (90, 270)]
    out += [(f"{axis} {a}", _rotation(axis, a)) for axis in ("x", "y") for a in (45, 315)]
    return out


@dataclass(frozen=True)
class Placement:
    """How the mesh was put on the bed: ``placed = scale * rotation @ v + translation``."""

    orientation: str
    rotation: NDArray[np.float64]
    scale: float
    translation_mm: NDArray[np.float64]
    size_mm: tuple[float, float, float]
    support_area_mm2: float


def support_area_mm2(vertices: NDArray[np.float64], faces: NDArray[np.int64], *, support_angle_deg: float) -> float:
    """Projected area of down-facing surfaces flatter than ``support_angle_deg`` from horizontal,
    weighted by their height above the bed (a proxy for support volume, mm^3 / mm)."""
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
    z_low = vertices[:, 2].min()
    height = tri[:, :, 2].mean(axis=1) - z_low
    limit = np.cos(np.radians(support_angle_deg))
    length = np.linalg.norm(normal, axis=1)
    down = (-normal[:, 2] > limit * length) & (height > 0.3)
    return float((-normal[down, 2] * height[down]).sum() / 2.0 / max(1.0, float(np.ptp(vertices[:, 2]))))


def place_on_bed(mesh: Mesh, printer: PrinterProfile, *, scale: float = 1.0, orient: str = "none",
                 support_angle_deg: float = 45.0, margin_mm: float = 5.0) -> tuple[NDArray[np.float64], Placement]:
    """Rotate (``orient``), scale and centre ``mesh`` on ``printer``'s bed, lowest point at z = 0.

    Parameters
    ----------
    orient : {'none', 'support', 'height'}
        Keep the scan's orientation, or pick among :func:`candidate_rotations` the one with the least
        support (down-facing area times height) or the lowest print height.
    margin_mm : float
        Room kept free around the model in x and y (skirt, brim).

    Raises
    ------
    ParameterError
        The model does not fit; the message says by how much and which scale or orientation fits.
    """
    if orient not in ORIENT_CHOICES:
        raise ParameterError(f"--orient: {orient!r} is not one of {', '.join(ORIENT_CHOICES)}")
    if not (0 < scale <= 100):
        raise ParameterError(f"--scale: {scale} must be above 0 and at most 100 (1 = life-size)")
    centred = mesh.vertices - mesh.vertices.mean(axis=0)
    build = np.array([printer.build_x_mm - 2 * margin_mm, printer.build_y_mm - 2 * margin_mm, printer.build_z_mm])

    def sized(rotation: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        rotated = scale * centred @ rotation.T
        return rotated, np.ptp(rotated, axis=0)

    candidates = candidate_rotations() if orient != "none" else candidate_rotations()[:1]
    scored = []
    for name, rotation in candidates:
        rotated, size = sized(rotation)
        fits = bool(np.all(size <= build))
        if orient == "support":
            score = support_area_mm2(rotated, mesh.faces, support_angle_deg=support_angle_deg)
        else:
            score = float(size[2])
        scored.append((not fits, score, name, rotation, rotated, size))
    scored.sort(key=lambda item: (item[0], item[1]))
    misfit, score, name, rotation, rotated, size = scored[0]
    if misfit:
        raise ParameterError(_misfit_message(size, build, printer, scale, margin_mm, centred))
    if orient != "none":
        logger.info("--orient %s: chose rotation %s (score %.1f)", orient, name, score)
    low = rotated.min(axis=0)
    high = rotated.max(axis=0)
    target = np.array([printer.build_x_mm / 2.0, printer.build_y_mm / 2.0, 0.0])
    shift = np.array([target[0] - (low[0] + high[0]) / 2.0, target[1] - (low[1] + high[1]) / 2.0, -low[2]])
    placed = rotated + shift
    placement = Placement(
        orientation=name, rotation=rotation, scale=scale,
        translation_mm=shift - scale * (mesh.vertices.mean(axis=0) @ rotation.T),
        size_mm=(float(size[0]), float(size[1]), float(size[2])),
        support_area_mm2=support_area_mm2(placed, mesh.faces, support_angle_deg=support_angle_deg),
    )
    return placed, placement


def _misfit_message(size: NDArray[np.float64], build: NDArray[np.float64], printer: PrinterProfile, scale: float,
                    margin_mm: float, centred: NDArray[np.float64]) -> str:
    over = [f"{axis} by {s - b:.1f} mm" for axis, s, b in zip("xyz", size, build) if s > b]
    fit_scale = scale * float(np.min(build / size))
    fitting = []
    for name, rotation in candidate_rotations():
        extent = np.ptp(scale * centred @ rotation.T, axis=0)
        if np.all(extent <= build):
            fitting.append(name)
    orient_hint = (f"; or --orient height (fits rotated {fitting[0]})" if fitting else
                   "; no orientation fits at this scale")
    return (
        f"the model is {size[0]:.1f} x {size[1]:.1f} x {size[2]:.1f} mm, too big for printer {printer.name!r} "
        f"({build[0]:.0f} x {build[1]:.0f} x {build[2]:.0f} mm usable, {margin_mm:g} mm kept for skirt/brim): "
        f"over in {', '.join(over)}; use --scale {np.floor(fit_scale * 1000) / 1000:g} or smaller{orient_hint}, "
        f"or a bigger printer"
    )
