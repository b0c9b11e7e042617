"""``AET@HOST:PORT``: what parse_pacs_address takes and refuses, and how the CLI refuses a bad one (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import assert_refused, files_in, run_cli

from medprint.io.pacs import PacsAddress, check_ae_title, parse_pacs_address

SAMPLE_CT = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"


@pytest.mark.parametrize(("text", "expected"), [
    ("ORTHANC@127.0.0.1:4242", PacsAddress("ORTHANC", "127.0.0.1", 4242)),
    ("PACS_1@pacs.hospital.org:104", PacsAddress("PACS_1", "pacs.hospital.org", 104)),
    ("STORE@[::1]:11112", PacsAddress("STORE", "::1", 11112)),
    ("STORE@[fe80::1%eth0]:104", PacsAddress("STORE", "fe80::1%eth0", 104)),
    # Spaces inside a title are allowed, around it not significant (PS3.5 6.2); '@' is in the repertoire.
    ("  MY PACS @host:1", PacsAddress("MY PACS", "host", 1)),
    ("A@B@host:65535", PacsAddress("A@B", "host", 65535)),
    ("A" * 16 + "@h:2", PacsAddress("A" * 16, "h", 2)),
])
def test_addresses_that_are_read(text: str, expected: PacsAddress) -> None:
    address = parse_pacs_address(text)
    assert address == expected
    # What medprint prints reads back as the same address (IPv6 in brackets again).
    assert parse_pacs_address(str(address)) == address


@pytest.mark.parametrize(("text", "reason"), [
    ("127.0.0.1:4242", "no AE title"),
    ("@127.0.0.1:4242", "empty or only spaces"),
    ("    @127.0.0.1:4242", "empty or only spaces"),
    ("A" * 17 + "@h:104", "17 characters; at most 16"),
    ("OR\\TH@h:104", "backslash"),
    ("OR\tTH@h:104", "control character"),
    ("ORTHÄNC@h:104", "outside ASCII"),
    ("ORTHANC@host", "no ':PORT'"),
    ("ORTHANC@host:", "no port"),
    ("ORTHANC@:104", "host '' is empty"),
    ("ORTHANC@ho st:104", "has spaces"),
    ("ORTHANC@host:0", "outside 1-65535"),
    ("ORTHANC@host:65536", "outside 1-65535"),
    ("ORTHANC@host:-1", "not a number"),
    ("ORTHANC@host:http", "not a number"),
    ("ORTHANC@host:１０４", "not a number"),  # full-width digits: str.isdigit says yes, int() would take them
    ("ORTHANC@::1:104", "IPv6 address goes in brackets"),
    ("ORTHANC@[::1]", "in brackets followed by the port"),
    ("ORTHANC@[::1:104", "in brackets followed by the port"),
    ("ORTHANC@[host]:104", "not an IPv6 address"),
])
def test_addresses_that_are_refused_say_why_and_give_an_example(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_pacs_address(text)
    message = str(refused.value)
    assert reason in message
    assert "AET@HOST:PORT" in message and "ORTHANC@" in message


def test_ae_title_rules_stand_alone() -> None:
    assert check_ae_title(" WS1 ") == "WS1"
    for bad in ("", " " * 16, "x" * 17, "a\\b", "a\nb", "a\x7fb"):
        with pytest.raises(ValueError):
            check_ae_title(bad)


def test_send_command_refuses_a_bad_address_as_usage(tmp_path: Path) -> None:
    dicom = tmp_path / "x.dcm"
    dicom.write_bytes(b"not even read")
    line = assert_refused(run_cli("send", dicom, "--to", "ORTHANC@host:99999"), exit_code=2,
                          mentions=("--to", "outside 1-65535", "AET@HOST:PORT"))
    assert "99999" in line


def test_send_command_refuses_a_bad_calling_aet_as_usage(tmp_path: Path) -> None:
    assert_refused(run_cli("send", tmp_path / "x.dcm", "--to", "ORTHANC@h:104", "--calling-aet", "X" * 17),
                   exit_code=2, mentions=("--calling-aet", "at most 16"))


def test_send_command_needs_files_and_an_address(tmp_path: Path) -> None:
    assert_refused(run_cli("send", "--to", "ORTHANC@h:104"), exit_code=2, mentions=("FILE",))
    assert_refused(run_cli("send", tmp_path / "x.dcm"), exit_code=2, mentions=("--to",))


def test_convert_refuses_an_unreadable_send_address_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("convert", SAMPLE_CT, "-o", out / "skull.stl", "--preset", "bone",
                      "--dicom-stl", out / "skull.dcm", "--send", "ORTHANC@pacs:4242:104")
    assert_refused(outcome, exit_code=2, mentions=("--send", "AET@HOST:PORT"), out_dir=out)
    assert files_in(out) == set()
