"""Runs shared by the HTML report tests: the sample converted with --report html, a labelled box, a sliced box.

Each is made once per session (a second or two each) and only read by the tests.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import assert_succeeded, run_cli

# html_helpers is a helper module of this folder, imported by plain name (importlib mode adds no folder).
# Appended, not put first: other tests import the root conftest by name.
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))

from html_helpers import SAMPLE_CT, box_stl


@dataclass(frozen=True)
class Run:
    folder: Path
    main: Path
    html: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def converted_sample(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``medprint convert samples/head_phantom_ct --preset bone --report html``."""
    folder = tmp_path_factory.mktemp("convert")
    outcome = run_cli("convert", SAMPLE_CT, "-o", folder / "skull.stl", "--preset", "bone", "--report", "html")
    assert_succeeded(outcome)
    return Run(folder, folder / "skull.stl", folder / "skull.report.html", outcome.stdout, outcome.stderr)


@pytest.fixture(scope="session")
def labelled_box(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``medprint design label`` on a box, with --report html (a part designed on a mesh: no scan)."""
    folder = tmp_path_factory.mktemp("label")
    source = box_stl(folder / "box.stl")
    out = folder / "out"
    out.mkdir()
    outcome = run_cli("design", "label", source, "--text", "L 12", "-o", out / "box_label.stl", "--report", "html")
    assert_succeeded(outcome)
    return Run(out, out / "box_label.stl", out / "box_label.report.html", outcome.stdout, outcome.stderr)


@pytest.fixture(scope="session")
def sliced_box(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``medprint slice`` of a small box with --report html."""
    folder = tmp_path_factory.mktemp("slice")
    source = box_stl(folder / "box.stl", (20.0, 15.0, 6.0))
    out = folder / "out"
    out.mkdir()
    outcome = run_cli("slice", source, "--printer", "prusa-mk4", "--material", "pla", "-o", out / "box.gcode",
                      "--report", "html")
    assert_succeeded(outcome)
    return Run(out, out / "box.gcode", out / "box.report.html", outcome.stdout, outcome.stderr)


@pytest.fixture(scope="session")
def implant_on_phantom(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``medprint design implant`` on the skull phantom with a defect, with --report html (a part on its anatomy)."""
    import nibabel as nib
    import numpy as np
    from phantoms_skull import skull_phantom

    from medprint.geometry import RAS_TO_LPS

    folder = tmp_path_factory.mktemp("implant")
    case = skull_phantom(spacing=(1.2, 1.2, 2.0), defect_direction=(1.0, 0.15, 0.35), defect_radius_mm=20.0)
    affine = case.volume.geometry.affine.copy()
    affine[:3] = RAS_TO_LPS @ affine[:3]  # NIfTI is RAS
    image = nib.Nifti1Image(np.ascontiguousarray(case.volume.array.transpose(2, 1, 0)), affine)
    image.set_qform(affine, 1)
    image.set_sform(affine, 1)
    nib.save(image, str(folder / "defect.nii.gz"))
    out = folder / "out"
    out.mkdir()
    outcome = run_cli("design", "implant", folder / "defect.nii.gz", "-o", out / "implant.stl", "--resolution", "1.0",
                      "--report", "html")
    assert_succeeded(outcome)
    return Run(out, out / "implant.stl", out / "implant.report.html", outcome.stdout, outcome.stderr)
