"""Hostile profiles: a lab's printer or material file that is corrupt, unsafe or out of range is refused in one
line naming the file and the key when the profiles are loaded, before any mesh is read or G-code written."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
import trimesh
from harness import assert_refused, assert_succeeded, files_in, run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from medprint.slice.profiles import MAX_PROFILE_BYTES, builtin_profiles_dir


def _user_profile(folder: Path, source: str, old: str | None = None, new: str = "", *, name: str = "custom") -> Path:
    """A copy of shipped profile ``source`` as ``folder/name.toml``, with ``old`` replaced by ``new``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (builtin_profiles_dir() / f"{source}.toml").read_text(encoding="utf-8")
    if old is not None:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cube(tmp_path: Path) -> Path:
    path = tmp_path / "cube.stl"
    trimesh.creation.box((10.0, 10.0, 6.0)).export(path)
    return path


def _slice(cube: Path, profiles: Path, out: Path, printer: str = "ender-3", material: str = "pla"):
    return run_cli("slice", cube, "--printer", printer, "--material", material, "-o", out / "c.gcode",
                   "--profiles", profiles)


# --- numbers: nan, inf, bools, strings, negatives ------------------------------------------------------------

MATERIAL_VALUES = [
    ("nozzle_temp_c", "nozzle_temp_c = 210", "nozzle_temp_c = nan"),
    ("nozzle_temp_c", "nozzle_temp_c = 210", "nozzle_temp_c = inf"),
    ("bed_temp_c", "bed_temp_c = 60", "bed_temp_c = -inf"),
    ("fan_percent", "fan_percent = 100", "fan_percent = true"),
    ("density_g_cm3", "density_g_cm3 = 1.24", 'density_g_cm3 = "1.24"'),
    ("retraction_length_mm", "retraction_length_mm = 0.8", "retraction_length_mm = -0.8"),
    ("price_per_kg", "price_per_kg = 25", "price_per_kg = 1e400"),
    ("flow_multiplier", "flow_multiplier = 1.0", "flow_multiplier = [1.0]"),
    ("needs_enclosure", "needs_enclosure = false", "needs_enclosure = 0"),
    ("currency", 'currency = "EUR"', "currency = 978"),
]


@pytest.mark.parametrize(("key", "old", "new"), MATERIAL_VALUES, ids=[n for _, _, n in MATERIAL_VALUES])
def test_bad_material_value_is_refused_naming_file_and_key(tmp_path: Path, cube: Path, key: str, old: str,
                                                           new: str) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "pla", old, new)
    assert_refused(run_cli("profiles", "list", "--profiles", profiles), mentions=["custom.toml", key])
    out = tmp_path / "out"
    out.mkdir()
    # Any slice with this folder is refused, whichever material it asks for: a bad file fails before any work.
    assert_refused(_slice(cube, profiles, out), mentions=["custom.toml", key], out_dir=out)


def test_nan_temperature_never_reaches_the_gcode(tmp_path: Path, cube: Path) -> None:
    """Before: ``nozzle_temp_c = nan`` wrote ``M104 Snan`` with exit 0."""
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "pla", "nozzle_temp_c = 210", "nozzle_temp_c = nan", name="hot")
    out = tmp_path / "out"
    out.mkdir()
    line = assert_refused(_slice(cube, profiles, out, material="hot"), mentions=["hot.toml", "nozzle_temp_c", "nan"],
                          out_dir=out)
    assert "finite" in line


PRINTER_VALUES = [
    ("max_nozzle_temp_c", "max_nozzle_temp_c = 250", "max_nozzle_temp_c = nan"),
    ("build_x_mm", "build_x_mm = 220", "build_x_mm = 1e308"),
    ("nozzle_diameter_mm", "nozzle_diameter_mm = 0.4", "nozzle_diameter_mm = false"),
    ("max_acceleration_mm_s2", "max_acceleration_mm_s2 = 500", "max_acceleration_mm_s2 = 0"),
    ("layer_height_mm", "layer_height_mm = 0.2", "layer_height_mm = 0.39"),  # above 80 % of the nozzle
]


@pytest.mark.parametrize(("key", "old", "new"), PRINTER_VALUES, ids=[n for _, _, n in PRINTER_VALUES])
def test_bad_printer_value_is_refused_naming_file_and_key(tmp_path: Path, key: str, old: str, new: str) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "ender-3", old, new)
    assert_refused(run_cli("profiles", "show", "custom", "--profiles", profiles), mentions=["custom.toml", key])


def test_missing_key_is_named(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "pla", "min_wall_mm = 0.8\n", "")
    assert_refused(run_cli("profiles", "list", "--profiles", profiles), mentions=["custom.toml", "min_wall_mm",
                                                                                  "missing"])


# --- the file itself: encoding, syntax, shape, size -----------------------------------------------------------

