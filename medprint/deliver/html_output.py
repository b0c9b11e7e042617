"""The HTML sign-off report as an extra output of a run (``--report html``)."""
# OWNER: helper "review-html". Interface fixed by the lead; fill in the bodies.

from __future__ import annotations

from pathlib import Path

from ..io.dicom_identity import IdentitySource
from ..io.outputs import RunOutputs
from .products import RunProducts


def html_report_path(main_output: Path) -> Path:
    """``<stem>.report.html`` beside the run's main output (as the JSON report is ``<stem>.report.json``)."""
    raise NotImplementedError


class HtmlReport:
    """Writes one self-contained HTML sign-off report for the run's output.

    ``source``: where to load the scan from when the run itself read none (a part designed on a mesh, with
    ``--source SERIES``); None when the run's products carry the scan, or there is none to show.
    """

    def __init__(self, path: Path, *, source: IdentitySource | None = None) -> None:
        self.path = Path(path)
        self.source = source
        self.written: tuple[Path, ...] = ()

    def reserve(self, outputs: RunOutputs) -> None:
        outputs.reserve(self.path, "--report html")

    def write(self, products: RunProducts) -> tuple[Path, ...]:
        raise NotImplementedError
