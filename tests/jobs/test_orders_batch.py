"""Batch files: TOML [defaults] + [[order]] tables and CSV rows, checked as a whole with their lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_job import install

from medprint.jobs.orders import OrderError, load_batch, load_order


@pytest.fixture
def toy(monkeypatch):
    return install(monkeypatch)


@pytest.fixture
def folder(tmp_path):
    for name in ("case1.nii", "case2.nii", "case3.nii"):
        (tmp_path / name).write_bytes(name.encode())
    return tmp_path


def write(folder: Path, text: str, name: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


BATCH = """\
[defaults]
command = "toy"
smooth = 5
[defaults.provenance]
department = "neurosurgery"

[[order]]
id = "A-1"
input = "case1.nii"
output = "bone.stl"
preset = "bone"

[[order]]
id = "A-2"
input = "case2.nii"
output = "skin.stl"
smooth = 7
[order.provenance]
indication = "cranioplasty"
"""


def test_a_toml_batch_gives_each_order_the_defaults_it_does_not_set(toy, folder):
    first, second = load_batch(write(folder, BATCH, "batch.toml"))
    assert (first.id, second.id) == ("A-1", "A-2")
    assert first.values["smooth"] == 5.0 and second.values["smooth"] == 7.0
    assert first.values["preset"] == "bone" and "preset" not in second.values
    assert dict(second.provenance) == {"department": "neurosurgery", "indication": "cranioplasty"}
    assert first.input == folder / "case1.nii"
    assert first.lines["id"] == 8 and second.lines["smooth"] == 17 and first.lines["smooth"] == 3


def test_every_problem_of_every_order_comes_at_once_with_its_line(toy, folder):
    text = BATCH.replace('preset = "bone"', 'preset = "marrow"').replace("smooth = 7", "smooth = -7") \
        .replace('input = "case2.nii"', 'input = "gone.nii"').replace("smooth = 5", "smooth = 5\nsmoth = 1")
    path = write(folder, text, "batch.toml")
    with pytest.raises(OrderError) as refused:
        load_batch(path)
    problems = refused.value.problems
    keys_and_lines = [tuple(p.removeprefix(f"{path}:").split(": ")[:2]) for p in problems]
    # The unknown default is said once, at its line in [defaults], though both orders inherit it.
    assert keys_and_lines == [("4", "smoth"), ("12", "preset"), ("16", "input"), ("18", "smooth")]
    assert str(refused.value).startswith(f"{path}: 4 problems\n")


def test_duplicate_ids_are_refused_with_both_lines(toy, folder):
    path = write(folder, BATCH.replace('id = "A-2"', 'id = "A-1"'), "batch.toml")
    with pytest.raises(OrderError) as refused:
        load_batch(path)
    [problem] = refused.value.problems
    assert problem.startswith(f"{path}:14: id: 'A-1' has the same id as 'A-1' at {path}:8")


def test_ids_that_collide_after_sanitising_are_refused_with_both_lines(toy, folder):
    path = write(folder, BATCH.replace('id = "A-1"', 'id = "A/1"').replace('id = "A-2"', 'id = "a 1"'),
                 "batch.toml")
    with pytest.raises(OrderError) as refused:
        load_batch(path)
    [problem] = refused.value.problems
    assert f"{path}:14: id: 'a 1' has the same folder name (a_1) as 'A/1' at {path}:8" in problem


def test_a_batch_key_outside_the_tables_is_refused(toy, folder):
    path = write(folder, 'printer = "x"\n' + BATCH, "batch.toml")
    with pytest.raises(OrderError, match=r"batch.toml:1: printer: not a batch key"):
        load_batch(path)


def test_a_single_order_file_is_a_batch_of_one(toy, folder):
    path = write(folder, 'id = "x"\ncommand = "toy"\ninput = "case1.nii"\noutput = "a.stl"\n', "one.toml")
    assert load_batch(path) == [load_order(path)]


CSV = """\
id,command,input,preset,smooth,fill,seed,provenance.indication
B-1,toy,case1.nii,bone,5,true,"1,2,3|4,5,6",cranioplasty
B-2,toy,case2.nii,,,,,
"""


def test_a_csv_row_is_an_order_whose_cells_are_the_command_lines_text(toy, folder):
    first, second = load_batch(write(folder, CSV, "week.csv"))
    assert first.values == {"preset": "bone", "smooth": 5.0, "fill": True,
                            "seeds": ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)), "output_path": Path("model.stl")}
    assert dict(first.provenance) == {"indication": "cranioplasty"}
    assert second.values == {"output_path": Path("model.stl")}  # an empty cell is not given
    assert first.lines["id"] == 2 and second.lines["input"] == 3


def test_csv_problems_name_their_row_numbers_all_at_once(toy, folder):
    text = CSV.replace("bone,5,true", "bone,five,maybe").replace("B-2,toy,case2.nii", "B-1,toy,none.nii") \
        + "B-3,toy,case3.nii,skin\n"
    path = write(folder, text, "week.csv")
    with pytest.raises(OrderError) as refused:
        load_batch(path)
    problems = refused.value.problems
    assert problems[0] == f"{path}:2: smooth: 'five' is not a number"
    assert problems[1] == f"{path}:2: fill: 'maybe' is not true or false"
    assert problems[2].startswith(f"{path}:3: input: 'none.nii' does not exist")
    assert problems[3].startswith(f"{path}:4: 4 cells for 8 columns")
    assert len(problems) == 4


def test_a_csv_without_id_or_input_columns_is_refused(toy, folder):
    path = write(folder, "name,file\nA,case1.nii\n", "week.csv")
    with pytest.raises(OrderError) as refused:
        load_batch(path)
    assert [p.split(": ")[1] for p in refused.value.problems] == ["id", "input"]


def test_csv_duplicate_ids_name_both_rows(toy, folder):
    path = write(folder, "id,command,input\nC-1,toy,case1.nii\nC-2,toy,case2.nii\nC-1,toy,case3.nii\n", "w.csv")
    with pytest.raises(OrderError) as refused:
        load_batch(path)
    [problem] = refused.value.problems
    assert problem.startswith(f"{path}:4: id: 'C-1' has the same id as 'C-1' at {path}:2")


def test_a_slice_csv_row_defaults_its_output_to_gcode(folder):
    import trimesh

    trimesh.creation.box((10, 10, 10)).export(folder / "cube.stl")
    path = write(folder, "id,command,input,printer,material,perimeters\nS-1,slice,cube.stl,ender-3,pla,3\n",
                 "slice.csv")
    [order] = load_batch(path)
    assert order.values == {"printer_name": "ender-3", "material_name": "pla", "perimeters": 3,
                            "output_path": Path("model.gcode")}
