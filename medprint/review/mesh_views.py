"""The model rendered off-screen from several patient directions, each picture labelled A/P, L/R, S/I."""
# OWNER: helper "review-images". Interface fixed by the lead; fill in the bodies.

from __future__ import annotations

from collections.abc import Sequence

from .types import Picture, Shown

#: The views every report shows: from the front, from the patient's left, from above (and the others).
VIEWS = ("anterior", "left", "superior", "posterior", "right", "inferior")


def mesh_pictures(shown: Sequence[Shown], *, views: Sequence[str] = ("anterior", "left", "superior", "right"),
                  size_px: int = 520) -> tuple[Picture, ...]:
    """One picture per view of every shown mesh in the patient frame (orthographic, same scale in all)."""
    raise NotImplementedError
