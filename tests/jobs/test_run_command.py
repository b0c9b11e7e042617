"""`medprint run ORDER.toml` and `--save-order`: a command-line run and its saved order make the same G-code."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest
import trimesh
from click.testing import CliRunner

from medprint.cli import cli
from medprint.jobs.orders import load_order, order_from_mapping, parameters_digest


def medprint(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def cube(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mesh")
    trimesh.creation.box((20.0, 20.0, 12.0)).export(folder / "cube.stl")
    return folder / "cube.stl"


@pytest.fixture(scope="module")
def saved(cube, tmp_path_factory):
    """`medprint slice` with a few options and --save-order, from a working folder of its own."""
    work = tmp_path_factory.mktemp("work")
    (work / "first").mkdir()
    result = medprint("slice", cube, "-o", work / "first" / "cube.gcode", "--printer", "ender-3", "--material", "pla",
                      "--perimeters", "3", "--infill-density", "20%", "--save-order", work / "orders" / "o.toml")
    assert result.exit_code == 1 and "--save-order" in result.stderr  # its folder does not exist: refused first
    assert not (work / "first" / "cube.gcode").exists()
    (work / "orders").mkdir()
    result = medprint("slice", cube, "-o", work / "first" / "cube.gcode", "--printer", "ender-3", "--material", "pla",
                      "--perimeters", "3", "--infill-density", "20%", "--save-order", work / "orders" / "o.toml")
    assert result.exit_code == 0, result.output
    return work


def test_the_saved_order_holds_only_what_the_user_gave_with_paths_order_style(saved, cube):
    order_file = saved / "orders" / "o.toml"
    document = tomllib.loads(order_file.read_text())
    assert document == {"id": "cube", "command": "slice", "input": str(Path("..") / ".." / cube.parent.name /
                                                                          "cube.stl"),
                        "printer": "ender-3", "material": "pla", "output": "cube.gcode", "perimeters": 3,
                        "infill-density": 0.2}
    assert load_order(order_file).input == cube


def test_running_the_saved_order_elsewhere_makes_the_same_gcode(saved):
    result = medprint("run", saved / "orders" / "o.toml", "-o", saved / "other")
    assert result.exit_code == 0, result.stderr
    first = (saved / "first" / "cube.gcode").read_bytes()
    again = (saved / "other" / "cube.gcode").read_bytes()
    # The header has no time stamp (version, profiles, estimates only), so the files are equal byte for byte.
    assert not any(word in first[:2000].lower() for word in (b"date", b"time stamp", b"generated at"))
    assert again == first
    assert "other" in result.stdout and "layers" in result.stdout  # the job's summary line


def test_the_saved_order_has_the_digest_of_the_same_options_written_by_hand(saved, cube):
    by_hand = order_from_mapping({"id": "anything", "command": "slice", "input": str(cube), "output": "cube.gcode",
                                  "printer": "ender-3", "material": "pla", "perimeters": 3,
                                  "infill-density": "20%", "top-layers": 4},  # 4 is the default
                                 base_dir=cube.parent)
    assert parameters_digest(load_order(saved / "orders" / "o.toml")) == parameters_digest(by_hand)


def test_the_json_report_records_the_order_and_no_input_path(saved, cube):
    result = medprint("run", saved / "orders" / "o.toml", "-o", saved / "json", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    order = load_order(saved / "orders" / "o.toml")
    assert report["order"]["id"] == "cube"
    assert report["order"]["sha256"] == parameters_digest(order)
    assert report["order"]["parameters"]["perimeters"] == 3
    assert str(cube.parent) not in result.stdout and "input" not in report["order"]["parameters"]


def test_with_show_phi_the_record_has_the_input_path(monkeypatch, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from toy_job import install

    install(monkeypatch)  # slice has no show-phi; the toy job has
    (tmp_path / "scan.nii").write_bytes(b"scan")
    text = 'id = "x"\ncommand = "toy"\ninput = "scan.nii"\noutput = "a.stl"\n'
    (tmp_path / "plain.toml").write_text(text)
    (tmp_path / "phi.toml").write_text(text + "show-phi = true\n")
    plain = medprint("run", tmp_path / "plain.toml", "-o", tmp_path / "plain", "--json")
    shown = medprint("run", tmp_path / "phi.toml", "-o", tmp_path / "phi", "--json")
    assert plain.exit_code == 0 and shown.exit_code == 0, plain.stderr + shown.stderr
    assert "input" not in json.loads(plain.stdout)["order"]["parameters"] and "scan.nii" not in plain.stdout
    assert json.loads(shown.stdout)["order"]["parameters"]["input"] == str(tmp_path / "scan.nii")


def test_an_existing_output_needs_overwrite(saved):
    (saved / "twice").mkdir()
    assert medprint("run", saved / "orders" / "o.toml", "-o", saved / "twice").exit_code == 0
    again = medprint("run", saved / "orders" / "o.toml", "-o", saved / "twice")
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert medprint("run", saved / "orders" / "o.toml", "-o", saved / "twice", "--overwrite").exit_code == 0


def test_save_order_refuses_an_existing_order_file_before_the_run(saved, cube, tmp_path):
    result = medprint("slice", cube, "-o", tmp_path / "x.gcode", "--printer", "ender-3", "--material", "pla",
                      "--save-order", saved / "orders" / "o.toml")
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert not (tmp_path / "x.gcode").exists()


def test_a_bad_order_is_refused_whole_with_exit_2_and_nothing_written(cube, tmp_path):
    order = tmp_path / "bad.toml"
    order.write_text(f'id = "x"\ncommand = "slice"\ninput = "{cube}"\noutput = "../up.gcode"\n'
                     'printr = "ender-3"\nmaterial = "pla"\nperimeters = "many"\n')
    result = medprint("run", order, "-o", tmp_path / "out")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"medprint: error: {order}: 4 problems"
    # In the order of their lines; a missing key at the order's first line.
    assert [line.strip().split(": ")[1] for line in lines[1:]] == ["printer", "output", "printr", "perimeters"]
    assert "did you mean 'printer'?" in lines[3]
    assert not (tmp_path / "out").exists() and not (tmp_path / "up.gcode").exists()


def test_a_job_that_fails_exits_1_and_leaves_nothing(tmp_path):
    broken = tmp_path / "broken.stl"
    broken.write_text("solid nothing\nendsolid nothing\n")  # read only when the job runs
    order = tmp_path / "o.toml"
    order.write_text(f'id = "x"\ncommand = "slice"\ninput = "{broken}"\noutput = "a.gcode"\n'
                     'printer = "ender-3"\nmaterial = "pla"\n')
    result = medprint("run", order, "-o", tmp_path / "out")
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("medprint: error: ") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_unknown_printer_is_refused_with_the_order_before_it_runs(cube, tmp_path):
    order = tmp_path / "o.toml"
    order.write_text(f'id = "x"\ncommand = "slice"\ninput = "{cube}"\noutput = "a.gcode"\n'
                     'printer = "no-such-printer"\nmaterial = "pla"\n')
    result = medprint("run", order, "-o", tmp_path / "out")
    assert result.exit_code == 2 and f"{order}:5: printer: no printer called 'no-such-printer'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_conflict_of_options_is_a_usage_error_at_its_line(cube, tmp_path):
    order = tmp_path / "o.toml"
    order.write_text(f'id = "x"\ncommand = "slice"\ninput = "{cube}"\noutput = "a.gcode"\n'
                     'printer = "ender-3"\nmaterial = "pla"\nsupport-angle = 30\n')
    result = medprint("run", order, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert f"{order}:7: support-angle: --support-angle goes with --supports" in result.stderr


def test_control_characters_of_an_order_reach_the_terminal_escaped(cube, tmp_path):
    order = tmp_path / "o.toml"
    order.write_text(f'id = "x"\ncommand = "slice"\ninput = "{cube}"\noutput = "a.gcode"\n'
                     'printer = "ender-3"\nmaterial = "pla"\n"\\u001b[2Jevil\\nmedprint: ok" = 1\n')
    result = medprint("run", order, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b[2Jevil\\nmedprint: ok" in result.stderr
    assert len(result.stderr.splitlines()) == 2


@pytest.mark.parametrize("option, order_value, cli_value", [
    ("perimeters", '"many"', "many"),
    ("layer-height", '"thick"', "thick"),
    ("scale", '"0"', "0"),
    ("infill-density", '"150%"', "150%"),
    ("orient", '"up"', "up"),
])
def test_an_order_refuses_what_the_command_line_refuses_in_the_same_words(cube, tmp_path, option, order_value,
                                                                           cli_value):
    order = tmp_path / "o.toml"
    order.write_text(f'id = "x"\ncommand = "slice"\ninput = "{cube}"\noutput = "a.gcode"\n'
                     f'printer = "ender-3"\nmaterial = "pla"\n{option} = {order_value}\n')
    refused = medprint("run", order, "-o", tmp_path / "out")
    assert refused.exit_code == 2
    words = refused.stderr.splitlines()[1].split(f"{option}: ", 1)[1]
    cli = medprint("slice", cube, "-o", tmp_path / "a.gcode", "--printer", "ender-3", "--material", "pla",
                   f"--{option}", cli_value)
    assert cli.exit_code == 2 and words.rstrip(".") in cli.stderr


def test_a_missing_order_file_is_a_usage_error(tmp_path):
    result = medprint("run", tmp_path / "none.toml")
    assert result.exit_code == 2 and "no such order file" in result.stderr


def test_run_writes_into_the_current_folder_by_default(saved, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = medprint("run", saved / "orders" / "o.toml")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "cube.gcode").read_bytes() == (saved / "first" / "cube.gcode").read_bytes()


def test_run_points_a_batch_file_to_the_batch_reader(cube, tmp_path):
    batch = tmp_path / "batch.toml"
    batch.write_text(f'[defaults]\ncommand = "slice"\n\n[[order]]\nid = "a"\ninput = "{cube}"\n')
    result = medprint("run", batch, "-o", tmp_path / "out")
    assert result.exit_code == 2 and f"{batch}:4: order: this is a batch" in result.stderr
    assert not (tmp_path / "out").exists()
