"""3MF output (issue 12, point 7): millimetres, object names, colours and model metadata, never identity.

Every file is read back three ways: with lib3mf (the library that wrote it), as the zip + XML a slicer parses
(trimesh and PrusaSlicer read it that way), and by ``prusa-slicer --info`` where it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import SimpleITK as sitk
import trimesh
from click.testing import CliRunner

from medprint import __version__
from medprint.cli import cli
from medprint.errors import ParameterError
from medprint.io import write_mesh
from medprint.io.mesh_3mf import METADATA_NAMESPACE, ModelMetadata, creation_date
from medprint.io.mesh_files import PART_COLOURS, write_parts_3mf
from medprint.mesh.model import Mesh

CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
#: The well-known names of the 3MF core specification (Table 3-1); any other name needs a namespace.
WELL_KNOWN = {"Title", "Designer", "Description", "Copyright", "LicenseTerms", "Rating", "CreationDate",
              "ModificationDate", "Application"}
EPOCH = 1_767_225_600  # 2026-01-01 00:00:00 UTC
#: A patient-like name given where the user names the part: only its reduced form may reach the file.
PATIENT_PART = "Doe^Jane (skull)"


def _box(name: str, offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Mesh:
    solid = trimesh.creation.box((10.0, 20.0, 30.0))
    solid.apply_translation(np.add((-50.0, 12.0, 200.0), offset))
    return Mesh(np.asarray(solid.vertices, float), np.asarray(solid.faces, np.int64), name=name)


def _ball(name: str) -> Mesh:
    ball = trimesh.creation.icosphere(subdivisions=2, radius=5.0)
    ball.apply_translation((30.0, -4.0, 7.0))
    return Mesh(np.asarray(ball.vertices, float), np.asarray(ball.faces, np.int64), name=name)


# ---- reading back ------------------------------------------------------------------------------------------------


def xml_metadata(path: Path) -> dict[str, str]:
    """``{name: value}`` of the model's metadata as an XML reader sees it, custom names as ``{uri}name``.

    Checks on the way the core specification's rule: a name without a prefix is a well-known one, a prefixed
    one uses a namespace declared on ``<model>``.
    """
    text = zipfile.ZipFile(path).read("3D/3dmodel.model").decode("utf-8")
    declared = dict(re.findall(r'xmlns:(\w+)="([^"]+)"', text.split(">", 2)[1]))
    root = ElementTree.fromstring(text)
    found: dict[str, str] = {}
    for element in root.findall(f"{{{CORE}}}metadata"):
        name = element.get("name", "")
        if ":" in name:
            prefix, local = name.split(":", 1)
            assert prefix in declared, f"{name}: prefix not declared on <model>"
            name = f"{{{declared[prefix]}}}{local}"
        else:
            assert name in WELL_KNOWN, f"{name}: not a well-known name and not namespaced"
        assert name not in found, f"{name} twice (the specification forbids it)"
        found[name] = element.text or ""
    return found


def lib3mf_model(path: Path) -> tuple[object, object]:
    import lib3mf

    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.QueryReader("3mf").ReadFromFile(str(path))
    return lib3mf, model


def lib3mf_metadata(path: Path) -> dict[tuple[str, str], tuple[str, bool]]:
    _, model = lib3mf_model(path)
    group = model.GetMetaDataGroup()  # type: ignore[attr-defined]
    entries = {}
    for index in range(group.GetMetaDataCount()):
        item = group.GetMetaData(index)
        entries[(item.GetNameSpace(), item.GetName())] = (item.GetValue(), item.GetMustPreserve())
    return entries


def lib3mf_objects(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, display colour) of each mesh object, in order."""
    _, model = lib3mf_model(path)
    objects = model.GetMeshObjects()  # type: ignore[attr-defined]
    found = []
    while objects.MoveNext():
        part = objects.GetCurrentMeshObject()
        resource, index, has = part.GetObjectLevelProperty()
        assert has, f"{part.GetName()}: no colour"
        colour = model.GetBaseMaterialGroupByID(resource).GetDisplayColor(index)  # type: ignore[attr-defined]
        found.append((part.GetName(), (colour.Red, colour.Green, colour.Blue)))
    return found


# ---- the writers -------------------------------------------------------------------------------------------------


@pytest.fixture
def parts_3mf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    metadata = ModelMetadata(title="fit check", creation_date=creation_date(), order_id="ORD-2026-0412 skull")
    return write_parts_3mf([_box(PATIENT_PART), _ball("aorta")], tmp_path / "parts.3mf",
                           colours=[None, (220, 30, 30)], metadata=metadata)


