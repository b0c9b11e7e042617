"""A small job for the order tests (no tests here): every kind of option, a conflict, and a run that writes
what it was given.  The other test_orders* files import it (`from toy_job import install`)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

from medprint.jobs import JOB_MODULES
from medprint.jobs.kinds import intensity_range, point
from medprint.jobs.spec import (
    OVERWRITE,
    SHOW_PHI,
    Argument,
    Choice,
    Conflict,
    FilePath,
    Flag,
    JobRequest,
    JobResult,
    JobSpec,
    Number,
    Opt,
    Whole,
    output_option,
)

MODULE = "toy_job_for_order_tests"


def _check(request: JobRequest) -> list[Conflict]:
    if request["fill"] and not request.was_given("preset"):
        return [Conflict("--fill goes with --preset; add --preset or drop --fill", ("fill", "preset"))]
    return []


def _run(request: JobRequest) -> JobResult:
    output = Path(request["output_path"])
    if output.exists() and not request["overwrite"]:
        from medprint.errors import OutputError

        raise OutputError(f"-o/--output: {output} already exists; pass --overwrite to replace it")
    report = {"smooth": request["smooth"], "output": str(output)}
    if request.order is not None:
        report["order"] = dict(request.order)
    if request["fail"]:
        from medprint.errors import DesignError

        raise DesignError("toy: asked to fail")
    output.write_text(json.dumps({k: str(v) for k, v in request.values.items()}, sort_keys=True))
    return JobResult(outputs=(output,), report=report, summary=(f"{output}: toy done",))


TOY = JobSpec(
    name="toy",
    help="A toy job.",
    argument=Argument("scan_path", "SCAN"),
    options=(
        output_option("File to write."),
        Opt("preset", "preset", Choice(("bone", "skin")), "Preset."),
        Opt("smooth", "smooth", Number(0, 100, why="iterations"), "Smoothing.", default=10.0),
        Opt("iterations", "iterations", Whole(0, 10), "Iterations.", default=2),
        Opt("fill", "fill", Flag(), "Fill.", default=False),
        Opt("fail", "fail", Flag(), "Fail while running.", default=False),
        Opt("seed", "seeds", point("--seed"), "Seed point.", multiple=True),
        Opt("threshold", "threshold", intensity_range("--threshold"), "Range."),
        Opt("labels", "labels", FilePath("input", fragment=True), "Labels file."),
        Opt("mesh-out", "mesh_out", FilePath("output"), "Second output."),
        SHOW_PHI,
        OVERWRITE,
    ),
    run=_run,
    check=_check,
)


def install(monkeypatch) -> JobSpec:
    """Make ``command = "toy"`` an order's command for the test."""
    module = types.ModuleType(MODULE)
    module.SPEC = TOY  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setitem(JOB_MODULES, "toy", MODULE)
    return TOY
