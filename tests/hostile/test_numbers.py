"""Hostile numbers: every numeric option of ``convert`` and ``slice`` is finite and bounded, contradictory
options are usage errors, and ``slice`` refuses scans and corrupt meshes in one line.

Options are refused by click before any file is read (exit 2); values that pass click but not the settings'
own checks (a layer height above the nozzle's range) are refused before the mesh or scan is read (exit 1).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import nibabel as nib
import numpy as np
import pytest
import trimesh
from harness import assert_refused, assert_succeeded, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medprint.errors import MedprintError, ParameterError
from medprint.geometry import Geometry
from medprint.mesh.model import Mesh
from medprint.io.mesh_files import write_mesh
from medprint.pipeline import SurfaceSettings
from medprint.segment import RegionGrowingSettings, SegmentationSettings, VesselSettings, close_mm
from medprint.slice.engine import SliceSettings
from medprint.slice.profiles import load_profiles
from medprint.volume import Mask


def _scan(folder: Path) -> Path:
    """A 16 mm cube of CT: a bone block in air, 1 mm voxels."""
    folder.mkdir(parents=True, exist_ok=True)
    array = np.full((16, 16, 16), -1000, dtype=np.int16)
    array[4:12, 4:12, 4:12] = 1000
    path = folder / "ct.nii.gz"
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    return path


def _cube_stl(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cube.stl"
    trimesh.creation.box((10.0, 10.0, 10.0)).export(path)
    return path


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    return _scan(tmp_path / "in")


@pytest.fixture
def cube(tmp_path: Path) -> Path:
    return _cube_stl(tmp_path / "in")


# --- convert: every numeric option, nan/inf/out of range -> usage error naming the option --------------------

SEED = ("--seed", "8,8,8")
VESSEL_TUBE = ("--vessel", "--seed", "8,8,8", "--seed", "9,9,9")

CONVERT_REFUSED = [
    ("--decimate", ("--decimate", "nan")),
    ("--decimate", ("--decimate", "inf")),
    ("--decimate", ("--decimate", "-0.5")),
    ("--decimate", ("--decimate", "1e308")),
    ("--decimate", ("--decimate", "150%")),
    ("--close", ("--close", "nan")),
    ("--close", ("--close", "1e9")),
    ("--open", ("--open", "inf")),
    ("--min-component", ("--min-component", "nan")),
    ("--min-component", ("--min-component", "-1")),
    ("--max-deviation", ("--max-deviation", "inf")),
    ("--max-deviation", ("--max-deviation", "0")),
    ("--smooth", ("--smooth", "100000000")),
    ("--smooth", ("--smooth", "-1")),
    ("--threshold", ("--threshold", "-inf:inf")),
    ("--threshold", ("--threshold", "nan:100")),
    ("--threshold", ("--threshold", "1:2:3")),
    ("--threshold", ("--threshold", "")),
    ("--seed", ("--seed", "nan,1,2")),
    ("--seed", ("--seed", "1,2")),
    ("--seed", ("--seed", "1,2,3,4")),
    ("--seed", ("--seed", "1,,2,3")),
    ("--seed", ("--seed", "1e300,0,0")),
    ("--seed-voxel", ("--seed-voxel", "inf,0,0")),
    ("--range", (*SEED, "--range", "0:inf")),
    ("--max-radius", (*SEED, "--max-radius", "1e9")),
    ("--max-volume", (*SEED, "--max-volume", "nan")),
    ("--tube", (*VESSEL_TUBE, "--tube", "nan")),
    ("--tube", (*VESSEL_TUBE, "--tube", "100")),
    ("--branch", (*VESSEL_TUBE, "--tube", "1.4", "--branch", "8,8,8;nan,1,1")),
    ("--false-lumen", (*VESSEL_TUBE, "--tube", "1.4", "--false-lumen", "1,2,inf")),
    ("--percentile", ("--auto-threshold", "percentile", "--percentile", "0:nan")),
    ("--percentile", ("--auto-threshold", "percentile", "--percentile", "1:200")),
]


@pytest.mark.parametrize(("option", "args"), CONVERT_REFUSED, ids=[" ".join(a[-2:]) for _, a in CONVERT_REFUSED])
def test_convert_refuses_bad_number(tmp_path: Path, scan: Path, option: str, args: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with mock.patch("medprint.pipeline.load_volume", side_effect=AssertionError("loaded before refusing")):
        outcome = run_cli("convert", scan, "-o", out / "model.stl", *args)
    assert_refused(outcome, mentions=[option], exit_code=2, out_dir=out)


CONVERT_CONTRADICTIONS = [
    ("--preset", ("--preset", "bone", "--threshold", "0:100")),
    ("--min-component", ("--keep", "largest", "--min-component", "5")),
    ("--percentile", ("--auto-threshold", "otsu", "--percentile", "50:100")),
    ("--printer", ("--printer", "ender-3")),
    ("--supports", ("--supports",)),
    ("--max-radius", (*VESSEL_TUBE, "--tube", "1.4", "--max-radius", "3")),
]


@pytest.mark.parametrize(("option", "args"), CONVERT_CONTRADICTIONS, ids=[a[0] for _, a in CONVERT_CONTRADICTIONS])
def test_convert_contradictory_options_are_usage_errors(tmp_path: Path, scan: Path, option: str,
                                                        args: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with mock.patch("medprint.pipeline.load_volume", side_effect=AssertionError("loaded before refusing")):
        outcome = run_cli("convert", scan, "-o", out / "model.stl", *args)
    line = assert_refused(outcome, mentions=[option], exit_code=2, out_dir=out)
    assert "report" not in line


def test_convert_ascii_with_a_ply_output_is_a_usage_error(tmp_path: Path, scan: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("convert", scan, "-o", out / "model.ply", "--ascii")
    assert_refused(outcome, mentions=["--ascii", ".ply"], exit_code=2, out_dir=out)


def test_convert_close_radius_larger_than_the_scan(tmp_path: Path, scan: Path) -> None:
    """40 mm passes the option's bound (50 mm) but the scan is 16 mm across: refused, not padded to 100^3."""
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("convert", scan, "-o", out / "model.stl", "--modality", "CT", "--close", "40")
    assert_refused(outcome, mentions=["--close", "40", "larger than the scan"], out_dir=out)


