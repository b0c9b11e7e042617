"""run_design: every output reserved first, all written or none, the report says how the part was made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from medprint.design import DesignOutputs, Part, describe_input, fields, run_design
from medprint.errors import DesignError, OutputError, ParameterError
from medprint.io.mesh_files import read_mesh_file
from medprint.mesh.model import Mesh


def _sphere(radius: float) -> Mesh:
    made = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    return Mesh(np.asarray(made.vertices, float), np.asarray(made.faces, np.int64), "anatomy")


def _cap(anatomy: Mesh) -> Part:
    grid = fields.grid_around(anatomy, 0.5, 3.0)
    skin = fields.mesh_distance(anatomy, grid, exact_within_mm=(1.0,))
    wall = fields.intersection(fields.shell(skin, 1.0), fields.plane_field(grid, (0, 0, 5.0), (0, 0, -1.0)))
    return Part(mesh=fields.field_surface(wall, "cap"), kind="orthosis", method="a 1 mm shell over the top",
                measurements={"thickness_mm": 1.0}, choices=("kept above z = 5 mm",), extras={"anatomy": anatomy})


def test_a_design_writes_its_mesh_extras_fit_and_report(tmp_path: Path):
    anatomy = _sphere(10.0)
    outputs = DesignOutputs(mesh=tmp_path / "cap.stl", extras={"anatomy": tmp_path / "head.stl"},
                            fit_3mf=tmp_path / "fit.3mf")
    part, report = run_design(outputs, lambda: _cap(anatomy), input_facts=describe_input(anatomy),
                              parameters={"thickness_mm": 1.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cap.report.json", "cap.stl", "fit.3mf", "head.stl"]
    written = json.loads((tmp_path / "cap.report.json").read_text())
    assert written["design"]["kind"] == "orthosis" and written["design"]["method"] == "a 1 mm shell over the top"
    assert written["mesh"]["watertight"] and written["mesh"]["bodies"] == 1
    assert written["choices"] == ["kept above z = 5 mm"]
    assert written["design"]["outputs"] == {"anatomy": "head.stl", "fit_3mf": "fit.3mf"}
    back = read_mesh_file(tmp_path / "cap.stl")
    assert back.vertices[:, 2].min() > 4.9  # the part stays where it was designed, in LPS
    assert report["mesh"]["volume_mm3"] == pytest.approx(part.mesh.volume_mm3(), abs=0.01)


def test_a_failing_design_leaves_no_file(tmp_path: Path):
    def fails() -> Part:
        raise DesignError("no defect found")

    outputs = DesignOutputs(mesh=tmp_path / "x.stl", fit_3mf=tmp_path / "fit.3mf")
    with pytest.raises(DesignError):
        run_design(outputs, fails, input_facts={}, parameters={})
    assert list(tmp_path.iterdir()) == []


def test_a_part_in_two_bodies_is_refused_when_one_is_expected(tmp_path: Path):
    def two() -> Part:
        a, b = _sphere(5.0), _sphere(5.0)
        moved = Mesh(b.vertices + 20.0, b.faces)
        both = Mesh(np.vstack([a.vertices, moved.vertices]), np.vstack([a.faces, b.faces + a.vertex_count]), "x")
        return Part(mesh=both, kind="implant", method="test")

    with pytest.raises(DesignError, match="2 separate bodies"):
        run_design(DesignOutputs(mesh=tmp_path / "x.stl"), two, input_facts={}, parameters={})
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_checked_before_the_work(tmp_path: Path):
    called = []

    def make() -> Part:
        called.append(1)
        return _cap(_sphere(10.0))

    (tmp_path / "cap.stl").write_bytes(b"old")
    with pytest.raises(OutputError):
        run_design(DesignOutputs(mesh=tmp_path / "cap.stl"), make, input_facts={}, parameters={})
    with pytest.raises(ParameterError, match="--fit"):
        run_design(DesignOutputs(mesh=tmp_path / "n.stl", fit_3mf=tmp_path / "fit.stl"), make, input_facts={},
                   parameters={})
    assert called == [] and (tmp_path / "cap.stl").read_bytes() == b"old"
    with pytest.raises(ParameterError, match="is a folder"):
        run_design(DesignOutputs(mesh=tmp_path), make, input_facts={}, parameters={})
    with pytest.raises(ParameterError, match="--rim"):
        run_design(DesignOutputs(mesh=tmp_path / "n.stl", extras={"rim": tmp_path / "rim.stl"}), make,
                   input_facts={}, parameters={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cap.stl"]


def test_every_public_design_name_resolves():
    import medprint.design as design

    missing = [name for name in design.__all__ if getattr(design, name, None) is None]
    assert missing == []
    with pytest.raises(AttributeError):
        design.no_such_design  # noqa: B018
