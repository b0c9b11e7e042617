"""The ``convert`` job as data: every option ``medprint convert`` had, every conflict at once, a run from Python."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from medprint.cli import cli
from medprint.errors import MedprintError, ParameterError
from medprint.jobs import job_spec
from medprint.jobs.convert import OPTIONS, SPEC
from medprint.jobs.typed import typed_values

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"

#: ``medprint convert``'s options before it was built from a spec: long name -> the run's keyword.
OLD_COMMAND_OPTIONS = {
    "output": "output_path", "preset": "preset", "threshold": "threshold", "seed": "seeds_lps",
    "seed-voxel": "seeds_voxel", "range": "grow_range", "vessel": "vessel", "tube": "tube_factor",
    "branch": "branch_paths", "false-lumen": "false_lumen_lps", "false-lumen-range": "false_lumen_range",
    "max-radius": "max_radius", "max-volume": "max_volume", "allow-border": "allow_border",
    "auto-threshold": "auto_threshold", "percentile": "percentile", "bias-correction": "bias_correction",
    "denoise": "denoise", "labels": "labels_path", "label": "label_names", "labels-names": "labels_names",
    "force-geometry": "force_geometry", "3mf": "combined_3mf", "gcode": "gcode_path", "printer": "printer_name",
    "material": "material_name", "supports": "supports", "engine": "engine", "profiles": "profiles_dir",
    "series": "series", "modality": "modality", "allow-gaps": "allow_gaps", "non-finite": "non_finite",
    "keep": "keep", "min-component": "min_component", "fill-cavities": "fill_cavities", "close": "close_radius",
    "open": "open_radius", "smooth": "smooth", "max-deviation": "max_deviation", "decimate": "decimate",
    "ascii": "ascii_stl", "overwrite": "overwrite", "no-report": "no_report", "show-phi": "show_phi",
}
#: Its defaults that were not None (or False for a flag).
OLD_DEFAULTS = {"keep": "auto", "min_component": 0.0, "close_radius": 0.0, "open_radius": 0.0, "smooth": 20,
                "engine": "builtin"}
#: Its repeatable options.
REPEATABLE = {"seed", "seed-voxel", "branch", "false-lumen", "label"}


def run_cli(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def request(**values: object):
    """A request as a Python caller makes one: typed values by dest, the ones given only."""
    return SPEC.request({"input_path": SAMPLE, "output_path": Path("model.stl"), **values})


# --- the options ------------------------------------------------------------------------------------------------


def test_spec_has_every_option_the_command_had() -> None:
    from medprint.jobs.deliver import SCAN_DELIVERY

    delivery = {opt.name: opt.dest for opt in SCAN_DELIVERY}
    assert {opt.name: opt.dest for opt in SPEC.options} == OLD_COMMAND_OPTIONS | delivery
    assert {opt.name for opt in SPEC.options if opt.multiple} == REPEATABLE
    defaults = SPEC.defaults()
    assert {dest: defaults[dest] for dest in OLD_DEFAULTS} == OLD_DEFAULTS
    assert SPEC.argument.dest == "input_path" and job_spec("convert") is SPEC


def test_help_lists_every_option_with_its_help() -> None:
    result = run_cli("convert", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help wraps lines
    for opt in SPEC.options:
        assert f"--{opt.name}" in text
        assert " ".join(opt.help.split()[:4]) in text, opt.name


def test_output_role_paths_and_the_names_file_fragment() -> None:
    outputs = {opt.name for opt in SPEC.options if getattr(opt.kind, "role", None) == "output"}
    assert outputs == {"output", "3mf", "gcode", "dicom-stl"}
    assert SPEC.option("labels-names").kind.fragment
    assert not SPEC.option("overwrite").in_order and not SPEC.option("no-report").in_order


# --- conflicts --------------------------------------------------------------------------------------------------


def test_check_returns_every_conflict_at_once() -> None:
    conflicts = SPEC.check(request(preset="bone", threshold=(226.0, 3071.0), percentile=(50.0, 100.0),
                                   tube_factor=1.4))
    assert [c.names for c in conflicts] == [("preset", "threshold"), ("percentile", "auto-threshold"),
                                           ("tube", "vessel")]
    assert conflicts[0].message.startswith("--preset and --threshold contradict each other")
    assert conflicts[1].message == "--percentile goes with --auto-threshold percentile"
    assert conflicts[2].message == "--tube goes with --vessel"


def test_the_cli_says_the_first_conflict_as_before() -> None:
    result = run_cli("convert", SAMPLE, "-o", "model.stl", "--preset", "bone", "--threshold", "226:3071",
                     "--tube", "1.4")
    assert result.exit_code == 2
    assert "--preset and --threshold contradict each other" in result.output
    assert "--tube" not in result.output.split("contradict")[1]


def test_options_given_count_not_their_defaults() -> None:
    # --min-component 0 is the default: only refused with --keep largest when the user typed it.
    assert SPEC.check(request(keep="largest")) == []
    given = SPEC.check(request(keep="largest", min_component=0.0))
    assert [c.names for c in given] == [("min-component", "keep")]


def test_conflicts_name_the_options_involved() -> None:
    slicing = SPEC.check(request(printer_name="prusa-mk4", engine="builtin"))
    assert [c.names for c in slicing] == [("printer", "engine", "gcode")]
    assert slicing[0].message == "--printer, --engine go with --gcode FILE (slicing); add --gcode or drop it"
    growing = SPEC.check(request(vessel=True, max_volume=1000.0))
    assert [c.names for c in growing] == [("vessel", "max-volume", "seed")]
    labels = SPEC.check(request(label_names=("skull",), force_geometry=True))
    assert [c.names for c in labels] == [("label", "force-geometry", "labels")]
    gcode = SPEC.check(request(gcode_path=Path("model.gcode"), printer_name="prusa-mk4"))
    assert [c.names for c in gcode] == [("gcode", "printer", "material")]
    tube = SPEC.check(request(seeds_lps=((0.0, 0.0, 0.0),), vessel=True, tube_factor=1.4, max_radius=2.0,
                              false_lumen_range=(100.0, 3000.0)))
    assert [c.names for c in tube] == [("max-radius", "tube"), ("false-lumen-range", "false-lumen")]
    assert SPEC.check(request(preset="bone")) == []


# --- values from a Python caller --------------------------------------------------------------------------------


def test_python_values_as_text_or_lists_are_read_as_the_cli_reads_them() -> None:
    values = typed_values(OPTIONS, SPEC.request({
        "input_path": "scan", "output_path": "model.stl", "threshold": "226:3071", "seeds_lps": [[1, 2, 3.5]],
        "seeds_voxel": "4,5,6", "decimate": "25%", "smooth": "10", "modality": "ct", "label_names": [3, "skull"],
    }))
    assert values["threshold"] == (226.0, 3071.0)
    assert values["seeds_lps"] == ((1.0, 2.0, 3.5),) and values["seeds_voxel"] == ((4.0, 5.0, 6.0),)
    assert values["decimate"] == ("fraction", 0.25) and values["smooth"] == 10
    assert values["modality"] == "CT" and values["label_names"] == ("3", "skull")
    assert values["output_path"] == Path("model.stl")


def test_typed_values_pass_unchanged() -> None:
    """What the CLI's parsing gives is kept to the last digit (not re-read through text)."""
    given = {"seeds_lps": ((12.345678912, -30.000000001, 101.5),), "threshold": (226.0000001, 226.0000002),
             "decimate": ("faces", 200000), "branch_paths": (((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)),)}
    values = typed_values(OPTIONS, request(**given))
    assert {dest: values[dest] for dest in given} == given


