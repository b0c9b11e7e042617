"""The ``design hollow`` and ``design label`` jobs: every option of the commands as data, every conflict found
at once, and a run from a request that records the order it came from."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from design.phantoms_tube import bent_tube
from harness import assert_refused, files_in, run_cli
from phantoms_label import box_mesh

from medprint.io.mesh_files import read_mesh_file, write_mesh
from medprint.jobs import job_spec
from medprint.jobs.design_hollow import SPEC as HOLLOW
from medprint.jobs.design_label import SPEC as LABEL
from medprint.jobs.spec import Custom, FilePath, ValueProblem
from medprint.mesh import assess_mesh

#: The long options of ``medprint design hollow`` before it was built from a spec, and their keywords.
HOLLOW_OPTIONS = {
    "output": "output_path", "wall": "wall_mm", "side": "side", "ends": "open_ends", "cut": "cuts",
    "drain": "drain_mm", "up": "up", "resolution": "resolution_mm", "smooth": "smooth", "labels": "labels_path",
    "label": "label_name", "labels-names": "labels_names", "preset": "preset", "threshold": "threshold",
    "seed": "seeds", "range": "grow_range", "overwrite": "overwrite", "no-report": "no_report",
    "show-phi": "show_phi",
}
#: The same for ``medprint design label``.
LABEL_OPTIONS = {
    "text": "text", "output": "output_path", "at": "at_lps", "up": "up_lps", "size": "size_mm",
    "height": "height_mm", "depth": "depth_mm", "font": "font", "printer": "printer_name",
    "profiles": "profiles_dir", "thicken": "thicken", "flatness": "flatness_mm",
    "max-repair-move": "max_repair_move", "overwrite": "overwrite", "no-report": "no_report",
    "show-phi": "show_phi",
}
#: The top face of the default box phantom (60 x 40 x 20 mm centred at 12.3,-45.6,78.9).
TOP = (12.3, -45.6, 88.9)

ORDER = {"id": "2026-0412 tube", "command": "design hollow", "parameters": {"wall": 1.5},
         "provenance": {"indication": "vascular model"}, "notes": None, "sha256": "0" * 64,
         "medprint_version": "test"}


@pytest.fixture(scope="module")
def tube_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tube = bent_tube()
    path = tmp_path_factory.mktemp("in") / "tube.nii.gz"
    image = np.ascontiguousarray(tube.mask.array.transpose(2, 1, 0)).astype(np.uint8)
    nib.save(nib.Nifti1Image(image, np.diag([0.7, 0.8, 1.1, 1.0])), str(path))
    return path


@pytest.fixture
def box_file(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "box.stl"
    path.parent.mkdir()
    write_mesh(box_mesh(), path)
    return path


# --- the options ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, options, argument", [
    (HOLLOW, HOLLOW_OPTIONS, "input_path"), (LABEL, LABEL_OPTIONS, "mesh_path"),
], ids=["hollow", "label"])
def test_the_spec_has_every_option_of_the_old_command(spec, options, argument) -> None:
    from medprint.jobs.deliver import PART_DELIVERY

    delivery = {opt.name: opt.dest for opt in PART_DELIVERY}
    assert {opt.name: opt.dest for opt in spec.options} == options | delivery
    assert spec.argument.dest == argument
    assert job_spec(spec.name) is spec


@pytest.mark.parametrize("words, options", [("hollow", HOLLOW_OPTIONS), ("label", LABEL_OPTIONS)])
def test_the_cli_offers_every_option_under_its_old_name(words: str, options: dict[str, str]) -> None:
    from medprint.commands.design import command as design

    command = design.get_command(None, words)  # type: ignore[arg-type]
    flags = {flag for param in command.params for flag in getattr(param, "opts", [])}
    assert {f"--{name}" for name in options} | {"-o"} <= flags
    by_dest = {param.name: param for param in command.params}
    assert set(options.values()) <= set(by_dest)


def test_hollow_defaults_and_kinds_are_the_old_ones() -> None:
    defaults = HOLLOW.defaults()
    assert (defaults["wall_mm"], defaults["resolution_mm"], defaults["smooth"]) == (1.5, 0.5, 20)
    assert (defaults["side"], defaults["open_ends"]) == ("outside", "auto")
    assert defaults["cuts"] == defaults["up"] == defaults["seeds"] == ()
    for name in ("cut", "up", "seed"):
        opt = HOLLOW.option(name)
        assert opt.multiple and isinstance(opt.kind, Custom)
        assert opt.parse([[1, 2, 3], "4,5,6"]) == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
        with pytest.raises(ValueProblem):
            opt.parse("1,2")
    for name in ("threshold", "range"):
        opt = HOLLOW.option(name)
        assert opt.parse("200:700") == opt.parse([200, 700]) == (200.0, 700.0)
        with pytest.raises(ValueProblem):
            opt.parse("700:200")
    with pytest.raises(ValueProblem, match="range"):
        HOLLOW.option("smooth").parse(501)
    roles = {opt.name: opt.kind.role for opt in HOLLOW.options if isinstance(opt.kind, FilePath)}
    assert roles == {"output": "output", "labels": "input", "labels-names": "input", "dicom-stl": "output",
                     "source": "input"}
    assert HOLLOW.option("labels-names").kind.fragment


def test_label_defaults_and_kinds_are_the_old_ones() -> None:
    defaults = LABEL.defaults()
    assert (defaults["size_mm"], defaults["font"], defaults["max_repair_move"]) == (5.0, "bold", 0.5)
    assert defaults["height_mm"] is defaults["depth_mm"] is None
    assert LABEL.option("text").required and LABEL.option("output").required
    for name in ("at", "up"):
        opt = LABEL.option(name)
        assert opt.multiple and opt.parse("1,2,3") == ((1.0, 2.0, 3.0),)
    for name, bad in (("size", 0), ("size", 101), ("height", 0), ("depth", 11), ("flatness", 51),
                      ("max-repair-move", -1)):
        with pytest.raises(ValueProblem):
            LABEL.option(name).parse(bad)
    roles = {opt.name: opt.kind.role for opt in LABEL.options if isinstance(opt.kind, FilePath)}
    assert roles == {"output": "output", "profiles": "input", "dicom-stl": "output", "source": "input"}
    assert not LABEL.option("overwrite").in_order and not LABEL.option("no-report").in_order


# --- conflicts --------------------------------------------------------------------------------------------------


def test_hollow_check_finds_every_conflict_at_once(tmp_path: Path) -> None:
    request = HOLLOW.request({
        "input_path": tmp_path / "scan.nii.gz", "output_path": tmp_path / "out.stl",
        "labels_path": tmp_path / "labels.nii.gz", "preset": "blood-pool", "threshold": (200.0, 700.0),
        "up": ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0)), "grow_range": (200.0, 700.0),
        "labels_names": tmp_path / "names.json",
    })
    assert [c.message for c in HOLLOW.check(request)] == [
        "--labels and --preset and --threshold each choose the lumen: give one",
        "--up is one direction X,Y,Z: give it once",
        "--range goes with --seed X,Y,Z",
        "--labels-names goes with --label NAME",
    ]
    fine = HOLLOW.request({"input_path": tmp_path / "scan.nii.gz", "output_path": tmp_path / "out.stl",
                           "seeds": ((0.0, 0.0, 0.0),), "grow_range": (200.0, 700.0)})
    assert HOLLOW.check(fine) == []
    assert files_in(tmp_path) == set()


def test_label_check_finds_every_conflict_at_once(tmp_path: Path) -> None:
    request = LABEL.request({
        "mesh_path": tmp_path / "part.stl", "output_path": tmp_path / "out.stl", "text": "R",
        "height_mm": 1.0, "depth_mm": 0.6, "at_lps": (TOP, TOP), "up_lps": ((0, 0, 1), (0, 1, 0), (1, 0, 0)),
        "thicken": True,
    })
    conflicts = LABEL.check(request)
    assert [c.message for c in conflicts] == [
        "--height (emboss) and --depth (engrave) contradict each other; give one",
        "--at is given 2 times; give it once",
        "--up is given 3 times; give it once",
        "--thicken and --profiles go with --printer NAME",
    ]
    assert all(set(c.names) <= set(LABEL_OPTIONS) for c in conflicts)
    fine = LABEL.request({"mesh_path": tmp_path / "part.stl", "output_path": tmp_path / "out.stl", "text": "R",
                          "thicken": True, "printer_name": "prusa-mk4"})
    assert LABEL.check(fine) == []


@pytest.mark.parametrize("args, mentions", [
    (["--preset", "bone", "--seed", "0,0,0"], ["--preset and --seed each choose the lumen"]),
    (["--up", "0,0,1", "--up", "1,0,0"], ["--up is one direction"]),
    (["--range", "200:700"], ["--range goes with --seed"]),
    (["--labels-names", "names.json"], ["--labels-names goes with --label"]),
])
def test_a_hollow_conflict_is_a_usage_error_before_anything_is_read(tmp_path: Path, args, mentions) -> None:
    # The input does not exist: the conflict is found before it would be opened.
    outcome = run_cli("design", "hollow", tmp_path / "missing.nii.gz", "-o", tmp_path / "out.stl", *args)
    assert_refused(outcome, mentions=mentions, exit_code=2, out_dir=tmp_path)


# --- runs -------------------------------------------------------------------------------------------------------


def test_a_hollow_job_writes_the_model_and_a_report_with_its_order(tube_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "tube.stl"
    result = HOLLOW.run(HOLLOW.request({"input_path": tube_file, "output_path": out, "wall_mm": 1.5}, order=ORDER))
    report_path = tmp_path / "tube.report.json"
    assert result.outputs == (out, report_path)
    assert files_in(tmp_path) == {"tube.stl", "tube.report.json"}
    on_disk = json.loads(report_path.read_text())
    assert on_disk["order"] == ORDER == result.report["order"]
    measured = on_disk["design"]["measurements"]
    assert abs(measured["wall_measured_mm"]["median"] - 1.5) <= 0.05
    assert assess_mesh(read_mesh_file(out)).is_printable
    (line,) = result.summary
    assert line.startswith(f"{out}: hollow ") and f"{len(measured['openings'])} open end(s)" in line
    assert "tube.nii.gz" not in report_path.read_text()


def test_a_label_job_writes_the_part_and_a_report_with_its_order(box_file: Path, tmp_path: Path) -> None:
    order = {**ORDER, "id": "2026-0412 label", "command": "design label", "parameters": {"text": "R"}}
    out = tmp_path / "labelled.stl"
    result = LABEL.run(LABEL.request({"mesh_path": box_file, "output_path": out, "text": "R", "at_lps": (TOP,),
                                      "size_mm": 4.0}, order=order))
    report_path = tmp_path / "labelled.report.json"
    assert result.outputs == (out, report_path)
    assert files_in(tmp_path) == {"in/box.stl", "labelled.stl", "labelled.report.json"}
    on_disk = json.loads(report_path.read_text())
    assert on_disk["order"] == order == result.report["order"]
    measured = on_disk["design"]["measurements"]
    assert np.allclose(measured["placement"]["centre_lps"], TOP, atol=1e-3)
    assert assess_mesh(read_mesh_file(out)).volume_mm3 > assess_mesh(box_mesh()).volume_mm3
    (line,) = result.summary
    assert line.startswith(f"{out}: 'R' embossed ")


def test_a_job_without_an_order_or_a_report_writes_only_the_part(box_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "engraved.stl"
    result = LABEL.run(LABEL.request({"mesh_path": box_file, "output_path": out, "text": "L", "at_lps": (TOP,),
                                      "depth_mm": 0.6, "no_report": True}))
    assert result.outputs == (out,)
    assert files_in(tmp_path) == {"in/box.stl", "engraved.stl"}
    assert "order" not in result.report
    assert result.report["design"]["measurements"]["mode"] == "engrave"