# --- convert: property test over every numeric option ---------------------------------------------------------

#: convert's numeric options, with what else they need to be used at all.
CONVERT_NUMERIC = {
    "--decimate": (), "--close": (), "--open": (), "--min-component": (), "--max-deviation": (), "--smooth": (),
    "--threshold": (), "--seed": (), "--seed-voxel": (), "--range": SEED, "--max-radius": SEED,
    "--max-volume": SEED, "--tube": VESSEL_TUBE, "--percentile": ("--auto-threshold", "percentile"),
}
RANGE_OPTIONS = {"--threshold", "--range", "--percentile"}
POINT_OPTIONS = {"--seed", "--seed-voxel"}

_number_text = st.one_of(
    st.sampled_from(["nan", "-nan", "inf", "-inf", "+inf", "Infinity", "-0", "0", "1e308", "-1e308", "1e-320",
                     "", " ", "1_000", "0x10", "10%", "nan%", "1e400"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(alphabet="0123456789.-+eE:,;naif% ", max_size=12),
)


def _option_value(option: str, draw: Any) -> str:
    if option in RANGE_OPTIONS:
        return f"{draw(_number_text)}:{draw(_number_text)}"
    if option in POINT_OPTIONS:
        return ",".join(draw(_number_text) for _ in range(3))
    return str(draw(_number_text))


def _numbers_in(value: Any) -> list[float]:
    """Every int or float reachable from a settings object (dataclasses, tuples, dicts)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, Path)):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if is_dataclass(value) and not isinstance(value, type):
        return [n for f in fields(value) for n in _numbers_in(getattr(value, f.name))]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers_in(v)]
    if isinstance(value, (tuple, list)):
        return [n for v in value for n in _numbers_in(v)]
    return []


class _Stop(MedprintError):
    """Raised by the stand-in for convert_scan once the options are parsed."""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), option=st.sampled_from(sorted(CONVERT_NUMERIC)))
def test_convert_numeric_options_property(data: st.DataObject, option: str) -> None:
    """Any string into any numeric option: a usage error naming it, or a finite accepted value."""
    value = _option_value(option, data.draw)
    seen: dict[str, Any] = {}

    def stand_in(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise _Stop("stopped after parsing")

    with mock.patch("medprint.jobs.convert.convert_scan", side_effect=stand_in):
        outcome = run_cli("convert", "scan.nii.gz", "-o", "model.stl", *CONVERT_NUMERIC[option], option, value)
    if outcome.exit_code == 2:
        assert_refused(outcome, mentions=[option], exit_code=2)
        return
    # Accepted by click: a contradiction between the settings is still one line naming the option ...
    if not seen:
        assert_refused(outcome, mentions=[option.lstrip("-").split("-")[0]])
        return
    # ... or it reached the library, with nothing but finite numbers.
    numbers = _numbers_in([seen[key] for key in ("segmentation", "surface", "seeds", "mri")])
    assert numbers and all(math.isfinite(n) for n in numbers), (option, value, numbers)


# --- slice: numeric options ---------------------------------------------------------------------------------

SLICE_REFUSED = [
    ("--layer-height", ("--layer-height", "nan")),
    ("--layer-height", ("--layer-height", "5")),
    ("--first-layer-height", ("--first-layer-height", "inf")),
    ("--scale", ("--scale", "0")),
    ("--scale", ("--scale", "nan")),
    ("--scale", ("--scale", "1e308")),
    ("--brim", ("--brim", "nan")),
    ("--brim", ("--brim", "-1")),
    ("--support-angle", ("--supports", "--support-angle", "nan")),
    ("--support-angle", ("--supports", "--support-angle", "90")),
    ("--infill-density", ("--infill-density", "nan")),
    ("--infill-density", ("--infill-density", "1e308%")),
    ("--perimeters", ("--perimeters", str(10**30))),
    ("--top-layers", ("--top-layers", "-1")),
    ("--bottom-layers", ("--bottom-layers", "1e308")),
    ("--support-angle", ("--support-angle", "30")),  # without --supports: a usage error
]


@pytest.mark.parametrize(("option", "args"), SLICE_REFUSED, ids=[" ".join(a[-2:]) for _, a in SLICE_REFUSED])
def test_slice_refuses_bad_number(tmp_path: Path, cube: Path, option: str, args: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with mock.patch("medprint.jobs.slice.read_mesh_file", side_effect=AssertionError("read before refusing")):
        outcome = run_cli("slice", cube, "--printer", "ender-3", "--material", "pla", "-o", out / "c.gcode", *args)
    assert_refused(outcome, mentions=[option], exit_code=2, out_dir=out)


def test_slice_layer_height_above_the_nozzle_is_refused_before_reading(tmp_path: Path, cube: Path) -> None:
    """0.5 mm passes the option's type but not the 0.4 mm nozzle (at most 0.32 mm): refused before the mesh."""
    out = tmp_path / "out"
    out.mkdir()
    with mock.patch("medprint.jobs.slice.read_mesh_file", side_effect=AssertionError("read before refusing")):
        outcome = run_cli("slice", cube, "--printer", "ender-3", "--material", "pla", "-o", out / "c.gcode",
                          "--layer-height", "0.5")
    assert_refused(outcome, mentions=["--layer-height", "nozzle"], out_dir=out)


SLICE_NUMERIC = ["--layer-height", "--first-layer-height", "--perimeters", "--top-layers", "--bottom-layers",
                 "--infill-density", "--support-angle", "--brim", "--scale"]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option=st.sampled_from(SLICE_NUMERIC), value=_number_text)
def test_slice_numeric_options_property(option: str, value: str) -> None:
    """Any string into any numeric option of slice: a usage error naming it, a one-line refusal naming it before
    the mesh is read, or validated settings with finite numbers only."""
    seen: list[SliceSettings] = []
    printer = load_profiles().printer("ender-3")

    def stand_in(path: Any) -> None:
        raise _Stop("stopped before reading the mesh")

    real_slice = SliceSettings.validated

    def spy(self: SliceSettings, printer_: Any) -> SliceSettings:
        done = real_slice(self, printer_)
        seen.append(done)
        return done

    extra = ("--supports",) if option == "--support-angle" else ()
    with mock.patch("medprint.jobs.slice.read_mesh_file", side_effect=stand_in), \
            mock.patch.object(SliceSettings, "validated", spy):
        outcome = run_cli("slice", "cube.stl", "--printer", "ender-3", "--material", "pla", "-o", "x.gcode",
                          *extra, option, value)
    if outcome.exit_code == 2:
        assert_refused(outcome, mentions=[option], exit_code=2)
    elif not seen:
        assert_refused(outcome, mentions=[option])
    else:
        numbers = _numbers_in(asdict(seen[0]))
        assert all(math.isfinite(n) for n in numbers), (option, value, numbers)
        assert 0.04 <= seen[0].layer_height_mm <= 0.8 * printer.nozzle_diameter_mm  # type: ignore[operator]


# --- slice: a scan, or a corrupt mesh --------------------------------------------------------------------------

def _dicom_series(folder: Path) -> Path:
    from dicom_phantoms import write_ct_series

    block = np.full((4, 8, 8), -1000.0)
    block[1:3, 2:6, 2:6] = 1200.0
    write_ct_series(folder / "series", block, (1.0, 1.0, 2.0), patient_name="Doe^Jane")
    return folder / "series"


def _dicom_file(folder: Path) -> Path:
    """One file of a series, renamed without a suffix, as PACS exports often are."""
    first = sorted(_dicom_series(folder).iterdir())[0]
    return first.rename(folder / "IM0001")


SCANS = {"nifti": _scan, "dicom file without suffix": _dicom_file, "dicom folder": _dicom_series}


@pytest.mark.parametrize("kind", sorted(SCANS))
def test_slice_of_a_scan_says_convert_first(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    scan_path = SCANS[kind](folder)
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("slice", scan_path, "--printer", "ender-3", "--material", "pla", "-o", out / "c.gcode")
    line = assert_refused(outcome, mentions=["scan", "medprint convert"], out_dir=out)
    assert "Doe" not in line


_ASCII_FACET = "facet normal 0 0 1\nouter loop\nvertex {a} 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\n"
CORRUPT = {
    "empty.stl": b"",
    "nan.stl": ("solid x\n" + _ASCII_FACET.format(a="nan") + "endsolid x\n").encode(),
    "inf.stl": ("solid x\n" + _ASCII_FACET.format(a="inf") + "endsolid x\n").encode(),
    "truncated.stl": b"\0" * 80 + (1000).to_bytes(4, "little") + b"\0" * 50,
    "binary.obj": bytes(range(256)) * 4,
    "nan.obj": b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
    "past-the-end.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
    "no-faces.obj": b"v 0 0 0\nv 1 0 0\n",
    "garbage.ply": b"not a ply at all\n" * 10,
    "inf.ply": (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                b"element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\ninf 1 0\n"
                b"3 0 1 2\n"),
    "garbage.3mf": b"PK\x03\x04 not really a zip",
    "far.stl": ("solid x\n" + _ASCII_FACET.format(a="1e17") + "endsolid x\n").encode(),
    "metres-of-a-micron.stl": ("solid x\n" + _ASCII_FACET.format(a="1e-9").replace(" 1 0 0", " 1e-9 0 0")
                               .replace(" 0 1 0", " 0 1e-9 0") + "endsolid x\n").encode(),
    "model.vtk": b"# vtk DataFile Version 3.0\n",
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_slice_refuses_a_corrupt_mesh(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    mesh_path = folder / name
    mesh_path.write_bytes(CORRUPT[name])
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("slice", mesh_path, "--printer", "ender-3", "--material", "pla", "-o", out / "c.gcode")
    assert_refused(outcome, mentions=[name], out_dir=out)


def test_slice_of_a_3mf_written_by_medprint(tmp_path: Path) -> None:
    """The 3MF reader's dependencies (lxml, networkx) come with the package: slicing a medprint 3MF works."""
    box = trimesh.creation.box((12.0, 12.0, 8.0))
    path = write_mesh(Mesh(vertices=np.asarray(box.vertices, float), faces=np.asarray(box.faces, np.int64),
                           name="box"), tmp_path / "box.3mf")
    outcome = run_cli("slice", path, "--printer", "ender-3", "--material", "pla", "-o", tmp_path / "box.gcode",
                      "--json")
    assert_succeeded(outcome)
    summary = json.loads(outcome.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json"))
    assert 35 <= summary["layer_count"] <= 45  # 8 mm at 0.2 mm layers
    assert "G1 X" in (tmp_path / "box.gcode").read_text()


# --- the same checks through the API -------------------------------------------------------------------------

API_REFUSED = [
    ("--smooth", lambda: SurfaceSettings(smooth_iterations=10**9)),
    ("--smooth", lambda: SurfaceSettings(smooth_iterations=2.5)),  # type: ignore[arg-type]
    ("--max-deviation", lambda: SurfaceSettings(max_deviation_mm=math.inf)),
    ("--decimate", lambda: SurfaceSettings(decimate_fraction=math.nan)),
    ("--decimate", lambda: SurfaceSettings(decimate_faces=10**12)),
    ("--close", lambda: SegmentationSettings(close_mm=math.nan)),
    ("--open", lambda: SegmentationSettings(open_mm=1e9)),
    ("--min-component", lambda: SegmentationSettings(min_component_mm3=math.nan)),
    ("--threshold", lambda: SegmentationSettings(threshold=(-math.inf, math.inf))),
    ("--max-volume", lambda: RegionGrowingSettings(max_volume_mm3=math.inf)),
    ("--max-radius", lambda: RegionGrowingSettings(max_radius_mm=math.nan)),
    ("--range", lambda: RegionGrowingSettings(intensity_range=(0.0, math.nan))),
    ("--tube", lambda: VesselSettings(tube_factor=50.0)),
    ("--max-radius", lambda: VesselSettings(max_radius_mm=math.inf)),
    ("--scale", lambda: SliceSettings(scale=math.nan).validated(load_profiles().printer("ender-3"))),
    ("--layer-height", lambda: SliceSettings(layer_height_mm=math.nan).validated(load_profiles().printer("ender-3"))),
]


@pytest.mark.parametrize(("option", "make"), API_REFUSED, ids=[f"{o}-{i}" for i, (o, _) in enumerate(API_REFUSED)])
def test_settings_refuse_bad_numbers_through_the_api(option: str, make: Any) -> None:
    with pytest.raises(ParameterError, match=option):
        make()


def test_closing_radius_larger_than_the_mask_is_refused() -> None:
    array = np.zeros((10, 10, 10), dtype=bool)
    array[3:7, 3:7, 3:7] = True
    mask = Mask(array=array, geometry=Geometry(spacing=(1.0, 1.0, 2.0)), label="block")
    assert close_mm(mask, 3.0).array[3:7, 3:7, 3:7].all()
    with pytest.raises(ParameterError, match="--close: radius 30 mm is larger than the scan"):
        close_mm(mask, 30.0)
