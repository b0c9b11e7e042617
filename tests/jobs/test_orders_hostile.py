"""Regressions from a hostile test of the order layer: each input here once gave a traceback, a clobbered
file or a silently ignored key."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh
from click.testing import CliRunner

from medprint.cli import cli
from medprint.errors import MedprintError
from medprint.jobs.orders import OrderError, load_order, order_from_mapping

SLICE = 'id = "a"\ncommand = "slice"\ninput = "cube.stl"\noutput = "c.gcode"\nprinter = "ender-3"\nmaterial = "pla"\n'


def medprint(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def folder(tmp_path) -> Path:
    trimesh.creation.box((20.0, 20.0, 10.0)).export(tmp_path / "cube.stl")
    return tmp_path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(OrderError) as caught:
        load_order(path)
    return caught.value.problems


def write(folder: Path, text: str, name: str = "o.toml", *, mode: str = "w") -> Path:
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


# --- 1. --save-order and the run's own files --------------------------------------------------------------------


def slice_args(folder: Path, output: Path) -> list[object]:
    return ["slice", folder / "cube.stl", "-o", output, "--printer", "ender-3", "--material", "pla"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_save_order_onto_the_output_is_refused_before_the_run(folder, overwrite):
    target = folder / "c.gcode"
    result = medprint(*slice_args(folder, target), "--save-order", target, *(["--overwrite"] if overwrite else []))
    assert result.exit_code == 2 and "--save-order" in result.stderr and "output" in result.stderr
    assert not target.exists()


def test_save_order_onto_the_input_is_refused_and_the_input_kept(folder):
    before = (folder / "cube.stl").read_bytes()
    result = medprint(*slice_args(folder, folder / "c.gcode"), "--save-order", folder / "cube.stl", "--overwrite")
    assert result.exit_code == 2 and "input" in result.stderr
    assert (folder / "cube.stl").read_bytes() == before and not (folder / "c.gcode").exists()


def test_save_order_onto_the_report_beside_an_output_is_refused(folder):
    from medprint.jobs.order_save import check_order_path
    from medprint.jobs import job_spec
    from medprint.errors import ParameterError

    spec = job_spec("design implant")
    request = spec.request({spec.argument.dest: folder / "ct.nii.gz", "output_path": folder / "i.stl"})
    with pytest.raises(ParameterError, match="report"):
        check_order_path(folder / "i.report.json", overwrite=True, spec=spec, request=request)


def test_a_failed_run_leaves_no_saved_order(folder):
    (folder / "broken.stl").write_text("solid nothing\nendsolid nothing\n")
    result = medprint("slice", folder / "broken.stl", "-o", folder / "c.gcode", "--printer", "ender-3",
                      "--material", "pla", "--save-order", folder / "o.toml")
    assert result.exit_code == 1
    assert not (folder / "o.toml").exists() and not (folder / "c.gcode").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".o.toml")]  # no temporary left


def test_an_order_that_cannot_be_put_in_place_takes_the_outputs_with_it(folder, monkeypatch):
    from medprint.io import outputs

    real_commit = outputs.RunOutputs.commit
    calls = []

    def commit(self):
        calls.append(self)
        if any(t.option == "--save-order" for t in self._targets):
            raise outputs.OutputError("--save-order: the disk is full")
        return real_commit(self)

    monkeypatch.setattr(outputs.RunOutputs, "commit", commit)
    result = CliRunner().invoke(cli, [str(a) for a in slice_args(folder, folder / "c.gcode")] +
                                ["--save-order", str(folder / "o.toml")])
    assert result.exit_code == 1 and "disk is full" in result.stderr
    assert not (folder / "c.gcode").exists() and not (folder / "o.toml").exists()


def test_save_order_with_a_blank_output_stem_saves_an_order_that_runs(folder):
    out = folder / "o"
    out.mkdir()
    result = medprint(*slice_args(folder, out / " .gcode"), "--save-order", out / "o.toml")
    assert result.exit_code == 0, result.stderr
    order = load_order(out / "o.toml")
    assert order.id.strip()


# --- 2. numbers and paths the system cannot hold ---------------------------------------------------------------


def test_an_integer_too_large_for_a_float_is_a_problem_at_its_line(folder):
    path = write(folder, SLICE + "scale = 1" + "0" * 400 + "\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:7: scale: ") and "too large" in problem and len(problem) < 300


@pytest.mark.parametrize("key, value", [("seed", [[10**400, 0, 0]]), ("threshold", [10**400, 1])])
def test_a_huge_integer_in_a_point_or_range_is_an_order_error(folder, key, value):
    with pytest.raises(OrderError, match=key):
        order_from_mapping({"id": "a", "input": "cube.stl", "output": "m.stl", key: value}, base_dir=folder)


def test_an_input_name_longer_than_the_file_system_allows_is_a_problem(folder):
    path = write(folder, SLICE.replace("cube.stl", "a" * 300 + ".stl"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3: input: ") and "too long" in problem.lower()
    result = medprint("run", path, "-o", folder / "out")
    assert result.exit_code == 2 and "Traceback" not in result.output


# --- 3. every problem before anything runs --------------------------------------------------------------------


def test_a_wrong_printer_and_a_wrong_material_are_both_refused_at_their_lines(folder):
    path = write(folder, SLICE.replace('"ender-3"', '""').replace('"pla"', '"nope"'))
    problems = problems_of(path)
    assert [p.split(": ")[0:2] for p in problems] == [[f"{path}:5", "printer"], [f"{path}:6", "material"]]


def test_design_settings_are_refused_at_load_time_with_the_key_line(folder):
    (folder / "ct.nii.gz").write_bytes(b"not read at load time")
    path = write(folder, 'id = "i"\ncommand = "design implant"\ninput = "ct.nii.gz"\noutput = "i.stl"\n'
                         'plane = [[0,0,0],[0,0,0]]\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: plane: ")


def test_an_output_given_twice_is_refused_at_load_time(folder):
    (folder / "ct.nii.gz").write_bytes(b"x")
    path = write(folder, 'id = "i"\ncommand = "design implant"\ninput = "ct.nii.gz"\noutput = "i.stl"\n'
                         'rim = "i.stl"\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: rim: ") and "also the output" in problem


def test_an_output_onto_the_input_is_refused_before_the_run(folder):
    path = write(folder, SLICE.replace('"c.gcode"', '"cube.stl"'))
    before = (folder / "cube.stl").read_bytes()
    result = medprint("run", path, "-o", folder)
    assert result.exit_code == 2 and f"{path}:4: output:" in result.stderr
    assert (folder / "cube.stl").read_bytes() == before


def test_a_label_printer_and_a_convert_gcode_printer_are_checked_at_load_time(folder):
    label = write(folder, 'id = "l"\ncommand = "design label"\ninput = "cube.stl"\noutput = "l.stl"\n'
                          'text = "A"\nprinter = "nope"\n', name="l.toml")
    assert any(p.startswith(f"{label}:6: printer: ") for p in problems_of(label))
    (folder / "ct.nii.gz").write_bytes(b"x")
    convert = write(folder, 'id = "c"\ninput = "ct.nii.gz"\noutput = "m.stl"\ngcode = "m.gcode"\n'
                            'printer = "nope"\nmaterial = "pla"\n', name="c.toml")
    assert any(p.startswith(f"{convert}:5: printer: ") for p in problems_of(convert))


@pytest.mark.parametrize("command", ["convert", "slice", "design implant", "design orthosis", "design hollow",
                                     "design label"])
def test_every_job_has_a_validate_hook(command):
    from medprint.jobs import job_spec

    assert job_spec(command).validate is not None


# --- 4, 5. dotted keys, quoted keys, provenance words -----------------------------------------------------------


def test_dotted_keys_and_sub_tables_are_reported_at_their_own_lines_by_their_whole_name(folder):
    path = write(folder, SLICE + 'perimeters.count = 3\ninfill.density = 0.2\n[[brim]]\nmm = 2\n[top.layers]\nn = 1\n')
    found = [tuple(p.split(": ")[:2]) for p in problems_of(path)]
    assert found == [(f"{path}:7", "perimeters.count"), (f"{path}:8", "infill.density"), (f"{path}:9", "brim"),
                     (f"{path}:11", "top.layers.n")]


def test_a_quoted_provenance_key_at_the_top_is_refused_not_dropped(folder):
    path = write(folder, SLICE + '"provenance.ward" = "3"\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:7: provenance.ward: ") and "[provenance]" in problem


@pytest.mark.parametrize("key", ["department_name", "ip_address", "surgeon_role", "requesting_department"])
def test_provenance_words_that_only_contain_identity_words_are_kept(folder, key):
    path = write(folder, SLICE + f'[provenance]\n{key} = "x"\n')
    assert load_order(path).provenance == {key: "x"}


@pytest.mark.parametrize("key", ["patient", "patient_id", "given_name", "lastName", "home_address", "dob",
                                 "birth_date", "phone", "mrn", "name"])
def test_provenance_keys_that_name_the_patient_are_refused(folder, key):
    path = write(folder, SLICE + f'[provenance]\n{key} = "x"\n')
    (problem,) = problems_of(path)
    assert f"provenance.{key}: looks like patient identity" in problem


# --- 6, 7. BOM, duplicate keys, bare words; output names -------------------------------------------------------


def test_a_byte_order_mark_is_not_part_of_the_order(folder):
    path = folder / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SLICE.encode())
    assert load_order(path).id == "a"


def test_a_duplicate_key_is_named_with_both_lines(folder):
    path = write(folder, SLICE + 'printer = "prusa-mk4"\n')
    assert problems_of(path) == [f"{path}:7: printer: given twice (first at line 5); keep one"]


def test_a_bare_word_is_named_with_the_fix(folder):
    path = write(folder, SLICE.replace('"ender-3"', "ender-3"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: printer: ") and "quotes" in problem


@pytest.mark.parametrize("output, words", [("sub/", "slash"), ("a\\\\b.gcode", "backslash")])
def test_an_output_that_names_a_folder_or_holds_a_backslash_is_refused(folder, output, words):
    path = write(folder, SLICE.replace('"c.gcode"', f'"{output}"'))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: output: ") and words in problem


# --- 8. the Python API: medprint errors only -------------------------------------------------------------------

OK = {"id": "a", "command": "slice", "input": "cube.stl", "output": "c.gcode", "printer": "ender-3", "material": "pla"}


@pytest.mark.parametrize("call", [
    lambda base: order_from_mapping(["id"], base_dir=base),
    lambda base: order_from_mapping(None, base_dir=base),
    lambda base: order_from_mapping({**OK, 3: 4}, base_dir=base),
    lambda base: order_from_mapping({**OK, "provenance": {1: "x"}}, base_dir=base),
    lambda base: order_from_mapping(OK, base_dir=None),
    lambda base: order_from_mapping(OK, base_dir="/tmp/\0x"),
    lambda base: load_order(None),
    lambda base: load_order("/tmp/a\0b.toml"),
], ids=["list", "None", "int key", "int provenance key", "base_dir None", "base_dir NUL", "load None",
        "load NUL"])
def test_bad_arguments_to_the_api_are_order_errors(folder, call):
    with pytest.raises(OrderError):
        call(folder)


def test_load_batch_and_run_order_refuse_what_cannot_be_a_path(folder):
    from medprint.jobs.orders import load_batch, run_order

    with pytest.raises(OrderError):
        load_batch("/tmp/a\0b.csv")
    with pytest.raises(OrderError):
        run_order(order_from_mapping(OK, base_dir=folder), None)


def test_an_order_of_an_unknown_command_says_so_as_an_order_error():
    from medprint.jobs.orders import Order

    with pytest.raises(OrderError, match="'nope' is not a command"):
        Order(id="x", command="nope", input=Path("/x")).spec


def test_path_objects_are_paths(folder):
    order = order_from_mapping({**OK, "input": Path("cube.stl"), "output": Path("c.gcode")}, base_dir=folder)
    assert order.input == folder / "cube.stl" and order.values["output_path"] == Path("c.gcode")


def test_an_empty_folder_name_is_a_medprint_error():
    from medprint.jobs.orders import safe_folder_name

    with pytest.raises(MedprintError):
        safe_folder_name("")


# --- 9, 10. many problems, CSV order, run on a batch -----------------------------------------------------------


def test_a_huge_bad_order_lists_fifty_problems_and_counts_the_rest(folder):
    path = write(folder, SLICE + "".join(f"k{i} = {i}\n" for i in range(500)))
    with pytest.raises(OrderError) as caught:
        load_order(path)
    error = caught.value
    assert str(error).splitlines()[0] == f"{path}: 500 problems"
    assert len(error.problems) == 51 and error.problems[-1] == "... and 450 more problems"
    assert error.problems[0].startswith(f"{path}:7: k0: ")


def test_csv_problems_come_in_the_order_of_their_lines(folder):
    from medprint.jobs.orders import load_batch

    path = folder / "b.csv"
    # Rows 2 and 3 clash (found after every row is read); row 4 is bad on its own.
    path.write_text("id,input,smooth\nA,cube.stl,3\nA,cube.stl,4\nB,cube.stl,nope\n")
    with pytest.raises(OrderError) as caught:
        load_batch(path)
    lines = [int(p.removeprefix(f"{path}:").split(":")[0]) for p in caught.value.problems]
    assert lines == sorted(lines) and len(lines) >= 2 and lines[-1] == 4


def test_medprint_run_on_a_csv_or_a_batch_points_to_medprint_batch(folder):
    csv_path = folder / "b.csv"
    csv_path.write_text("id,input\nA,cube.stl\n")
    result = medprint("run", csv_path)
    assert result.exit_code == 2 and "medprint batch" in result.stderr
    batch = write(folder, '[[order]]\nid = "a"\ninput = "cube.stl"\n', name="batch.toml")
    result = medprint("run", batch)
    assert result.exit_code == 2 and "`medprint batch`" in result.stderr and "load_batch" not in result.stderr


# --- 11. an output name of bytes that are not UTF-8 --------------------------------------------------------------


def test_an_output_name_that_is_not_utf8_is_one_clear_error(folder):
    import os

    name = os.fsdecode(b"\xff.gcode")
    result = medprint(*slice_args(folder, folder / name))
    assert result.exit_code == 1 and "not valid UTF-8" in result.stderr and "Traceback" not in result.output


def test_every_bad_design_setting_is_reported_not_only_the_first(folder):
    (folder / "ct.nii.gz").write_bytes(b"not read at load time")
    path = write(folder, 'id = "i"\ncommand = "design implant"\ninput = "ct.nii.gz"\noutput = "i.stl"\n'
                         'plane = [[0,0,0],[0,0,0]]\nmin-wall = -1\nresolution = 0\nrim = "i.stl"\n')
    found = [tuple(p.split(": ")[:2]) for p in problems_of(path)]
    assert found == [(f"{path}:5", "plane"), (f"{path}:6", "min-wall"), (f"{path}:7", "resolution"),
                     (f"{path}:8", "rim")]
