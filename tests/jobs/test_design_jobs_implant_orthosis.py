"""The ``design implant`` and ``design orthosis`` jobs: every option the commands had, the library's refusals,
the conflicts found before any file is read, and a run that writes the part and a report carrying its order."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from harness import assert_refused, files_in, run_cli
from phantoms_limb import forearm_mesh
from phantoms_skull import skull_phantom

from medprint.design.implant import ImplantSettings
from medprint.design.orthosis import OrthosisSettings
from medprint.errors import ParameterError
from medprint.geometry import RAS_TO_LPS
from medprint.io import write_mesh
from medprint.io.mesh_files import read_mesh_file
from medprint.jobs import job_spec
from medprint.jobs.design_implant import SPEC as IMPLANT
from medprint.jobs.design_orthosis import SPEC as ORTHOSIS
from medprint.jobs.spec import FilePath, Number, ValueProblem
from medprint.mesh import assess_mesh

#: Every long option ``medprint design implant`` had before it was built from its spec, with its keyword.
IMPLANT_OPTIONS = {
    "output": "output_path", "near": "near", "plane": "plane", "thickness": "thickness_mm", "gap": "gap_mm",
    "method": "method", "solid": "solid", "min-wall": "min_wall_mm", "resolution": "resolution_mm",
    "preset": "preset", "threshold": "threshold", "fit": "fit_path", "rim": "rim_path", "overwrite": "overwrite",
    "no-report": "no_report", "show-phi": "show_phi",
}
#: The same for ``medprint design orthosis``.
ORTHOSIS_OPTIONS = {
    "output": "output_path", "gap": "gap_mm", "thickness": "thickness_mm", "from": "from_mm", "to": "to_mm",
    "start": "start_point", "end": "end_point", "axis": "axis", "keep-angle": "keep_angle", "open-side": "open_side",
    "holes": "holes", "hole-margin": "hole_margin_mm", "edge-radius": "edge_radius_mm",
    "resolution": "resolution_mm", "fit": "fit_3mf", "overwrite": "overwrite", "no-report": "no_report",
    "show-phi": "show_phi",
}
#: An order's record, as :func:`medprint.jobs.orders.order_record` makes it.
ORDER = {"id": "2026-0412 test", "command": "", "parameters": {"gap": 0.5}, "provenance": {"indication": "test"},
         "notes": None, "sha256": "0" * 64, "medprint_version": "test"}


def _click_names(command_path: tuple[str, ...]) -> set[str]:
    import click

    from medprint.cli import cli

    command = cli
    for word in command_path:
        command = command.get_command(click.Context(command), word)  # type: ignore[union-attr]
    return {opt.lstrip("-") for param in command.params for opt in param.opts if opt.startswith("--")}


# ---------------------------------------------------------------------------------------------------------------
# The specs: options, kinds, defaults
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, options", [(IMPLANT, IMPLANT_OPTIONS), (ORTHOSIS, ORTHOSIS_OPTIONS)])
def test_each_spec_has_every_option_the_command_had_with_its_keyword(spec, options):
    from medprint.jobs.deliver import PART_DELIVERY, SCAN_DELIVERY

    delivery = {opt.name: opt.dest for opt in (SCAN_DELIVERY if spec is IMPLANT else PART_DELIVERY)}
    assert {opt.name: opt.dest for opt in spec.options} == options | delivery
    assert job_spec(spec.name) is spec


@pytest.mark.parametrize("words, options", [(("design", "implant"), IMPLANT_OPTIONS),
                                            (("design", "orthosis"), ORTHOSIS_OPTIONS)])
def test_the_commands_are_built_from_the_specs(words, options):
    from medprint.jobs.deliver import PART_DELIVERY, SCAN_DELIVERY

    delivery = {opt.name for opt in (SCAN_DELIVERY if words[1] == "implant" else PART_DELIVERY)}
    assert _click_names(words) == set(options) | delivery | {"json", "save-order"}


@pytest.mark.parametrize("spec, outputs", [(IMPLANT, {"output", "fit", "rim", "dicom-stl"}),
                                           (ORTHOSIS, {"output", "fit", "dicom-stl"})])
def test_paths_have_their_roles(spec, outputs):
    paths = {opt.name: opt.kind.role for opt in spec.options if isinstance(opt.kind, FilePath)}
    inputs = {"source": "input"} if spec is ORTHOSIS else {}
    assert paths == dict.fromkeys(outputs, "output") | inputs
    assert spec.argument.kind.role == "input"


def test_defaults_are_the_librarys():
    implant = ImplantSettings()
    assert IMPLANT.option("gap").default == implant.rim_gap_mm
    assert IMPLANT.option("min-wall").default == implant.min_wall_mm
    assert IMPLANT.option("resolution").default == implant.resolution_mm
    assert IMPLANT.option("method").default == implant.method
    assert IMPLANT.option("preset").default == implant.preset
    assert IMPLANT.option("thickness").default is implant.thickness_mm is None
    orthosis = {f.name: f.default for f in fields(OrthosisSettings)}
    assert ORTHOSIS.option("hole-margin").default == orthosis["hole_margin_mm"]
    assert ORTHOSIS.option("edge-radius").default == orthosis["edge_radius_mm"]
    assert ORTHOSIS.option("resolution").default is orthosis["resolution_mm"] is None
    assert ORTHOSIS.option("gap").required and ORTHOSIS.option("thickness").required


@pytest.mark.parametrize("spec, names", [(IMPLANT, ("thickness", "gap", "min-wall", "resolution")),
                                         (ORTHOSIS, ("gap", "thickness", "hole-margin", "edge-radius"))])
def test_sizes_the_settings_check_have_no_bounds_of_their_own(spec, names):
    for name in names:
        kind = spec.option(name).kind
        assert isinstance(kind, Number) and kind.low is None and kind.high is None, name
        assert spec.option(name).parse("1e4") == 1e4
        with pytest.raises(ValueProblem, match="finite"):
            spec.option(name).parse("nan")


@pytest.mark.parametrize("spec, name, text, value", [
    (IMPLANT, "near", "1,2,3", [1, 2, 3]),
    (IMPLANT, "plane", "0,0,0:1,0,0", [[0, 0, 0], [1, 0, 0]]),
    (IMPLANT, "threshold", "226:3071", [226, 3071]),
    (ORTHOSIS, "keep-angle", "300:60", [300, 60]),
    (ORTHOSIS, "holes", "8:20", [8, 20]),
    (ORTHOSIS, "from", "30", 30),
    (ORTHOSIS, "from", " Start", "start"),
    (ORTHOSIS, "to", "end", "end"),
    (ORTHOSIS, "axis", "0,0,1", [0, 0, 1]),
])
def test_an_orders_value_means_what_the_options_text_means(spec, name, text, value):
    opt = spec.option(name)
    from_text = opt.parse(text)
    assert opt.parse(value) == from_text
    # What an order file records reads back as the same value.
    recorded = tuple(opt.kind.to_order(v) for v in from_text) if opt.multiple else opt.kind.to_order(from_text)
    assert opt.parse(list(recorded) if opt.multiple else recorded) == from_text


@pytest.mark.parametrize("spec, name, value, words", [
    (ORTHOSIS, "keep-angle", "ten:20", "is not FROM:TO degrees"),
    (ORTHOSIS, "keep-angle", [1, 2, 3], "is not FROM:TO degrees"),
    (ORTHOSIS, "holes", "1:2:3", "is not DIAMETER:SPACING in mm"),
    (ORTHOSIS, "holes", [8, float("inf")], "is not DIAMETER:SPACING in mm"),
    (ORTHOSIS, "from", "foo", "is neither a distance in mm nor 'start'"),
    (ORTHOSIS, "from", "inf", "must be a finite number of mm"),
    (ORTHOSIS, "to", True, "is neither a distance in mm nor 'end'"),
    (ORTHOSIS, "open-side", "top", "is not one of"),
    (IMPLANT, "plane", "1,2,3", "give a point and a normal"),
    (IMPLANT, "threshold", "5:1", "swap them"),
    (IMPLANT, "method", "foo", "is not one of"),
])
def test_malformed_values_are_refused_saying_why(spec, name, value, words):
    with pytest.raises(ValueProblem, match=words):
        spec.option(name).parse(value)


# ---------------------------------------------------------------------------------------------------------------
# Conflicts: every one at once, before any file is read
# ---------------------------------------------------------------------------------------------------------------

def test_implant_check_finds_its_conflicts_without_reading_a_file(tmp_path):
    request = IMPLANT.request({"input_path": tmp_path / "absent.nii.gz", "output_path": tmp_path / "i.stl",
                               "near": ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)), "gap_mm": 12.0})
    conflicts = IMPLANT.check(request)
    assert [c.names for c in conflicts] == [("near",)]
    assert "give one point in the defect" in conflicts[0].message
    fine = IMPLANT.request({"input_path": tmp_path / "absent.nii.gz", "output_path": tmp_path / "i.stl",
                            "near": ((1.0, 2.0, 3.0),)})
    assert IMPLANT.check(fine) == []


def test_two_near_points_are_a_usage_error(tmp_path):
    scan = tmp_path / "absent.nii.gz"
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("design", "implant", scan, "-o", out / "i.stl", "--near", "1,2,3", "--near", "4,5,6")
    assert_refused(outcome, mentions=["Invalid value for --near: give one point in the defect"], exit_code=2,
                   out_dir=out)


def test_orthosis_options_that_do_not_go_together_are_the_settings_refusals(tmp_path):
    """--from with --start is no usage error (exit 2) but the library's refusal (exit 1), as it always was: the
    check finds nothing and the run refuses before reading the input."""
    request = ORTHOSIS.request({"input_path": tmp_path / "absent.stl", "output_path": tmp_path / "s.stl",
                                "gap_mm": 1.0, "thickness_mm": 2.0, "from_mm": 3.0, "start_point": (1.0, 2.0, 3.0)})
    assert ORTHOSIS.check(request) == []
    with pytest.raises(ParameterError) as refused:
        ORTHOSIS.run(request)
    with pytest.raises(ParameterError) as library:
        OrthosisSettings(gap_mm=1.0, thickness_mm=2.0, from_mm=3.0, start_point=(1.0, 2.0, 3.0))
    assert str(refused.value) == str(library.value)
    assert files_in(tmp_path) == set()


@pytest.mark.parametrize("values, settings", [
    ({"gap_mm": 12.0}, {"rim_gap_mm": 12.0}),
    ({"thickness_mm": 0.0}, {"thickness_mm": 0.0}),
    ({"thickness_mm": 1.0, "min_wall_mm": 2.0}, {"thickness_mm": 1.0, "min_wall_mm": 2.0}),
    ({"resolution_mm": 5.0}, {"resolution_mm": 5.0}),
])
def test_implant_sizes_out_of_range_are_refused_with_the_librarys_words(tmp_path, values, settings):
    request = IMPLANT.request({"input_path": tmp_path / "absent.nii.gz", "output_path": tmp_path / "i.stl",
                               **values})
    with pytest.raises(ParameterError) as refused:
        IMPLANT.run(request)
    with pytest.raises(ParameterError) as library:
        ImplantSettings(**settings)
    assert str(refused.value) == str(library.value)
    assert files_in(tmp_path) == set()


# ---------------------------------------------------------------------------------------------------------------
# Runs: the part, its report and the order it came from
# ---------------------------------------------------------------------------------------------------------------

def _write_ct(volume, path: Path) -> Path:
    """A phantom as NIfTI (RAS affine, as the format wants)."""
    affine = volume.geometry.affine.copy()
    affine[:3] = RAS_TO_LPS @ affine[:3]
    image = nib.Nifti1Image(np.ascontiguousarray(volume.array.transpose(2, 1, 0)), affine)
    image.set_qform(affine, 1)
    image.set_sform(affine, 1)
    nib.save(image, str(path))
    return path


def test_an_implant_job_writes_the_part_rim_and_report_with_its_order(tmp_path):
    case = skull_phantom(spacing=(1.2, 1.2, 2.0), defect_direction=(1.0, 0.15, 0.35), defect_radius_mm=20.0)
    scan = _write_ct(case.volume, tmp_path / "patient_smith.nii.gz")
    out = tmp_path / "out"
    out.mkdir()
    order = {**ORDER, "command": "design implant"}
    request = IMPLANT.request({"input_path": scan, "output_path": out / "implant.stl", "rim_path": out / "rim.stl",
                               "resolution_mm": 1.0}, order=order)
    result = IMPLANT.run(request)
    assert {p.name for p in result.outputs} == files_in(out) == {"implant.stl", "implant.report.json", "rim.stl"}
    assert result.report["order"] == order
    written = json.loads((out / "implant.report.json").read_text())
    assert written["order"] == order
    assert written["design"]["kind"] == "implant"
    assert written["parameters"]["resolution_mm"] == 1.0
    quality = assess_mesh(read_mesh_file(out / "implant.stl"))
    assert quality.watertight and quality.shells == 1
    method = written["design"]["measurements"]["method"]
    faces = read_mesh_file(out / "implant.stl").face_count
    (line,) = result.summary
    assert line.startswith(f"{out / 'implant.stl'}: implant by {method}, ") and f"{faces:,} triangles" in line
    assert "smith" not in (out / "implant.report.json").read_text().lower()


@pytest.fixture(scope="module")
def forearm(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("limb") / "doe_jane_arm.stl"
    write_mesh(forearm_mesh(around=120, ring_step_mm=20.0), path)
    return path


def test_an_orthosis_job_writes_the_part_fit_check_and_report_with_its_order(forearm, tmp_path):
    order = {**ORDER, "command": "design orthosis"}
    request = ORTHOSIS.request({
        "input_path": forearm, "output_path": tmp_path / "s.stl", "fit_3mf": tmp_path / "fit.3mf", "gap_mm": 1.0,
        "thickness_mm": 2.0, "from_mm": 30.0, "to_mm": 150.0, "open_side": "anterior", "resolution_mm": 1.5,
    }, order=order)
    assert ORTHOSIS.check(request) == []
    result = ORTHOSIS.run(request)
    assert {p.name for p in result.outputs} == files_in(tmp_path) == {"s.stl", "s.report.json", "fit.3mf"}
    assert result.report["order"] == order
    written = json.loads((tmp_path / "s.report.json").read_text())
    assert written["order"] == order
    assert written["parameters"]["gap_mm"] == 1.0
    assert abs(written["design"]["measurements"]["thickness_mm"]["median"] - 2.0) < 0.05
    assert assess_mesh(read_mesh_file(tmp_path / "s.stl")).is_printable
    assert len(result.summary) == 1 and result.summary[0].startswith(f"{tmp_path / 's.stl'}: orthosis, ")
    assert "doe_jane" not in (tmp_path / "s.report.json").read_text()


def test_an_orthosis_job_without_a_report_writes_and_lists_only_the_part(forearm, tmp_path):
    request = ORTHOSIS.request({"input_path": forearm, "output_path": tmp_path / "s.stl", "gap_mm": 1.0,
                                "thickness_mm": 2.0, "no_report": True, "resolution_mm": 1.5})
    result = ORTHOSIS.run(request)
    assert result.outputs == (tmp_path / "s.stl",)
    assert files_in(tmp_path) == {"s.stl"}
    assert "order" not in result.report
