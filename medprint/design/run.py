"""Where a design is written: every output reserved first, all files or none, a report beside the mesh."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..deliver.products import ExtraOutput, RunProducts
from ..errors import ParameterError
from ..io.mesh_files import MESH_FORMATS, model_metadata, write_mesh, write_parts_3mf
from ..io.outputs import RunOutputs
from ..mesh import MeshQuality, make_printable
from ..mesh.model import Mesh
from ..redact import Scrubber, names_below
from ..report import (
    build_report,
    collected_warnings,
    describe_mask,
    describe_part,
    describe_volume,
    relative_to,
    report_path_for,
    write_report,
)
from ..review.types import Outline, Shown
from ..volume import Mask, Volume
from .part import Part, finish_part

log = logging.getLogger("medprint")

#: Colours of the fit-check 3MF: the part stands out against bone.
PART_COLOUR = (230, 120, 40)
ANATOMY_COLOUR = (235, 230, 215)


@dataclass(frozen=True)
class DesignOutputs:
    """The files a design run writes.

    Parameters
    ----------
    mesh : Path
        The part (``-o``): .stl, .obj, .ply or .3mf.
    report : bool
        Write the JSON report beside it (``<stem>.report.json``).
    extras : mapping of str to Path
        Other meshes of the part to write, by their name in :attr:`Part.extras` (``{"rim": Path("rim.stl")}``).
    fit_3mf : Path, optional
        The part and ``Part.extras["anatomy"]`` as two coloured objects in one 3MF, for a fit check.
    overwrite : bool
        Replace existing files (at the end, only when the whole run succeeded).
    """

    mesh: Path
    report: bool = True
    extras: Mapping[str, Path] = field(default_factory=dict)
    fit_3mf: Path | None = None
    overwrite: bool = False

    def files(self) -> tuple[Path, ...]:
        """Every file a finished run writes: the part, its report, the extra meshes, the fit check."""
        report = (report_path_for(self.mesh),) if self.report else ()
        fit = (self.fit_3mf,) if self.fit_3mf is not None else ()
        return (Path(self.mesh), *report, *map(Path, self.extras.values()), *fit)


def run_design(
    outputs: DesignOutputs,
    make: Callable[[], Part],
    *,
    input_facts: dict[str, Any],
    parameters: Any,
    show_phi: bool = False,
    input_path: Path | None = None,
    order: Mapping[str, Any] | None = None,
    extras: Sequence[ExtraOutput] = (),
    scan: Volume | None = None,
) -> tuple[Part, dict[str, Any]]:
    """Reserve the outputs, design the part with ``make()``, check it and write everything.

    Nothing is written unless every step succeeds; an error in ``make`` (or
    Ctrl-C) leaves no file and existing files untouched.  Without
    ``show_phi``, names from below ``input_path`` are kept out of the report.  ``order`` (the record of the
    order the run comes from, :func:`medprint.jobs.orders.order_record`) goes into the report as it is.
    ``extras`` (HTML report, DICOM objects: :mod:`medprint.deliver`) are reserved with the outputs and
    written in the same commit; ``scan``, the scan the part was designed on, is shown under it.

    Returns
    -------
    (Part, dict)
        The finished (printable) part and its report.
    """
    report_path = report_path_for(outputs.mesh) if outputs.report else None
    scrub = Scrubber({} if show_phi or input_path is None else private_names(Path(input_path)))
    with RunOutputs(overwrite=outputs.overwrite) as run:
        _reserve(run, outputs, report_path)
        for extra in extras:
            extra.reserve(run)
        timings: dict[str, float] = {}
        with collected_warnings(scrub) as warnings:
            start = time.perf_counter()
            part = make()
            timings["design"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            part, quality = finish_part(part)
            extra_meshes = _printable_extras(part, outputs)
            timings["check"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            order_id = None if order is None else order.get("id")
            write_mesh(part.mesh, outputs.mesh, overwrite=outputs.overwrite, colour=PART_COLOUR,
                       metadata=model_metadata(outputs.mesh, order_id=order_id))
            for name, path in outputs.extras.items():
                write_mesh(extra_meshes[name], path, overwrite=outputs.overwrite,
                           colour=ANATOMY_COLOUR if name == "anatomy" else None,
                           metadata=model_metadata(path, order_id=order_id))
            if outputs.fit_3mf is not None:
                write_parts_3mf([part.mesh, extra_meshes["anatomy"]], outputs.fit_3mf,
                                colours=[PART_COLOUR, ANATOMY_COLOUR], overwrite=outputs.overwrite,
                                metadata=model_metadata(outputs.fit_3mf, order_id=order_id))
            timings["write"] = round(time.perf_counter() - start, 3)
        report = design_report(part, quality, outputs, input_facts=input_facts, parameters=parameters,
                               timings_s=timings, scrub=scrub)
        report["warnings"] = warnings
        if order is not None:
            report["order"] = dict(order)
        if report_path is not None:
            write_report(report, report_path, overwrite=outputs.overwrite)
        for extra in extras:
            extra.write(_products(part, extras_meshes=extras_for_view(part), outputs=outputs, report=report,
                                  run=run, scan=scan, input_path=input_path))
        run.commit()
    log.info("%s: %s", part.kind, quality.describe())
    return part, report


def design_report(
    part: Part, quality: MeshQuality, outputs: DesignOutputs, *, input_facts: dict[str, Any], parameters: Any,
    timings_s: dict[str, float], scrub: Scrubber,
) -> dict[str, Any]:
    """The JSON report of a design: the input, the part's mesh facts, how it was made and what was measured."""
    folder = outputs.mesh.parent
    described = describe_part(mask_facts={}, mesh=part.mesh, quality=quality, surface_facts={
        "deviation_limit_mm": 0.0, "surface_deviation_mm": part.measurements.get("repair_deviation_mm", 0.0),
        "repair_deviation_mm": part.measurements.get("repair_deviation_mm", 0.0),
    })
    described.pop("mask")
    described.pop("repairs")
    for key in ("deviation_limit_mm", "surface_deviation_mm", "smoothing_deviation_mm", "decimation_deviation_mm",
                "raw_triangles"):
        described["mesh"].pop(key, None)
    described["mesh"]["path"] = relative_to(outputs.mesh, folder)
    report = build_report(input_facts=input_facts, choices=[scrub(choice) for choice in part.choices],
                          parts=[described], parameters=parameters, timings_s=timings_s)
    report["design"] = {
        "kind": part.kind,
        "method": scrub(part.method),
        "measurements": part.measurements,
        "outputs": {
            **{name: relative_to(path, folder) for name, path in outputs.extras.items()},
            **({"fit_3mf": relative_to(outputs.fit_3mf, folder)} if outputs.fit_3mf is not None else {}),
        },
    }
    return report