def test_lib3mf_reads_units_names_colours_and_metadata(parts_3mf: Path) -> None:
    lib3mf, model = lib3mf_model(parts_3mf)
    assert model.GetUnit() == lib3mf.ModelUnit.MilliMeter  # type: ignore[attr-defined]
    assert lib3mf_objects(parts_3mf) == [("Doe_Jane_skull", PART_COLOURS[0]), ("aorta", (220, 30, 30))]
    entries = lib3mf_metadata(parts_3mf)
    assert entries[("", "Title")][0] == "fit_check"
    assert entries[("", "Application")][0] == f"medprint {__version__}"
    assert entries[("", "CreationDate")][0] == "2026-01-01"
    assert entries[(METADATA_NAMESPACE, "order_id")] == ("ORD-2026-0412 skull", True)  # kept by a re-saving slicer
    assert entries[(METADATA_NAMESPACE, "version")][0] == __version__
    assert entries[(METADATA_NAMESPACE, "frame")][0] == "LPS"
    assert len(entries) == 6, entries  # nothing else: no patient, no path


def test_xml_reading_follows_the_core_spec_and_trimesh_reads_the_parts_in_place(parts_3mf: Path) -> None:
    found = xml_metadata(parts_3mf)
    assert found == {
        "Title": "fit_check", "Application": f"medprint {__version__}", "CreationDate": "2026-01-01",
        f"{{{METADATA_NAMESPACE}}}version": __version__, f"{{{METADATA_NAMESPACE}}}frame": "LPS",
        f"{{{METADATA_NAMESPACE}}}order_id": "ORD-2026-0412 skull",
    }
    model = zipfile.ZipFile(parts_3mf).read("3D/3dmodel.model").decode()
    # The part name is reduced to [A-Za-z0-9_.-]: it is the user's word, not free text.
    assert 'unit="millimeter"' in model and "Doe^Jane" not in model and "(skull)" not in model
    scene = trimesh.load(parts_3mf)
    assert set(scene.geometry) == {"Doe_Jane_skull", "aorta"}
    aorta = scene.geometry["aorta"]
    assert aorta.is_watertight and np.allclose(aorta.bounds.mean(axis=0), (30.0, -4.0, 7.0), atol=1e-3)


def test_a_single_mesh_3mf_has_a_colour_a_title_and_no_order(tmp_path: Path) -> None:
    path = write_mesh(_box("bone"), tmp_path / "skull model.3mf", colour=(10, 20, 30))
    assert lib3mf_objects(path) == [("bone", (10, 20, 30))]
    found = xml_metadata(path)
    assert found["Title"] == "skull_model" and found["CreationDate"] == creation_date()
    assert f"{{{METADATA_NAMESPACE}}}order_id" not in found
    default = write_mesh(_box("bone"), tmp_path / "plain.3mf")
    assert lib3mf_objects(default) == [("bone", PART_COLOURS[0])]


def test_source_date_epoch_makes_a_rerun_write_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    first = write_parts_3mf([_box("liver"), _ball("aorta")], (tmp_path / "a").mkdir() or tmp_path / "a" / "m.3mf")
    second = write_parts_3mf([_box("liver"), _ball("aorta")], (tmp_path / "b").mkdir() or tmp_path / "b" / "m.3mf")
    assert first.read_bytes() == second.read_bytes()
    moved = write_parts_3mf([_box("liver", (0.5, 0, 0)), _ball("aorta")], tmp_path / "m.3mf")
    uuids = re.compile(rb'UUID="([^"]+)"')
    # Content-derived UUIDs: another geometry is another object, not a copy of the first one's identity.
    assert set(uuids.findall(first.read_bytes())).isdisjoint(uuids.findall(moved.read_bytes()))


