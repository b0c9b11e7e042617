"""``--dicom-stl`` on real scanner DICOM (../shared/data): dciodvfy finds no error in the object, whose frame of
reference and references are the real series'."""

from __future__ import annotations

import shutil
import subprocess

import pydicom
import pytest
from harness import assert_refused, assert_succeeded, run_cli

pytestmark = pytest.mark.realdata


def dciodvfy_errors(path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_a_real_ge_head_ct_gives_a_valid_object_in_its_frame(real_data, tmp_path):
    folder = real_data("dcmqa_ge_head_ct_tilt/dicom")
    outcome = run_cli("convert", folder, "--preset", "bone", "-o", tmp_path / "head.stl",
                      "--dicom-stl", tmp_path / "head.dcm")
    assert_succeeded(outcome)
    ds = pydicom.dcmread(tmp_path / "head.dcm")
    sources = [pydicom.dcmread(path, stop_before_pixels=True) for path in sorted(folder.iterdir())]
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert {item.ReferencedSOPInstanceUID for item in ds.SourceInstanceSequence} == \
        {source.SOPInstanceUID for source in sources}
    assert bytes(ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength]) == (tmp_path / "head.stl").read_bytes()
    # The source says its identity was removed without saying how; the object says so (PS3.3 asks for a method).
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    assert dciodvfy_errors(tmp_path / "head.dcm") == []


def test_a_real_series_without_study_uid_asks_for_one(real_data, tmp_path):
    folder = real_data("totalseg_dicom_ct_series/dicom")
    outcome = run_cli("convert", folder, "--preset", "bone", "-o", tmp_path / "a.stl", "--dicom-stl", tmp_path / "a.dcm")
    assert_refused(outcome, mentions=["no Study Instance UID", "--study-uid"], out_dir=tmp_path)
