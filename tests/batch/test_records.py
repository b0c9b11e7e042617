"""The batch's records: input digests and their cache, the manifest, the folders' moves and lock."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from medprint.batch import hashing
from medprint.batch.folders import (
    batch_lock,
    move_into_place,
    new_staging_folder,
    remove_stale_staging,
)
from medprint.batch.hashing import InputHasher, sha256_file
from medprint.batch.manifest import Manifest, OrderKey, output_intact
from medprint.errors import OutputError


def _series(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "a.dcm").write_bytes(b"slice a")
    (folder / "sub" / "b.dcm").write_bytes(b"slice b")
    return folder


def test_folder_digest_follows_every_name_and_byte_but_not_the_folder_path(tmp_path: Path) -> None:
    first = _series(tmp_path / "one")
    second = _series(tmp_path / "two")
    digest = InputHasher().path_digest(first)
    assert InputHasher().path_digest(second) == digest  # same content elsewhere: same inputs
    (second / "sub" / "b.dcm").write_bytes(b"slice B")
    assert InputHasher().path_digest(second) != digest
    (second / "sub" / "b.dcm").write_bytes(b"slice b")
    os.rename(second / "a.dcm", second / "c.dcm")
    assert InputHasher().path_digest(second) != digest
    assert InputHasher().path_digest(tmp_path / "absent") == "missing"


def test_cached_digests_are_not_reread_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    series = _series(tmp_path / "case")
    first = InputHasher()
    digest = first.path_digest(series)
    reads: list[Path] = []
    monkeypatch.setattr(hashing, "sha256_file", lambda path: reads.append(path) or sha256_file(path))
    again = InputHasher(json.loads(json.dumps(first.used)))  # as the manifest stores it
    assert again.path_digest(series) == digest
    assert reads == []
    (series / "a.dcm").write_bytes(b"slice A, longer")
    assert again.path_digest(series) != digest
    assert reads == [series / "a.dcm"]
    assert not any("case" in key or "dcm" in key for key in again.used)  # no input names in the manifest


def test_manifest_is_written_whole_and_read_back(tmp_path: Path) -> None:
    manifest = Manifest.load(tmp_path)
    manifest.record("A-1", {"status": "done", "folder": "A-1", "outputs": {}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # no temporary file left
    assert Manifest.load(tmp_path).orders == {"A-1": {"status": "done", "folder": "A-1", "outputs": {}}}
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(OutputError, match="manifest"):
        Manifest.load(tmp_path)


def test_an_order_is_unchanged_only_with_the_same_key_and_intact_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "A-1"
    folder.mkdir()
    (folder / "model.stl").write_bytes(b"solid")
    stat = (folder / "model.stl").stat()
    key = OrderKey("in", "params", "1.0")
    manifest = Manifest.load(tmp_path)
    manifest.orders["A-1"] = {"status": "done", "folder": "A-1", "inputs_sha256": "in", "parameters_sha256": "params",
                              "medprint_version": "1.0", "outputs": {"model.stl": {
                                  "sha256": sha256_file(folder / "model.stl"), "size": stat.st_size,
                                  "mtime_ns": stat.st_mtime_ns}}}
    assert manifest.finished_unchanged("A-1", folder, key)
    for changed in (OrderKey("other", "params", "1.0"), OrderKey("in", "other", "1.0"), OrderKey("in", "params", "2")):
        assert not manifest.finished_unchanged("A-1", folder, changed)
    (folder / "model.stl").write_bytes(b"SOLID")  # same size, new bytes
    assert not manifest.finished_unchanged("A-1", folder, key)
    (folder / "model.stl").unlink()
    assert not manifest.finished_unchanged("A-1", folder, key)


def test_a_touched_output_with_the_same_bytes_is_intact_and_its_new_mtime_recorded(tmp_path: Path) -> None:
    path = tmp_path / "model.stl"
    path.write_bytes(b"solid")
    recorded = {"sha256": sha256_file(path), "size": 5, "mtime_ns": path.stat().st_mtime_ns}
    os.utime(path, ns=(1, 10**18))
    assert output_intact(path, recorded)
    assert recorded["mtime_ns"] == 10**18


def test_move_into_place_replaces_an_older_folder_whole(tmp_path: Path) -> None:
    staging_root = tmp_path / ".staging"
    old = tmp_path / "A-1"
    old.mkdir()
    (old / "old.stl").write_bytes(b"old")
    staging = new_staging_folder(staging_root, "A-1")
    (staging / "new.stl").write_bytes(b"new")
    move_into_place(staging, old)
    assert sorted(p.name for p in old.iterdir()) == ["new.stl"]
    assert list(staging_root.iterdir()) == []  # the older folder, renamed aside, is gone


def test_stale_staging_is_removed_and_a_second_batch_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".staging" / "A-1-dead" / "out").mkdir(parents=True)
    with batch_lock(tmp_path):
        assert remove_stale_staging(tmp_path) == 1
        with pytest.raises(OutputError, match="another batch is running"), batch_lock(tmp_path):
            pass
    assert list((tmp_path / ".staging").iterdir()) == []
    with batch_lock(tmp_path):  # released
        pass


def test_the_error_of_a_failed_order_is_its_error_line(tmp_path: Path) -> None:
    from medprint.batch.execute import first_error_line

    log = tmp_path / "log.txt"
    log.write_text("medprint: WARNING: no error: just a note\nmedprint: error: MESH: x.stl is empty\n")
    assert first_error_line(log) == "MESH: x.stl is empty"
    log.write_text("medprint: error: order.toml: 1 problem\n  order.toml:4: scale: 0 is too small\n")
    assert first_error_line(log) == "order.toml: 1 problem: order.toml:4: scale: 0 is too small"
    log.write_text("Segmentation fault\n\n")
    assert first_error_line(log) == "Segmentation fault"


def test_without_dask_the_scheduler_option_says_how_to_install_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from medprint.batch import run_batch
    from medprint.errors import ParameterError

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(ParameterError, match=r"pip install 'medprint\[cluster\]'"):
        run_batch([], tmp_path / "out", scheduler="tcp://127.0.0.1:1")
    assert not (tmp_path / "out").exists()
