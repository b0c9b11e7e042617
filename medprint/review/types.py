"""What the pictures of a sign-off report are drawn from and what they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..mesh.model import Mesh
from ..volume import Mask

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Window:
    """A display window in the scan's units (HU for CT): ``level`` at mid-grey, ``width`` from black to white."""

    level: float
    width: float
    name: str  # "bone", "soft tissue", "MR (1st-99th percentile)": said under the pictures


@dataclass(frozen=True)
class Outline:
    """Something outlined over the scan slices: a segmentation mask (its boundary) or a mesh (its section)."""

    name: str
    colour: Colour
    shape: Mask | Mesh


@dataclass(frozen=True)
class Shown:
    """A mesh in the model views: a printed part, or the anatomy a designed part fits (drawn paler)."""

    name: str
    mesh: Mesh
    colour: Colour
    role: Literal["part", "anatomy"] = "part"


@dataclass(frozen=True)
class Picture:
    """One embedded picture: PNG bytes, a title, a caption, and the orientation letters drawn in it.

    ``letters`` maps each image edge (``"left"``, ``"right"``, ``"top"``, ``"bottom"``) to the patient
    direction it faces (``"R"``, ``"L"``, ``"A"``, ``"P"``, ``"S"``, ``"I"``), so that the page can say it in
    text too; empty for pictures with no patient directions (a G-code layer plot in printer axes).
    """

    title: str
    png: bytes
    caption: str = ""
    letters: tuple[tuple[str, str], ...] = ()