def test_profile_that_is_not_utf8(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    path = _user_profile(profiles, "pla")
    path.write_bytes(path.read_bytes().replace(b"generic", "g\u00e9n\u00e9rique".encode("latin-1")))
    assert_refused(run_cli("profiles", "list", "--profiles", profiles), mentions=["custom.toml", "UTF-8", "line 2"])


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "pla", "bed_temp_c = 60", "bed_temp_c = = 60")
    text = (profiles / "custom.toml").read_text()
    line_no = text.splitlines().index("bed_temp_c = = 60") + 1
    assert_refused(run_cli("profiles", "list", "--profiles", profiles),
                   mentions=["custom.toml", "not valid TOML", f"line {line_no}"])


def test_table_that_is_not_a_table(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "odd.toml").write_text("material = 5\n")
    assert_refused(run_cli("profiles", "list", "--profiles", profiles), mentions=["odd.toml", "material", "table"])


def test_huge_profile_is_not_read_whole(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "big.toml").write_bytes(b"# " + b"x" * MAX_PROFILE_BYTES + b"\n[material]\n")
    assert_refused(run_cli("profiles", "list", "--profiles", profiles), mentions=["big.toml", "kB"])


# --- G-code templates ------------------------------------------------------------------------------------------

TEMPLATES = [
    ("unbalanced", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c", "unbalanced"),
    ("closing brace", "M190 S{bed_temp_first_layer_c}", "M190 S}bed_temp_first_layer_c", "unbalanced"),
    ("huge width", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c:>300000000}", "width"),
    ("huge precision", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c:.999999}", "precision"),
    ("attribute", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c.__class__}", "attribute"),
    ("index", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c[0]}", "index"),
    ("positional", "M190 S{bed_temp_first_layer_c}", "M190 S{0}", "numbered"),
    ("conversion", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c!r}", "conversion"),
    ("nested spec", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c:{build_x_mm}}", "format spec"),
    ("numeric spec", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c:.1f}", "cannot be filled"),
    ("unknown", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temperature}", "nozzle_temp_c, "),
    ("end template", "G1 Z{max_z_mm} F600", "G1 Z{max_z_mm:>99999999} F600", "width"),
]


@pytest.mark.parametrize(("old", "new", "says"), [t[1:] for t in TEMPLATES], ids=[t[0] for t in TEMPLATES])
def test_unsafe_template_is_refused_when_loaded(tmp_path: Path, cube: Path, old: str, new: str, says: str) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "ender-3", old, new)
    key = "end_gcode" if "max_z_mm" in old else "start_gcode"
    assert_refused(run_cli("profiles", "list", "--profiles", profiles), mentions=["custom.toml", key, says])
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(_slice(cube, profiles, out, printer="custom"), mentions=["custom.toml", key], out_dir=out)


def test_allowed_template_alignment_is_filled(tmp_path: Path, cube: Path) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "ender-3", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp_first_layer_c:>4}")
    out = tmp_path / "out"
    out.mkdir()
    assert_succeeded(_slice(cube, profiles, out, printer="custom"))
    assert "M190 S  60\n" in (out / "c.gcode").read_text()


# --- temperatures against the printer's limits ----------------------------------------------------------------

LITERAL_HEAT = [
    ("M109 S{nozzle_temp_first_layer_c}", "M109 S300", "300", "max_nozzle_temp_c"),
    ("M140 S{bed_temp_first_layer_c}", "M140 S130 ; hot bed", "130", "max_bed_temp_c"),
    ("M109 S{nozzle_temp_first_layer_c}", "SET_HEATER_TEMPERATURE HEATER=extruder TARGET=290", "290",
     "max_nozzle_temp_c"),
    ("M109 S{nozzle_temp_first_layer_c}", "G10 P0 S275 R150", "275", "max_nozzle_temp_c"),
]


@pytest.mark.parametrize(("old", "new", "value", "limit"), LITERAL_HEAT, ids=[t[1].split()[0] for t in LITERAL_HEAT])
def test_start_gcode_literal_temperature_above_the_printer_limit(tmp_path: Path, old: str, new: str, value: str,
                                                                 limit: str) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "ender-3", old, new)
    assert_refused(run_cli("profiles", "list", "--profiles", profiles),
                   mentions=["custom.toml", "start_gcode", value, limit])


def test_material_hotter_than_the_printer(tmp_path: Path, cube: Path) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "pla", "nozzle_temp_first_layer_c = 215", "nozzle_temp_first_layer_c = 265",
                  name="hot-pla")
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(_slice(cube, profiles, out, material="hot-pla"),
                   mentions=["hot-pla.toml", "nozzle_temp_first_layer_c", "265", "max_nozzle_temp_c"], out_dir=out)


# --- shadowing ------------------------------------------------------------------------------------------------