@pytest.mark.parametrize(("values", "option"), [
    ({"smooth": -1}, "--smooth"),
    ({"smooth": 2.5}, "--smooth"),
    ({"threshold": "300:100"}, "--threshold"),
    ({"max_radius": float("nan")}, "--max-radius"),
    ({"keep": "biggest"}, "--keep"),
    ({"decimate": "150%"}, "--decimate"),
    ({"seeds_lps": ["1,2"]}, "--seed"),
    ({"percentile": "1:200"}, "--percentile"),
    ({"output_path": None}, "-o/--output"),
    ({"input_path": None}, "INPUT"),
])
def test_a_python_caller_gets_a_medprint_error_naming_the_option(tmp_path: Path, values: dict[str, object],
                                                                   option: str) -> None:
    job = SPEC.request({"input_path": SAMPLE, "output_path": tmp_path / "model.stl", **values})
    with pytest.raises(MedprintError) as refused:
        SPEC.run(job)
    assert not isinstance(refused.value, click.ClickException)
    assert str(refused.value).startswith(option), str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_python_caller_gets_every_conflict_as_a_parameter_error(tmp_path: Path) -> None:
    job = SPEC.request({"input_path": SAMPLE, "output_path": tmp_path / "model.stl", "preset": "bone",
                        "threshold": (226.0, 3071.0), "tube_factor": 1.4})
    with pytest.raises(ParameterError, match="--preset and --threshold.*; --tube goes with --vessel"):
        SPEC.run(job)
    assert list(tmp_path.iterdir()) == []


