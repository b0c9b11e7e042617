"""Profiles: shipped files validate; typos, types, ranges and mismatches are errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from medprint.cli import main
from medprint.errors import ParameterError
from medprint.slice.profiles import (
    PROFILES_ENV,
    ProfileError,
    builtin_profiles_dir,
    check_compatible,
    load_profiles,
    read_profile,
)


def test_shipped_profiles_cover_the_issue() -> None:
    library = load_profiles()
    assert {"prusa-mk4", "ender-3", "voron-2.4-350"} <= set(library.printers)
    assert {"pla", "petg", "tpu-95a", "abs", "asa", "nylon-pa"} <= set(library.materials)
    assert {p.firmware for p in library.printers.values()} >= {"marlin2", "klipper"}
    for material in library.materials.values():
        assert "implant" in material.medical_note


def _copy_with(tmp_path: Path, source: str, old: str, new: str, name: str = "custom") -> Path:
    text = (builtin_profiles_dir() / f"{source}.toml").read_text()
    assert old in text
    target = tmp_path / f"{name}.toml"
    target.write_text(text.replace(old, new, 1))
    return target


def test_typo_in_key_names_file_and_suggests(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "pla", "bed_temp_c =", "bed_temp_cc =")
    with pytest.raises(ProfileError, match=r"custom\.toml: unknown key 'bed_temp_cc'.*did you mean 'bed_temp_c'"):
        read_profile(path)


def test_wrong_type_and_out_of_range(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "pla", "nozzle_temp_c = 210", 'nozzle_temp_c = "hot"')
    with pytest.raises(ProfileError, match=r"key 'nozzle_temp_c' must be a number"):
        read_profile(path)
    path = _copy_with(tmp_path, "pla", "nozzle_temp_c = 210", "nozzle_temp_c = 2100")
    with pytest.raises(ProfileError, match=r"custom\.toml: key 'nozzle_temp_c' is 2100.*range"):
        read_profile(path)
    path = _copy_with(tmp_path, "prusa-mk4", 'firmware = "marlin2"', 'firmware = "cura"')
    with pytest.raises(ProfileError, match=r"key 'firmware' is 'cura'; allowed: marlin2, klipper"):
        read_profile(path)


def test_missing_key_and_bad_placeholder(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "pla", "density_g_cm3 = 1.24\n", "")
    with pytest.raises(ProfileError, match=r"key 'density_g_cm3' is missing"):
        read_profile(path)
    path = _copy_with(tmp_path, "ender-3", "M190 S{bed_temp_first_layer_c}", "M190 S{bed_temp}")
    with pytest.raises(ProfileError, match=r"key 'start_gcode' uses unknown placeholder \{bed_temp\}"):
        read_profile(path)


def test_material_printer_mismatch_names_key() -> None:
    library = load_profiles()
    with pytest.raises(ProfileError, match=r"nylon-pa\.toml: key 'nozzle_temp_c' is 255 degC.*ender-3"):
        check_compatible(library.printer("ender-3"), library.material("nylon-pa"))
    with pytest.raises(ProfileError, match=r"abs\.toml: key 'needs_enclosure'"):
        check_compatible(library.printer("prusa-mk4"), library.material("abs"))
    check_compatible(library.printer("voron-2.4-350"), library.material("abs"))


def test_unknown_name_lists_close_matches() -> None:
    library = load_profiles()
    with pytest.raises(ParameterError, match=r"--printer: no printer called 'prusa-mk3'; did you mean prusa-mk4"):
        library.printer("prusa-mk3")
    with pytest.raises(ParameterError, match=r"--material: no material called 'PETG-HF'.*petg"):
        library.material("PETG-HF")
    assert library.material("PLA").name == "pla"


def test_user_profiles_from_option_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    _copy_with(env_dir, "pla", "price_per_kg = 25", "price_per_kg = 99", name="lab-pla")
    monkeypatch.setenv(PROFILES_ENV, str(env_dir))
    option_dir = tmp_path / "opt"
    option_dir.mkdir()
    _copy_with(option_dir, "pla", "price_per_kg = 25", "price_per_kg = 12", name="pla")
    library = load_profiles(option_dir)
    assert library.material("lab-pla").price_per_kg == 99
    assert library.material("pla").price_per_kg == 12
    monkeypatch.setenv(PROFILES_ENV, str(tmp_path / "missing"))
    with pytest.raises(ProfileError, match="MEDPRINT_PROFILES"):
        load_profiles()


def test_cli_list_show_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main(["profiles", "list"])
    out = capsys.readouterr().out
    assert "prusa-mk4" in out and "tpu-95a" in out
    main(["profiles", "show", "tpu-95a"])
    assert "medical_note" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["profiles", "show", "voron"])
    assert done.value.code == 1
    assert "did you mean voron-2.4-350" in capsys.readouterr().err
    _copy_with(tmp_path, "pla", "fan_percent", "fan_percentage", name="broken")
    with pytest.raises(SystemExit) as done:
        main(["profiles", "list", "--profiles", str(tmp_path)])
    err = capsys.readouterr().err
    assert done.value.code == 1 and "broken.toml: unknown key 'fan_percentage'" in err and len(err.splitlines()) == 1


def test_profiles_built_in_python_are_checked_too() -> None:
    """The file's checks run in the dataclasses as well: an API user cannot hand the slicer a NaN or a template
    that writes 300 MB."""
    import dataclasses
    import math

    from medprint.slice.profiles import render_template

    library = load_profiles()
    printer, material = library.printer("ender-3"), library.material("pla")
    with pytest.raises(ProfileError, match=r"key 'nozzle_temp_c' is nan, not a finite number"):
        dataclasses.replace(material, nozzle_temp_c=math.nan)
    with pytest.raises(ProfileError, match=r"key 'max_bed_temp_c' must be a number, got bool"):
        dataclasses.replace(printer, max_bed_temp_c=True)
    wide = dataclasses.replace(printer, start_gcode="M140 S{bed_temp_c:>300000000}")
    with pytest.raises(ProfileError, match=r"width of 300000000, more than 32"):
        render_template(wide.start_gcode, wide, material, max_z_mm=10.0)
    assert render_template("M140 S{bed_temp_c:>4}", printer, material, max_z_mm=10.0) == "M140 S  60"
