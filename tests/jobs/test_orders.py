"""One order file: read by the options' own kinds, every problem at its line, written back, recorded, run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_job import install

from medprint.errors import DesignError, ParameterError
from medprint.jobs.orders import (
    Order,
    OrderError,
    load_order,
    order_from_mapping,
    order_record,
    order_text,
    parameters_digest,
    run_order,
)


@pytest.fixture
def toy(monkeypatch):
    return install(monkeypatch)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "scan.nii").write_bytes(b"scan bytes")
    (tmp_path / "labels.json").write_text("{}")
    return tmp_path


def write(folder: Path, text: str, name: str = "order.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
id = "2026-0412 skull"
command = "toy"
input = "scan.nii"
output = "skull.stl"
preset = "bone"
smooth = 20
seed = [[12.5, -30, 101], "1,2,3"]
threshold = "226:3071"
labels = "labels.json#map"
notes = "free text"
[provenance]
indication = "cranioplasty"
department = "neurosurgery"
"""


def problems_of(path: Path) -> list[str]:
    with pytest.raises(OrderError) as refused:
        load_order(path)
    return refused.value.problems


def test_a_good_order_holds_typed_values_by_dest_and_absolute_inputs(toy, folder):
    order = load_order(write(folder, GOOD))
    assert order.id == "2026-0412 skull" and order.command == "toy"
    assert order.input == folder / "scan.nii" and order.input.is_absolute()
    assert order.values["smooth"] == 20.0 and isinstance(order.values["smooth"], float)
    assert order.values["seeds"] == ((12.5, -30.0, 101.0), (1.0, 2.0, 3.0))
    assert order.values["threshold"] == (226.0, 3071.0)
    assert order.values["output_path"] == Path("skull.stl")
    assert order.values["labels"] == folder / "labels.json#map"
    assert "iterations" not in order.values  # only the keys given
    assert dict(order.provenance) == {"indication": "cranioplasty", "department": "neurosurgery"}
    assert order.notes == "free text"
    assert order.lines["smooth"] == 6 and order.lines["provenance.department"] == 13
    assert order.input_paths() == (folder / "scan.nii", folder / "labels.json#map")
    assert order.output_names() == (Path("skull.stl"),)


def test_every_problem_is_reported_at_its_line_before_anything_runs(toy, folder):
    path = write(folder, """\
id = "x"
command = "toy"
input = "scan.nii"
output = "skull.stl"
presett = "bone"
smooth = "lots"
fill = 1
iterations = [1, 2]
""")
    problems = problems_of(path)
    assert problems == [
        f"{path}:5: presett: unknown key for toy; did you mean 'preset'?",
        f"{path}:6: smooth: 'lots' is not a number",
        f"{path}:7: fill: 1 is not true or false",
        f"{path}:8: iterations: [1, 2] is not a valid integer",
    ]


def test_the_error_names_the_file_and_the_count_then_one_problem_a_line(toy, folder):
    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\nsmooth = -1\nfill = "no"\n')
    with pytest.raises(OrderError) as refused:
        load_order(path)
    error = refused.value
    assert isinstance(error, ParameterError)
    lines = str(error).split("\n")
    assert lines[0] == f"{path}: 2 problems"
    assert lines[1:] == error.problems and len(error.problems) == 2


def test_a_toml_syntax_error_keeps_its_line_and_column_on_one_line(toy, folder):
    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii\nsmooth = 3\n')
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: input: not valid TOML: ")  # the key its line sets
    assert "line 3, column" in problem and "\n" not in problem


@pytest.mark.parametrize("key, value, words", [
    ("smooth", '"twenty"', "'twenty' is not a number"),
    ("smooth", "true", "True is not a number"),
    ("smooth", "150", "150"),                       # out of the option's range: its own bound and why
    ("fill", "1", "1 is not true or false"),
    ("fill", '"yes"', "'yes' is not true or false"),
    ("preset", "[\"bone\"]", "is not a word"),
    ("preset", '"marrow"', "'marrow' is not one of 'bone', 'skin'"),
    ("threshold", "[3071, 226]", "low 3071 must be below high 226"),
    ("seed", "[[1, 2]]", "[1, 2] is not [X, Y, Z], three numbers"),
    ("output", "[\"a.stl\"]", "is not a path"),
])
def test_a_value_of_the_wrong_type_or_range_is_refused_with_its_key(toy, folder, key, value, words):
    path = write(folder, f'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\n{key} = {value}\n'
                 .replace('output = "a.stl"\noutput', 'output'))
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:") and f": {key}: " in problems[0]
    assert words in problems[0]


def test_the_out_of_range_message_gives_the_bound_and_why(toy, folder):
    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\nsmooth = 150\n')
    [problem] = problems_of(path)
    assert problem == f"{path}:5: smooth: 150 must be >= 0 and <= 100 (iterations)"