# --- runs -------------------------------------------------------------------------------------------------------

ORDER = {"id": "2026-0412 skull", "command": "convert", "parameters": {"preset": "bone"},
         "provenance": {"indication": "cranioplasty"}, "notes": None, "sha256": "0" * 64}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("job")
    job = SPEC.request({"input_path": SAMPLE, "output_path": out / "skull.stl", "preset": "bone"}, order=ORDER)
    return out, SPEC.run(job)


def test_the_job_writes_the_mesh_and_the_report_and_says_so(sample_run) -> None:
    out, result = sample_run
    assert result.outputs == (out / "skull.stl", out / "skull.report.json")
    assert sorted(p.name for p in out.iterdir()) == ["skull.report.json", "skull.stl"]
    mesh = trimesh.load(out / "skull.stl")
    assert mesh.is_watertight and mesh.volume > 0
    assert result.report["mesh"]["triangles"] == len(mesh.faces)
    assert result.summary[0].startswith("skull.stl: ") and "watertight" in result.summary[0]
    assert result.summary[-1] == f"report: {out / 'skull.report.json'}"


def test_the_report_carries_the_order(sample_run) -> None:
    out, result = sample_run
    written = json.loads((out / "skull.report.json").read_text())
    assert written["order"] == ORDER and result.report["order"] == ORDER


def test_without_an_order_or_report_the_job_writes_only_the_mesh(tmp_path: Path) -> None:
    result = SPEC.run(SPEC.request({"input_path": SAMPLE, "output_path": tmp_path / "skull.stl", "no_report": True,
                                    "smooth": 0}))
    assert result.outputs == (tmp_path / "skull.stl",)
    assert [p.name for p in tmp_path.iterdir()] == ["skull.stl"]
    assert "order" not in result.report
    # Nothing chose a part: the bone preset, as `medprint convert` has always done.
    assert result.report["parameters"]["segmentation"]["preset"] == "bone"


@pytest.fixture(scope="module")
def block_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dicom_phantoms import write_ct_series

    folder = tmp_path_factory.mktemp("block") / "ct"
    block = np.full((14, 30, 30), -1000.0)
    block[2:12, 5:25, 5:25] = 1200.0  # 20 x 20 x 20 mm of bone at 1 x 1 x 2 mm voxels
    write_ct_series(folder, block, (1.0, 1.0, 2.0))
    return folder


def test_the_outputs_list_the_gcode_too(tmp_path: Path, block_ct: Path) -> None:
    result = SPEC.run(SPEC.request({
        "input_path": block_ct, "output_path": tmp_path / "block.stl", "gcode_path": tmp_path / "block.gcode",
        "printer_name": "prusa-mk4", "material_name": "pla",
    }))
    assert result.outputs == (tmp_path / "block.stl", tmp_path / "block.gcode", tmp_path / "block.report.json")
    assert sorted(tmp_path.iterdir()) == sorted(result.outputs)
    assert any(line.startswith(f"{tmp_path / 'block.gcode'}: ") and "layers" in line for line in result.summary)


def test_the_outputs_list_every_part_and_the_3mf(tmp_path: Path, block_ct: Path) -> None:
    result = SPEC.run(SPEC.request({
        "input_path": block_ct, "output_path": tmp_path / "block.stl", "preset": "bone",
        "seeds_voxel": ((15.0, 15.0, 7.0),), "combined_3mf": tmp_path / "all.3mf", "smooth": 0,
    }))
    meshes = [p for p in result.outputs if p.suffix == ".stl"]
    assert len(meshes) == 2 and len(result.report["parts"]) == 2
    assert result.outputs[2:] == (tmp_path / "all.3mf", tmp_path / "block.report.json")
    assert sorted(tmp_path.iterdir()) == sorted(result.outputs)
    assert f"all parts: {tmp_path / 'all.3mf'}" in result.summary
    assert len([line for line in result.summary if "triangles" in line]) == 2


def test_points_and_ranges_from_toml_lists_keep_every_digit() -> None:
    from medprint.jobs.kinds import intensity_range, point

    assert point("--seed").parse([12.34567891, -0.000123456789, 101.0]) == (12.34567891, -0.000123456789, 101.0)
    assert intensity_range("--range").parse([100.0000001, 100.0000002]) == (100.0000001, 100.0000002)
