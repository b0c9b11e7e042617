"""The report: scrubbing of file paths and names (hospitals often name files after the patient), strict JSON,
relative paths, and the terminal-safe text every message goes through."""

import json
import logging
import threading

import numpy as np
import pytest

from medprint.geometry import Geometry
from medprint.redact import Scrubber, names_below, terminal_safe
from medprint.report import collected_warnings, describe_volume, non_finite_fields, relative_to, to_json, write_report
from medprint.volume import Volume


def test_scrubber_replaces_whole_names_longest_first():
    scrub = Scrubber({"/data/Doe_John/ct": "<input>", "ct": "<input>", "Doe_John_0004.dcm": "<input file>",
                      "0004": "<input file>", "Doe_John": "<input folder>"})
    assert scrub("skipped Doe_John_0004.dcm (in /data/Doe_John/ct)") == "skipped <input file> (in <input>)"
    # Inside another word it stays; digits-only and short names are no names (the same digits are measurements).
    assert scrub("Doe_Johnson took 0004 s; ct scan") == "Doe_Johnson took 0004 s; ct scan"
    assert scrub("folder Doe_John.") == "folder <input folder>."
    assert Scrubber({})("anything") == "anything"


def test_collected_warnings_are_scrubbed_and_only_this_threads():
    log = logging.getLogger("medprint")
    with collected_warnings(Scrubber({"Doe_Jane.nii.gz": "<labels>"})) as warnings:
        log.warning("Doe_Jane.nii.gz: label 'liver' is empty")
        log.info("not a warning")
        other = threading.Thread(target=lambda: log.warning("another run's Smith_B.nii"))
        other.start()
        other.join()
    log.warning("after the run")
    assert warnings == ["<labels>: label 'liver' is empty"]


def _strict(text):
    return json.loads(text, parse_constant=lambda constant: pytest.fail(f"non-strict JSON: {constant}"))


def test_non_finite_values_become_null_with_a_warning(tmp_path, caplog):
    report = {"mesh": {"volume_mm3": float("nan"), "bounding_box_mm": {"size": [1.0, np.float32("inf"), 2]}},
              "count": np.int64(3), "ok": np.bool_(True), "warnings": ["earlier"]}
    with caplog.at_level(logging.WARNING, logger="medprint"):
        write_report(report, tmp_path / "r.json", overwrite=False)
    written = _strict((tmp_path / "r.json").read_text())
    assert written["mesh"]["volume_mm3"] is None and written["mesh"]["bounding_box_mm"]["size"] == [1.0, None, 2]
    assert written["count"] == 3 and written["ok"] is True
    assert written["warnings"][0] == "earlier"
    assert [w.split(" is ")[0] for w in written["warnings"][1:]] == [
        "report: mesh.volume_mm3", "report: mesh.bounding_box_mm.size[1]"]
    assert "mesh.volume_mm3" in caplog.text and "written as null" in caplog.text
    assert np.isnan(report["mesh"]["volume_mm3"])  # the caller's data is left as it was


def test_to_json_is_strict_and_ascii():
    assert non_finite_fields({"a": [0.0, -float("inf")], "b": "nan"}) == ["a[1]"]
    text = to_json({"name": "liver\x1b[31m\u202e", "values": (1, 2.5)})
    assert _strict(text) == {"name": "liver\x1b[31m\u202e", "values": [1, 2.5]}
    assert text.isascii() and "\x1b" not in text


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain text: 1.5 mm", "plain text: 1.5 mm"),
    ("two\nlines\r\n", "two\\nlines\\r\\n"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("bell\x07 nul\x00 del\x7f c1\x9b", "bell\\x07 nul\\x00 del\\x7f c1\\x9b"),
    ("\u202eevil\u202c \u2066iso\u2069 \u200f", "\\u202eevil\\u202c \\u2066iso\\u2069 \\u200f"),
    ("tab\there, line\u2028sep", "tab\\there, line\\u2028sep"),
    ("Müller ünïcode ok", "Müller ünïcode ok"),
])
def test_terminal_safe_escapes_controls_and_bidi(raw, shown):
    assert terminal_safe(raw) == shown
    assert "\n" not in terminal_safe(raw)


def test_relative_to_names_files_from_the_report_folder(tmp_path):
    folder = tmp_path / "Doe^Jane"
    assert relative_to(folder / "skull.stl", folder) == "skull.stl"
    assert relative_to(folder / "parts" / "a.3mf", folder) == "parts/a.3mf"
    assert relative_to(tmp_path / "other.gcode", folder) == "../other.gcode"


def test_names_below_a_folder_not_the_folder_itself(tmp_path):
    inner = tmp_path / "scans" / "Doe^Jane_19010203"
    inner.mkdir(parents=True)
    (inner / "IM0001.dcm").write_bytes(b"")
    named = names_below(tmp_path / "scans")
    assert named["Doe^Jane_19010203"] == "<input folder>" and named["IM0001.dcm"] == "<input file>"
    assert named[str(inner / "IM0001.dcm")] == "<input file>"
    assert "scans" not in named and str(tmp_path / "scans") not in named
    assert names_below(inner / "IM0001.dcm") == {}  # a file has nothing below it
    (tmp_path / "scans" / "DICOM").mkdir()
    assert "DICOM" not in names_below(tmp_path / "scans")  # a CD's folder names no one, and is a word of messages


def test_report_metadata_leaves_out_description_and_uid_unless_shown():
    volume = Volume(array=np.zeros((2, 3, 4), dtype=np.int16), geometry=Geometry(spacing=(1.0, 1.0, 1.0)),
                    modality="CT", metadata={"series_description": "Doe^Jane head", "series_uid": "1.2.3",
                                             "kvp": "120"})
    assert describe_volume(volume)["metadata"] == {"kvp": "120"}
    assert describe_volume(volume, show_phi=True)["metadata"] == dict(volume.metadata)
