"""Printer and material profiles: TOML files read into frozen dataclasses.

A profile is one TOML file with one table, ``[printer]`` or ``[material]``;
its name is the file name without ``.toml``.  The profiles shipped with
medprint live in ``medprint/profiles/``; a lab adds its own in folders given
with ``--profiles DIR`` or the ``MEDPRINT_PROFILES`` environment variable
(folders separated by ``os.pathsep``).  A user profile with the name of a
shipped one replaces it, with a warning.

Every key is checked when the file is read: unknown keys (typos), wrong types
and values outside a physical range (NaN and infinity included) are
:class:`ProfileError` naming the file and the key; so are files that are not
UTF-8 or not TOML, and start/end G-code templates that could not be filled
safely (see :func:`check_template`).  The same checks run when a profile is
built in Python, so an API user cannot hand the slicer a NaN either.
:func:`check_compatible` refuses a material the printer cannot print (a
temperature above the printer's maximum, a nozzle narrower than the material
allows, an enclosure the printer lacks).
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import stat
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from numbers import Real
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError, ParameterError

logger = logging.getLogger("medprint")

#: Environment variable naming extra profile folders (``os.pathsep``-separated).
PROFILES_ENV = "MEDPRINT_PROFILES"

Firmware = Literal["marlin2", "klipper", "reprapfirmware"]
FIRMWARES = ("marlin2", "klipper", "reprapfirmware")
BED_SHAPES = ("rectangular", "circular")


class ProfileError(InputError):
    """A profile file is malformed or does not suit the chosen printer."""


def _spec(low: float | None = None, high: float | None = None, *, choices: tuple[str, ...] | None = None,
          unit: str = "", required: bool = True) -> Any:
    return {"low": low, "high": high, "choices": choices, "unit": unit, "required": required}


@dataclass(frozen=True)
class PrinterProfile:
    """A printer: build volume, nozzle, firmware, limits and G-code templates.

    Lengths in mm, speeds in mm/s, accelerations in mm/s^2, temperatures in degC.
    ``start_gcode``/``end_gcode`` may use the placeholders of :data:`TEMPLATE_FIELDS`
    written as ``{name}``.
    """

    name: str
    source: Path
    description: str = field(metadata=_spec())
    firmware: str = field(metadata=_spec(choices=FIRMWARES))
    bed_shape: str = field(metadata=_spec(choices=BED_SHAPES))
    build_x_mm: float = field(metadata=_spec(20, 2000))
    build_y_mm: float = field(metadata=_spec(20, 2000))
    build_z_mm: float = field(metadata=_spec(20, 2000))
    nozzle_diameter_mm: float = field(metadata=_spec(0.1, 2.0))
    filament_diameter_mm: float = field(metadata=_spec(1.0, 3.5))
    max_nozzle_temp_c: float = field(metadata=_spec(150, 500))
    max_bed_temp_c: float = field(metadata=_spec(0, 200))
    enclosed: bool = field(metadata=_spec())
    layer_height_mm: float = field(metadata=_spec(0.04, 1.2))
    first_layer_height_mm: float = field(metadata=_spec(0.04, 1.2))
    perimeter_speed_mm_s: float = field(metadata=_spec(5, 1000))
    infill_speed_mm_s: float = field(metadata=_spec(5, 1000))
    first_layer_speed_mm_s: float = field(metadata=_spec(5, 200))
    travel_speed_mm_s: float = field(metadata=_spec(10, 1500))
    max_speed_mm_s: float = field(metadata=_spec(10, 1500))
    max_acceleration_mm_s2: float = field(metadata=_spec(100, 100000))
    corner_speed_mm_s: float = field(metadata=_spec(0, 100))
    start_gcode: str = field(metadata=_spec())
    end_gcode: str = field(metadata=_spec())

    def __post_init__(self) -> None:
        _check_fields(self)

    @property
    def line_width_mm(self) -> float:
        """Extrusion width used for every feature: 1.125 x the nozzle diameter."""
        return round(1.125 * self.nozzle_diameter_mm, 4)


@dataclass(frozen=True)
class MaterialProfile:
    """A filament: temperatures, cooling, retraction, flow limits, cost and medical-use notes."""

    name: str
    source: Path
    description: str = field(metadata=_spec())
    nozzle_temp_c: float = field(metadata=_spec(150, 500))
    nozzle_temp_first_layer_c: float = field(metadata=_spec(150, 500))
    bed_temp_c: float = field(metadata=_spec(0, 200))
    bed_temp_first_layer_c: float = field(metadata=_spec(0, 200))
    fan_percent: float = field(metadata=_spec(0, 100))
    fan_first_layer_percent: float = field(metadata=_spec(0, 100))
    retraction_length_mm: float = field(metadata=_spec(0, 15))
    retraction_speed_mm_s: float = field(metadata=_spec(1, 150))
    flow_multiplier: float = field(metadata=_spec(0.5, 1.5))
    max_volumetric_speed_mm3_s: float = field(metadata=_spec(0.5, 100))
    density_g_cm3: float = field(metadata=_spec(0.5, 3.0))
    price_per_kg: float = field(metadata=_spec(0, 10000))
    currency: str = field(metadata=_spec())
    min_wall_mm: float = field(metadata=_spec(0.1, 10))
    min_nozzle_diameter_mm: float = field(metadata=_spec(0.1, 2.0))
    needs_enclosure: bool = field(metadata=_spec())
    medical_note: str = field(metadata=_spec())

    def __post_init__(self) -> None:
        _check_fields(self)


def _check_fields(profile: PrinterProfile | MaterialProfile) -> None:
    """Every field against its spec (type, finite, range); the file's checks, for profiles built in Python too."""
    for f in fields(profile):
        if f.name not in ("name", "source"):
            _check_value(profile.source, f.name, getattr(profile, f.name), f.type, f.metadata)