def test_user_profile_shadowing_a_shipped_one_warns(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    _user_profile(profiles, "pla", "price_per_kg = 25", "price_per_kg = 30", name="pla")
    outcome = run_cli("profiles", "list", "--profiles", profiles, "--json")
    assert_succeeded(outcome)
    assert json.loads(outcome.stdout)["materials"]["pla"]["source"] == str(profiles / "pla.toml")
    warnings = [line for line in outcome.stderr.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and "pla" in warnings[0] and "replaces" in warnings[0], outcome.stderr


# --- property: random values into a user profile ---------------------------------------------------------------

_toml_value = st.one_of(
    st.sampled_from(["nan", "+nan", "-nan", "inf", "-inf", "true", "false", "0", "-0", "-0.0", "1e308", "-1e308",
                     "9223372036854775807", "-9223372036854775808", '""', '"200"', "[]", "[210]", "{}",
                     "{ a = 1 }", "1979-05-27", "0x10", "1_000"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    # Values in the keys' physical ranges, so that some profiles load and are sliced.
    st.floats(min_value=0, max_value=300).map(lambda x: repr(round(x, 3))),
    st.integers(min_value=0, max_value=300).map(str),
)
_NUMERIC_KEYS = {
    "pla": ["nozzle_temp_c", "nozzle_temp_first_layer_c", "bed_temp_c", "bed_temp_first_layer_c", "fan_percent",
            "retraction_length_mm", "retraction_speed_mm_s", "flow_multiplier", "max_volumetric_speed_mm3_s",
            "density_g_cm3", "price_per_kg", "min_wall_mm", "min_nozzle_diameter_mm"],
    "ender-3": ["build_x_mm", "build_z_mm", "nozzle_diameter_mm", "filament_diameter_mm", "max_nozzle_temp_c",
                "max_bed_temp_c", "layer_height_mm", "perimeter_speed_mm_s", "travel_speed_mm_s",
                "max_acceleration_mm_s2", "corner_speed_mm_s"],
}
_CUBE = trimesh.creation.box((8.0, 8.0, 2.0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(sorted(_NUMERIC_KEYS)), data=st.data(), value=_toml_value)
def test_random_profile_values_property(source: str, data: st.DataObject, value: str) -> None:
    """Any TOML value for any number: ``profiles list`` and ``slice`` refuse in one line naming the file and a
    key, or work with finite numbers only (strict JSON, no nan in the G-code)."""
    key = data.draw(st.sampled_from(_NUMERIC_KEYS[source]))
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        text = (builtin_profiles_dir() / f"{source}.toml").read_text(encoding="utf-8")
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.MULTILINE)
        (folder / "profiles").mkdir()
        (folder / "profiles" / "custom.toml").write_text(text, encoding="utf-8")
        listed = run_cli("profiles", "list", "--profiles", folder / "profiles", "--json")
        if listed.exit_code != 0:
            line = assert_refused(listed, mentions=["custom.toml"])
            assert re.search(r"key '\w+'|not valid TOML", line), line
            event("refused when loaded")
            return
        json.loads(listed.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json"))
        _CUBE.export(folder / "cube.stl")
        (folder / "out").mkdir()
        printer, material = ("custom", "pla") if source == "ender-3" else ("ender-3", "custom")
        outcome = run_cli("slice", folder / "cube.stl", "--printer", printer, "--material", material,
                          "-o", folder / "out" / "c.gcode", "--profiles", folder / "profiles", "--json")
        if outcome.exit_code != 0:
            line = assert_refused(outcome, mentions=["custom.toml"], out_dir=folder / "out")
            assert re.search(r"key '\w+'", line), line
            event("refused by slice")
            return
        event("sliced")
        summary = json.loads(outcome.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json"))
        assert summary["layer_count"] > 0
        gcode = (folder / "out" / "c.gcode").read_text()
        assert not re.search(r"\b(nan|inf)\b", gcode, re.IGNORECASE)
        assert files_in(folder / "out") == {"c.gcode"}


def test_profiles_option_given_a_file(tmp_path: Path) -> None:
    path = _user_profile(tmp_path / "profiles", "pla")
    assert_refused(run_cli("profiles", "list", "--profiles", path), mentions=["--profiles", "is a file", "folder"])


def test_convert_to_gcode_with_a_nan_profile_is_refused_before_loading(tmp_path: Path) -> None:
    """``convert --gcode`` checks the profiles before the scan is read: nothing loaded, nothing written."""
    from unittest import mock

    profiles = tmp_path / "profiles"
    _user_profile(profiles, "pla", "bed_temp_c = 60", "bed_temp_c = nan", name="lab-pla")
    out = tmp_path / "out"
    out.mkdir()
    with mock.patch("medprint.pipeline.load_volume", side_effect=AssertionError("loaded before refusing")):
        outcome = run_cli("convert", tmp_path / "scan.nii.gz", "-o", out / "m.stl", "--gcode", out / "m.gcode",
                          "--printer", "ender-3", "--material", "lab-pla", "--profiles", profiles)
    assert_refused(outcome, mentions=["lab-pla.toml", "bed_temp_c", "finite"], out_dir=out)