def test_creation_date_is_today_or_the_epochs_day_and_a_bad_epoch_is_one_clear_error() -> None:
    assert creation_date({}) in {date.today().isoformat(), datetime.now(UTC).date().isoformat()}
    assert creation_date({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01"
    with pytest.raises(ParameterError, match=r"SOURCE_DATE_EPOCH: 'yesterday' is not a whole number of seconds"):
        creation_date({"SOURCE_DATE_EPOCH": "yesterday"})
    with pytest.raises(ParameterError, match=r"SOURCE_DATE_EPOCH: 9{30} seconds is past any date"):
        creation_date({"SOURCE_DATE_EPOCH": "9" * 30})
    with pytest.raises(ParameterError, match=r"3MF CreationDate: '2026-01-01T10:00' is not a date"):
        ModelMetadata("x", "2026-01-01T10:00")


def test_an_order_id_with_control_characters_stays_one_inert_line_in_valid_xml(tmp_path: Path) -> None:
    metadata = ModelMetadata(title="m", creation_date="2026-01-01", order_id="ORD-1\x1b[31m\nG28 <&>" + "x" * 300)
    path = write_mesh(_box("bone"), tmp_path / "m.3mf", metadata=metadata)
    order_id = xml_metadata(path)[f"{{{METADATA_NAMESPACE}}}order_id"]  # parses: no raw control in the XML
    assert order_id.startswith("ORD-1\\x1b[31m\\nG28 <&>") and order_id.endswith("...") and len(order_id) == 200


# ---- PrusaSlicer -------------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("prusa-slicer") is None, reason="prusa-slicer is not installed")
def test_prusaslicer_reads_the_parts_in_millimetres_with_their_names(parts_3mf: Path, tmp_path: Path) -> None:
    result = subprocess.run(["prusa-slicer", "--info", str(parts_3mf)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    blocks = [dict(re.findall(r"^(\w+) = +(\S+)$", block, re.MULTILINE))
              for block in result.stdout.split("[parts.3mf]")[1:]]
    # One object per part, where it was written in mm (the box spans x -55..-45, the ball 25..35).
    assert [(float(b["min_x"]), float(b["max_x"]), int(b["number_of_facets"])) for b in blocks] == [
        pytest.approx((-55.0, -45.0, 12)), pytest.approx((25.0, 35.0, 320))]
    assert all(b["manifold"] == "yes" for b in blocks)
    # Saved again by PrusaSlicer, the objects keep the names medprint gave them.
    saved = tmp_path / "saved.3mf"
    result = subprocess.run(["prusa-slicer", "--export-3mf", "-o", str(saved), str(parts_3mf)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    config = zipfile.ZipFile(saved).read("Metadata/Slic3r_PE_model.config").decode()
    assert re.findall(r'type="object" key="name" value="([^"]*)"', config) == ["Doe_Jane_skull", "aorta"]


# ---- from convert and design, with the order they come from --------------------------------------------------------


@pytest.fixture(scope="module")
def patient_named_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bone sphere as NIfTI whose file and folder carry a patient's name."""
    folder = tmp_path_factory.mktemp("scans") / "Doe^Jane_19010203"
    folder.mkdir()
    z, y, x = np.mgrid[:14, :16, :16]
    sphere = (x - 7.5) ** 2 + (y - 7.5) ** 2 + ((z - 6.5) * 1.5) ** 2 <= 5.5**2
    image = sitk.GetImageFromArray(np.where(sphere, 1200, -1000).astype(np.int16))
    image.SetSpacing((1.0, 1.0, 1.5))
    path = folder / "Doe^Jane_CT.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


def _run_order(folder: Path, text: str) -> None:
    order = folder / "order.toml"
    order.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(order), "-o", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def test_an_orders_convert_3mfs_carry_its_id_and_part_names(patient_named_scan: Path, tmp_path: Path) -> None:
    _run_order(tmp_path, f'id = "ORD-7 skull"\ncommand = "convert"\ninput = "{patient_named_scan}"\n'
                         'output = "bone.3mf"\n3mf = "all.3mf"\n')
    for name, title in (("bone.3mf", "bone"), ("all.3mf", "all")):
        found = xml_metadata(tmp_path / name)
        assert found["Title"] == title and found[f"{{{METADATA_NAMESPACE}}}order_id"] == "ORD-7 skull"
        assert lib3mf_objects(tmp_path / name) == [("bone", PART_COLOURS[0])]
        model = zipfile.ZipFile(tmp_path / name).read("3D/3dmodel.model")
        assert b"Jane" not in model and b"19010203" not in model


def test_a_design_3mf_carries_the_order_id_and_the_part_colour(patient_named_scan: Path, tmp_path: Path) -> None:
    from medprint.design.run import PART_COLOUR

    mesh = tmp_path / "Doe^Jane_bone.stl"
    assert CliRunner().invoke(cli, ["convert", str(patient_named_scan), "-o", str(mesh), "--no-report"]).exit_code == 0
    _run_order(tmp_path, f'id = "ORD-8 label"\ncommand = "design label"\ninput = "{mesh}"\n'
                         'output = "labelled.3mf"\ntext = "L"\nsize = 3\n')
    found = xml_metadata(tmp_path / "labelled.3mf")
    assert found["Title"] == "labelled" and found[f"{{{METADATA_NAMESPACE}}}order_id"] == "ORD-8 label"
    [(name, colour)] = lib3mf_objects(tmp_path / "labelled.3mf")
    assert colour == PART_COLOUR and "Jane" not in name
