"""No patient identity in anything a batch or `medprint run` writes or prints, failed orders included.

The scan is the DICOM series of ``test_phi`` (every PS3.15 text attribute set to a distinctive string, in
patient-named folders and files below the folder the order names).
"""

from __future__ import annotations

from pathlib import Path

from harness import Outcome, run_cli
from test_phi import PhiSeries, _bytes_of, phi_series  # noqa: F401  (the fixture)

from medprint.batch.folders import BATCH_FILES


def _batch_file(folder: Path, scan: Path) -> Path:
    text = f'''
[defaults]
input = "{scan}"

[[order]]
id = "ORD-1 bone"
output = "bone.stl"
gcode = "bone.gcode"
printer = "prusa-mk4"
material = "pla"
[order.provenance]
indication = "cranioplasty"

[[order]]
id = "ORD-2 parts"
output = "bone.3mf"
smooth = 5

[[order]]
id = "ORD-3 fails"
output = "none.stl"
threshold = [5000, 6000]
'''
    path = folder / "week.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _leaks(tokens: tuple[str, ...], outcome: Outcome, folder: Path) -> list[str]:
    sources = [("stdout", outcome.stdout.encode()), ("stderr", outcome.stderr.encode())]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sources += [(f"{path.relative_to(folder)}:{name}", data) for name, data in _bytes_of(path)]
    return [f"{token!r} in {where}" for token in tokens for where, data in sources
            if token.lower().encode() in data.lower()]


def test_no_ps315_text_reaches_any_batch_output(phi_series: PhiSeries, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "results"
    for extra in ([], ["--json"]):
        outcome = run_cli("batch", _batch_file(tmp_path, phi_series.root), "-o", out, "--workers", "2", *extra)
        assert outcome.exit_code == 3, outcome.stderr  # the third order fails, the others are done
        folders = {p.name for p in out.iterdir() if p.is_dir()}
        assert {"ORD-1_bone", "ORD-2_parts", "ORD-3_fails"} <= folders
        assert {"bone.stl", "bone.gcode", "bone.report.json", *BATCH_FILES} <= {
            p.name for p in (out / "ORD-1_bone").iterdir()}
        assert _leaks(phi_series.tokens, outcome, out) == []


def test_no_ps315_text_reaches_medprint_run_or_a_saved_order(phi_series: PhiSeries,  # noqa: F811
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    saved = run_cli("convert", phi_series.root, "-o", out / "bone.stl", "--save-order", out / "bone.toml")
    assert saved.exit_code == 0, saved.stderr
    again = tmp_path / "again"
    outcome = run_cli("run", out / "bone.toml", "-o", again, "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert (again / "bone.stl").is_file()
    assert _leaks(phi_series.tokens, saved, out) == []
    assert _leaks(phi_series.tokens, outcome, again) == []
