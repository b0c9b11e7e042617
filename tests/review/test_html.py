"""The HTML sign-off page: every section there, its numbers those of the JSON report, nothing from the network,
every picture a PNG, every report text escaped, no scan said plainly, no patient identity in it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from harness import assert_refused, assert_succeeded, files_in, run_cli
from html_helpers import SAMPLE_CT, at, box_stl, read_page

from medprint import __version__
from medprint.deliver.html_output import (
    NO_SCAN,
    HtmlReport,
    build_page,
    html_report_path,
)
from medprint.deliver.products import RunProducts
from medprint.io.outputs import RunOutputs
from medprint.mesh.model import Mesh
from medprint.review.page import CONTENT_SECURITY_POLICY, DECISIONS
from medprint.review.types import Shown

HOSTILE = '<script>alert("x")</script> "><img src=http://x.invalid/a.png> & \u202e'


def _report(run: Any) -> dict[str, Any]:
    return json.loads(run.main.with_name(run.main.stem + ".report.json").read_text())


def _leaves(data: Mapping[str, Any], key: str) -> Iterator[tuple[str, Any]]:
    for name, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, f"{key}.{name}")
        else:
            yield f"{key}.{name}", value


def test_convert_page_has_every_section_and_names_only_the_output(converted_sample) -> None:
    assert converted_sample.html.is_file()
    assert f"html report: {converted_sample.html}" in converted_sample.stdout
    page = read_page(converted_sample.html)
    for section in ("scan", "model", "numbers", "parameters", "choices", "sign-off"):
        assert section in page.section_ids, section
    assert page.section_ids.index("scan") < page.section_ids.index("model") < page.section_ids.index("numbers")
    assert "skull.stl" in page.text and "medprint convert" in page.text
    assert f"medprint version {__version__}" in page.text
    # The input's and the output folder's paths never (either may carry a patient's name).
    assert str(converted_sample.folder) not in page.html
    assert "head_phantom_ct" not in page.html
    assert "Display window" in page.section_text["scan"] and "bone" in page.section_text["scan"]


def test_numbers_on_the_page_are_the_json_reports(converted_sample) -> None:
    report = _report(converted_sample)
    page = read_page(converted_sample.html)
    mesh = report["parts"][0]["mesh"]
    for name in ("volume_mm3", "area_mm2", "triangles", "bodies", "cavities", "surface_deviation_mm"):
        assert f"parts.0.mesh.{name}" in page.row_keys(), name
    checked = 0
    for row in page.rows:
        if row.value is None or not row.key.startswith(("parts.", "parameters.")):
            continue
        assert float(row.value) == pytest.approx(float(at(report, row.key)), rel=0, abs=0), row
        checked += 1
    assert checked >= 8
    assert f"{mesh['volume_mm3'] / 1000:.2f} ml" in page.row("parts.0.mesh.volume_mm3").text
    assert page.row("input.modality").text == report["input"]["modality"]
    assert page.row("input.sha256").text.startswith(report["input"]["volume_sha256"][:16])
    assert page.row("parts.0.mesh.watertight").text == ("yes" if mesh["watertight"] else "NO")
    size = page.row("parts.0.mesh.bounding_box_mm.size").text
    assert [float(v) for v in re.findall(r"-?\d+\.\d", size)] == [round(v, 1) for v in mesh["bounding_box_mm"]["size"]]


def test_every_parameter_of_the_report_is_listed(converted_sample) -> None:
    report = _report(converted_sample)
    page = read_page(converted_sample.html)
    leaves = list(_leaves(report["parameters"], "parameters"))
    assert len(leaves) > 10
    for key, value in leaves:
        row = page.row(key)
        if value is None:
            assert row.text == "not set", (key, row.text)
        elif isinstance(value, bool):
            assert row.text == ("yes" if value else "no"), (key, row.text)
        elif isinstance(value, str):
            assert row.text == value, (key, row.text)
        elif isinstance(value, (int, float)):
            assert float(row.text) == pytest.approx(value), (key, row.text)


def test_choices_and_warnings_are_shown(converted_sample) -> None:
    report = _report(converted_sample)
    text = read_page(converted_sample.html).section_text["choices"]
    assert report["choices"]
    for choice in report["choices"]:
        assert choice in text
    assert "Warnings" in text and ("No warnings." in text or all(w in text for w in report["warnings"]))


def test_sign_off_block_can_be_filled_in_and_printed(converted_sample) -> None:
    page = read_page(converted_sample.html)
    inputs = {attrs.get("id"): attrs for attrs in page.attrs("input") if attrs.get("id")}
    assert inputs["reviewer"]["type"] == "text" and inputs["role"]["type"] == "text"
    assert inputs["review-date"]["type"] == "date"
    radios = [attrs["value"] for attrs in page.attrs("input") if attrs.get("type") == "radio"]
    assert radios == list(DECISIONS) == ["approved", "approved with changes", "rejected"]
    assert [attrs.get("id") for attrs in page.attrs("textarea")] == ["comments"]
    assert any("signature-line" in attrs.get("class", "") for name, attrs in page.tags)
    assert "Signature" in page.section_text["sign-off"]
    assert "@media print" in page.html and "break-before: page" in page.html and "print-color-adjust: exact" in page.html


@pytest.mark.parametrize("run", ["converted_sample", "labelled_box", "sliced_box", "implant_on_phantom"])
def test_page_needs_nothing_from_the_network(run: str, request: pytest.FixtureRequest) -> None:
    page = read_page(request.getfixturevalue(run).html)
    csp = [attrs["content"] for attrs in page.attrs("meta") if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [CONTENT_SECURITY_POLICY]
    assert "default-src 'none'" in csp[0] and "img-src data:" in csp[0]
    for tag in ("script", "link", "iframe", "object", "embed", "base", "form", "video", "audio", "source"):
        assert not page.attrs(tag), tag
    for name, attrs in page.tags:
        for attribute in ("href", "action", "srcset", "poster", "formaction"):
            assert attribute not in attrs, (name, attribute)
        if "src" in attrs:
            assert attrs["src"].startswith("data:image/png;base64,"), attrs["src"][:40]
    assert "http://" not in page.html and "https://" not in page.html
    assert "url(" not in page.html and "@import" not in page.html


@pytest.mark.parametrize("run, least", [("converted_sample", 7), ("labelled_box", 3), ("sliced_box", 1)])
def test_every_image_is_a_png_that_pil_decodes(run: str, least: int, request: pytest.FixtureRequest) -> None:
    page = read_page(request.getfixturevalue(run).html)
    pictures = page.images()
    assert len(pictures) >= least
    for picture, attrs in zip(pictures, page.attrs("img")):
        assert picture.size == (int(attrs["width"]), int(attrs["height"]))
        assert min(picture.size) >= 64
        # Not a blank square: the picture shows something.
        assert np.asarray(picture.convert("L")).std() > 5


def test_orientation_letters_are_text_around_each_picture(converted_sample) -> None:
    page = read_page(converted_sample.html)
    letters = [(attrs["class"], attrs.get("title", "")) for attrs in page.attrs("span")
               if "orientation" in attrs.get("class", "").split()]
    edges = {cls.split()[-1] for cls, _ in letters}
    assert edges == {"orientation-top", "orientation-bottom", "orientation-left", "orientation-right"}
    shown = set(re.findall(r'class="orientation orientation-\w+" title="[^"]*">([APLRSI])<', page.html))
    assert shown == set("APLRSI")
    # The anterior view has the patient's right on the image left, as radiology shows it.
    anterior = page.html.split("Anterior view", 1)[1].split("</figure>", 1)[0]
    assert 'orientation-left" title="patient&#x27;s right">R<' in anterior
    assert 'orientation-top" title="superior">S<' in anterior


def test_part_designed_on_a_mesh_says_there_is_no_scan(labelled_box) -> None:
    page = read_page(labelled_box.html)
    scan = page.section_text["scan"]
    assert "No scan given" in scan and "--source" in scan
    assert "Segmentation over the scan" in scan
    section = page.html.split('id="scan"', 1)[1].split("</section>", 1)[0]
    assert "<img" not in section and 'class="note no-scan"' in section
    assert "design" in page.section_ids and "model" in page.section_ids
    assert page.row("design.measurements.text").text == "L 12"
    assert "medprint design label" in page.text


def test_implant_page_shows_it_over_the_scan_and_on_its_skull(implant_on_phantom) -> None:
    report = _report(implant_on_phantom)
    page = read_page(implant_on_phantom.html)
    assert {"scan", "model", "fit", "numbers", "design"} <= set(page.section_ids)
    fit = page.html.split('id="fit"', 1)[1].split("</section>", 1)[0]
    assert fit.count("<img") == 3  # anterior, left, superior: the implant in its skull
    scan = page.html.split('id="scan"', 1)[1].split("</section>", 1)[0]
    assert scan.count("<img") == 3 and "no-scan" not in scan
    measured = report["design"]["measurements"]["min_wall_mm"]["measured"]
    assert float(page.row("design.measurements.min_wall").value) == measured
    assert f"{measured:.2f} mm" in page.row("design.measurements.min_wall").text
    assert "medprint design implant" in page.text and "defect.nii.gz" not in page.html
    assert "Display window: bone" in page.section_text["scan"] and "no bone or soft-tissue preset" not in page.text


def test_a_part_designed_on_a_mesh_is_shown_over_its_source_scan(tmp_path: Path) -> None:
    box = box_stl(tmp_path / "box.stl")  # inside the sample scan's extent, at the origin
    out = tmp_path / "out"
    out.mkdir()
    refused = run_cli("design", "label", box, "--text", "R", "-o", out / "part.stl", "--source", SAMPLE_CT)
    assert refused.exit_code == 2 and "--dicom-stl" in refused.stderr  # --source alone feeds only those two
    outcome = run_cli("design", "label", box, "--text", "R", "-o", out / "part.stl", "--source", SAMPLE_CT,
                      "--report", "html")
    assert_succeeded(outcome)
    page = read_page(out / "part.report.html")
    scan = page.html.split('id="scan"', 1)[1].split("</section>", 1)[0]
    assert scan.count("<img") == 3 and "no-scan" not in scan
    assert "series 1 chosen" in page.section_text["choices"]  # the choice made loading --source is said
    assert "head_phantom_ct" not in page.html


def test_sliced_page_shows_the_layers_and_the_estimates_of_the_gcode(sliced_box) -> None:
    header = sliced_box.main.read_text()[:4000]
    layers = int(re.search(r"; layer count: (\d+)", header).group(1))
    seconds = float(re.search(r"; estimated printing time: .*\((\d+) s\)", header).group(1))
    grams = float(re.search(r"; filament used \[g\]: ([\d.]+)", header).group(1))
    page = read_page(sliced_box.html)
    assert "layers" in page.section_ids
    assert int(page.row("layer_count").value) == layers
    assert float(page.row("estimated_time_s").value) == pytest.approx(seconds, abs=1)
    assert float(page.row("filament_g").value) == pytest.approx(grams, abs=0.01)
    assert page.row("printer").text == "prusa-mk4" and page.row("material").text == "pla"
    section = page.html.split('id="layers"', 1)[1].split("</section>", 1)[0]
    assert "<img" in section
    # A slice report's output path is absolute; the page names the file only.
    assert str(sliced_box.folder) not in page.html


def _box_mesh(name: str) -> Mesh:
    box = trimesh.creation.box(extents=(20.0, 10.0, 6.0))
    return Mesh(np.asarray(box.vertices, float), np.asarray(box.faces, np.int64), name)


def _hostile_report() -> dict[str, Any]:
    return {
        "choices": [HOSTILE], "warnings": [HOSTILE + " (warning)"], "order": {"id": HOSTILE},
        "parameters": {"text": HOSTILE, "group": {HOSTILE: HOSTILE}},
        "parts": [{"name": HOSTILE, "mesh": {"volume_mm3": 1200.0, "triangles": 12, "watertight": False}}],
        "design": {"kind": HOSTILE, "method": HOSTILE, "measurements": {"text": HOSTILE}},
    }


def test_every_report_text_is_escaped(tmp_path: Path) -> None:
    with RunOutputs(overwrite=False) as run:
        products = RunProducts(command="design label", main_output=tmp_path / "a<b>&.stl", report=_hostile_report(),
                               shown=(Shown(HOSTILE, _box_mesh(HOSTILE), (200, 100, 50)),), part_files={},
                               outputs=run)
        html, _ = build_page(products)
    assert "<script" not in html and "<img src=http" not in html
    assert "\u202e" not in html and "[U+202E]" in html  # a right-to-left override is shown, not obeyed
    page = read_page(html)
    for section in ("choices", "parameters", "design", "numbers"):
        assert HOSTILE.replace("\u202e", "[U+202E]") in page.section_text[section], section
    assert HOSTILE.split(" ")[0] in page.text  # the text is shown, as text
    assert page.row("parts.0.mesh.watertight").text == "NO" and "bad" in page.row("parts.0.mesh.watertight").classes
    assert "a&lt;b&gt;&amp;.stl" in html
    assert [attrs.get("src", "")[:22] for attrs in page.attrs("img")] == ["data:image/png;base64,"] * len(
        page.attrs("img"))


def test_the_page_is_staged_with_the_run_and_written_only_at_commit(tmp_path: Path) -> None:
    target = html_report_path(tmp_path / "part.stl")
    assert target == tmp_path / "part.report.html"
    products = {"command": "design label", "main_output": tmp_path / "part.stl", "report": {"choices": []},
                "shown": (Shown("part", _box_mesh("part"), (200, 100, 50)),), "part_files": {}}
    page = HtmlReport(target)
    with pytest.raises(RuntimeError), RunOutputs(overwrite=False) as run:
        page.reserve(run)
        page.write(RunProducts(outputs=run, **products))
        assert not target.exists() and run.staged_file(target).stat().st_size > 1000
        raise RuntimeError("the run fails before its commit")
    assert files_in(tmp_path) == set()
    with RunOutputs(overwrite=False) as run:
        page.reserve(run)
        assert page.write(RunProducts(outputs=run, **products)) == (target,) == page.written
        run.commit()
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert NO_SCAN in page.notes


def _identity_found(tokens: tuple[str, ...], outcome: Any, page: Path) -> list[str]:
    """Tokens in the terminal, the page's text and markup, or any PNG's metadata.

    The pictures' base64 is left out of the text search: a megabyte of it holds any given four letters,
    case aside, about once by chance (it is decoded and its PNG text chunks searched instead).
    """
    html = page.read_text(encoding="utf-8")
    markup = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", html)
    chunks = " ".join(f"{k}={v}" for picture in read_page(html).images() for k, v in picture.info.items())
    places = {"stdout": outcome.stdout, "stderr": outcome.stderr, page.name: markup, "PNG metadata": chunks}
    return [f"{token!r} in {where}" for token in tokens for where, text in places.items()
            if token.lower() in text.lower()]


def test_the_input_path_is_shown_only_when_asked_for(tmp_path: Path) -> None:
    outcome = run_cli("convert", SAMPLE_CT, "-o", tmp_path / "x.stl", "--preset", "bone", "--report", "html",
                      "--show-phi")
    assert_succeeded(outcome)
    page = read_page(tmp_path / "x.report.html")
    assert page.row("input.path").text == str(SAMPLE_CT)


def test_no_patient_identity_reaches_the_page_or_the_terminal(tmp_path: Path) -> None:
    from test_phi import write_phi_series

    series = write_phi_series(tmp_path / "scans")
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("convert", series.root, "-o", out / "model.stl", "--preset", "bone", "--report", "html")
    assert_succeeded(outcome)
    assert _identity_found(series.tokens, outcome, out / "model.report.html") == []
    again = run_cli("report", out / "model.stl", "--source", series.root, "-o", out / "again.html")
    assert_succeeded(again)
    assert len(read_page(out / "again.html").images()) >= 7  # the scan is shown, its identity is not
    assert _identity_found(series.tokens, again, out / "again.html") == []


@pytest.mark.realdata
def test_real_skull_report_shows_scan_model_and_numbers(real_data, tmp_path: Path) -> None:
    scan = real_data("invesalius_cranium_ct/cranium_ct.nii.gz")
    outcome = run_cli("convert", scan, "-o", tmp_path / "skull.stl", "--preset", "bone", "--report", "html")
    assert_succeeded(outcome)
    report = json.loads((tmp_path / "skull.report.json").read_text())
    page = read_page(tmp_path / "skull.report.html")
    assert len(page.images()) == 7  # montage, coronal, sagittal; four model views
    assert int(page.row("parts.0.mesh.triangles").value) == report["mesh"]["triangles"] > 300_000
    assert float(page.row("parts.0.mesh.volume_mm3").value) == report["mesh"]["volume_mm3"]
    assert "Display window: bone" in page.section_text["scan"]
    assert "cranium_ct" not in page.html and "invesalius" not in page.html


def test_a_page_that_cannot_be_written_stops_the_run_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "x.report.html").mkdir()  # the page's name is taken by a folder
    outcome = run_cli("convert", SAMPLE_CT, "-o", tmp_path / "x.stl", "--preset", "bone", "--report", "html")
    assert_refused(outcome, mentions=["--report html", "is a folder"], out_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.report.html"]
