"""The lumen a hollow model is built around: from a mask, a label map, a scan (threshold, preset or seeds),
or a closed surface mesh.

The option names in the messages (``--labels``, ``--label``, ...) are the ``design hollow`` job's, which are
also its order keys (:mod:`medprint.jobs.design_hollow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError
from ..mesh.model import Mesh
from ..segment import SegmentationSettings
from ..segment.seeds import Point
from ..volume import Mask
from .run import describe_input


@dataclass(frozen=True)
class LumenSource:
    """How the lumen is chosen in the input; at most one of labels, preset/threshold and seeds is given.

    Parameters
    ----------
    labels_path : Path, optional
        A label map, DICOM SEG or RTSTRUCT on the scan (``--labels``).
    label_name : str, optional
        The lumen's label number or name (``--label``).
    labels_names : Path, optional
        Names for label numbers (``--labels-names``, ``FILE#map`` allowed).
    preset, threshold : optional
        The lumen by a CT preset or an intensity range ``(low, high)``, largest body.
    seeds : tuple of points
        Grow a contrast CT's vessel from these LPS points (mm).
    grow_range : (float, float), optional
        With ``seeds``: the blood pool's intensity range.
    """

    labels_path: Path | None = None
    label_name: str | None = None
    labels_names: Path | None = None
    preset: str | None = None
    threshold: tuple[float, float] | None = None
    seeds: tuple[Point, ...] = ()
    grow_range: tuple[float, float] | None = None

    def selections(self) -> list[str]:
        """The options given that select in voxels or labels (none of them apply to a mesh)."""
        return [name for name, value in (("--labels", self.labels_path), ("--label", self.label_name),
                                         ("--preset", self.preset), ("--threshold", self.threshold),
                                         ("--seed", self.seeds)) if value]


def load_lumen(input_path: Path, source: LumenSource, *,
               show_phi: bool = False) -> tuple[Mask | Mesh, dict[str, Any], list[str]]:
    """The lumen, de-identified facts about the input, and the steps taken to find it.

    Raises
    ------
    ParameterError
        A selection given for a mesh input, or a label map holding several labels and none chosen.
    InputError
        A scan given alone (nothing chose the lumen in it), or an unreadable input.
    """
    from ..io import MESH_FORMATS, load_volume
    from ..io.labels import load_label_mask
    from ..io.mesh_files import read_mesh_file

    if input_path.suffix.lower() in MESH_FORMATS:
        given = source.selections()
        if given:
            raise ParameterError(f"{given[0]}: MASK_OR_SCAN is a mesh (the lumen's surface), which has no labels "
                                 "or voxels to select from; drop it")
        mesh = read_mesh_file(input_path)
        return mesh, describe_input(mesh, path=input_path, show_phi=show_phi), ["lumen: the surface given"]
    volume = load_volume(input_path)
    facts = describe_input(volume, path=input_path, show_phi=show_phi)
    selected = [source.label_name] if source.label_name is not None else None
    if source.labels_path is not None:
        masks = load_label_mask(source.labels_path, volume, labels=selected, names_file=source.labels_names)
        return one_label(masks, "--labels"), facts, [f"lumen: label {masks[0].label!r} of --labels"]
    if source.preset is not None or source.threshold is not None:
        from ..segment import select_by_threshold

        mask, steps = select_by_threshold(volume, SegmentationSettings(preset=source.preset,
                                                                       threshold=source.threshold))
        return mask, facts, [f"lumen: {step}" for step in steps]
    if source.seeds:
        from ..segment import VesselSettings, segment_vessel

        mask, steps = segment_vessel(volume, source.seeds, VesselSettings(intensity_range=source.grow_range))
        return mask, facts, [f"lumen: {step}" for step in steps]
    # MASK_OR_SCAN is itself a mask or label map: its nonzero voxels, or the one label asked.
    try:
        masks = load_label_mask(input_path, volume, labels=selected, names_file=source.labels_names)
    except InputError:
        if looks_like_scan(volume.array, named=source.labels_names is not None):
            raise InputError(
                "MASK_OR_SCAN is a scan, not a mask or label map, and nothing chose the lumen in it; choose it "
                "with --labels FILE --label NAME (a segmentation of this scan), --preset NAME, --threshold LO:HI "
                "or --seed X,Y,Z (a contrast CT's vessel)"
            ) from None
        raise
    facts = {**facts, "kind": "label map"}
    return one_label(masks, "MASK_OR_SCAN"), facts, [f"lumen: label {masks[0].label!r} of the input"]


def looks_like_scan(array: Any, *, named: bool) -> bool:
    """Intensities rather than labels: negative or fractional values, or more values than unnamed labels."""
    from ..io.labels import MAX_UNNAMED_LABELS

    values = np.asarray(array)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        return False  # NaN/Inf: the label reader's own message says what is wrong
    if values.size and float(values.min()) < 0:
        return True
    if values.dtype.kind == "f" and np.any(values != np.round(values)):
        return True
    return not named and len(np.unique(values)) > MAX_UNNAMED_LABELS + 1


def one_label(masks: list[Mask], where: str) -> Mask:
    """The only mask of ``masks``; several are a ParameterError asking for ``--label``."""
    if len(masks) != 1:
        names = ", ".join(m.label for m in masks[:8])
        raise ParameterError(f"--label: {where} holds {len(masks)} labels ({names}); choose the lumen with --label "
                             "NAME or N")
    return masks[0]
