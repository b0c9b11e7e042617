"""What a run made, in memory, for the outputs built from it; and the protocol those outputs follow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..io.outputs import RunOutputs
from ..review.types import Outline, Shown
from ..volume import Volume


@dataclass(frozen=True)
class RunProducts:
    """Everything an extra output may draw on, as the run made it.

    Parameters
    ----------
    command : str
        ``"convert"``, ``"design implant"``, ``"slice"`` ...
    main_output : Path
        The run's ``-o`` file (mesh or G-code); extra outputs are named from it.
    report : mapping
        The JSON report, as written beside the main output (already free of patient identity).
    shown : tuple of Shown
        The meshes to show: the printed parts (as written), then the anatomy a design fits.
    part_files : mapping of str to Path
        Each printed part's name -> the mesh file it is written to (the staged file is
        ``outputs.staged_file(path)``).
    outputs : RunOutputs
        The run's transaction: reserve and stage every extra file through it.
    volume : Volume, optional
        The scan the run read (None for a mesh input).
    outlines : tuple of Outline
        What to outline over the scan: each part's mask (convert) or mesh (a design on a scan).
    window_preset : str, optional
        The CT preset that made the segmentation (``"bone"``, ``"soft_tissue"`` ...): picks the display window.
    gcode_text : str, optional
        The G-code written (slice, convert --gcode).
    input_path : Path, optional
        The run's input (a DICOM folder gives the identity of a DICOM object; never shown without --show-phi).
    mirrored : bool
        The part was made by mirroring the patient's anatomy (DICOM Model Mirroring).
    """

    command: str
    main_output: Path
    report: Mapping[str, Any]
    shown: tuple[Shown, ...]
    part_files: Mapping[str, Path]
    outputs: RunOutputs
    volume: Volume | None = None
    outlines: tuple[Outline, ...] = ()
    window_preset: str | None = None
    gcode_text: str | None = None
    input_path: Path | None = None
    mirrored: bool = False
    notes: tuple[str, ...] = field(default=())


class ExtraOutput(Protocol):
    """A file (or files) made from a run's products, committed with the run's other files.

    ``written`` holds the target paths once :meth:`write` has run (empty before).
    """

    written: tuple[Path, ...]

    def reserve(self, outputs: RunOutputs) -> None:
        """Reserve the paths known before the run starts (so a clash is refused before any work)."""

    def write(self, products: RunProducts) -> tuple[Path, ...]:
        """Stage and write the files through ``products.outputs``; set and return ``written``."""
