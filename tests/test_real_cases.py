"""The one-shot conversion on real scans from MEDPRINT_DATA (skipped, with the reason, where absent)."""

import ast
import json
from pathlib import Path

import cc3d
import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from medprint.cli import cli
from medprint.io import load_volume
from medprint.segment import SegmentationSettings, segment_by_threshold, threshold_volume

TESTS_ROOT = Path(__file__).resolve().parent


@pytest.mark.realdata
def test_head_ct_bone_drops_the_head_holder(real_data):
    volume = load_volume(real_data("invesalius_cranium_ct/cranium_ct.nii.gz"))
    raw = threshold_volume(volume, 226, 3071)
    labels = cc3d.connected_components(raw.array, connectivity=6)
    sizes = np.bincount(labels.ravel())[1:]
    by_size = np.argsort(sizes)[::-1] + 1
    holder_parts = [label for label in by_size[1:3] if sizes[label - 1] * volume.geometry.voxel_volume_mm3 > 10_000]
    assert len(holder_parts) == 2  # the two arms of the head holder, ~29 cm3 each

    mask, steps = segment_by_threshold(volume, SegmentationSettings(preset="bone"))

    assert not np.isin(labels[mask.array], holder_parts).any()
    assert mask.voxel_count == sizes[by_size[0] - 1]
    assert "kept the largest of" in steps[-1]


@pytest.mark.realdata
def test_head_ct_convert_gives_one_watertight_skull(real_data, tmp_path):
    source = real_data("invesalius_cranium_ct/cranium_ct.nii.gz")
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(tmp_path / "skull.stl"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    facts = report["mesh"]
    assert facts["watertight"] and facts["outward"] and facts["winding_consistent"]
    assert facts["bodies"] == 1  # one skull; the holder is gone
    # An adult skull with mandible and upper cervical spine at the bone preset: 0.4-0.9 litres.
    assert 400_000 < facts["volume_mm3"] < 900_000
    assert facts["volume_mm3"] == pytest.approx(report["mask"]["volume_mm3"], rel=0.03)
    width, depth, height = facts["bounding_box_mm"]["size"]
    assert 120 < width < 170 and 160 < depth < 230  # head-sized, not holder-sized (245 mm)
    mesh = trimesh.load(tmp_path / "skull.stl")
    assert mesh.is_watertight and mesh.is_winding_consistent


#: Names whose use in a test or fixture means it reads the real cases.
REAL_DATA_NAMES = {"real_data", "data_root", "MEDPRINT_DATA"}


def _marked(node: ast.AST) -> bool:
    return any("realdata" in ast.unparse(decorator) for decorator in getattr(node, "decorator_list", []))


def _uses_real_data(function: ast.FunctionDef, real_fixtures: set[str]) -> bool:
    arguments = {arg.arg for arg in function.args.args + function.args.kwonlyargs}
    if arguments & (REAL_DATA_NAMES | real_fixtures):
        return True
    names = {node.id for node in ast.walk(function) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(function) if isinstance(node, ast.Attribute)}
    names |= {alias.name for node in ast.walk(function) if isinstance(node, ast.ImportFrom) for alias in node.names}
    strings = {node.value for node in ast.walk(function) if isinstance(node, ast.Constant)}
    return bool((names | strings) & REAL_DATA_NAMES)


def unmarked_real_data_tests(source: str) -> list[str]:
    """Tests in ``source`` that read the real cases (directly or through a fixture) without the realdata marker."""
    tree = ast.parse(source)
    module_marked = any(
        isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
        and "realdata" in ast.unparse(node.value)
        for node in tree.body
    )
    functions = [(node, None) for node in tree.body if isinstance(node, ast.FunctionDef)]
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        functions += [(node, cls) for node in cls.body if isinstance(node, ast.FunctionDef)]
    fixtures = [f for f, _ in functions if any("fixture" in ast.unparse(d) for d in f.decorator_list)]
    real_fixtures: set[str] = set()
    # Fixtures may build on each other: iterate until no new real-data fixture appears.
    while True:
        found = {f.name for f in fixtures if _uses_real_data(f, real_fixtures)}
        if found <= real_fixtures:
            break
        real_fixtures |= found
    return [
        function.name
        for function, cls in functions
        if function.name.startswith("test")
        and _uses_real_data(function, real_fixtures)
        and not (module_marked or _marked(function) or (cls is not None and _marked(cls)))
    ]


def test_the_marker_check_sees_a_real_data_test_without_the_marker():
    bare = "def test_x(real_data):\n    real_data('a')\n"
    through_fixture = (
        "import pytest\n@pytest.fixture\ndef scan():\n    from conftest import data_root\n    return data_root()\n"
        "def test_y(scan):\n    pass\n"
    )
    marked = "import pytest\n@pytest.mark.realdata\ndef test_z(real_data):\n    pass\n"
    module_marked = "import pytest\npytestmark = pytest.mark.realdata\ndef test_w(real_data):\n    pass\n"
    assert unmarked_real_data_tests(bare) == ["test_x"]
    assert unmarked_real_data_tests(through_fixture) == ["test_y"]
    assert unmarked_real_data_tests(marked) == []
    assert unmarked_real_data_tests(module_marked) == []


def test_every_real_data_test_carries_the_realdata_marker():
    # `-m "not realdata"` must leave out every test that reads the real cases, and `-rs` shows why they skip.
    offenders = [
        f"{path.relative_to(TESTS_ROOT)}::{name}"
        for path in sorted(TESTS_ROOT.rglob("*.py"))
        if path.name != "conftest.py"
        for name in unmarked_real_data_tests(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"add @pytest.mark.realdata to: {offenders}"
