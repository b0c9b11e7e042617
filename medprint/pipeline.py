"""The one-shot chain: scan -> mask -> surface -> printable mesh -> files + report.

Each stage is a library function; this module only sequences them, times
them and collects what the report needs.  The ``convert`` job
(:mod:`medprint.jobs.convert`, the CLI's ``convert`` and an order's) builds
the settings from its options and calls :func:`convert_scan`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .deliver.products import ExtraOutput, RunProducts
from .errors import ParameterError
from .geometry import Geometry
from .io import load_volume, write_mesh
from .io.labels import load_label_mask
from .io.mesh_files import (
    MESH_FORMATS,
    PART_COLOURS,
    model_metadata,
    safe_part_name,
    write_parts_3mf,
)
from .io.outputs import RunOutputs, fit_name, name_max, short_digest
from .mesh import (
    MeshQuality,
    decimate_surface,
    extract_surface,
    make_printable,
    smooth_surface,
)
from .mesh.model import Mesh
from .mesh.quality import check_printable_size
from .mesh.smooth import cut_edge_outer_voxels
from .progress import ProgressCallback, no_progress
from .redact import Scrubber, names_below
from .report import (
    build_report,
    collected_warnings,
    describe_mask,
    describe_part,
    describe_volume,
    relative_to,
    report_path_for,
    write_report,
)
from .review.types import Outline, Shown
from .segment import (
    MriSettings,
    RegionGrowingSettings,
    SegmentationSettings,
    VesselSettings,
    clean_up_mask,
    prepare_mri,
    segment_from_seeds,
    segment_mri,
    segment_vessel,
    select_by_threshold,
)
from .segment.checks import require_number
from .slice.engine import SliceSettings, slice_to_gcode, write_gcode
from .slice.profiles import (
    MaterialProfile,
    PrinterProfile,
    check_compatible,
    load_profiles,
)
from .volume import Mask, Volume

log = logging.getLogger("medprint")

T = TypeVar("T")


#: Most smoothing passes: the windowed-sinc filter has long converged by then.
MAX_SMOOTH_ITERATIONS = 500
#: Most that smoothing and decimation may move the surface (mm): more is no longer the scanned anatomy.
MAX_DEVIATION_MM = 10.0
#: Largest triangle count to decimate to: far above any printable model, far below what overflows VTK.
MAX_DECIMATE_FACES = 100_000_000


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
        if isinstance(self.smooth_iterations, bool) or not isinstance(self.smooth_iterations, Integral):
            raise ParameterError(f"--smooth: iterations must be a whole number, got {self.smooth_iterations!r}")
        # Past a few hundred passes the windowed-sinc filter has converged; more only costs time.
        require_number(self.smooth_iterations, "--smooth", low=0, high=MAX_SMOOTH_ITERATIONS, unit="iterations")
        if self.max_deviation_mm is not None:
            require_number(self.max_deviation_mm, "--max-deviation", low=0, high=MAX_DEVIATION_MM, low_open=True,
                           unit="mm", why="the most the surface may move; half a voxel is the default")
        if self.decimate_fraction is not None:
            require_number(self.decimate_fraction, "--decimate", low=0, high=1, low_open=True, high_open=True,
                           why="a fraction of the triangles to keep, e.g. 0.25")
        if self.decimate_faces is not None:
            if isinstance(self.decimate_faces, bool) or not isinstance(self.decimate_faces, Integral):
                raise ParameterError(
                    f"--decimate: a triangle count must be a whole number, got {self.decimate_faces!r}"
                )
            require_number(self.decimate_faces, "--decimate", low=4, high=MAX_DECIMATE_FACES,
                           why="a triangle count, e.g. 200000")

    def deviation_limit(self, voxel_spacing: tuple[float, float, float]) -> float:
        """The deviation bound in mm for a scan with this spacing."""
        return self.max_deviation_mm if self.max_deviation_mm is not None else 0.5 * min(voxel_spacing)


@dataclass(frozen=True)
class LoadSettings:
    """How to read the input (see :func:`medprint.io.load_volume`)."""

    series: str | None = None
    allow_gaps: bool = False
    modality: str | None = None
    non_finite: float | None = None


@dataclass(frozen=True)
class LabelSettings:
    """Parts taken from an existing segmentation (see :func:`medprint.io.labels.load_label_mask`).

    Parameters
    ----------
    path : Path
        Label map (NIfTI/NRRD/MHA), DICOM SEG or RTSTRUCT.
    labels : tuple of str
        Label numbers or names to print, one part each; empty means all.
    names_file : Path, optional
        Names for a label map's numbers (TotalSegmentator class map, Slicer ``.seg.nrrd``, text).
    force_geometry : bool
        Accept a SEG/RTSTRUCT made on another series.
    """

    path: Path
    labels: tuple[str, ...] = ()
    names_file: Path | None = None
    force_geometry: bool = False


@dataclass(frozen=True)
class SeedSettings:
    """A part grown from points the user clicked (tumour, lesion, vessel).

    Parameters
    ----------
    lps_mm : tuple of (x, y, z)
        Seeds in patient millimetres (LPS, as a DICOM viewer shows them).
    voxels_ijk : tuple of (i, j, k)
        Seeds as voxel indices (column, row, slice).
    vessel : bool
        Grow one contrast-filled vessel tree (:func:`medprint.segment.segment_vessel`)
        instead of a region (:func:`medprint.segment.segment_from_seeds`).
    region : RegionGrowingSettings
    vessels : VesselSettings
    """

    lps_mm: tuple[tuple[float, float, float], ...] = ()
    voxels_ijk: tuple[tuple[float, float, float], ...] = ()
    vessel: bool = False
    region: RegionGrowingSettings = RegionGrowingSettings()
    vessels: VesselSettings = VesselSettings()


@dataclass(frozen=True)
class MriPreparation:
    """Optional clean-up of an MR volume before any segmentation (see :func:`medprint.segment.prepare_mri`)."""

    bias_correction: bool = False
    denoise: str | None = None


@dataclass(frozen=True)
class GcodeRequest:
    """Slice the converted mesh straight to G-code (see :func:`medprint.slice.slice_to_gcode`).

    Parameters
    ----------
    path : Path
        G-code file to write.
    printer, material : str
        Profile names (``medprint profiles list``).
    settings : SliceSettings
    engine : {'builtin', 'prusaslicer'}
    profiles_dir : Path, optional
        Extra profile folder (as ``--profiles``).
    """

    path: Path
    printer: str
    material: str
    settings: SliceSettings = SliceSettings()
    engine: str = "builtin"
    profiles_dir: Path | None = None


@dataclass
class ConvertResult:
    """What :func:`convert_scan` produced: one mesh and file per part (:attr:`written` lists every file)."""

    meshes: list[Mesh]
    mesh_paths: list[Path]
    report_path: Path | None
    report: dict[str, Any]
    combined_path: Path | None = None
    gcode_path: Path | None = None
    extra_paths: tuple[Path, ...] = ()

    @property
    def written(self) -> tuple[Path, ...]:
        """Every file the run wrote: the part meshes, then the 3MF, the G-code and the report (those made),
        then the extra outputs (HTML report, DICOM objects)."""
        extras = (self.combined_path, self.gcode_path, self.report_path)
        return (*self.mesh_paths, *(path for path in extras if path is not None), *self.extra_paths)

    @property
    def mesh(self) -> Mesh:
        """The mesh of a single-part run."""
        return self.meshes[0]

    @property
    def mesh_path(self) -> Path:
        return self.mesh_paths[0]


@dataclass
class _Stopwatch:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        # Stages repeat once per part: their times add up.
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)
        log.info("%s: %.2f s", name, self.seconds[name])


@dataclass
class _Part:
    mask: Mask
    steps: list[str]


def convert_scan(
    input_path: Path,
    output_path: Path,
    *,
    segmentation: SegmentationSettings,
    labels: LabelSettings | None = None,
    seeds: SeedSettings | None = None,
    mri: MriSettings | None = None,
    preparation: MriPreparation = MriPreparation(),
    surface: SurfaceSettings = SurfaceSettings(),
    loading: LoadSettings = LoadSettings(),
    combined_3mf: Path | None = None,
    gcode: GcodeRequest | None = None,
    ascii_stl: bool = False,
    overwrite: bool = False,
    write_json_report: bool = True,
    include_phi_paths: bool = False,
    progress: ProgressCallback = no_progress,
    order: Mapping[str, Any] | None = None,
    extras: Sequence[ExtraOutput] = (),
) -> ConvertResult:
    """Run the whole chain and write one mesh per part (and a JSON report beside them).

    A part comes from each source given: the threshold/preset in
    ``segmentation``, region growing from ``seeds``, an automatic MR threshold
    (``mri``), and each label selected in ``labels``.  With one part the mesh goes to
    ``output_path``; with several, each goes to ``<stem>_<part><suffix>`` beside
    it, and ``combined_3mf`` (optional) holds them all as named, coloured
    objects.  All parts stay in the scan's patient frame; where two parts touch,
    the vertices on their shared boundary are not moved, so the parts meet
    without gaps or overlaps beyond the deviation limit.

    Every output (meshes, report, ``combined_3mf``, ``gcode``) is reserved and
    checked before any work starts -- no two may be the same file, and another
    medprint run writing one of them is refused -- and part files as soon as
    the parts are known, before meshing.  All files are committed together at
    the end: if any stage fails (the slicer, a full disk, Ctrl-C), no file of
    the run is left and existing files are untouched.

    ``order`` (the record of the order the run comes from, :func:`medprint.jobs.orders.order_record`) goes
    into the report, returned and written, as ``report["order"]``.  ``extras`` (the HTML sign-off report,
    DICOM objects: :mod:`medprint.deliver`) are reserved with the other outputs and written from what the
    run made, in the same all-or-nothing commit.
    """
    output_path = Path(output_path)
    report_path = report_path_for(output_path) if write_json_report else None
    with RunOutputs(overwrite=overwrite) as outputs:
        _check_outputs(outputs, output_path, report_path, combined_3mf, gcode)
        for extra in extras:
            extra.reserve(outputs)
        result = _convert(
            outputs, input_path, output_path, report_path, segmentation=segmentation, labels=labels, seeds=seeds,
            mri=mri, preparation=preparation, surface=surface, loading=loading, combined_3mf=combined_3mf,
            gcode=gcode, ascii_stl=ascii_stl, overwrite=overwrite, include_phi_paths=include_phi_paths,
            progress=progress, order=order, extras=extras,
        )
        outputs.commit()
    return result


def _convert(
    outputs: RunOutputs,
    input_path: Path,
    output_path: Path,
    report_path: Path | None,
    *,
    segmentation: SegmentationSettings,
    labels: LabelSettings | None,
    seeds: SeedSettings | None,
    mri: MriSettings | None,
    preparation: MriPreparation,
    surface: SurfaceSettings,
    loading: LoadSettings,
    combined_3mf: Path | None,
    gcode: GcodeRequest | None,
    ascii_stl: bool,
    overwrite: bool,
    include_phi_paths: bool,
    progress: ProgressCallback,
    order: Mapping[str, Any] | None,
    extras: Sequence[ExtraOutput],
) -> ConvertResult:
    """The work of :func:`convert_scan`; every file goes to the temporary files of ``outputs``."""
    scrub = Scrubber({} if include_phi_paths else _private_paths(input_path, labels))
    watch = _Stopwatch()
    with collected_warnings(scrub) as warnings:
        slicing = _prepare_gcode(gcode) if gcode is not None else None
        with watch.stage("load"):
            volume = load_volume(
                input_path, series=loading.series, allow_gaps=loading.allow_gaps, modality=loading.modality,
                non_finite=loading.non_finite, progress=progress,
            )
        input_facts = describe_volume(
            volume, input_path=input_path if include_phi_paths else None, show_phi=include_phi_paths
        )
        choices = list(volume.notes)
        # The extra outputs show the scan under the model; without them the voxels are freed early (below).
        shown_scan = volume if extras else None
        with watch.stage("segment"):
            if preparation.bias_correction or preparation.denoise:
                volume, prepared = prepare_mri(
                    volume, bias_correction=preparation.bias_correction, denoise_method=preparation.denoise
                )
                choices += prepared
            parts = _select_parts(volume, segmentation, labels, seeds, mri)
            # Hospital volumes are hundreds of MB: release the voxels before labelling and meshing need memory.
            del volume
            for part in parts:
                part.mask, cleanup_steps = clean_up_mask(part.mask, segmentation)
                part.steps += cleanup_steps
        if gcode is not None and len(parts) > 1:
            raise ParameterError(
                f"--gcode: this run makes {len(parts)} parts; drop --gcode and slice each part's file with "
                "`medprint slice`"
            )
        paths = _part_paths(output_path, [part.mask.label for part in parts])
        if len(paths) > 1:
            for index, path in enumerate(paths):
                outputs.reserve(path, f"part {index + 1} of {len(paths)}")
        meshes, described = _mesh_parts(parts, surface, watch, progress)
        with watch.stage("write"):
            order_id = None if order is None else order.get("id")
            for k, (mesh, path) in enumerate(zip(meshes, paths)):
                write_mesh(mesh, path, ascii=ascii_stl, overwrite=overwrite, colour=PART_COLOURS[k % len(PART_COLOURS)],
                           metadata=model_metadata(path, order_id=order_id))
            if combined_3mf is not None:
                write_parts_3mf(meshes, combined_3mf, overwrite=overwrite,
                                metadata=model_metadata(combined_3mf, order_id=order_id))
        # The report names its files relative to its own folder: output folders are often named after the patient.
        report_folder = output_path.parent
        for facts, path in zip(described, paths):
            facts["mesh"]["path"] = relative_to(path, report_folder)
        gcode_summary, gcode_text = None, None
        if gcode is not None and slicing is not None:
            with watch.stage("slice"):
                sliced = slice_to_gcode(meshes[0], *slicing, gcode.settings, engine=gcode.engine, progress=progress)
                write_gcode(sliced, gcode.path, overwrite=overwrite)
                gcode_text = "".join(sliced.chunks) if extras else None
            gcode_summary = {"path": relative_to(gcode.path, report_folder), **sliced.summary()}
    report = build_report(
        input_facts=input_facts,
        choices=[scrub(choice) for choice in choices + [step for part in parts for step in part.steps] + [
            repair for facts in described for repair in facts.pop("repairs")
        ]],
        parts=described,
        parameters={
            "segmentation": segmentation, "labels": _labels_for_report(labels, shown=include_phi_paths), "seeds": seeds, "mri": mri,
            "preparation": preparation, "surface": surface, "loading": loading,
            "ascii_stl": ascii_stl,
            "combined_3mf": None if combined_3mf is None else relative_to(combined_3mf, report_folder),
        },
        timings_s=watch.seconds,
    )
    report["warnings"] = warnings
    if gcode_summary is not None:
        report["gcode"] = gcode_summary
    if order is not None:
        report["order"] = dict(order)
    if report_path is not None:
        write_report(report, report_path, overwrite=overwrite)
    products = RunProducts(
        command="convert", main_output=output_path, report=report, outputs=outputs,
        shown=tuple(Shown(part.mask.label, mesh, PART_COLOURS[k % len(PART_COLOURS)])
                    for k, (part, mesh) in enumerate(zip(parts, meshes))),
        part_files={part.mask.label: path for part, path in zip(parts, paths)},
        volume=shown_scan, window_preset=segmentation.preset, gcode_text=gcode_text, input_path=input_path,
        outlines=tuple(Outline(part.mask.label, PART_COLOURS[k % len(PART_COLOURS)], part.mask)
                       for k, part in enumerate(parts)),
    )
    extra_paths = tuple(path for extra in extras for path in extra.write(products))
    return ConvertResult(meshes, paths, report_path, report, combined_3mf, None if gcode is None else gcode.path,
                         extra_paths)


def _private_paths(input_path: Path, labels: LabelSettings | None) -> dict[str, str]:
    """The paths and file names the report must not show without --show-phi, with their stand-ins.

    Below an input folder every file and folder name counts (a DICOM file may
    be named after the patient, and its name goes into a note when it is
    skipped).
    """
    named = {"<input>": Path(input_path)}
    if labels is not None:
        named["<labels>"] = Path(labels.path)
        if labels.names_file is not None:
            named["<names file>"] = Path(str(labels.names_file).split("#", 1)[0])
    private: dict[str, str] = {}
    for stand_in, path in named.items():
        private[str(path)] = stand_in
        private[path.name] = stand_in
    for name, stand_in in names_below(Path(input_path)).items():
        private.setdefault(name, stand_in)
    return private


def _labels_for_report(labels: LabelSettings | None, *, shown: bool) -> dict[str, Any] | None:
    if labels is None:
        return None
    names_file = None if labels.names_file is None else (str(labels.names_file) if shown else "<names file>")
    return {
        "path": str(labels.path) if shown else "<labels>",
        "labels": list(labels.labels),
        "names_file": names_file,
        "force_geometry": labels.force_geometry,
    }


def _prepare_gcode(gcode: GcodeRequest) -> tuple[PrinterProfile, MaterialProfile]:
    """Check the profiles before any work, so a typo costs nothing (the G-code target is reserved already)."""
    library = load_profiles(gcode.profiles_dir)
    printer, material = library.printer(gcode.printer), library.material(gcode.material)
    check_compatible(printer, material)
    gcode.settings.validated(printer)
    return printer, material


def _select_parts(
    volume: Volume,
    segmentation: SegmentationSettings,
    labels: LabelSettings | None,
    seeds: SeedSettings | None,
    mri: MriSettings | None,
) -> list[_Part]:
    parts: list[_Part] = []
    if segmentation.preset is not None or segmentation.threshold is not None:
        parts.append(_Part(*select_by_threshold(volume, segmentation)))
    if seeds is not None:
        if seeds.vessel:
            grown = segment_vessel(volume, seeds.lps_mm, seeds.vessels, seeds_voxel=seeds.voxels_ijk)
        else:
            grown = segment_from_seeds(volume, seeds.lps_mm, seeds.region, seeds_voxel=seeds.voxels_ijk)
        parts.append(_Part(*grown))
    if mri is not None:
        parts.append(_Part(*segment_mri(volume, mri)))
    if labels is not None:
        for mask in load_label_mask(
            labels.path, volume, labels=labels.labels or None, names_file=labels.names_file,
            force_geometry=labels.force_geometry,
        ):
            parts.append(_Part(mask, [f"part {mask.label}: imported label ({mask.voxel_count} voxels)"]))
    if not parts:
        raise ParameterError(
            "choose what to print: --preset NAME, --threshold LO:HI, --seed X,Y,Z, --auto-threshold or --labels FILE"
        )
    _make_names_unique(parts)
    return parts


def _make_names_unique(parts: list[_Part]) -> None:
    seen: dict[str, int] = {}
    for part in parts:
        name = part.mask.label
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            part.mask = Mask(part.mask.array, part.mask.geometry, f"{name}_{seen[name]}")


def _part_paths(output_path: Path, names: list[str]) -> list[Path]:
    """One file per part, ``<stem>_<part><suffix>``, each distinct and short enough for the file system.

    Part names are cleaned to ``[A-Za-z0-9_.-]`` and cut at 40 characters, so
    two names may clean to one (``a/b`` and ``a_b``); each of those gets a short
    hash of its full name, so every part keeps a file of its own and a rerun
    picks the same names.  Case is ignored when comparing, for macOS and Windows.
    """
    if len(names) == 1:
        return [output_path]
    cleaned = [safe_part_name(name) for name in names]
    shared = Counter(name.lower() for name in cleaned)
    limit = name_max(output_path.parent)
    paths = []
    for name, clean in zip(names, cleaned):
        distinct = f"{clean}-{short_digest(name)}" if shared[clean.lower()] > 1 else clean
        paths.append(output_path.with_name(fit_name(f"{output_path.stem}_{distinct}", output_path.suffix, limit)))
    return paths


def _mesh_parts(
    parts: list[_Part], surface: SurfaceSettings, watch: _Stopwatch, progress: ProgressCallback
) -> tuple[list[Mesh], list[dict[str, Any]]]:
    meshes, described = [], []
    for index, part in enumerate(parts):
        mask = part.mask
        with watch.stage("surface"):
            raw = extract_surface(mask, progress=progress).with_name(mask.label)
        pinned = _shared_boundary(raw, mask, [other.mask for other in parts if other is not part])
        # Refuse a crumb before spending time on it, and again after smoothing (which may shrink it).
        check_printable_size(raw, voxel_count=mask.voxel_count)
        mesh, quality, facts = _refine_surface(raw, mask.geometry, surface, watch, pinned)
        check_printable_size(mesh)
        if pinned is not None and pinned.any():
            facts["repairs"].insert(0, f"part {mask.label}: {int(pinned.sum())} vertices on boundaries shared with "
                                       "other parts kept in place")
        meshes.append(mesh)
        described.append(describe_part(mask_facts=describe_mask(mask), mesh=mesh, quality=quality,
                                       surface_facts=facts))
        log.debug("part %d of %d done: %s", index + 1, len(parts), mask.label)
    return meshes, described


def _shared_boundary(raw: Mesh, mask: Mask, others: list[Mask]) -> NDArray[np.bool_] | None:
    """Vertices of ``raw`` that lie between a voxel of ``mask`` and a voxel of another part."""
    if not others:
        return None
    union = np.zeros_like(mask.array)
    for other in others:
        union |= other.array
    outside = cut_edge_outer_voxels(raw, mask)
    inside_volume = np.all((outside >= 0) & (outside < np.asarray(mask.array.shape)), axis=1)
    pinned = np.zeros(raw.vertex_count, dtype=bool)
    k, j, i = outside[inside_volume].T
    pinned[inside_volume] = union[k, j, i]
    return pinned


def _check_outputs(
    outputs: RunOutputs, output_path: Path, report_path: Path | None, combined: Path | None,
    gcode: GcodeRequest | None,
) -> None:
    """Reserve every output known before the work; the part files follow once the parts are known."""
    name = output_path.name
    if output_path.suffix == "" and name.lower() in MESH_FORMATS:
        raise ParameterError(f"-o/--output: {output_path} is only a suffix; give a file name such as skull{name}")
    if output_path.suffix.lower() not in MESH_FORMATS and not output_path.is_dir():
        raise ParameterError(
            f"-o/--output: {name} has no mesh suffix; use one of {', '.join(MESH_FORMATS)}"
        )
    outputs.reserve(output_path, "-o/--output")
    if report_path is not None:
        outputs.reserve(report_path, "report")
    if combined is not None:
        if combined.suffix.lower() != ".3mf":
            raise ParameterError(f"--3mf: {combined.name} must end in .3mf")
        outputs.reserve(combined, "--3mf")
    if gcode is not None:
        outputs.reserve(gcode.path, "--gcode")


def _refine_surface(
    mesh: Mesh, grid: Geometry, surface: SurfaceSettings, watch: _Stopwatch,
    pinned: NDArray[np.bool_] | None = None,
) -> tuple[Mesh, MeshQuality, dict[str, Any]]:
    """Smooth, decimate and check a raw marching-cubes surface made on ``grid``; ``pinned`` vertices stay."""
    limit = surface.deviation_limit(grid.spacing)
    facts: dict[str, Any] = {"deviation_limit_mm": limit, "raw_triangles": mesh.face_count}
    decimating = surface.decimate_fraction is not None or surface.decimate_faces is not None
    if surface.smooth_iterations > 0:
        # Smoothing and decimation share one budget; with both, each gets half.
        smoothing_limit: float | NDArray[np.float64] = limit / 2 if decimating else limit
        if pinned is not None:
            smoothing_limit = np.where(pinned, 0.0, smoothing_limit)
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
                pinned=pinned,
            )
    with watch.stage("repair"):
        # Assesses once; the report reuses that assessment instead of checking again.
        repair = make_printable(mesh)
    facts["repairs"] = list(repair.actions)
    facts["repair_deviation_mm"] = round(repair.deviation_mm, 4)
    # The stages move the surface one after another: their bounds add up.
    total = facts.get("smoothing_deviation_mm", 0.0) + facts.get("decimation_deviation_mm", 0.0) + repair.deviation_mm
    facts["surface_deviation_mm"] = round(total, 4)
    if repair.deviation_mm > 0 and total > limit:
        log.warning(
            "part %s: the final repair moved the surface %.3g mm, %.3g mm in all, beyond the %.3g mm limit; "
            "check the model against the scan", mesh.name, repair.deviation_mm, total, limit,
        )
    return repair.mesh.with_name(mesh.name), repair.quality, facts
