"""A stop signal swallowed on its way (trimesh's optional imports catch BaseException) still stops the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import files_in, run_cli

from medprint.io import outputs
from medprint.io.outputs import RunOutputs


def _swallowed_stop() -> None:
    try:
        outputs.stop_requested("SIGTERM")
    except BaseException:  # noqa: BLE001 - what the offending library does
        pass


def test_a_swallowed_stop_stops_the_commit_and_leaves_no_file(tmp_path: Path):
    outputs.forget_stop()
    target = tmp_path / "model.stl"
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            with RunOutputs(overwrite=False) as run:
                run.reserve(target, "-o/--output")
                with run.stage(target) as temp:
                    temp.write_bytes(b"solid")
                _swallowed_stop()
                run.commit()
        assert list(tmp_path.iterdir()) == []
    finally:
        outputs.forget_stop()


def test_the_cli_says_aborted_when_a_stop_was_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import medprint.design.run as design_run

    real_finish = design_run.finish_part

    def finish_after_a_swallowed_stop(part):  # type: ignore[no-untyped-def]
        _swallowed_stop()
        return real_finish(part)

    monkeypatch.setattr(design_run, "finish_part", finish_after_a_swallowed_stop)
    mesh = tmp_path / "box.stl"
    import trimesh

    trimesh.creation.box((20, 20, 20)).export(mesh)
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli("design", "label", mesh, "--text", "AB", "-o", out / "labelled.stl")
    assert outcome.exit_code == 1
    assert outcome.stderr.strip() == "medprint: aborted"
    assert not files_in(out)
    # The next command in the same process starts with no stop on record.
    monkeypatch.undo()
    assert run_cli("design", "label", mesh, "--text", "AB", "-o", out / "labelled.stl").exit_code == 0
