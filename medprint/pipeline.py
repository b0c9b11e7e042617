"""The one-shot chain: scan -> mask -> surface -> printable mesh -> files + report.

Each stage is a library function; this module only sequences them, times
them and collects what the report needs.  The CLI's ``convert`` is a thin
layer over :func:`convert_scan`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import ParameterError
from .io import load_volume, write_mesh
from .io.atomic import check_writable
from .io.mesh_files import MESH_FORMATS
from .mesh import MeshQuality, decimate_surface, extract_surface, make_printable, smooth_surface
from .mesh.model import Mesh
from .progress import ProgressCallback, no_progress
from .report import build_report, describe_mask, describe_volume, write_report
from .segment import SegmentationSettings, clean_up_mask, select_by_threshold
from .geometry import Geometry

log = logging.getLogger("medprint")

T = TypeVar("T")


@dataclass(frozen=True)
class SurfaceSettings:
    """How the mask becomes a surface.

    Parameters
    ----------
    smooth_iterations : int
        Windowed-sinc smoothing passes; 0 keeps the raw marching-cubes surface.
    max_deviation_mm : float, optional
        Upper bound on how far smoothing and decimation may move the surface.
        Default: half the smallest voxel spacing.
    decimate_fraction : float, optional
        Keep this fraction of the triangles (0 < f < 1).
    decimate_faces : int, optional
        Reduce to about this many triangles.
    """

    smooth_iterations: int = 20
    max_deviation_mm: float | None = None
    decimate_fraction: float | None = None
    decimate_faces: int | None = None

    def __post_init__(self) -> None:
        if self.smooth_iterations < 0:
            raise ParameterError(f"--smooth: iterations must be >= 0, got {self.smooth_iterations}")
        if self.max_deviation_mm is not None and not self.max_deviation_mm > 0:
            raise ParameterError(f"--max-deviation: must be a positive number of mm, got {self.max_deviation_mm:g}")
        if self.decimate_fraction is not None and not 0 < self.decimate_fraction < 1:
            raise ParameterError(
                f"--decimate: a fraction must lie between 0 and 1 (e.g. 0.25), got {self.decimate_fraction:g}"
            )
        if self.decimate_faces is not None and self.decimate_faces < 4:
            raise ParameterError(f"--decimate: a triangle count must be at least 4, got {self.decimate_faces}")

    def deviation_limit(self, voxel_spacing: tuple[float, float, float]) -> float:
        """The deviation bound in mm for a scan with this spacing."""
        return self.max_deviation_mm if self.max_deviation_mm is not None else 0.5 * min(voxel_spacing)


@dataclass(frozen=True)
class LoadSettings:
    """How to read the input (see :func:`medprint.io.load_volume`)."""

    series: str | None = None
    allow_gaps: bool = False
    modality: str | None = None


@dataclass
class ConvertResult:
    """What :func:`convert_scan` produced."""

    mesh: Mesh
    mesh_path: Path
    report_path: Path | None
    report: dict[str, Any]


@dataclass
class _Stopwatch:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        log.info("%s: %.2f s", name, self.seconds[name])


def convert_scan(
    input_path: Path,
    output_path: Path,
    *,
    segmentation: SegmentationSettings,
    surface: SurfaceSettings = SurfaceSettings(),
    loading: LoadSettings = LoadSettings(),
    ascii_stl: bool = False,
    overwrite: bool = False,
    write_json_report: bool = True,
    include_phi_paths: bool = False,
    progress: ProgressCallback = no_progress,
) -> ConvertResult:
    """Run the whole chain and write the mesh (and a JSON report beside it).

    Outputs are checked for writability before any work starts and written
    atomically, so a failure leaves no partial file behind.
    """
    output_path = Path(output_path)
    report_path = report_path_for(output_path) if write_json_report else None
    _check_outputs(output_path, report_path, overwrite)
    watch = _Stopwatch()

    with watch.stage("load"):
        volume = load_volume(
            input_path,
            series=loading.series,
            allow_gaps=loading.allow_gaps,
            modality=loading.modality,
            progress=progress,
        )
    input_facts = describe_volume(volume, input_path=input_path if include_phi_paths else None)
    choices = list(volume.notes)
    with watch.stage("segment"):
        mask, segment_steps = select_by_threshold(volume, segmentation)
        # Hospital volumes are hundreds of MB: release the voxels before labelling and meshing need memory.
        del volume
        mask, cleanup_steps = clean_up_mask(mask, segmentation)
    segment_steps += cleanup_steps
    mask_facts = describe_mask(mask)
    geometry, label = mask.geometry, mask.label
    with watch.stage("surface"):
        mesh = extract_surface(mask, progress=progress).with_name(label)
    del mask
    mesh, quality, surface_facts = _refine_surface(mesh, geometry, surface, watch)
    with watch.stage("write"):
        write_mesh(mesh, output_path, ascii=ascii_stl, overwrite=overwrite)

    report = build_report(
        input_facts=input_facts,
        mask_facts=mask_facts,
        choices=choices + segment_steps + list(surface_facts.get("repairs", [])),
        mesh=mesh,
        quality=quality,
        surface_facts=surface_facts,
        parameters={
            "segmentation": segmentation,
            "surface": surface,
            "loading": loading,
            "ascii_stl": ascii_stl,
        },
        timings_s=watch.seconds,
        output_path=output_path,
    )
    if report_path is not None:
        write_report(report, report_path, overwrite=overwrite)
    return ConvertResult(mesh=mesh, mesh_path=output_path, report_path=report_path, report=report)


def report_path_for(mesh_path: Path) -> Path:
    """``skull.stl`` -> ``skull.report.json`` beside it."""
    return mesh_path.with_name(mesh_path.stem + ".report.json")


def _check_outputs(output_path: Path, report_path: Path | None, overwrite: bool) -> None:
    if output_path.suffix.lower() not in MESH_FORMATS:
        raise ParameterError(
            f"-o/--output: {output_path.name} has no mesh suffix; use one of {', '.join(MESH_FORMATS)}"
        )
    check_writable(output_path, overwrite=overwrite)
    if report_path is not None:
        check_writable(report_path, overwrite=overwrite, option="report")


def _refine_surface(
    mesh: Mesh, grid: Geometry, surface: SurfaceSettings, watch: _Stopwatch
) -> tuple[Mesh, MeshQuality, dict[str, Any]]:
    """Smooth, decimate and check a raw marching-cubes surface made on ``grid``."""
    limit = surface.deviation_limit(grid.spacing)
    facts: dict[str, Any] = {"deviation_limit_mm": limit, "raw_triangles": mesh.face_count}
    decimating = surface.decimate_fraction is not None or surface.decimate_faces is not None
    if surface.smooth_iterations > 0:
        # Smoothing and decimation share one budget; with both, each gets half.
        smoothing_limit = limit / 2 if decimating else limit
        with watch.stage("smooth"):
            mesh, facts["smoothing_deviation_mm"] = smooth_surface(
                mesh, iterations=surface.smooth_iterations, max_deviation_mm=smoothing_limit, sampling_grid=grid
            )
    if decimating:
        remaining = limit - facts.get("smoothing_deviation_mm", 0.0)
        with watch.stage("decimate"):
            mesh, facts["decimation_deviation_mm"] = decimate_surface(
                mesh,
                target_faces=surface.decimate_faces,
                target_fraction=surface.decimate_fraction,
                max_deviation_mm=remaining,
            )
    with watch.stage("repair"):
        # Assesses once; the report reuses that assessment instead of checking again.
        repair = make_printable(mesh)
    facts["repairs"] = list(repair.actions)
    facts["surface_deviation_mm"] = round(
        facts.get("smoothing_deviation_mm", 0.0) + facts.get("decimation_deviation_mm", 0.0), 4
    )
    return repair.mesh.with_name(mesh.name), repair.quality, facts
