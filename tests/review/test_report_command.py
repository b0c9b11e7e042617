"""`medprint report` on outputs made earlier: a converted mesh (with and without its JSON report, with and without
the scan), G-code, and bad input refused in one line with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from harness import assert_refused, assert_succeeded, files_in, run_cli
from html_helpers import SAMPLE_CT, box_stl, read_page

from medprint.io.mesh_files import read_mesh_file
from medprint.mesh import assess_mesh


@pytest.fixture
def copied_sample(converted_sample, tmp_path: Path) -> Path:
    """The converted sample's mesh and JSON report, in a folder of their own (no HTML page yet)."""
    for name in ("skull.stl", "skull.report.json"):
        shutil.copy(converted_sample.folder / name, tmp_path / name)
    return tmp_path / "skull.stl"


def test_report_of_a_converted_mesh_without_source_shows_the_model_and_says_so(copied_sample: Path) -> None:
    outcome = run_cli("report", copied_sample)
    assert_succeeded(outcome)
    page_path = copied_sample.with_name("skull.report.html")
    assert outcome.stdout.strip() == f"html report: {page_path}"
    notes = [line for line in outcome.stderr.splitlines() if "No scan given" in line]
    assert len(notes) == 1 and "--source" in notes[0]
    page = read_page(page_path)
    assert "No scan given" in page.section_text["scan"]
    report = json.loads(copied_sample.with_name("skull.report.json").read_text())
    assert float(page.row("parts.0.mesh.volume_mm3").value) == report["parts"][0]["mesh"]["volume_mm3"]
    assert report["choices"][0] in page.section_text["choices"]
    assert len(page.images()) == 4  # the model views, no scan
    assert files_in(copied_sample.parent) == {"skull.stl", "skull.report.json", "skull.report.html"}


