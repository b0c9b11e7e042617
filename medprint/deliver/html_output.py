"""The HTML sign-off report as an extra output of a run (``--report html``).

The page is drawn from the run's products only: the de-identified JSON report, the meshes it wrote and the
scan it read (or the ``--source`` series named for a part designed on a mesh).  The input's path is never
shown: an output folder, a scan's folder and its file names may all carry a patient's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from ..io.dicom_identity import IdentitySource
from ..io.outputs import RunOutputs, fit_name, name_max
from ..review.page import PageContent, render_page
from ..review.types import Outline, Picture, Window
from ..volume import Volume
from .products import RunProducts

#: What the page says where the scan would be, when the run has none to show.
NO_SCAN = ("No scan given: this report shows the model only, not the segmentation over the scan. "
           "Give --source SCAN (the DICOM series the model was made from) to see it.")


#: The same, for G-code (slice has no --source: the scan belongs to the model's own report).
NO_SCAN_GCODE = ("No scan: this report is of the G-code. The segmentation over the scan is in the report of the "
                 "model it was sliced from (medprint report MODEL --source SCAN).")


def html_report_path(main_output: Path) -> Path:
    """``<stem>.report.html`` beside the run's main output (as the JSON report is ``<stem>.report.json``).

    >>> html_report_path(Path("out/skull.stl"))
    PosixPath('out/skull.report.html')
    """
    main_output = Path(main_output)
    return main_output.with_name(fit_name(main_output.stem, ".report.html", name_max(main_output.parent)))


class HtmlReport:
    """Writes one self-contained HTML sign-off report for the run's output.

    ``source``: where to load the scan from when the run itself read none (a part designed on a mesh, with
    ``--source SERIES``); None when the run's products carry the scan, or there is none to show.
    """

    def __init__(self, path: Path, *, source: IdentitySource | None = None) -> None:
        self.path = Path(path)
        self.source = source
        self.written: tuple[Path, ...] = ()
        #: What the report could not show or chose (said in the page; a command may print them too).
        self.notes: tuple[str, ...] = ()

    def reserve(self, outputs: RunOutputs) -> None:
        outputs.reserve(self.path, "--report html")
        scan = self.source.path if self.source is not None else None
        if scan is not None and not Path(scan).exists():
            # Refused before the work, not after a long design.
            raise InputError(f"--source: {scan} does not exist; give the DICOM series the model was made from")

    def write(self, products: RunProducts) -> tuple[Path, ...]:
        page, notes = build_page(products, source=self.source)
        with products.outputs.stage(self.path) as temp:
            temp.write_text(page, encoding="utf-8")
        self.notes = notes
        self.written = (self.path,)
        return self.written


def build_page(products: RunProducts, *, source: IdentitySource | None = None,
               created: datetime | None = None) -> tuple[str, tuple[str, ...]]:
    """The HTML page for a run's products, and the notes it carries.

    The scan is ``products.volume`` (its outlines, ``products.outlines``) or, when the run read none, the
    series ``source`` names, with the shown parts' sections outlined on it.
    """
    from ..review.layer_views import gcode_pictures
    from ..review.mesh_views import mesh_pictures

    notes = list(products.notes)
    volume, outlines = products.volume, products.outlines
    if volume is None and source is not None and source.path is not None:
        volume, outlines = _source_scan(products, source, notes)
    scan: tuple[Picture, ...] = ()
    window: Window | None = None
    if volume is not None:
        from ..review.scan_views import scan_pictures, window_for

        window = window_for(volume, products.window_preset or preset_in(products.report))
        scan = scan_pictures(volume, outlines, window)
    parts = [item for item in products.shown if item.role == "part"]
    model = mesh_pictures(parts) if parts else ()
    fit: tuple[Picture, ...] = ()
    if len(parts) < len(products.shown):
        fit = mesh_pictures(products.shown, views=("anterior", "left", "superior"))
    layers = gcode_pictures(products.gcode_text) if products.gcode_text else ()
    stamp = (created or datetime.now(UTC)).replace(microsecond=0)
    content = PageContent(
        report=products.report, command=products.command, output_name=Path(products.main_output).name,
        version=__version__, created=stamp.isoformat().replace("+00:00", "Z"), scan=scan, window=window,
        scan_missing="" if scan else (NO_SCAN_GCODE if products.command == "slice" else NO_SCAN), model=model,
        fit=fit, layers=layers, notes=tuple(notes),
    )
    if not scan:
        notes.append(content.scan_missing)
    return render_page(content), tuple(notes)


def _source_scan(products: RunProducts, source: IdentitySource, notes: list[str],
                 ) -> tuple[Volume, tuple[Outline, ...]]:
    """The ``--source`` scan, and the sections of the shown meshes to outline on it (its notes go to ``notes``)."""
    from ..io import load_volume

    assert source.path is not None
    volume = load_volume(source.path, series=source.series)
    notes.extend(volume.notes)
    outlines = tuple(Outline(item.name, item.colour, item.mesh) for item in products.shown)
    return volume, outlines


def preset_in(report: Mapping[str, Any]) -> str | None:
    """The CT preset a JSON report says segmented the part (convert: ``segmentation.preset``; a design on a scan:
    ``preset``): it picks the scan's display window when the run names none.

    >>> preset_in({"parameters": {"segmentation": {"preset": "bone"}}}), preset_in({"parameters": {"preset": None}})
    ('bone', None)
    """
    parameters = report.get("parameters")
    if not isinstance(parameters, Mapping):
        return None
    segmentation = parameters.get("segmentation")
    preset = segmentation.get("preset") if isinstance(segmentation, Mapping) else parameters.get("preset")
    return preset if isinstance(preset, str) else None