def describe_input(source: Volume | Mask | Mesh, *, path: Path | None = None, show_phi: bool = False) -> dict[str, Any]:
    """De-identified facts about what a design started from (the path only with ``show_phi``)."""
    if isinstance(source, Volume):
        return describe_volume(source, input_path=path if show_phi else None, show_phi=show_phi)
    if isinstance(source, Mask):
        facts: dict[str, Any] = {"kind": "mask", **describe_mask(source),
                                 "spacing_mm": [round(s, 4) for s in source.geometry.spacing],
                                 "dimensions_xyz": list(reversed(source.array.shape))}
    else:
        low, high = source.bounds_mm()
        digest = hashlib.sha256(np.ascontiguousarray(source.vertices).data)
        digest.update(np.ascontiguousarray(source.faces).data)
        facts = {"kind": "mesh", "triangles": source.face_count, "vertices": source.vertex_count,
                 "bounding_box_mm": {"min": [round(v, 3) for v in low], "max": [round(v, 3) for v in high]},
                 "mesh_sha256": digest.hexdigest()}
    if show_phi and path is not None:
        facts["path"] = str(path)
    return facts


def private_names(input_path: Path) -> dict[str, str]:
    """The input's path and file name, and every name below an input folder, with their stand-ins."""
    private = {str(input_path): "<input>", input_path.name: "<input>"}
    for name, stand_in in names_below(input_path).items():
        private.setdefault(name, stand_in)
    return private


def _reserve(run: RunOutputs, outputs: DesignOutputs, report_path: Path | None) -> None:
    _check_mesh_suffix(outputs.mesh, "-o/--output")
    run.reserve(outputs.mesh, "-o/--output")
    if report_path is not None:
        run.reserve(report_path, "report")
    for name, path in outputs.extras.items():
        _check_mesh_suffix(path, f"--{name}")
        run.reserve(path, f"--{name}")
    if outputs.fit_3mf is not None:
        if outputs.fit_3mf.suffix.lower() != ".3mf":
            raise ParameterError(f"--fit: {outputs.fit_3mf.name} must end in .3mf")
        run.reserve(outputs.fit_3mf, "--fit")


def _check_mesh_suffix(path: Path, option: str) -> None:
    if Path(path).is_dir():
        raise ParameterError(f"{option}: {path} is a folder; give a file in it, such as {Path(path) / 'part.stl'}")
    if Path(path).suffix.lower() not in MESH_FORMATS:
        raise ParameterError(f"{option}: {Path(path).name} has no mesh suffix; use one of {', '.join(MESH_FORMATS)}")


def _printable_extras(part: Part, outputs: DesignOutputs) -> dict[str, Mesh]:
    wanted = set(outputs.extras) | ({"anatomy"} if outputs.fit_3mf is not None else set())
    missing = sorted(wanted - set(part.extras))
    if missing:
        raise ParameterError(f"--{missing[0]}: a {part.kind} design has no {missing[0]} to write; drop the option")
    return {name: make_printable(part.extras[name]).mesh.with_name(name) for name in wanted}


def extras_for_view(part: Part) -> dict[str, Mesh]:
    """The anatomy the part fits, when the design has it (drawn under the part in the HTML report)."""
    # Part.extras may build its meshes only when asked (an implant's rim): ask for the anatomy alone.
    return {"anatomy": part.extras["anatomy"]} if "anatomy" in part.extras else {}


def _products(part: Part, *, extras_meshes: Mapping[str, Mesh], outputs: DesignOutputs, report: dict[str, Any],
              run: RunOutputs, scan: Volume | None, input_path: Path | None) -> RunProducts:
    name = Path(outputs.mesh).stem
    shown = [Shown(name, part.mesh, PART_COLOUR)]
    shown += [Shown(key, mesh, ANATOMY_COLOUR, role="anatomy") for key, mesh in extras_meshes.items()]
    return RunProducts(
        command=f"design {part.kind}", main_output=Path(outputs.mesh), report=report, shown=tuple(shown),
        part_files={name: Path(outputs.mesh)}, outputs=run, volume=scan,
        outlines=tuple(Outline(item.name, item.colour, item.mesh) for item in shown) if scan is not None else (),
        input_path=input_path, mirrored=part.measurements.get("method") == "mirror",
    )
