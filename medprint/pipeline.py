"""The one-shot chain: scan -> mask -> surface -> printable mesh -> files + report.

Each stage is a library function; this module only sequences them, times
them and collects what the report needs.  The CLI's ``convert`` is a thin
layer over :func:`convert_scan`.
"""

from __future__ import annotations

import hashlib
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
from .report import build_report, write_report
from .segment import SegmentationSettings, segment_by_threshold
from .volume import Mask, Volume

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
    with watch.stage("segment"):
        mask, segment_steps = segment_by_threshold(volume, segmentation)
    mesh, quality, surface_facts = _mask_to_printable_mesh(mask, volume, surface, watch, progress)
    with watch.stage("write"):
        write_mesh(mesh, output_path, ascii=ascii_stl, overwrite=overwrite)

    report = build_report(
        volume=volume,
        mask=mask,
        mesh=mesh,
        quality=quality,
        segment_steps=segment_steps,
        surface_facts=surface_facts,
        parameters={
            "segmentation": segmentation,
            "surface": surface,
            "loading": loading,
            "ascii_stl": ascii_stl,
        },
        timings_s=watch.seconds,
        input_path=input_path if include_phi_paths else None,
        output_path=output_path,
        volume_sha256=_fingerprint(volume),
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


def _mask_to_printable_mesh(
    mask: Mask, volume: Volume, surface: SurfaceSettings, watch: _Stopwatch, progress: ProgressCallback
) -> tuple[Mesh, MeshQuality, dict[str, Any]]:
    limit = surface.deviation_limit(volume.geometry.spacing)
    facts: dict[str, Any] = {"deviation_limit_mm": limit}
    with watch.stage("surface"):
        mesh = extract_surface(mask, progress=progress).with_name(mask.label)
    facts["raw_triangles"] = mesh.face_count
    decimating = surface.decimate_fraction is not None or surface.decimate_faces is not None
    if surface.smooth_iterations > 0:
        # Smoothing and decimation share one budget; with both, each gets half.
        smoothing_limit = limit / 2 if decimating else limit
        with watch.stage("smooth"):
            mesh, facts["smoothing_deviation_mm"] = smooth_surface(
                mesh, iterations=surface.smooth_iterations, max_deviation_mm=smoothing_limit,
                sampling_grid=mask.geometry,
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
    return repair.mesh.with_name(mask.label), repair.quality, facts


def _fingerprint(volume: Volume) -> str:
    """SHA-256 of the voxel values: ties a report to its input without naming the patient."""
    return hashlib.sha256(volume.array.tobytes()).hexdigest()
