"""No patient data in what the design commands and `check` write or print (issue 10, the rule of issue 9).

The scan is the PS3.15 series of test_phi (every text attribute of the Basic Confidentiality Profile, in
patient-named folders and files); each command's every output byte, stdout and stderr are searched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import assert_refused, assert_succeeded, run_cli
from test_phi import PhiSeries, leaks, strict_json, write_phi_series


@pytest.fixture(scope="module")
def phi_series(tmp_path_factory: pytest.TempPathFactory) -> PhiSeries:
    return write_phi_series(tmp_path_factory.mktemp("ps315-design") / "scans")


DESIGNS = {
    "orthosis": ["design", "orthosis", "{scan}", "-o", "{out}/part.stl", "--gap", "1", "--thickness", "1.5",
                 "--axis", "0,0,1", "--json"],
    "hollow": ["-v", "design", "hollow", "{scan}", "--preset", "bone", "-o", "{out}/part.stl", "--wall", "1"],
}


@pytest.mark.parametrize("kind", list(DESIGNS))
def test_no_ps315_text_reaches_a_design_from_the_scan(phi_series: PhiSeries, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(*[a.format(scan=phi_series.root, out=out) for a in DESIGNS[kind]])
    assert_succeeded(outcome)
    assert (out / "part.stl").exists()
    strict_json((out / "part.report.json").read_text())
    assert leaks(phi_series.tokens, outcome, out) == []


def test_a_refused_implant_names_nothing_of_the_patient(phi_series: PhiSeries, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # A ball of bone has no defect: refused, and the refusal names neither the patient nor the files.
    outcome = run_cli("design", "implant", phi_series.root, "-o", out / "implant.stl")
    assert_refused(outcome, mentions=["no defect"], out_dir=out)
    assert leaks(phi_series.tokens, outcome, out) == []


def test_no_ps315_text_reaches_label_or_check(phi_series: PhiSeries, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert_succeeded(run_cli("convert", phi_series.root, "-o", out / "model.stl", "--no-report"))
    labelled = run_cli("design", "label", out / "model.stl", "--text", "AB", "--size", "2", "--height", "0.5",
                       "-o", out / "labelled.3mf", "--json")
    assert_succeeded(labelled)
    checked = run_cli("check", out / "labelled.3mf", "--json")
    assert checked.exit_code == 0, checked.stderr
    strict_json(checked.stdout)
    for outcome in (labelled, checked):
        assert leaks(phi_series.tokens, outcome, out) == []