@pytest.mark.parametrize("missing", ["id", "input", "output"])
def test_a_missing_required_key_is_named(toy, folder, missing):
    keys = {"id": 'id = "x"', "input": 'input = "scan.nii"', "output": 'output = "a.stl"'}
    text = 'command = "toy"\n' + "\n".join(line for key, line in keys.items() if key != missing) + "\n"
    [problem] = problems_of(write(folder, text))
    assert f": {missing}: missing" in problem


def test_an_unknown_command_is_refused_with_the_closest_one(toy, folder):
    [problem] = problems_of(write(folder, 'id = "x"\ncommand = "slise"\ninput = "scan.nii"\n'))
    assert ":2: command: 'slise' is not a command; did you mean 'slice'?" in problem


def test_a_missing_input_names_the_file_and_where_it_was_looked_for(toy, folder):
    [problem] = problems_of(write(folder, 'id = "x"\ncommand = "toy"\ninput = "scans/case12"\noutput = "a.stl"\n'))
    assert problem == (f"{folder / 'order.toml'}:3: input: 'scans/case12' does not exist "
                       f"(relative to {folder}, the order file's folder)")


def test_input_paths_start_at_the_order_files_folder_not_the_current_one(toy, folder, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    order = load_order(write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\n'))
    assert order.input == folder / "scan.nii"


@pytest.mark.parametrize("output, words", [
    ("/etc/passwd", "is an absolute path"),
    ("C:\\\\Windows\\\\x.stl", "is an absolute path"),
    ("../x.stl", "reaches out of the output folder"),
    ("a/../../x.stl", "reaches out of the output folder"),
    ("a\\\\..\\\\..\\\\x.stl", "reaches out of the output folder"),
    ("a\\u0000b.stl", "NUL"),
    ("a\\nb.stl", "control character"),
    (".", "names no file"),
])
def test_an_output_outside_the_output_folder_is_refused(toy, folder, output, words):
    path = write(folder, f'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "{output}"\n')
    [problem] = problems_of(path)
    assert f"{path}:4: output: " in problem and words in problem


def test_keys_of_the_command_line_only_are_refused(toy, folder):
    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\noverwrite = true\n'
                         'json = true\nsave-order = "o.toml"\n')
    problems = problems_of(path)
    assert [p.split(": ")[1] for p in problems] == ["overwrite", "json", "save-order"]
    assert all("not an order key" in p for p in problems)


def test_a_conflict_between_options_is_reported_at_its_first_options_line(toy, folder):
    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\nsmooth = 3\nfill = true\n')
    [problem] = problems_of(path)
    assert problem == f"{path}:6: fill: --fill goes with --preset; add --preset or drop --fill"


def test_provenance_is_free_text_and_never_the_patient(toy, folder):
    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\n[provenance]\n'
                         'indication = 3\npatient_name = "Doe^Jane"\n')
    problems = problems_of(path)
    assert [p.split(": ")[1] for p in problems] == ["provenance.indication", "provenance.patient_name"]
    assert f"{path}:6:" in problems[0] and f"{path}:7:" in problems[1]


def test_a_batch_file_is_not_one_order(toy, folder):
    [problem] = problems_of(write(folder, '[[order]]\nid = "x"\n'))
    assert "load_batch" in problem


def test_order_text_reads_back_as_an_equal_order(toy, folder):
    order = load_order(write(folder, GOOD))
    text = order_text(order, relative_to=folder)
    assert 'input = "scan.nii"' in text and str(folder) not in text
    again = load_order(write(folder, text, "again.toml"))
    assert again == order
    absolute = order_text(order)
    assert f'input = "{folder / "scan.nii"}"' in absolute
    moved = folder / "sub"
    moved.mkdir()
    assert load_order(write(moved, absolute, "moved.toml")) == order


def test_order_from_mapping_takes_typed_toml_values_and_the_cli_text_forms_alike(toy, folder):
    common = {"id": "x", "command": "toy", "input": "scan.nii", "output": "a.stl"}
    toml_style = order_from_mapping({**common, "seed": [1, 2, 3], "threshold": [226, 3071], "smooth": 5},
                                    base_dir=folder)
    cli_style = order_from_mapping({**common, "seed": "1,2,3", "threshold": "226:3071", "smooth": "5"},
                                   base_dir=folder)
    assert toml_style == cli_style
    assert toml_style.values["seeds"] == ((1.0, 2.0, 3.0),)
    with pytest.raises(OrderError) as refused:
        order_from_mapping({**common, "smooth": "x"}, base_dir=folder)
    assert refused.value.problems == ["order:1: smooth: 'x' is not a number"]