#: Placeholders the start/end G-code templates may use.
TEMPLATE_FIELDS = (
    "nozzle_temp_c", "nozzle_temp_first_layer_c", "bed_temp_c", "bed_temp_first_layer_c",
    "build_x_mm", "build_y_mm", "build_z_mm", "filament_diameter_mm", "max_z_mm",
)

_KINDS: dict[str, type[PrinterProfile | MaterialProfile]] = {
    "printer": PrinterProfile, "material": MaterialProfile,
}


def builtin_profiles_dir() -> Path:
    """The folder of profiles shipped with medprint."""
    return Path(str(resources.files("medprint") / "profiles"))


def profile_dirs(extra: Path | str | None = None) -> list[Path]:
    """Profile folders in increasing priority: shipped, ``$MEDPRINT_PROFILES``, ``extra``."""
    dirs = [builtin_profiles_dir()]
    for text in os.environ.get(PROFILES_ENV, "").split(os.pathsep):
        if text.strip():
            dirs.append(Path(text.strip()))
    if extra is not None:
        dirs.append(Path(extra))
    for folder in dirs[1:]:
        if not folder.is_dir():
            option = "--profiles" if extra is not None and folder == Path(extra) else PROFILES_ENV
            state = "is a file, not a folder" if folder.is_file() else "does not exist"
            raise ProfileError(f"{option}: profile folder {folder} {state}; give a folder of *.toml profiles")
    return dirs


#: Largest profile file read (bytes): the shipped ones are about 2 kB.
MAX_PROFILE_BYTES = 1_000_000
#: Longest text value (characters), a start G-code included.
MAX_TEXT_CHARS = 64_000
#: Largest width or precision a template's format spec may ask for: enough to align a column, not to write
#: hundreds of megabytes (``{x:>300000000}``).
MAX_TEMPLATE_WIDTH = 32
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[a-zA-Z%]?")
#: Heater commands with a literal target temperature: Marlin/RepRapFirmware M104/M109 (nozzle) and M140/M190
#: (bed) with S or R, RepRapFirmware's G10 and M568 tool temperatures, Klipper's SET_HEATER_TEMPERATURE.
_NUMBER = r"(?P<value>-?\d+(?:\.\d*)?)"
_NOZZLE_HEAT = re.compile(
    rf"^\s*(?:(?:M10[49]|G10|M568)\b[^;\n]*?\b[SR]{_NUMBER}"
    rf"|SET_HEATER_TEMPERATURE\b[^;\n]*?HEATER=extruder\w*[^;\n]*?TARGET={_NUMBER.replace('value', 'klipper')})",
    re.MULTILINE | re.IGNORECASE,
)
_BED_HEAT = re.compile(
    rf"^\s*(?:M1[49]0\b[^;\n]*?\b[SR]{_NUMBER}"
    rf"|SET_HEATER_TEMPERATURE\b[^;\n]*?HEATER=heater_bed[^;\n]*?TARGET={_NUMBER.replace('value', 'klipper')})",
    re.MULTILINE | re.IGNORECASE,
)