def test_report_with_source_outlines_the_mesh_over_the_scan(copied_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "pages"
    out.mkdir()
    outcome = run_cli("report", copied_sample, "--source", SAMPLE_CT, "-o", out / "review.html")
    assert_succeeded(outcome)
    assert "No scan given" not in outcome.stderr
    page = read_page(out / "review.html")
    scan = page.html.split('id="scan"', 1)[1].split("</section>", 1)[0]
    assert scan.count("<img") == 3 and "no-scan" not in scan  # montage, coronal, sagittal
    # The window of the preset the JSON report names (bone), not a guess.
    assert "Display window: bone" in page.section_text["scan"] and "no bone or soft-tissue preset" not in page.text
    assert "head_phantom_ct" not in page.html and str(SAMPLE_CT) not in page.html
    assert files_in(out) == {"review.html"}


def test_report_without_a_json_report_measures_the_mesh_and_says_so(copied_sample: Path) -> None:
    copied_sample.with_name("skull.report.json").unlink()
    outcome = run_cli("report", copied_sample, "--json")
    assert_succeeded(outcome)
    said = json.loads(outcome.stdout)
    assert said["html"] == str(copied_sample.with_name("skull.report.html")) and said["scan_shown"] is False
    assert any("measured from the mesh" in note for note in said["notes"])
    page = read_page(copied_sample.with_name("skull.report.html"))
    quality = assess_mesh(read_mesh_file(copied_sample))
    assert float(page.row("parts.0.mesh.volume_mm3").value) == round(quality.volume_mm3, 2)
    assert float(page.row("parts.0.mesh.area_mm2").value) == round(quality.area_mm2, 2)
    assert "measured from the mesh" in page.section_text["choices"]
    assert "parameters" not in page.section_ids  # not known: not invented


def test_report_says_when_the_mesh_changed_after_its_json_report(copied_sample: Path, tmp_path: Path) -> None:
    report_path = copied_sample.with_name("skull.report.json")
    report = json.loads(report_path.read_text())
    report["parts"][0]["mesh"]["triangles"] += 2
    report_path.write_text(json.dumps(report))
    assert_succeeded(run_cli("report", copied_sample))
    notes = read_page(copied_sample.with_name("skull.report.html")).section_text["choices"]
    assert "changed after the report was written" in notes


def test_report_with_anatomy_draws_the_part_on_it(labelled_box, tmp_path: Path) -> None:
    anatomy = labelled_box.folder.parent / "box.stl"
    outcome = run_cli("report", labelled_box.main, "--anatomy", anatomy, "-o", tmp_path / "fit.html")
    assert_succeeded(outcome)
    page = read_page(tmp_path / "fit.html")
    fit = page.html.split('id="fit"', 1)[1].split("</section>", 1)[0]
    assert fit.count("<img") == 3
    assert page.row("design.measurements.text").text == "L 12"  # the label's own JSON report was read
    assert "medprint design label" in page.text


def test_report_of_gcode_shows_its_estimates(sliced_box, tmp_path: Path) -> None:
    gcode = tmp_path / "box.gcode"
    shutil.copy(sliced_box.main, gcode)
    outcome = run_cli("report", gcode, "--overwrite")
    assert_succeeded(outcome)
    page = read_page(tmp_path / "box.report.html")
    made_by_slice = read_page(sliced_box.html)
    for key in ("layer_count", "filament_g", "filament_mm", "filament_cost"):
        assert float(page.row(key).value) == pytest.approx(float(made_by_slice.row(key).value), abs=0.051), key
    assert float(page.row("estimated_time_s").value) == pytest.approx(float(made_by_slice.row("estimated_time_s")
                                                                             .value), abs=1)
    assert page.row("printer").text == "prusa-mk4"
    assert "<img" in page.html.split('id="layers"', 1)[1].split("</section>", 1)[0]


def test_existing_page_is_kept_without_overwrite_and_replaced_with_it(copied_sample: Path) -> None:
    page = copied_sample.with_name("skull.report.html")
    page.write_text("mine")
    before = files_in(copied_sample.parent)
    assert_refused(run_cli("report", copied_sample), mentions=["skull.report.html", "--overwrite"])
    assert page.read_text() == "mine" and files_in(copied_sample.parent) == before
    assert_succeeded(run_cli("report", copied_sample, "--overwrite"))
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a mesh")
    garbage = tmp_path / "broken.stl"
    garbage.write_bytes(b"solid x\nfacet nonsense\n")
    mesh = box_stl(tmp_path / "box.stl")
    (tmp_path / "box.report.json").write_text("{ not json")
    other = box_stl(tmp_path / "other.stl")
    (tmp_path / "other.report.json").write_text('["a list"]')
    plain = box_stl(tmp_path / "plain.stl")
    gcode = tmp_path / "part.gcode"
    gcode.write_text("G1 X1 Y1\n")
    cases = [
        (["report", tmp_path / "missing.stl", "-o", out / "a.html"], ["missing.stl", "does not exist"], 1),
        (["report", notes, "-o", out / "a.html"], ["notes.txt", "neither a mesh"], 1),
        (["report", garbage, "-o", out / "a.html"], ["broken.stl"], 1),
        (["report", mesh, "-o", out / "a.html"], ["box.report.json", "cannot be read"], 1),
        (["report", other, "-o", out / "a.html"], ["other.report.json", "not a medprint report"], 1),
        (["report", other, "--source-series", "2", "-o", out / "a.html"], ["--source-series", "--source"], 2),
        (["report", other, "--source", tmp_path / "no-scan", "-o", out / "a.html"], ["--source", "no-scan"], 1),
        (["report", other, "-o", tmp_path / "no-folder" / "a.html"], ["no-folder", "does not exist"], 1),
        (["report", gcode, "--anatomy", other, "-o", out / "a.html"], ["--anatomy", "G-code"], 1),
        (["report", plain, "--anatomy", notes, "-o", out / "a.html"], ["notes.txt"], 1),
    ]
    for args, mentions, code in cases:
        assert_refused(run_cli(*args), mentions=mentions, exit_code=code, out_dir=out)


def test_a_scan_that_fails_to_load_leaves_no_page(tmp_path: Path) -> None:
    mesh = box_stl(tmp_path / "box.stl")
    not_a_scan = tmp_path / "scan"
    not_a_scan.mkdir()
    (not_a_scan / "readme.txt").write_text("no DICOM here")
    before = files_in(tmp_path)
    outcome = run_cli("report", mesh, "--source", not_a_scan)
    assert_refused(outcome, mentions=["scan"], exit_code=1)
    assert files_in(tmp_path) == before


def test_report_reads_the_estimates_of_prusaslicer_gcode(tmp_path: Path) -> None:
    moves = "".join(f";LAYER_CHANGE\n;Z:{0.2 * (k + 1):.1f}\nG1 Z{0.2 * (k + 1):.1f}\nG1 X10 Y10 E0.5\n"
                    "G1 X20 Y10 E1.0\nG1 X20 Y20 E1.5\n" for k in range(5))
    footer = ("; filament used [mm] = 1234.56\n; filament used [g] = 3.68\n; total filament cost = 0.09\n"
              "; estimated printing time (normal mode) = 1h 2m 3s\n; printer_settings_id = Original Prusa MK4\n"
              "; filament_settings_id = Prusament PLA\n")
    gcode = tmp_path / "part.gcode"
    gcode.write_text("; generated by PrusaSlicer 2.7.1\nG90\nM83\n" + moves + footer)
    assert_succeeded(run_cli("report", gcode))
    page = read_page(tmp_path / "part.report.html")
    assert float(page.row("estimated_time_s").value) == 3723.0
    assert float(page.row("filament_mm").value) == 1234.56 and float(page.row("filament_g").value) == 3.68
    assert int(page.row("layer_count").value) == 5  # counted from ;LAYER_CHANGE, none stated
    assert page.row("printer").text == "Original Prusa MK4" and page.row("material").text == "Prusament PLA"
