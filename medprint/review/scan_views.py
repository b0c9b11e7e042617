"""Pictures of the segmentation over the scan: a montage of axial slices, one coronal and one sagittal."""
# OWNER: helper "review-images". Interface fixed by the lead; fill in the bodies.

from __future__ import annotations

from collections.abc import Sequence

from ..volume import Volume
from .types import Outline, Picture, Window


def window_for(volume: Volume, preset: str | None) -> Window:
    """The display window for a scan and the preset that segmented it (bone, soft tissue; MR by percentiles)."""
    raise NotImplementedError


def scan_pictures(volume: Volume, outlines: Sequence[Outline], window: Window, *, montage_slices: int = 12,
                  ) -> tuple[Picture, ...]:
    """The axial montage (slices spread over the outlined extent), one coronal and one sagittal through the
    outlines' centre, each outline drawn in its colour, each picture labelled with patient directions."""
    raise NotImplementedError