def test_the_digest_counts_defaults_and_outputs_but_not_ids_or_input_paths(toy, folder):
    (folder / "other.nii").write_bytes(b"other")
    common = {"id": "x", "command": "toy", "input": "scan.nii", "output": "a.stl"}

    def digest(**changes):
        return parameters_digest(order_from_mapping({**common, **changes}, base_dir=folder))

    plain = digest()
    assert digest(smooth=10) == plain            # the default, given or not
    assert digest(id="y", input="other.nii") == plain
    assert digest(smooth=11) != plain
    assert digest(output="b.stl") != plain
    assert digest(labels="labels.json") == plain  # an input path: its bytes are the manifest's business
    assert len(plain) == 64 and int(plain, 16) >= 0


def test_the_record_keeps_the_input_path_out_unless_show_phi(toy, folder):
    order = load_order(write(folder, GOOD))
    record = order_record(order)
    assert record["id"] == "2026-0412 skull" and record["command"] == "toy"
    assert record["sha256"] == parameters_digest(order)
    assert record["provenance"]["indication"] == "cranioplasty"
    assert str(folder) not in json.dumps(record)
    assert record["parameters"]["seed"] == [[12.5, -30.0, 101.0], [1.0, 2.0, 3.0]]
    assert "input" not in record["parameters"] and "labels" not in record["parameters"]
    phi = load_order(write(folder, GOOD.replace("notes =", "show-phi = true\nnotes ="), "phi.toml"))
    assert order_record(phi)["parameters"]["input"] == str(folder / "scan.nii")


def test_run_order_writes_inside_the_output_folder_and_records_the_order(toy, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "made" / "here"
    order = load_order(write(folder, GOOD.replace('output = "skull.stl"', 'output = "sub/skull.stl"')))
    result = run_order(order, out)
    assert result.outputs == (out / "sub" / "skull.stl",)
    written = json.loads((out / "sub" / "skull.stl").read_text())
    assert written["scan_path"] == str(folder / "scan.nii") and written["smooth"] == "20.0"
    assert result.report["order"]["id"] == order.id
    assert result.report["order"]["sha256"] == parameters_digest(order)
    with pytest.raises(Exception, match="already exists"):
        run_order(order, out)
    run_order(order, out, overwrite=True)


def test_a_failed_run_leaves_no_folder_it_made(toy, folder, tmp_path_factory):
    base = tmp_path_factory.mktemp("out")
    order = load_order(write(folder, GOOD.replace("smooth = 20", "fail = true")))
    with pytest.raises(DesignError):
        run_order(order, base / "new")
    assert list(base.iterdir()) == []


def test_run_order_refuses_an_output_a_symbolic_link_leads_out_of_the_folder(toy, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    outside = tmp_path_factory.mktemp("outside")
    os.symlink(outside, out / "link")
    order = load_order(write(folder, GOOD.replace('output = "skull.stl"', 'output = "link/skull.stl"')))
    with pytest.raises(OrderError, match="leads out of the output folder"):
        run_order(order, out)
    assert list(outside.iterdir()) == []


def test_run_order_refuses_conflicts_of_an_order_built_in_code(toy, folder, tmp_path):
    order = Order(id="x", command="toy", input=folder / "scan.nii",
                  values={"output_path": Path("a.stl"), "fill": True})
    with pytest.raises(OrderError, match="--fill goes with --preset"):
        run_order(order, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_orders_can_be_set_members_and_equal_orders_hash_alike(toy, folder):
    one = load_order(write(folder, GOOD))
    again = load_order(write(folder, GOOD, "again.toml"))
    assert {one, again} == {one} and hash(one) == hash(again)


def test_a_hostile_file_is_refused_as_one_problem_not_a_traceback(toy, folder):
    [deep] = problems_of(write(folder, "a = " + "[" * 50_000 + "]" * 50_000 + "\n"))
    assert "nested too deeply" in deep
    [binary] = problems_of(_bytes(folder, b"id = \"\xff\xfe\"\n"))
    assert "not UTF-8" in binary
    [folder_given] = problems_of(folder)
    assert "is a folder" in folder_given


def _bytes(folder: Path, data: bytes) -> Path:
    path = folder / "binary.toml"
    path.write_bytes(data)
    return path


def test_an_order_error_survives_pickling_whole(toy, folder):
    import pickle

    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\nsmooth = "x"\nfill = 2\n')
    with pytest.raises(OrderError) as refused:
        load_order(path)
    again = pickle.loads(pickle.dumps(refused.value))
    assert again.problems == refused.value.problems and str(again) == str(refused.value)
    assert again.source == path


def test_run_order_refuses_an_absolute_output_of_an_order_built_in_code(toy, folder, tmp_path):
    order = Order(id="x", command="toy", input=folder / "scan.nii", values={"output_path": tmp_path / "abs.stl"})
    with pytest.raises(OrderError, match="leads out of the output folder"):
        run_order(order, tmp_path / "out")
    assert not (tmp_path / "abs.stl").exists()