def _check_value(path: Path, key: str, value: Any, kind: object, spec: Mapping[str, Any]) -> Any:
    where = f"{path}: key {key!r}"
    if kind in ("str", str):
        if not isinstance(value, str):
            raise ProfileError(f"{where} must be a string, got {type(value).__name__} {_short(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise ProfileError(f"{where} is {len(value)} characters long, more than {MAX_TEXT_CHARS}; shorten it")
        if spec["choices"] and value not in spec["choices"]:
            raise ProfileError(f"{where} is {value!r}; allowed: {', '.join(spec['choices'])}")
        return value
    if kind in ("bool", bool):
        if not isinstance(value, bool):
            raise ProfileError(f"{where} must be true or false, got {type(value).__name__} {_short(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ProfileError(f"{where} must be a number, got {type(value).__name__} {_short(value)}")
    low, high = spec["low"], spec["high"]
    if not math.isfinite(value):
        # TOML has nan and inf; they would pass every range test below and reach the G-code as "Snan".
        raise ProfileError(f"{where} is {value}, not a finite number; give a number in {low}..{high}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ProfileError(f"{where} is {value}, outside the allowed range {low}..{high}; fix the value")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_regular(path: Path, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``path``, refused unless it is a regular file.

    Opened non-blocking and checked on the open handle (no gap between the
    check and the read): a FIFO named ``lab.toml`` would otherwise block
    ``profiles list`` forever, and a device would be read as a profile.
    """
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
            raise ProfileError(f"{path}: is {kind}, not a regular file; remove it from the profile folder")
        os.set_blocking(handle, True)
        with os.fdopen(handle, "rb", closefd=False) as stream:
            return stream.read(limit)
    finally:
        os.close(handle)


def read_profile(path: Path | str) -> PrinterProfile | MaterialProfile:
    """Read and validate one profile file.

    Raises
    ------
    ProfileError
        Not TOML, not exactly one ``[printer]``/``[material]`` table, an unknown
        or missing key, a wrong type or a value out of range; the message names
        the file and the key.
    """
    path = Path(path)
    try:
        raw = _read_regular(path, MAX_PROFILE_BYTES + 1)
    except OSError as error:
        raise ProfileError(f"{path}: cannot read the profile ({error.strerror or error}); check the file") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: larger than {MAX_PROFILE_BYTES // 1000} kB, not a profile; remove it from the "
                           "profile folder")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ProfileError(f"{path}: not UTF-8 text (byte {error.start}, line {line}); save the profile as "
                           "UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # The message carries "(at line N, column M)"; one line of it is enough.
        reason = " ".join(str(error).split())
        raise ProfileError(f"{path}: not valid TOML ({reason}); fix the syntax") from None
    tables = [key for key in data if key in _KINDS]
    others = [key for key in data if key not in _KINDS]
    if len(tables) != 1 or others:
        raise ProfileError(
            f"{path}: a profile holds exactly one table, [printer] or [material]; found {', '.join(data) or 'none'}"
        )
    kind = tables[0]
    cls = _KINDS[kind]
    table = data[kind]
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: {kind} must be a table ([{kind}] and its keys), got {type(table).__name__}")
    specs = {f.name: f for f in fields(cls) if f.name not in ("name", "source")}
    unknown = sorted(set(table) - set(specs))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(specs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(specs)}"
        raise ProfileError(f"{path}: unknown key {key!r} in [{kind}]{hint}")
    missing = [key for key, f in specs.items() if f.metadata["required"] and key not in table]
    if missing:
        raise ProfileError(f"{path}: key {missing[0]!r} is missing from [{kind}]; add it")
    values = {key: _check_value(path, key, table[key], specs[key].type, specs[key].metadata) for key in table}
    profile = cls(name=path.stem, source=path, **values)
    if isinstance(profile, PrinterProfile):
        _check_printer(profile)
    else:
        _check_material(profile)
    return profile


def check_template(template: str, where: str) -> None:
    """Refuse a start/end G-code template that could not be filled safely.

    Only the plain placeholders of :data:`TEMPLATE_FIELDS` are allowed, each
    with at most a short alignment spec; no attribute or index access
    (``{x.__class__}``, ``{x[0]}``), no conversions, no nested fields, no
    width above :data:`MAX_TEMPLATE_WIDTH`.  ``where`` names the file and key.

    Raises
    ------
    ProfileError
        Naming ``where``, the placeholder and the fix.
    """
    allowed = f"allowed: {', '.join(TEMPLATE_FIELDS)} (write {{{{ and }}}} for literal braces)"
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ProfileError(f"{where}: {error} (unbalanced {{ or }}); {allowed}") from None
    for _, name, spec, conversion in pieces:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            kind = ("attribute or index access" if re.search(r"[.\[]", name) else
                    "an empty or numbered placeholder" if name == "" or name.isdigit() else "unknown placeholder")
            raise ProfileError(f"{where} uses {kind} {{{_short_text(name)}}}; {allowed}")
        if conversion is not None:
            raise ProfileError(f"{where}: placeholder {{{name}!{conversion}}} has a conversion; write {{{name}}}")
        _check_format_spec(spec or "", name, where)
    sample = {name: "0" for name in TEMPLATE_FIELDS}
    try:
        template.format_map(sample)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as error:
        raise ProfileError(f"{where}: cannot be filled ({error}); placeholders are text, write them as {{name}} "
                           "or {name:>8}") from None


def _short_text(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _check_format_spec(spec: str, name: str, where: str) -> None:
    match = _FORMAT_SPEC.fullmatch(spec)
    if "{" in spec or match is None:
        raise ProfileError(f"{where}: placeholder {{{name}}} has format spec {_short_text(spec)!r}, which is not a "
                           f"plain alignment; write {{{name}}} or e.g. {{{name}:>8}}")
    for part in ("width", "precision"):
        digits = match.group(part)
        if digits and int(digits) > MAX_TEMPLATE_WIDTH:
            raise ProfileError(f"{where}: placeholder {{{name}}} asks for a {part} of {_short_text(digits)}, more "
                               f"than {MAX_TEMPLATE_WIDTH}; write {{{name}}} or e.g. {{{name}:>8}}")


def _check_printer(printer: PrinterProfile) -> None:
    for key in ("start_gcode", "end_gcode"):
        template = getattr(printer, key)
        check_template(template, f"{printer.source}: key {key!r}")
        _check_literal_temperatures(printer, key, template)
    for key in ("layer_height_mm", "first_layer_height_mm"):
        if getattr(printer, key) > 0.8 * printer.nozzle_diameter_mm:
            raise ProfileError(
                f"{printer.source}: key {key!r} is {getattr(printer, key)} mm, more than 80 % of the "
                f"{printer.nozzle_diameter_mm} mm nozzle; use a smaller layer height"
            )


def _check_literal_temperatures(printer: PrinterProfile, key: str, template: str) -> None:
    """Heater commands written as numbers in the template must stay within the printer's own limits."""
    for pattern, limit_key, heater in ((_NOZZLE_HEAT, "max_nozzle_temp_c", "nozzle"),
                                       (_BED_HEAT, "max_bed_temp_c", "bed")):
        limit = getattr(printer, limit_key)
        for match in pattern.finditer(template):
            value = float(match.group("value") or match.group("klipper"))
            if not 0 <= value <= limit:
                command = match.group(0).strip()
                raise ProfileError(
                    f"{printer.source}: key {key!r} sets the {heater} to {value:g} degC ({_short_text(command)!r}), "
                    f"outside 0..{limit:g} ({limit_key}); use {{{'nozzle' if heater == 'nozzle' else 'bed'}_temp_c}} "
                    "or a temperature the printer reaches"
                )


def _check_material(material: MaterialProfile) -> None:
    if material.nozzle_temp_first_layer_c < material.nozzle_temp_c - 30:
        raise ProfileError(
            f"{material.source}: key 'nozzle_temp_first_layer_c' is {material.nozzle_temp_first_layer_c}, "
            f"more than 30 degC below nozzle_temp_c {material.nozzle_temp_c}; check the value"
        )


def check_compatible(printer: PrinterProfile, material: MaterialProfile) -> None:
    """Refuse a material the printer cannot print.

    Raises
    ------
    ProfileError
        Naming the material file and key that the printer cannot meet.
    """
    for key in ("nozzle_temp_c", "nozzle_temp_first_layer_c"):
        value = getattr(material, key)
        if value > printer.max_nozzle_temp_c:
            raise ProfileError(
                f"{material.source}: key {key!r} is {value:g} degC but printer {printer.name!r} reaches at most "
                f"{printer.max_nozzle_temp_c:g} degC (max_nozzle_temp_c in {printer.source}); choose another "
                f"printer or material"
            )
    for key in ("bed_temp_c", "bed_temp_first_layer_c"):
        value = getattr(material, key)
        if value > printer.max_bed_temp_c:
            raise ProfileError(
                f"{material.source}: key {key!r} is {value:g} degC but printer {printer.name!r}'s bed reaches at "
                f"most {printer.max_bed_temp_c:g} degC (max_bed_temp_c in {printer.source}); choose another "
                f"printer or material"
            )
    if material.min_nozzle_diameter_mm > printer.nozzle_diameter_mm:
        raise ProfileError(
            f"{material.source}: key 'min_nozzle_diameter_mm' is {material.min_nozzle_diameter_mm:g} mm but printer "
            f"{printer.name!r} has a {printer.nozzle_diameter_mm:g} mm nozzle; fit a larger nozzle"
        )
    if material.needs_enclosure and not printer.enclosed:
        raise ProfileError(
            f"{material.source}: key 'needs_enclosure' is true but printer {printer.name!r} is open "
            f"(enclosed = false in {printer.source}); use an enclosed printer"
        )


@dataclass(frozen=True)
class ProfileLibrary:
    """All profiles found, by name; later folders override earlier ones."""

    printers: dict[str, PrinterProfile]
    materials: dict[str, MaterialProfile]

    def printer(self, name: str) -> PrinterProfile:
        """The printer called ``name``; an unknown name lists the close matches."""
        return self._get(self.printers, name, "printer", "--printer")  # type: ignore[return-value]

    def material(self, name: str) -> MaterialProfile:
        """The material called ``name``; an unknown name lists the close matches."""
        return self._get(self.materials, name, "material", "--material")  # type: ignore[return-value]

    def get(self, name: str) -> PrinterProfile | MaterialProfile:
        """A printer or material by name (printers first)."""
        if name in self.printers:
            return self.printers[name]
        if name in self.materials:
            return self.materials[name]
        return self._get({**self.printers, **self.materials}, name, "profile", "NAME")

    @staticmethod
    def _get(table: dict[str, Any], name: str, what: str, option: str) -> Any:
        if name in table:
            return table[name]
        folded = {key.lower(): key for key in table}
        if name.lower() in folded:
            return table[folded[name.lower()]]
        close = difflib.get_close_matches(name.lower(), list(folded), n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(folded[c] for c in close)}?" if close
                else f"known: {', '.join(sorted(table))}")
        raise ParameterError(f"{option}: no {what} called {name!r}; {hint} (see `medprint profiles list`)")


def load_profiles(extra_dir: Path | str | None = None) -> ProfileLibrary:
    """Read every profile from the shipped folder, ``$MEDPRINT_PROFILES`` and ``extra_dir``.

    Every file is validated; the first bad one raises :class:`ProfileError`.
    """
    printers: dict[str, PrinterProfile] = {}
    materials: dict[str, MaterialProfile] = {}
    for folder in profile_dirs(extra_dir):
        for path in sorted(folder.glob("*.toml")):
            profile = read_profile(path)
            table: dict[str, Any] = printers if isinstance(profile, PrinterProfile) else materials
            if profile.name in table:
                # A warning, not INFO: a lab's file silently replacing a shipped printer changes the G-code.
                logger.warning("profile %s from %s replaces the one from %s", profile.name, path,
                               table[profile.name].source)
            table[profile.name] = profile
    return ProfileLibrary(printers=printers, materials=materials)


def render_template(template: str, printer: PrinterProfile, material: MaterialProfile, *, max_z_mm: float) -> str:
    """Fill a start/end G-code template's ``{placeholders}`` (checked again: a profile may be built in Python)."""
    check_template(template, f"{printer.source}: printer {printer.name!r} G-code template")
    if not math.isfinite(max_z_mm):
        raise ProfileError(f"{printer.source}: max_z_mm for the end G-code is {max_z_mm}, not a finite number")
    values = {
        "nozzle_temp_c": f"{material.nozzle_temp_c:g}",
        "nozzle_temp_first_layer_c": f"{material.nozzle_temp_first_layer_c:g}",
        "bed_temp_c": f"{material.bed_temp_c:g}",
        "bed_temp_first_layer_c": f"{material.bed_temp_first_layer_c:g}",
        "build_x_mm": f"{printer.build_x_mm:g}", "build_y_mm": f"{printer.build_y_mm:g}",
        "build_z_mm": f"{printer.build_z_mm:g}", "filament_diameter_mm": f"{printer.filament_diameter_mm:g}",
        "max_z_mm": f"{max_z_mm:.2f}",
    }
    return template.format_map(values)


def describe_profile(profile: PrinterProfile | MaterialProfile) -> dict[str, Any]:
    """A profile as a plain dict (for ``profiles show`` and reports)."""
    out: dict[str, Any] = {"name": profile.name, "kind": "printer" if isinstance(profile, PrinterProfile) else
                           "material", "source": str(profile.source)}
    for f in fields(profile):
        if f.name not in ("name", "source"):
            out[f.name] = getattr(profile, f.name)
    return out
