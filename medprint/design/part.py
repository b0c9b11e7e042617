"""The designed part: a mesh with the account of how it was made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import DesignError
from ..mesh import MeshQuality, make_printable
from ..mesh.model import Mesh


@dataclass(frozen=True)
class Part:
    """A part designed from a scan or a surface, ready to be checked and written.

    Parameters
    ----------
    mesh : Mesh
        The part in LPS mm.
    kind : str
        ``'implant'``, ``'orthosis'``, ``'hollow'`` or ``'label'``.
    method : str
        One sentence on how it was made, for the report (e.g. which reconstruction was used and why).
    measurements : dict
        JSON-ready figures measured on the result (thickness, gap, holes ...).
    choices : tuple of str
        Choices made for the user, said in the report.
    extras : mapping of str to Mesh
        Other meshes written only when asked (``'anatomy'`` for a fit check, ``'rim'`` ...).
    bodies : int
        How many separate bodies the part must have (1 unless the design says otherwise).
    """

    mesh: Mesh
    kind: str
    method: str
    measurements: dict[str, Any] = field(default_factory=dict)
    choices: tuple[str, ...] = ()
    extras: Mapping[str, Mesh] = field(default_factory=dict)
    bodies: int = 1


def finish_part(part: Part) -> tuple[Part, MeshQuality]:
    """Make the part's mesh printable (as ``convert`` does) and hold it to its body count.

    Raises
    ------
    DesignError
        When the part falls apart into another number of bodies than it must have.
    MeshError
        When the mesh cannot be made watertight and outward-facing.
    """
    repaired = make_printable(part.mesh)
    quality = repaired.quality
    if quality.shells != part.bodies:
        expected = "one body" if part.bodies == 1 else f"{part.bodies} bodies"
        raise DesignError(
            f"the {part.kind} came out as {quality.shells} separate bodies instead of {expected}: some wall or "
            "bridge of it is too thin to hold together; check the sizes asked (and, for a design on a grid, use a "
            "finer --resolution)"
        )
    choices = part.choices + tuple(f"{part.kind}: {action}" for action in repaired.actions)
    measured = {**part.measurements}
    if repaired.deviation_mm > 0:
        measured["repair_deviation_mm"] = round(repaired.deviation_mm, 4)
    return replace(part, mesh=repaired.mesh.with_name(part.mesh.name), choices=choices, measurements=measured), quality
